package trustplan_test

import (
	"context"
	"strings"
	"testing"

	"github.com/ucsec/ucsec/ctl"
	"github.com/ucsec/ucsec/trustplan"
)

// FuzzPlan draws held lists, a TVS, new lists and signed files from a
// small set made of five certificates, and checks that the planner's
// verdicts are ctl.Phone's, stepped through by hand with a TVS written
// apart from the planner's, and that every rejection comes with a reason
// and a fix naming its certificates.
func FuzzPlan(f *testing.F) {
	fx := newFixture(f)
	certs := []pair{fx.sast, fx.device, fx.tftp, fx.tftp2, fx.tvs}
	roles := []ctl.Role{ctl.RoleSAST, ctl.RoleCCMTFTP, ctl.RoleTFTP}
	broken := itlOf(f, fx.device, rec{fx.device, ctl.RoleSAST}, rec{fx.tftp, ctl.RoleCCMTFTP})
	broken.Signature[0] ^= 1
	lists := []*ctl.File{
		nil,
		itlOf(f, fx.sast, rec{fx.sast, ctl.RoleSAST}, rec{fx.tftp, ctl.RoleCCMTFTP}, rec{fx.tvs, ctl.RoleTVS}),
		itlOf(f, fx.sast, rec{fx.sast, ctl.RoleSAST}, rec{fx.tftp, ctl.RoleCCMTFTP}),
		itlOf(f, fx.device, rec{fx.device, ctl.RoleSAST}, rec{fx.tftp, ctl.RoleCCMTFTP}, rec{fx.tvs, ctl.RoleTVS}),
		itlOf(f, fx.device, rec{fx.device, ctl.RoleSAST}, rec{fx.tftp2, ctl.RoleCCMTFTP}, rec{fx.tvs, ctl.RoleTVS}),
		itlOf(f, fx.sast, rec{fx.sast, ctl.RoleSAST}, rec{fx.tftp2, ctl.RoleTFTP}, rec{fx.tvs, ctl.RoleTVS}),
		itlOf(f, fx.sast, rec{fx.sast, ctl.RoleSAST}, rec{fx.device, ctl.RoleSAST}, rec{fx.tftp, ctl.RoleCCMTFTP}),
		itlOf(f, fx.tftp, rec{fx.tftp, ctl.RoleSAST}, rec{fx.sast, ctl.RoleSAST}, rec{fx.tftp, ctl.RoleCCMTFTP}, rec{fx.tvs, ctl.RoleTVS}),
		itlOf(f, fx.tftp2, rec{fx.tftp2, ctl.RoleCCMTFTP}, rec{fx.tftp, ctl.RoleCCM}),
		ctlOf(f, fx.sast, rec{fx.sast, ctl.RoleSAST}, rec{fx.tftp, ctl.RoleCCMTFTP}),
		ctlOf(f, fx.device, rec{fx.device, ctl.RoleSAST}, rec{fx.tftp2, ctl.RoleCCMTFTP}),
		ctlOf(f, fx.sast, rec{fx.sast, ctl.RoleSAST}, rec{fx.device, ctl.RoleSAST}),
		rollbackITL(f, fx.sast),
		broken,
	}
	cfg := config(f, fx.tftp, cfgName)
	files := []ctl.SignedFile{
		cfg,
		config(f, fx.tftp2, cfgName),
		config(f, fx.device, cfgName),
		config(f, fx.tftp, "SEPAAAAAAAAAAAA.cnf.xml.sgn"),
		tampered(f, cfg),
	}
	f.Add([]byte{1, 0, 0, 3, 0})
	f.Add([]byte{1, 0, 0, 3, 1, 0x01, 0x01, 1})
	f.Add([]byte{9, 1, 11, 3, 1, 0x02, 0, 0, 2, 0, 1})
	f.Add([]byte{0, 12, 0, 4, 0, 0, 0, 0, 1, 1})
	f.Fuzz(func(t *testing.T, data []byte) {
		next := func() int {
			if len(data) == 0 {
				return 0
			}
			b := int(data[0])
			data = data[1:]
			return b
		}
		pick := func() *ctl.File { return lists[next()%len(lists)] }
		held := trustplan.Held{CTL: pick(), ITL: pick()}
		pub := trustplan.Publication{CTL: pick(), ITL: pick()}
		var m *mapTVS
		if next()%2 == 1 {
			// A bit per certificate and role.
			mask := next() | next()<<8 | next()<<16
			m = &mapTVS{roles: map[string][]ctl.Role{}}
			for i, c := range certs {
				for j, r := range roles {
					if mask&(1<<(i*len(roles)+j)) != 0 {
						m.roles[string(c.cert.Raw)] = append(m.roles[string(c.cert.Raw)], r)
					}
				}
			}
		}
		for range next() % 4 {
			pub.Files = append(pub.Files, trustplan.SignedFile{Name: cfgName, File: files[next()%len(files)]})
		}

		res, err := trustplan.Plan(context.Background(), held, m.store(t), pub)
		if err != nil {
			t.Fatal(err)
		}
		model, after := reference(t, held, m.forITL, pub)
		got := outcomes(res)
		if len(got) != len(model) {
			t.Fatalf("%d decisions, ctl.Phone made %d", len(got), len(model))
		}
		for i := range got {
			if got[i] != model[i] {
				t.Fatalf("step %d: the planner says %v, ctl.Phone %v\n%s", i+1, got[i], model[i], res)
			}
		}
		if after != res.After {
			t.Fatalf("held at the end: the planner %+v, ctl.Phone %+v", res.After, after)
		}
		for _, d := range res.Decisions {
			if d.Accepted {
				if d.Err != nil || d.Why != "" || d.Fixes != nil {
					t.Fatalf("accepted with an error, a reason or fixes: %+v", d)
				}
				continue
			}
			if d.Err == nil || d.Why == "" || len(d.Fixes) == 0 {
				t.Fatalf("rejected without an error, a reason or a fix: %+v", d)
			}
			for _, fix := range d.Fixes {
				for _, c := range fix.Certificates {
					if c.Certificate == nil || !strings.Contains(fix.Text, c.SHA256) {
						t.Fatalf("fix %q does not name %s", fix.Text, c.Subject)
					}
				}
			}
		}
	})
}
