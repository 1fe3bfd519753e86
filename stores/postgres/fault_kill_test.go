//go:build linux

package postgres

import (
	"errors"
	"os/exec"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/ucsec/ucsec/internal/testpki"
)

// TestFaultKillNode runs two CAPF servers on one database, one in this
// process and one in a child process, with phones enrolling against both,
// and kills the child with SIGKILL in the middle of it: every certificate
// a phone received, from either, is in the issued log, no serial is in
// it twice, and the surviving server serves on.
func TestFaultKillNode(t *testing.T) {
	pg := newPostgres(t, false)
	ctx := testContext(t)
	st := openCAPF(t, pg.URL(), "")
	f := newFleet(t)
	devices := f.schedule(t, st, "SEPB", 400)
	pemPath, _ := testpki.WritePEM(t, t.TempDir(), "capf", f.ca, f.caKey)
	node := startChild(t, childConfig{Store: "postgres", URL: pg.URL(), CAPF: pemPath, Log: true})
	local := serve(t, newServer(st, f.ca, f.caKey))

	// Phases: 0 both servers run, 1 from the kill on.
	var phase atomic.Int32
	stopWorkers := enrolWorkers(devices, 8, func(w int, d string) {
		p := int(phase.Load())
		if w%2 == 1 && p == 0 {
			f.enroll(ctx, t, d, "child", node.addr, p)
		} else {
			f.enroll(ctx, t, d, "local", local, p)
		}
	})
	defer stopWorkers()

	enrolled := func(server string, p int) func() bool {
		return func() bool {
			return f.count(func(s *session) bool { return s.server == server && s.phase == p && s.err == nil }) >= 20
		}
	}
	waitFor(t, ctx, "20 enrolments with each server", func() bool { return enrolled("child", 0)() && enrolled("local", 0)() })
	killed := time.Now()
	phase.Store(1)
	if err := node.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	err := node.cmd.Wait()
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.Sys().(syscall.WaitStatus).Signal() != syscall.SIGKILL {
		t.Fatalf("the child server ended with %v, not SIGKILL", err)
	}
	waitFor(t, ctx, "20 enrolments with the surviving server", enrolled("local", 1))
	stopWorkers()
	t.Logf("sessions:\n%s", f.summary())

	cut := 0
	for _, s := range f.runs {
		switch {
		case s.server == "child" && s.err != nil:
			// In progress when the child was killed.
			cut++
			if s.end.Before(killed) {
				t.Errorf("%s, with the child server before the kill: %v", s.device, s.err)
			}
		case s.phase == 1 && s.err != nil:
			t.Errorf("%s, with the surviving server after the kill: %v", s.device, s.err)
		case s.phase == 0 && s.server == "local" && s.err != nil:
			t.Errorf("%s, with the surviving server before the kill: %v", s.device, s.err)
		}
	}
	t.Logf("%d sessions with the child server were cut short by the kill", cut)
	if cut == 0 {
		t.Log("no session was in progress on the child when it was killed")
	}
	f.check(t, st, pg)
}
