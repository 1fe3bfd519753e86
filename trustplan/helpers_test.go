package trustplan_test

import (
	"context"
	"crypto"
	"crypto/x509"
	"errors"
	"testing"
	"time"

	"github.com/ucsec/ucsec/ctl"
	"github.com/ucsec/ucsec/internal/testkeys"
	"github.com/ucsec/ucsec/internal/testpki"
	"github.com/ucsec/ucsec/itl"
	"github.com/ucsec/ucsec/sgn"
	"github.com/ucsec/ucsec/trustplan"
)

// at is the timestamp of the lists and files the tests make.
var at = time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)

// A pair is a certificate and its key.
type pair struct {
	cert *x509.Certificate
	key  crypto.Signer
}

// fixture holds the certificates of the tests: the certutils keys "sast"
// (the cluster's ITLRecovery), "device" (a new ITLRecovery, or another
// cluster's) and "tftp" (the TFTP certificate, CN=Asterisk), a second
// TFTP certificate "tftp2" (a regenerated one), and the TVS certificate
// "tvs", which a real TVS in the tests presents.
type fixture struct {
	sast, device, tftp, tftp2, tvs pair
}

func newFixture(tb testing.TB) *fixture {
	tb.Helper()
	f := &fixture{}
	for _, p := range []struct {
		to   *pair
		name string
	}{{&f.sast, "sast"}, {&f.device, "device"}, {&f.tftp, "tftp"}} {
		p.to.cert, p.to.key = testkeys.Load(tb, p.name)
	}
	f.tftp2.key = testpki.Key(tb, testpki.RSA2048)
	f.tftp2.cert = testpki.SelfSigned(tb, testpki.Leaf("tftp2"), f.tftp2.key)
	f.tvs.key = testpki.Key(tb, testpki.EC256)
	f.tvs.cert = testpki.SelfSigned(tb, testpki.Server("TVS"), f.tvs.key)
	return f
}

// rec is a record of a list to build.
type rec struct {
	p    pair
	role ctl.Role
}

// list builds, signs with signer and parses a list of policy.
func list(tb testing.TB, policy ctl.Policy, signer pair, recs ...rec) *ctl.File {
	tb.Helper()
	var records []ctl.Record
	for _, r := range recs {
		record, err := ctl.NewRecord(r.p.cert, r.role)
		if err != nil {
			tb.Fatal(err)
		}
		records = append(records, record)
	}
	data, err := policy.Create(nil, &ctl.File{Header: sgn.Header{Hash: crypto.SHA1, Timestamp: at}, Records: records}, signer.cert, signer.key)
	if err != nil {
		tb.Fatal(err)
	}
	f, err := ctl.Parse(data)
	if err != nil {
		tb.Fatal(err)
	}
	return f
}

func itlOf(tb testing.TB, signer pair, recs ...rec) *ctl.File {
	tb.Helper()
	return list(tb, itl.ITLPolicy(), signer, recs...)
}

func ctlOf(tb testing.TB, signer pair, recs ...rec) *ctl.File {
	tb.Helper()
	return list(tb, ctl.CTLPolicy(), signer, recs...)
}

// rollbackITL returns the ITL of "Prepare Cluster for Rollback to
// pre-8.0": a signed file without records.
func rollbackITL(tb testing.TB, signer pair) *ctl.File {
	tb.Helper()
	data, err := sgn.Sign(nil, nil, signer.cert, signer.key, sgn.SignOptions{Filename: "ITLFile.tlv", Hash: crypto.SHA1, Time: func() time.Time { return at }})
	if err != nil {
		tb.Fatal(err)
	}
	f, err := ctl.Parse(data)
	if err != nil {
		tb.Fatal(err)
	}
	if len(f.Records) != 0 {
		tb.Fatalf("rollback ITL with %d records", len(f.Records))
	}
	return f
}

// config returns a configuration signed by signer for the name name.
func config(tb testing.TB, signer pair, name string) *sgn.File {
	tb.Helper()
	data, err := sgn.Sign(nil, []byte("<device><fullConfig>true</fullConfig></device>\n"), signer.cert, signer.key,
		sgn.SignOptions{Filename: name, Hash: crypto.SHA1, Time: func() time.Time { return at }})
	if err != nil {
		tb.Fatal(err)
	}
	f, err := sgn.Parse(data)
	if err != nil {
		tb.Fatal(err)
	}
	return f
}

// tampered returns f with one payload byte changed.
func tampered(tb testing.TB, f *sgn.File) *sgn.File {
	tb.Helper()
	data := append([]byte(nil), f.Raw...)
	data[len(data)-2] ^= 1
	g, err := sgn.Parse(data)
	if err != nil {
		tb.Fatal(err)
	}
	return g
}

// An outcome is one step of the phone model: the rule and whether the
// phone accepted.
type outcome struct {
	Rule     ctl.Rule
	Accepted bool
}

func outcomes(r *trustplan.Result) []outcome {
	out := make([]outcome, len(r.Decisions))
	for i, d := range r.Decisions {
		out[i] = outcome{d.Rule, d.Accepted}
	}
	return out
}

// reference runs ctl.Phone through pub as a phone does, without the
// planner: the CTL, the ITL, then each file, replacing a list it
// accepts. tvsFor returns the phone's TVS for the ITL it holds (nil for
// none).
func reference(t testing.TB, held trustplan.Held, tvsFor func(itl *ctl.File) ctl.Verifier, pub trustplan.Publication) ([]outcome, trustplan.Held) {
	t.Helper()
	ctx := context.Background()
	var out []outcome
	ph := ctl.Phone{CTL: held.CTL, ITL: held.ITL}
	if pub.CTL != nil {
		ph.TVS = tvsFor(ph.ITL)
		rule, err := ph.AcceptList(ctx, pub.CTL, ctl.CTLPolicy())
		if err == nil {
			ph.CTL = pub.CTL
		}
		out = append(out, outcome{rule, err == nil})
	}
	if pub.ITL != nil {
		ph.TVS = tvsFor(ph.ITL)
		rule, err := ph.AcceptList(ctx, pub.ITL, itl.ITLPolicy())
		if err == nil {
			ph.ITL = pub.ITL
		}
		out = append(out, outcome{rule, err == nil})
	}
	for _, f := range pub.Files {
		rule, _, err := ph.CheckSignedFile(f.File, f.Name)
		out = append(out, outcome{rule, err == nil})
	}
	return out, trustplan.Held{CTL: ph.CTL, ITL: ph.ITL}
}

// mapTVS is a TVS written for the tests, apart from the planner's: the
// roles it vouches for each certificate in, by DER; a phone reaches it
// only if its ITL holds a TVS record.
type mapTVS struct {
	roles map[string][]ctl.Role
}

var errNoPin = errors.New("no TVS record to pin")

func (m *mapTVS) forITL(list *ctl.File) ctl.Verifier {
	if m == nil {
		return nil
	}
	return &mapVerifier{m: m, reach: list != nil && hasTVS(list)}
}

func hasTVS(f *ctl.File) bool {
	for _, r := range f.Records {
		if r.Role == ctl.RoleTVS && len(r.Certificate) > 0 {
			if _, err := r.ParseCertificate(); err == nil {
				return true
			}
		}
	}
	return false
}

type mapVerifier struct {
	m     *mapTVS
	reach bool
}

func (v *mapVerifier) VerifyCertificate(_ context.Context, cert *x509.Certificate, role ctl.Role) (bool, error) {
	if !v.reach {
		return false, errNoPin
	}
	for _, r := range v.m.roles[string(cert.Raw)] {
		if r == role || r == ctl.RoleCCMTFTP && (role == ctl.RoleCCM || role == ctl.RoleTFTP) {
			return true, nil
		}
	}
	return false, nil
}
