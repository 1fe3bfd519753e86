package main

import (
	"bytes"
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/ucsec/ucsec/capf"
)

// TestRun runs the whole simulation with a few phones, as
// `go run ./examples/phonesim -phones 5 -json` does, and checks each phone's
// end state and every negative check. Five phones: two calls in pairs and
// the odd one calling the first.
func TestRun(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	var stdout, stderr bytes.Buffer
	code := run(ctx, []string{"-phones", "5", "-json"}, &stdout, &stderr)
	var rep report
	if err := json.Unmarshal(stdout.Bytes(), &rep); err != nil {
		t.Fatalf("exit %d, output not JSON: %v\n%s\n%s", code, err, stdout.String(), stderr.String())
	}
	if code != exitOK || !rep.OK || rep.Keys != capf.RSA2048 || !strings.Contains(rep.Verdict, "RSA-2048") {
		t.Fatalf("exit %d, keys %v, verdict %q\n%s\n%s", code, rep.Keys, rep.Verdict, stdout.String(), stderr.String())
	}
	if len(rep.Phones) != 5 {
		t.Fatalf("%d phones", len(rep.Phones))
	}
	serials := map[string]bool{}
	for _, p := range rep.Phones {
		if !p.OK || !p.Secure || p.Key != "rsa2048" || p.Config != "encrypted" || p.ITL != "P1 P4" || !p.Registered || p.Calls == 0 ||
			p.Icon != "lock" || p.Sent != p.Calls*callPackets || p.Received != p.Calls*callPackets || p.LSCSerial == "" ||
			!strings.HasPrefix(p.Media, "AEAD_AES_256_GCM") {
			t.Errorf("phone %+v", p)
		}
		if serials[p.LSCSerial] {
			t.Errorf("serial %s twice", p.LSCSerial)
		}
		serials[p.LSCSerial] = true
	}
	// The odd phone called the first one after the pairs' calls.
	if rep.Phones[4].Call != "→1001" || rep.Phones[0].Call != "→1002 ←1005" || rep.Phones[0].Calls != 2 {
		t.Errorf("calls %q and %q", rep.Phones[4].Call, rep.Phones[0].Call)
	}
	want := []string{"rollover predicted by the planner for 5 phones", "tampered configuration", "wrong authentication string", "rogue CAPF", "replayed REGISTER", "SIP trunk", "non-secure phone"}
	if len(rep.Checks) != len(want) {
		t.Fatalf("%d checks", len(rep.Checks))
	}
	for i, c := range rep.Checks {
		if !c.OK || !strings.Contains(c.Name, want[i]) {
			t.Errorf("check %+v", c)
		}
	}
}

// With -keys ec the phones' LSCs are on P-256 keys and their
// configurations come signed, not encrypted; everything else ends as
// with RSA keys, and the tampered-configuration check runs on the signed
// configuration.
func TestRunECKeys(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	var stdout, stderr bytes.Buffer
	code := run(ctx, []string{"-phones", "3", "-keys", "ec", "-json"}, &stdout, &stderr)
	var rep report
	if err := json.Unmarshal(stdout.Bytes(), &rep); err != nil {
		t.Fatalf("exit %d, output not JSON: %v\n%s\n%s", code, err, stdout.String(), stderr.String())
	}
	if code != exitOK || !rep.OK || rep.Keys != capf.EC256 || !strings.Contains(rep.Verdict, "EC P-256") {
		t.Fatalf("exit %d, keys %v, verdict %q\n%s\n%s", code, rep.Keys, rep.Verdict, stdout.String(), stderr.String())
	}
	if !strings.Contains(stdout.String(), `"keys": "ec256"`) {
		t.Errorf("JSON without the keys:\n%s", stdout.String())
	}
	if len(rep.Phones) != 3 {
		t.Fatalf("%d phones", len(rep.Phones))
	}
	for _, p := range rep.Phones {
		if !p.OK || p.Key != "ec256" || p.Config != "signed" || p.Icon != "lock" || p.Received != p.Calls*callPackets {
			t.Errorf("phone %+v", p)
		}
	}
	want := []string{"rollover predicted", "tampered signed configuration refused by the EC phone", "wrong authentication string", "rogue CAPF", "replayed REGISTER", "SIP trunk", "non-secure phone"}
	if len(rep.Checks) != len(want) {
		t.Fatalf("%d checks: %+v", len(rep.Checks), rep.Checks)
	}
	for i, c := range rep.Checks {
		if !c.OK || !strings.Contains(c.Name, want[i]) {
			t.Errorf("check %+v", c)
		}
	}
}

// The table, and -pki and -state keeping what they name.
func TestRunTableAndState(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	pki, state := t.TempDir(), t.TempDir()
	for i := range 2 {
		var stdout, stderr bytes.Buffer
		code := run(ctx, []string{"-phones", "2", "-pki", pki, "-state", state}, &stdout, &stderr)
		out := stdout.String()
		locks := 0
		for line := range strings.Lines(out) {
			if strings.HasPrefix(line, "SEP") && strings.Contains(line, " lock") {
				locks++
			}
		}
		if code != exitOK || !strings.Contains(out, "OK: all 2 phones") || locks != 2 {
			t.Fatalf("run %d: exit %d\n%s\n%s", i, code, out, stderr.String())
		}
		if strings.Contains(stderr.String(), "made the cluster's PKI") != (i == 0) {
			t.Fatalf("run %d: stderr %s", i, stderr.String())
		}
	}
}

func TestUsage(t *testing.T) {
	for _, args := range [][]string{{"-phones", "1"}, {"-phones", "x"}, {"extra"}, {"-timeout", "0s"}, {"-nodes", "0"}, {"-nodes", "17"}, {"-keys", "dsa"}} {
		var stdout, stderr bytes.Buffer
		if code := run(context.Background(), args, &stdout, &stderr); code != exitError {
			t.Errorf("%v: exit %d", args, code)
		}
	}
	var stdout, stderr bytes.Buffer
	if code := run(context.Background(), []string{"-h"}, &stdout, &stderr); code != exitOK {
		t.Errorf("-h: exit %d\n%s", code, stderr.String())
	}
	for _, flag := range []string{"-phones", "-nodes", "-postgres", "-redis", "apt-get install postgresql redis-server", "-keys rsa|ec", "signed, not encrypted"} {
		if !strings.Contains(stderr.String(), flag) {
			t.Errorf("-h does not mention %s:\n%s", flag, stderr.String())
		}
	}
}

// A failed phone or check fails the verdict, and the exit status says so.
func TestReportFinish(t *testing.T) {
	ok := phoneRow{Phone: "SEP001122000001", OK: true}
	for _, tt := range []struct {
		name string
		rep  report
		want bool
	}{
		{"all well", report{Phones: []phoneRow{ok}, Checks: []check{{Name: "x", OK: true}}}, true},
		{"a phone failed", report{Phones: []phoneRow{ok, {Phone: "SEP001122000002"}}, Checks: []check{{Name: "x", OK: true}}}, false},
		{"a check failed", report{Phones: []phoneRow{ok}, Checks: []check{{Name: "x"}}}, false},
		{"no phones", report{}, false},
	} {
		tt.rep.finish(1)
		if tt.rep.OK != tt.want || strings.HasPrefix(tt.rep.Verdict, "OK") != tt.want {
			t.Errorf("%s: OK %v, verdict %q", tt.name, tt.rep.OK, tt.rep.Verdict)
		}
		var out bytes.Buffer
		tt.rep.writeText(&out)
		if !strings.Contains(out.String(), tt.rep.Verdict) {
			t.Errorf("%s: table without the verdict", tt.name)
		}
	}
}
