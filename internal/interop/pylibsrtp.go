package interop

import (
	"context"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"
)

// DebianPython is the Python that runs the libsrtp peer: Debian's, whose
// dist-packages hold python3-pylibsrtp. A python3 earlier on PATH (pyenv,
// a virtualenv) does not see them, so PATH is not searched.
const DebianPython = "/usr/bin/python3"

// PyLibSRTP returns the path of a Python that can import pylibsrtp
// (Debian's python3-pylibsrtp, a wrapper around libsrtp2), checked with
// `/usr/bin/python3 -c 'import pylibsrtp'`. It skips the test when the
// import fails, and fails it where CI is true, because .ci/run installs
// the package.
func PyLibSRTP(t testing.TB) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, DebianPython, "-c", "import pylibsrtp")
	cmd.WaitDelay = time.Second
	out, err := cmd.CombinedOutput()
	if err == nil {
		return DebianPython
	}
	why := err.Error()
	if o := strings.TrimSpace(string(out)); o != "" {
		why = o[strings.LastIndexByte(o, '\n')+1:] // the traceback's last line
	}
	if ci, _ := strconv.ParseBool(os.Getenv("CI")); ci {
		t.Fatalf("%s cannot import pylibsrtp: .ci/run must install the python3-pylibsrtp package (%s)", DebianPython, why)
	}
	t.Skipf("%s cannot import pylibsrtp: install it (apt-get install python3-pylibsrtp) to run the libsrtp interop tests (%s)", DebianPython, why)
	return ""
}
