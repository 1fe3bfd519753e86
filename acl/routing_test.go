package acl

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestPatterns(t *testing.T) {
	for _, c := range []struct {
		pattern string
		match   []string
		miss    []string
	}{
		{"1000", []string{"1000"}, []string{"100", "10000", "1001", ""}},
		{"1XXX", []string{"1000", "1999"}, []string{"2000", "100", "10000", "1*00"}},
		{"9.!", []string{"91", "9123456789012"}, []string{"9", "8123"}},
		{"9.1[2-9]XX[2-9]XXXXXX", []string{"912125551234"}, []string{"911125551234", "91212555123"}},
		{"[^5]XX", []string{"123", "999"}, []string{"512", "12"}},
		{"\\+1!", []string{"+15551234"}, []string{"15551234", "+1"}},
		{"\\+44X!", []string{"+4420", "+44207946000"}, []string{"+44", "+442"}},
		{"[2-9]+", []string{"2", "2345", "99"}, []string{"", "21", "+"}},
		{"91+X", []string{"912", "91113"}, []string{"92", "91"}},
		{"*8X", []string{"*81"}, []string{"#81", "*8"}},
		{"1!0", []string{"110", "1230", "12340"}, []string{"10", "1231"}},
		{"!!", []string{"12", "123"}, []string{"1"}},
		{"[135]", []string{"1", "3", "5"}, []string{"2", "*"}},
	} {
		p, err := ParsePattern(c.pattern)
		require.NoError(t, err, c.pattern)
		assert.Equal(t, c.pattern, p.String())
		for _, n := range c.match {
			assert.True(t, p.Match(n), "%s should match %q", c.pattern, n)
		}
		for _, n := range c.miss {
			assert.False(t, p.Match(n), "%s should not match %q", c.pattern, n)
		}
	}
	for _, bad := range []string{"", "1@", "[12", "[a-z]", "[5-1]", "[^0-9]", "[^]", "[]", "?", "...", "+1", "9.+1", strings.Repeat("1", MaxPatternLength+1), "1%"} {
		_, err := ParsePattern(bad)
		assert.ErrorIs(t, err, ErrPattern, "%q", bad)
	}
	long, err := ParsePattern("!")
	require.NoError(t, err)
	assert.False(t, long.Match(strings.Repeat("1", MaxPatternLength+1)))
	assert.True(t, long.Match(strings.Repeat("1", MaxPatternLength)))
	max, err := ParsePattern(strings.Repeat("X", MaxPatternLength))
	require.NoError(t, err)
	assert.True(t, max.Match(strings.Repeat("7", MaxPatternLength)))
}

// TestCallingSearchSpace: the first partition in order that holds a
// matching pattern wins; a number no partition holds cannot be called.
func TestCallingSearchSpace(t *testing.T) {
	internal, err := NewPartition("Internal", "1XXX", "2000")
	require.NoError(t, err)
	local, err := NewPartition("Local", "9.[2-9]XXXXXX")
	require.NoError(t, err)
	intl, err := NewPartition("International", "9.011!", "9.!")
	require.NoError(t, err)
	_, err = NewPartition("Bad", "1XXX", "9@")
	require.ErrorIs(t, err, ErrPattern)

	lobby := &CallingSearchSpace{Name: "Lobby", Partitions: []*Partition{internal}}
	staff := &CallingSearchSpace{Name: "Staff", Partitions: []*Partition{internal, local, intl}}

	for _, c := range []struct {
		css       *CallingSearchSpace
		number    string
		partition string
		pattern   string
	}{
		{lobby, "1234", "Internal", "1XXX"},
		{lobby, "2000", "Internal", "2000"},
		{lobby, "95551234", "", ""},
		{staff, "95551234", "Local", "9.[2-9]XXXXXX"},
		{staff, "901144207946000", "International", "9.011!"},
		{staff, "91", "International", "9.!"},
		{staff, "3000", "", ""},
	} {
		r, ok := c.css.Match(c.number)
		if c.partition == "" {
			assert.False(t, ok, "%s must not reach %s", c.css.Name, c.number)
			continue
		}
		require.True(t, ok, "%s should reach %s", c.css.Name, c.number)
		assert.Equal(t, c.partition, r.Partition.Name)
		assert.Equal(t, c.pattern, r.Pattern.String())
	}
}

func TestPresenceGroups(t *testing.T) {
	g := &PresenceGroups{}
	g.Set("Lobby", "Executives", false)
	g.Set("Executives", "Lobby", true)
	assert.False(t, g.Allowed("Lobby", "Executives"))
	assert.True(t, g.Allowed("Executives", "Lobby"))
	assert.True(t, g.Allowed("Lobby", "Sales"), "default allows")
	assert.True(t, g.Allowed("Sales", "Sales"))

	strict := &PresenceGroups{DisallowByDefault: true}
	assert.False(t, strict.Allowed("Lobby", "Sales"), "default disallows")
	assert.True(t, strict.Allowed("Lobby", "Lobby"), "a group sees itself")
	strict.Set("Lobby", "Lobby", false)
	assert.False(t, strict.Allowed("Lobby", "Lobby"))
}
