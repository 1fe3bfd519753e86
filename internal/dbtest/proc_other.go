//go:build !unix

package dbtest

import (
	"context"
	"os/exec"
	"syscall"
	"time"
)

// supported is false: the servers are run and signalled the Unix way.
const supported = false

type proc struct {
	pid  int
	done chan struct{}
	err  error
}

type step struct {
	sig  syscall.Signal
	wait time.Duration
}

func spawn(cmd *exec.Cmd, a *account) (*proc, error)          { return nil, errUnsupported }
func (p *proc) exited() bool                                  { return true }
func (p *proc) halt(ctx context.Context, steps ...step) error { return nil }
func reachable(dir string, a *account) error                  { return errUnsupported }
func ephemeralLow() int                                       { return 0 }
func command(ctx context.Context, a *account, name string, args ...string) *exec.Cmd {
	return exec.CommandContext(ctx, name, args...)
}
