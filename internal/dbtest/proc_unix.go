//go:build unix

package dbtest

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"syscall"
	"time"
)

const supported = true

// A proc is a running server: a child of this process, the leader of its
// own process group.
type proc struct {
	process *os.Process
	pid     int
	done    chan struct{} // closed when the process has exited and been reaped
	err     error         // how it exited, once done is closed
}

// spawn starts cmd as a's user (if a is not nil), in its own process
// group, with the parent-death signal SIGKILL where the system has one.
//
// Linux sends the parent-death signal when the thread that started the
// child ends, not the process, so the child is started from a goroutine
// that keeps its thread locked until the child has exited.
func spawn(cmd *exec.Cmd, a *account) (*proc, error) {
	cmd.SysProcAttr = sysProcAttr(a, true)
	p := &proc{done: make(chan struct{})}
	started := make(chan error, 1)
	go func() {
		if hasDeathSignal {
			// Never unlocked: the thread ends with this goroutine, once
			// the child has exited.
			runtime.LockOSThread()
		}
		if err := cmd.Start(); err != nil {
			started <- err
			return
		}
		p.process, p.pid = cmd.Process, cmd.Process.Pid
		started <- nil
		p.err = cmd.Wait()
		close(p.done)
	}()
	if err := <-started; err != nil {
		return nil, err
	}
	return p, nil
}

// exited reports whether the process has exited.
func (p *proc) exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// A step of a halt: a signal for the process, and how long to wait for it
// to exit after it.
type step struct {
	sig  syscall.Signal
	wait time.Duration
}

// halt stops the process: it sends the signal of each step in turn to the
// process (and waits for its exit, at most the step's wait or until ctx
// ends), then SIGKILL to the process and all its descendants. It returns
// once the process and the descendants it had have gone, or an error if
// they have not within goneWait.
func (p *proc) halt(ctx context.Context, steps ...step) error {
	if p.exited() {
		return nil
	}
	// The children of a PostgreSQL server are in process groups of their
	// own: they are found by their parent, before it exits.
	kids := descendants(p.pid)
	for _, s := range steps {
		if err := p.process.Signal(s.sig); err != nil && !errors.Is(err, os.ErrProcessDone) {
			break
		}
		t := time.NewTimer(s.wait)
		select {
		case <-p.done:
		case <-t.C:
		case <-ctx.Done():
		}
		t.Stop()
		if p.exited() || ctx.Err() != nil {
			break
		}
	}
	if !p.exited() {
		// Stopped, the process starts no more children while they are
		// listed and killed.
		p.process.Signal(syscall.SIGSTOP)
		kids = append(kids, descendants(p.pid)...)
		p.process.Signal(syscall.SIGKILL)
		for _, k := range kids {
			k.kill()
		}
	}
	t := time.NewTimer(goneWait)
	defer t.Stop()
	select {
	case <-p.done:
	case <-t.C:
		return fmt.Errorf("dbtest: process %d has not exited %v after SIGKILL", p.pid, goneWait)
	}
	// After a clean shutdown the children have gone before their parent;
	// after SIGKILL they go at once; any other is killed now.
	deadline := time.Now().Add(goneWait)
	for _, k := range kids {
		for k.alive() {
			if time.Now().After(deadline) {
				return fmt.Errorf("dbtest: process %d, a child of %d, has not exited %v after SIGKILL", k.pid, p.pid, goneWait)
			}
			k.kill()
			time.Sleep(10 * time.Millisecond)
		}
	}
	return nil
}

// command returns a short-lived command (initdb, psql) to run as a's
// user if a is not nil, in its own process group, which is killed when
// ctx ends.
func command(ctx context.Context, a *account, name string, args ...string) *exec.Cmd {
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.SysProcAttr = sysProcAttr(a, false)
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	cmd.WaitDelay = 5 * time.Second
	return cmd
}

// credential returns the credential of a's user, or nil.
func credential(a *account) *syscall.Credential {
	if a == nil {
		return nil
	}
	return &syscall.Credential{Uid: a.uid, Gid: a.gid, Groups: []uint32{}}
}

// reachable checks that a's user can reach (search) dir and every
// directory above it, which a server running as that user needs in order
// to reach its instance directory.
func reachable(dir string, a *account) error {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return fmt.Errorf("dbtest: %w", err)
	}
	for d := abs; ; {
		fi, err := os.Stat(d)
		if err != nil {
			return fmt.Errorf("dbtest: %w", err)
		}
		st, ok := fi.Sys().(*syscall.Stat_t)
		if ok {
			m := fi.Mode().Perm()
			var can bool
			switch {
			case st.Uid == a.uid:
				can = m&0o100 != 0
			case st.Gid == a.gid:
				can = m&0o010 != 0
			default:
				can = m&0o001 != 0
			}
			if !can {
				return fmt.Errorf("dbtest: the %s user, which the server runs as because this process runs as root, cannot reach %s (%v, owner %d): use a directory it can reach, such as one in /tmp", a.name, d, m, st.Uid)
			}
		}
		parent := filepath.Dir(d)
		if parent == d {
			return nil
		}
		d = parent
	}
}
