package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// planDirs makes the directories of "tlv plan": a group of phones holding
// the certutils ITL (signed by sast.pem, TVS record CN=Asterisk), one
// holding the certutils CTL and ITL, one holding nothing, and new lists:
// an ITL signed by device.pem (a new ITLRecovery) in newsast/.
func planDirs(t *testing.T) (itlDir, mixedDir, emptyDir, newITL string) {
	t.Helper()
	root := t.TempDir()
	itlDir, mixedDir, emptyDir = filepath.Join(root, "itl"), filepath.Join(root, "mixed"), filepath.Join(root, "empty")
	newDir := filepath.Join(root, "newsast")
	for _, d := range []string{itlDir, mixedDir, emptyDir, newDir} {
		if err := os.Mkdir(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	copyFile(t, itlVector, itlDir)
	copyFile(t, itlVector, mixedDir)
	writeTemp(t, mixedDir, "CTLFile.tlv", mustRead(t, ctlVector))
	newITL = filepath.Join(newDir, "ITLFile.tlv")
	mustRun(t, exitOK, "tlv", "build", "--itl", "--cert", devicePEM, "--key", devicePEM, "--hash", "sha1",
		"--record", "sast="+devicePEM, "--record", "ccm+tftp="+tftpPEM, "--record", "tvs="+tftpPEM, "-o", newITL)
	return itlDir, mixedDir, emptyDir, newITL
}

func TestTLVPlan(t *testing.T) {
	itlDir, mixedDir, emptyDir, newITL := planDirs(t)
	sgnDir := t.TempDir()
	sgnFile := copyFile(t, sha512SGN, sgnDir)

	// The certutils CTL, then a configuration, to phones holding the
	// certutils ITL, both lists, or nothing.
	r := mustRun(t, exitOK, "tlv", "plan", "--held", itlDir, "--held", mixedDir, "--held", emptyDir, ctlVector, sgnFile)
	if !strings.HasPrefix(r.stdout, "HELD ") || !strings.HasSuffix(r.stdout, "\nOK: all 3 groups of phones accept every file\n") {
		t.Errorf("stdout:\n%s", r.stdout)
	}
	for _, row := range [][]string{
		{itlDir, ctlVector, "accepted", "P3", "CN=SAST,OU=SAST,O=SAST"},
		{itlDir, sgnFile, "accepted", "P8", "CN=Asterisk,OU=Asterisk,O=Asterisk"},
		{mixedDir, ctlVector, "accepted", "P2", "CN=SAST,OU=SAST,O=SAST"},
		{mixedDir, sgnFile, "accepted", "P8", "CN=Asterisk,OU=Asterisk,O=Asterisk"},
		{emptyDir, ctlVector, "accepted", "P1", "CN=SAST,OU=SAST,O=SAST"},
		{emptyDir, sgnFile, "accepted", "P8", "CN=Asterisk,OU=Asterisk,O=Asterisk"},
	} {
		hasRow(t, r.stdout, row...)
	}

	// A new ITLRecovery: without TVS, rejected (P6) with fixes; the files
	// after it are still checked.
	r = ucsec(t, "", "tlv", "plan", "--held", itlDir, "--held", emptyDir, newITL, sgnFile)
	if r.code != exitInvalid || r.stderr != "" {
		t.Errorf("exit %d, stderr %q", r.code, r.stderr)
	}
	hasRow(t, r.stdout, itlDir, newITL, "rejected", "P6", "CN=Device,OU=Device,O=Device")
	hasRow(t, r.stdout, itlDir, sgnFile, "accepted", "P8", "CN=Asterisk,OU=Asterisk,O=Asterisk")
	hasRow(t, r.stdout, emptyDir, newITL, "accepted", "P1", "CN=Device,OU=Device,O=Device")
	for _, want := range []string{
		"\n" + itlDir + ": " + newITL + " rejected by P6: its signer, CN=Device",
		"  fix (tvs): if these phones can ask TVS",
		"  fix (keep-signer): keep the old signer for one more cycle: sign the new ITL with the key of CN=SAST,OU=SAST,O=SAST (SHA-256 ",
		"  fix (reset): ",
		"\nREJECTED: 1 of 2 groups of phones would reject a file\n",
	} {
		if !strings.Contains(r.stdout, want) {
			t.Errorf("stdout lacks %q:\n%s", want, r.stdout)
		}
	}

	// With TVS vouching for the new signer: P4, by --tvs-trust or --tvs-itl.
	for _, flags := range [][]string{{"--tvs-trust", "sast=" + devicePEM}, {"--tvs-itl", newITL}} {
		args := append([]string{"tlv", "plan", "--held", itlDir}, flags...)
		r = mustRun(t, exitOK, append(args, newITL)...)
		hasRow(t, r.stdout, itlDir, newITL, "accepted", "P4", "CN=Device,OU=Device,O=Device")
	}
	// TVS that vouches for it in another role only: P5.
	r = mustRun(t, exitInvalid, "tlv", "plan", "--held", itlDir, "--tvs-trust", "ccm,tftp="+devicePEM, newITL)
	hasRow(t, r.stdout, itlDir, newITL, "rejected", "P5", "CN=Device,OU=Device,O=Device")
	if !strings.Contains(r.stdout, "TVS does not vouch for it as SAST") {
		t.Errorf("stdout:\n%s", r.stdout)
	}

	// JSON: one object per group and file.
	r = ucsec(t, "", "tlv", "plan", "--held", itlDir, "--json", newITL, sgnFile)
	if r.code != exitInvalid {
		t.Fatalf("exit %d: %s %s", r.code, r.stdout, r.stderr)
	}
	lines := strings.Split(strings.TrimSpace(r.stdout), "\n")
	if len(lines) != 2 {
		t.Fatalf("%d lines:\n%s", len(lines), r.stdout)
	}
	var row struct {
		Held     string `json:"held"`
		File     string `json:"file"`
		Accepted bool   `json:"accepted"`
		Rule     string `json:"rule"`
		Signer   struct {
			Subject string `json:"subject"`
			SHA256  string `json:"sha256"`
		} `json:"signer"`
		Why   string `json:"why"`
		Fixes []struct {
			Kind         string `json:"kind"`
			Text         string `json:"text"`
			Certificates []struct {
				SHA256 string `json:"sha256"`
			} `json:"certificates"`
		} `json:"fixes"`
	}
	if err := json.Unmarshal([]byte(lines[0]), &row); err != nil {
		t.Fatal(err)
	}
	if row.Held != itlDir || row.File != newITL || row.Accepted || row.Rule != "P6" || row.Signer.Subject != "CN=Device,OU=Device,O=Device" ||
		len(row.Signer.SHA256) != 64 || row.Why == "" || len(row.Fixes) != 3 || row.Fixes[0].Kind != "tvs" || row.Fixes[0].Certificates[0].SHA256 != row.Signer.SHA256 {
		t.Errorf("row %+v", row)
	}
	if err := json.Unmarshal([]byte(lines[1]), &row); err != nil || row.File != sgnFile || !row.Accepted || row.Rule != "P8" {
		t.Errorf("row %+v, %v", row, err)
	}
}

// The CTL first: phones holding the CTL accept an ITL its SAST signed
// (P2), in whatever order the files are given.
func TestTLVPlanOrder(t *testing.T) {
	itlDir, _, _, newITL := planDirs(t)
	newCTL := filepath.Join(filepath.Dir(newITL), "CTLFile.tlv")
	// A CTL signed by the held ITL's SAST that lists the new ITLRecovery.
	mustRun(t, exitOK, buildArgs("--ctl", "--record", "sast="+devicePEM, "--record", "ccm+tftp="+tftpPEM, "-o", newCTL)...)
	r := mustRun(t, exitOK, "tlv", "plan", "--held", itlDir, newITL, newCTL)
	hasRow(t, r.stdout, itlDir, newCTL, "accepted", "P3", "CN=SAST,OU=SAST,O=SAST")
	hasRow(t, r.stdout, itlDir, newITL, "accepted", "P2", "CN=Device,OU=Device,O=Device")
	if strings.Index(r.stdout, newCTL) > strings.Index(r.stdout, newITL) {
		t.Errorf("not the CTL, then the ITL:\n%s", r.stdout)
	}
}

// hasRow reports an error unless the table in out has a row of fields.
func hasRow(t *testing.T, out string, fields ...string) {
	t.Helper()
	for line := range strings.Lines(out) {
		if slices.Equal(strings.Fields(line), fields) {
			return
		}
	}
	t.Errorf("no row %q in:\n%s", fields, out)
}

func TestTLVPlanErrors(t *testing.T) {
	itlDir, _, _, newITL := planDirs(t)
	notList := writeTemp(t, t.TempDir(), "other.tlv", mustRead(t, itlVector))
	broken := filepath.Join(t.TempDir(), "held")
	if err := os.Mkdir(broken, 0o755); err != nil {
		t.Fatal(err)
	}
	writeTemp(t, broken, "ITLFile.tlv", []byte("not a list"))
	for _, tt := range []struct {
		args []string
		want string
	}{
		{[]string{newITL}, "missing --held"},
		{[]string{"--held", itlDir}, "missing file to publish"},
		{[]string{"--held", filepath.Join(itlDir, "nosuch"), newITL}, "no such file or directory"},
		{[]string{"--held", filepath.Join(itlDir, "ITLFile.tlv"), newITL}, "not a directory"},
		{[]string{"--held", broken, newITL}, "ITLFile.tlv"},
		{[]string{"--held", itlDir, notList}, "cannot tell CTL from ITL"},
		{[]string{"--held", itlDir, newITL, itlVector}, "two ITL files"},
		{[]string{"--held", itlDir, "-"}, "not standard input"},
		{[]string{"--held", itlDir, filepath.Join(itlDir, "nosuch.sgn")}, "no such file"},
		{[]string{"--held", itlDir, "--tvs-trust", "nosuch=" + devicePEM, newITL}, `unknown role "nosuch"`},
		{[]string{"--held", itlDir, "--tvs-trust", devicePEM, newITL}, "invalid --tvs-trust"},
		{[]string{"--held", itlDir, "--tvs-trust", "sast,sast=" + devicePEM, newITL}, "given twice"},
		{[]string{"--held", itlDir, "--tvs-trust", "sast=" + plainXML, newITL}, plainXML},
		{[]string{"--held", itlDir, "--tvs-itl", plainXML, newITL}, plainXML},
		{[]string{"--held", itlDir, plainXML}, plainXML},
	} {
		r := ucsec(t, "", append([]string{"tlv", "plan"}, tt.args...)...)
		if r.code != exitError || !strings.Contains(r.stderr, tt.want) || !strings.HasPrefix(r.stderr, "ucsec: ") {
			t.Errorf("%v: exit %d, stdout %q, stderr %q; want 2 and %q", tt.args, r.code, r.stdout, r.stderr, tt.want)
		}
	}
}
