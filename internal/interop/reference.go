package interop

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ucsec/ucsec/internal/testnet"
)

// RefTimeout bounds one run of a reference tool, and one connection
// through a [Tap].
const RefTimeout = 60 * time.Second

// Reference is a local checkout of the GPL reference daemons
// (usecallmanagernz/daemons) and the Python that runs them. They are run
// from the checkout, never copied into this repository, and CI cannot
// fetch them.
type Reference struct {
	Dir    string
	Python string
}

// NewReference returns the checkout that the first set variable of
// dirVars names, and the Python that the first set variable of
// pythonVars names (else /usr/bin/python3). It skips the test when no
// variable of dirVars is set, and fails it when the checkout lacks one of
// tools or the Python cannot import cryptography.
func NewReference(t testing.TB, dirVars, pythonVars, tools []string) *Reference {
	t.Helper()
	var dirVar, dir string
	for _, v := range dirVars {
		if dir = os.Getenv(v); dir != "" {
			dirVar = v
			break
		}
	}
	if dir == "" {
		names := dirVars[0]
		if len(dirVars) > 1 {
			names += " (or " + strings.Join(dirVars[1:], ", ") + ")"
		}
		t.Skipf("%s not set: this interop test runs the GPL reference tools (usecallmanagernz/daemons), which are not installable in CI; point it at a local checkout to run it", names)
	}
	for _, s := range tools {
		if _, err := os.Stat(filepath.Join(dir, s)); err != nil {
			t.Fatalf("%s=%s is not a checkout of usecallmanagernz/daemons with %s: %v", dirVar, dir, strings.Join(tools, ", "), err)
		}
	}
	py := DebianPython
	for _, v := range pythonVars {
		if p := os.Getenv(v); p != "" {
			py = p
			break
		}
	}
	out, stderr, err := Exec(nil, py, "-c", "import sys, cryptography; print(sys.version.split()[0], cryptography.__version__)")
	if err != nil {
		t.Fatalf("%s cannot import cryptography (apt-get install python3-cryptography, or set %s): %v\n%s", py, pythonVars[0], err, stderr)
	}
	t.Logf("reference %s, python %s (python, cryptography %s)", dir, py, strings.TrimSpace(out))
	return &Reference{Dir: dir, Python: py}
}

// Script returns the path of one of the checkout's tools.
func (r *Reference) Script(name string) string { return filepath.Join(r.Dir, name) }

// Exec runs a command to completion within RefTimeout, with env added to
// this process's environment (if env is nil, the environment is this
// process's).
func Exec(env []string, name string, args ...string) (stdout, stderr string, err error) {
	ctx, cancel := context.WithTimeout(context.Background(), RefTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, name, args...)
	if env != nil {
		cmd.Env = append(os.Environ(), env...)
	}
	var o, e bytes.Buffer
	cmd.Stdout, cmd.Stderr = &o, &e
	cmd.WaitDelay = 5 * time.Second
	err = cmd.Run()
	if ctx.Err() != nil {
		err = fmt.Errorf("%w (killed after %v)", err, RefTimeout)
	}
	return o.String(), e.String(), err
}

// Log is a concurrency-safe text sink with positions, for a server's log
// or a child process's output.
type Log = testnet.Log

// ErrExited is the error WaitOutput wraps when the process exits first.
var ErrExited = errors.New("exited")

// WaitOutput waits until a started process, whose output goes to out and
// whose exit done reports, has printed every one of want. It returns an
// error wrapping ErrExited if the process exits first, and an error if the
// timeout passes.
func WaitOutput(out *Log, done <-chan error, timeout time.Duration, want ...string) error {
	deadline := time.Now().Add(timeout)
	for {
		text := out.Since(0)
		missing := ""
		for _, w := range want {
			if !strings.Contains(text, w) {
				missing = w
				break
			}
		}
		if missing == "" {
			return nil
		}
		select {
		case err := <-done:
			return fmt.Errorf("%w (%v) before printing %q:\n%s", ErrExited, err, missing, out.Since(0))
		case <-time.After(20 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("did not print %q within %v:\n%s", missing, timeout, out.Since(0))
		}
	}
}
