package acl

import "fmt"

// Partition is a named group of directory numbers and route patterns, as
// in CUCM: a number is reachable by a caller whose calling search space
// lists the partition.
type Partition struct {
	Name     string
	Patterns []*Pattern
}

// NewPartition compiles patterns into a partition.
func NewPartition(name string, patterns ...string) (*Partition, error) {
	p := &Partition{Name: name}
	for _, s := range patterns {
		pat, err := ParsePattern(s)
		if err != nil {
			return nil, fmt.Errorf("partition %q: %w", name, err)
		}
		p.Patterns = append(p.Patterns, pat)
	}
	return p, nil
}

// Match returns the first of the partition's patterns that number
// matches.
func (p *Partition) Match(number string) (*Pattern, bool) {
	for _, pat := range p.Patterns {
		if pat.Match(number) {
			return pat, true
		}
	}
	return nil, false
}

// CallingSearchSpace is an ordered list of partitions: the numbers a
// caller (a phone, a trunk) may reach.
type CallingSearchSpace struct {
	Name       string
	Partitions []*Partition
}

// Route says where a number matched.
type Route struct {
	Partition *Partition
	Pattern   *Pattern
}

// Match authorizes a call to number (the called party, as dialled: the
// user part of the INVITE's Request-URI): it returns the first partition,
// in the space's order, holding a pattern that number matches, and the
// first such pattern in it. A number that matches nothing may not be
// called; answer such an INVITE with 404 Not Found, as CUCM does for an
// unreachable number, or 403.
//
// CUCM routes a call to the closest match (the most specific pattern)
// over all the partitions, using partition order only between equally
// specific patterns. Whether a call is allowed does not depend on that
// choice; which pattern is reported does, so do not use Match to pick a
// route when patterns overlap.
func (css *CallingSearchSpace) Match(number string) (Route, bool) {
	for _, p := range css.Partitions {
		if pat, ok := p.Match(number); ok {
			return Route{Partition: p, Pattern: pat}, true
		}
	}
	return Route{}, false
}

// PresenceGroups decides which presence subscriptions are allowed, as
// CUCM's presence groups do: a subscriber (a phone line or a trunk's
// application) in one group may see the presence of a presentity in
// another group if the pair is allowed, or, when the pair is not set, by
// the cluster default ("Default Inter-Presence Group Subscription", which
// allows unless DisallowByDefault is set). A group sees its own members
// unless that pair is set to disallowed: our reading of CUCM, not
// confirmed by its documentation. Set the pairs before first use; it is
// then safe for concurrent use.
type PresenceGroups struct {
	// DisallowByDefault makes pairs of different groups that are not set
	// disallowed. The zero value allows them, as CUCM does by default.
	DisallowByDefault bool

	pairs map[[2]string]bool
}

// Set allows or disallows subscribers in group from to see presentities
// in group to. It is directional: set the reverse pair for the other way.
func (g *PresenceGroups) Set(from, to string, allowed bool) {
	if g.pairs == nil {
		g.pairs = map[[2]string]bool{}
	}
	g.pairs[[2]string{from, to}] = allowed
}

// Allowed reports whether a subscriber in group from may see the presence
// of a presentity in group to.
func (g *PresenceGroups) Allowed(from, to string) bool {
	if v, ok := g.pairs[[2]string{from, to}]; ok {
		return v
	}
	return from == to || !g.DisallowByDefault
}
