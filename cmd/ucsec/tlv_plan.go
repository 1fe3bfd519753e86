package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"text/tabwriter"

	"github.com/ucsec/ucsec/cnfenc"
	"github.com/ucsec/ucsec/ctl"
	"github.com/ucsec/ucsec/itl"
	"github.com/ucsec/ucsec/sgn"
	"github.com/ucsec/ucsec/trustplan"
	"github.com/ucsec/ucsec/tvs"
)

var tlvPlan = &command{
	name:     "plan",
	synopsis: "--held DIR [--held DIR]... [--tvs-itl FILE]... [--tvs-trust ROLES=CERT]... [--json] NEWFILE...",
	summary:  "tell which phones will accept new trust lists and signed files, before publishing them",
	help: `
Before a certificate change is published, tell which phones will accept the
new files and which will reject them, with the rule of the phone's decision
table that decides (P1 to P8) and, for a rejection, why and what would fix
it. This runs the phone model of "ucsec tlv verify" and the TVS client, on
the files, without the network.

Each --held DIR is one group of phones: DIR holds what such phones hold,
ITLFile.tlv, CTLFile.tlv, both, or nothing (new or reset phones). NEWFILE
are the files about to be published: a CTL (CTL*.tlv), an ITL (ITL*.tlv),
and signed files (.sgn, .enc.sgn), checked in the order a phone fetches
them: the CTL, the ITL, then the signed files in the order given, each
against the lists the phones hold after the step before. A signed file is
checked for the name phones ask for, its base name.

--tvs-itl FILE and --tvs-trust ROLES=CERT say what TVS vouches for, as for
"ucsec tvs serve --itl" and "--trust": the certificates of a trust list in
the roles of its records, or those of a certificate file in the
comma-separated ROLES (sast, ccm, ccm+tftp, tftp, capf, app-server, tvs).
Phones reach TVS only through a TVS record of the ITL they hold. Without
either flag, the phones have no TVS to ask (rule P6).

Prints one row per group of phones and file: the group, the file,
accepted or rejected, the rule and the file's signer; then, for each
rejection, why, and the fixes, naming each certificate by subject and
SHA-256: have TVS vouch for a signer (tvs), sign once more with the old
key (keep-signer), sign with another SAST the phones hold such as the
ITLRecovery key (recovery-key), publish a list holding a file's signer
first (list), sign a file with a TFTP key the phones hold (tftp-signer),
build or sign a file again (resign), or delete the phones' trust lists by
hand (reset). With --json, prints one object per row, one per line:
{"held", "file", "accepted", "rule", "signer": {"subject", "sha256"},
"why", "fixes": [{"kind", "certificates", "text"}]}.

Exit status 0 if every group of phones accepts every file, 1 if any would
reject one, 2 for unusable input.`,
	examples: []string{
		"ucsec tlv plan --held phones/current new/ITLFile.tlv new/SEP001122334455.cnf.xml.sgn",
		"ucsec tlv plan --held phones/itl --held phones/mixed --tvs-itl new/ITLFile.tlv --json new/CTLFile.tlv new/ITLFile.tlv",
	},
	args:  argCount{1, -1, "file to publish"},
	setup: func(fs *flag.FlagSet) action { return newTLVPlanCmd(fs).run },
}

type tlvPlanCmd struct {
	held     listFlag
	tvsITLs  listFlag
	tvsTrust listFlag
	json     bool
}

func newTLVPlanCmd(fs *flag.FlagSet) *tlvPlanCmd {
	c := new(tlvPlanCmd)
	fs.Var(&c.held, "held", "a group of phones: `DIR` holds their ITLFile.tlv, CTLFile.tlv, both or neither (repeatable, required)")
	fs.Var(&c.tvsITLs, "tvs-itl", "TVS vouches for the certificates of the trust list `FILE`, in the roles of its records (repeatable)")
	fs.Var(&c.tvsTrust, "tvs-trust", "TVS vouches for the certificates in a file: `ROLES=CERT` (repeatable)")
	jsonFlag(fs, &c.json)
	return c
}

// A planGroup is a group of phones: what its directory holds.
type planGroup struct {
	dir  string
	held trustplan.Held
}

// planRow is the JSON form of a row: a decision and the group it is for.
type planRow struct {
	Held string `json:"held"`
	trustplan.Decision
}

func (c *tlvPlanCmd) run(e *env, args []string) error {
	if len(c.held) == 0 {
		return usageError("missing --held (a directory of what a group of phones holds)")
	}
	trusts, err := parsePlanTrustFlags(c.tvsTrust)
	if err != nil {
		return err
	}
	pub, names, err := readPublication(args)
	if err != nil {
		return err
	}
	var groups []planGroup
	for _, dir := range c.held {
		g, err := readHeld(dir)
		if err != nil {
			return err
		}
		groups = append(groups, g)
	}
	ctx := context.Background()
	var store tvs.Store
	if len(c.tvsITLs)+len(trusts) > 0 {
		st := tvs.NewMemoryStore()
		for _, path := range c.tvsITLs {
			data, err := readFile(path)
			if err != nil {
				return err
			}
			f, err := itl.Parse(data)
			if err == nil {
				_, err = tvs.LoadTrustList(ctx, st, f, 0)
			}
			if err != nil {
				return &fileError{path, err}
			}
		}
		for _, t := range trusts {
			data, err := readFile(t.path)
			if err != nil {
				return err
			}
			if _, err := tvs.LoadCertificates(ctx, st, data, t.roles, 0); err != nil {
				return &fileError{t.path, err}
			}
		}
		store = st
	}

	var rows []planRow
	rejecting := 0
	for _, g := range groups {
		res, err := trustplan.Plan(ctx, g.held, store, pub)
		if err != nil {
			return err
		}
		if !res.Accepted() {
			rejecting++
		}
		for i, d := range res.Decisions {
			d.File = names[i]
			rows = append(rows, planRow{g.dir, d})
		}
	}
	if c.json {
		for _, r := range rows {
			if err := e.printJSON(r); err != nil {
				return err
			}
		}
	} else {
		printPlan(e, rows, len(groups), rejecting)
	}
	if rejecting > 0 {
		return statusError(exitInvalid)
	}
	return nil
}

// printPlan prints the rows as a table, then why each rejected file is
// rejected and its fixes, then a verdict.
func printPlan(e *env, rows []planRow, groups, rejecting int) {
	tw := tabwriter.NewWriter(e.stdout, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "HELD\tFILE\tRESULT\tRULE\tSIGNER")
	for _, r := range rows {
		result, rule, signer := "accepted", string(r.Rule), "-"
		if !r.Accepted {
			result = "rejected"
		}
		if rule == "" {
			rule = "-"
		}
		if r.Signer != nil {
			signer = printable(r.Signer.Subject)
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", displayName(r.Held), displayName(r.File), result, rule, signer)
	}
	tw.Flush()
	for _, r := range rows {
		if r.Accepted {
			continue
		}
		rule := string(r.Rule)
		if rule == "" {
			rule = "no rule"
		}
		fmt.Fprintf(e.stdout, "\n%s: %s rejected by %s: %s\n", displayName(r.Held), displayName(r.File), rule, printable(r.Why))
		for _, f := range r.Fixes {
			fmt.Fprintf(e.stdout, "  fix (%s): %s\n", f.Kind, printable(f.Text))
		}
	}
	switch {
	case rejecting > 0:
		fmt.Fprintf(e.stdout, "\nREJECTED: %d of %d %s would reject a file\n", rejecting, groups, plural(groups, "group of phones", "groups of phones"))
	case groups == 1:
		fmt.Fprintln(e.stdout, "\nOK: the group of phones accepts every file")
	default:
		fmt.Fprintf(e.stdout, "\nOK: all %d groups of phones accept every file\n", groups)
	}
}

func plural(n int, one, many string) string {
	if n == 1 {
		return one
	}
	return many
}

// readHeld reads what the group of phones dir holds: dir/CTLFile.tlv and
// dir/ITLFile.tlv, each if it is there. Their signatures are not checked:
// the phones checked them when they took them.
func readHeld(dir string) (planGroup, error) {
	g := planGroup{dir: dir}
	fi, err := os.Stat(dir)
	switch {
	case err != nil:
		return g, &fileError{dir, withoutPath(err)}
	case !fi.IsDir():
		return g, &fileError{dir, errors.New("not a directory: --held names a directory holding ITLFile.tlv, CTLFile.tlv, both or neither")}
	}
	for _, l := range []struct {
		name string
		to   **ctl.File
	}{{"CTLFile.tlv", &g.held.CTL}, {"ITLFile.tlv", &g.held.ITL}} {
		path := filepath.Join(dir, l.name)
		data, err := os.ReadFile(path)
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			return g, &fileError{path, withoutPath(err)}
		}
		f, err := ctl.Parse(data)
		if err != nil {
			return g, &fileError{path, err}
		}
		*l.to = f
	}
	return g, nil
}

// readPublication reads the files to publish and returns them with the
// name of each decision's file, in the order of the decisions: the CTL,
// the ITL, then the signed files.
func readPublication(paths []string) (trustplan.Publication, []string, error) {
	var pub trustplan.Publication
	var ctlName, itlName string
	var files []string
	for _, path := range paths {
		if path == "-" {
			return pub, nil, usageError("files to publish are read from their paths, not standard input: their names matter")
		}
		base := strings.ToUpper(filepath.Base(path))
		if strings.HasSuffix(base, ".TLV") {
			var to **ctl.File
			var name *string
			switch {
			case strings.HasPrefix(base, "CTL"):
				to, name = &pub.CTL, &ctlName
			case strings.HasPrefix(base, "ITL"):
				to, name = &pub.ITL, &itlName
			default:
				return pub, nil, usageError(fmt.Sprintf("cannot tell CTL from ITL by the name %s: name it CTL*.tlv or ITL*.tlv", path))
			}
			if *to != nil {
				return pub, nil, usageError(fmt.Sprintf("two %s files to publish: %s and %s", base[:3], *name, path))
			}
			data, err := readFile(path)
			if err != nil {
				return pub, nil, err
			}
			f, err := ctl.Parse(data)
			if err != nil {
				return pub, nil, &fileError{path, err}
			}
			*to, *name = f, path
			continue
		}
		data, err := readFile(path)
		if err != nil {
			return pub, nil, err
		}
		var sf ctl.SignedFile
		var stored string
		if strings.HasSuffix(base, ".ENC.SGN") {
			f, err := cnfenc.Parse(data)
			if err != nil {
				return pub, nil, &fileError{path, err}
			}
			sf, stored = f, f.Filename
		} else {
			f, err := sgn.Parse(data)
			if err != nil {
				return pub, nil, &fileError{path, err}
			}
			sf, stored = f, f.Filename
		}
		pub.Files = append(pub.Files, trustplan.SignedFile{Name: requestedName(path, stored), File: sf})
		files = append(files, path)
	}
	var names []string
	if pub.CTL != nil {
		names = append(names, ctlName)
	}
	if pub.ITL != nil {
		names = append(names, itlName)
	}
	return pub, append(names, files...), nil
}

// planTrust is a --tvs-trust value.
type planTrust struct {
	roles []ctl.Role
	path  string
}

// parsePlanTrustFlags splits the --tvs-trust values into roles and files.
func parsePlanTrustFlags(specs []string) ([]planTrust, error) {
	var out []planTrust
	for _, spec := range specs {
		names, path, ok := strings.Cut(spec, "=")
		if !ok || names == "" || path == "" {
			return nil, usageError(fmt.Sprintf("invalid --tvs-trust %q (want ROLES=CERT, such as sast=itlrecovery.pem or sast,ccm+tftp=cucm.pem)", spec))
		}
		t := planTrust{path: path}
		for name := range strings.SplitSeq(names, ",") {
			role, err := ctl.ParseRole(name)
			if err != nil {
				return nil, usageError(fmt.Sprintf("unknown role %q in --tvs-trust (use sast, ccm, ccm+tftp, tftp, capf, app-server or tvs)", name))
			}
			if slices.Contains(t.roles, role) {
				return nil, usageError(fmt.Sprintf("role %s given twice in --tvs-trust %q", role.ShortName(), spec))
			}
			t.roles = append(t.roles, role)
		}
		out = append(out, t)
	}
	return out, nil
}
