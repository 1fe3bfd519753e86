package acl

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/ucsec/ucsec/digest"
)

// acceptAll lets one precomputed request verify again and again.
type acceptAll struct{}

func (acceptAll) Use(context.Context, digest.NonceID, uint32, time.Time, time.Time) (bool, error) {
	return true, nil
}

// stubDigest authenticates every request as "unity", so that the ACL part
// can be measured alone.
type stubDigest struct{ res digest.Result }

func (s stubDigest) Verify(context.Context, *digest.Request) (digest.Result, error) {
	return s.res, nil
}
func (stubDigest) Answer(*digest.Request, error) (digest.Answer, error) { return digest.Answer{}, nil }

// BenchmarkAuthorize decides an allowed out-of-dialog REFER from an
// application user with valid digest credentials (table row 13): in full,
// and the ACL part alone (digest verification stubbed out).
func BenchmarkAuthorize(b *testing.B) {
	f := newFixture()
	f.server.Replay = acceptAll{}
	profile := TrunkProfile{Accept: all, DigestAuthentication: true, ApplicationLevelAuthorization: true}
	users := UserMap{"unity": {Name: "unity", Accept: all}}
	dr := &digest.Request{Method: "REFER", URI: "sip:cucm.example.com"}
	chs, err := f.server.Challenges(dr, false)
	if err != nil {
		b.Fatal(err)
	}
	cr, err := digest.Respond(chs[0], digest.RespondOptions{Username: "unity", Password: "vm-secret", Method: "REFER", URI: dr.URI, QOP: "auth", CNonce: "c", NC: 1})
	if err != nil {
		b.Fatal(err)
	}
	dr.Authorization = []string{cr.String()}
	ctx := context.Background()
	for _, c := range []struct {
		name  string
		trunk *Trunk
	}{
		{"full", &Trunk{Profile: &profile, Digest: f.server, Users: users}},
		{"acl-only", &Trunk{Profile: &profile, Digest: stubDigest{digest.Result{Username: "unity"}}, Users: users}},
		// The refusals a flood of unwanted requests takes.
		{"forbid-trunk", &Trunk{Profile: &TrunkProfile{DigestAuthentication: true}, Digest: stubDigest{digest.Result{Username: "unity"}}}},
		{"forbid-app-user", &Trunk{Profile: &profile, Digest: stubDigest{digest.Result{Username: "unity"}}, Users: UserMap{"unity": {Name: "unity"}}}},
	} {
		b.Run(c.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				d, err := c.trunk.Authorize(ctx, oodRefer, dr)
				if err != nil || (d.Verdict != Allow) != strings.HasPrefix(c.name, "forbid") {
					b.Fatal(d, err)
				}
			}
		})
	}
}

// BenchmarkCallingSearchSpace matches a number against a three-partition
// space.
func BenchmarkCallingSearchSpace(b *testing.B) {
	internal, _ := NewPartition("Internal", "1XXX", "2000")
	local, _ := NewPartition("Local", "9.[2-9]XXXXXX")
	intl, _ := NewPartition("International", "9.011!", "9.!")
	css := &CallingSearchSpace{Partitions: []*Partition{internal, local, intl}}
	b.ReportAllocs()
	for b.Loop() {
		if _, ok := css.Match("901144207946000"); !ok {
			b.Fatal("no match")
		}
	}
}
