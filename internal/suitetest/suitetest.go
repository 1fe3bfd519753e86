// Package suitetest checks the conformance suites (capftest, tvstest,
// digesttest) themselves: each is run against stores with one known fault
// each, and must fail, in the subtest meant to catch that fault. It is for
// tests only.
package suitetest

import (
	"os"
	"os/exec"
	"strings"
	"testing"
)

// Faults runs the calling test once more for each fault, in a child
// process of the test binary with the environment variable env set to the
// fault's name, and checks that the child fails, in the subtest of the
// test that faults names for it. In the child (env set), Faults calls run
// with the fault instead, which runs the suite against a store with that
// fault. A failing suite must stay inside its child, so the faults cannot
// run in the test's own process. With -short it skips.
func Faults(t *testing.T, env string, faults map[string]string, run func(t *testing.T, fault string)) {
	t.Helper()
	if fault := os.Getenv(env); fault != "" {
		run(t, fault)
		return
	}
	if testing.Short() {
		t.Skip("runs the suite in child processes")
	}
	name := t.Name()
	for fault, subtest := range faults {
		t.Run(fault, func(t *testing.T) {
			cmd := exec.Command(os.Args[0], "-test.run=^"+name+"$", "-test.count=1")
			cmd.Env = append(os.Environ(), env+"="+fault)
			out, err := cmd.CombinedOutput()
			if err == nil {
				t.Fatalf("the suite passed a store with fault %s:\n%s", fault, out)
			}
			if !strings.Contains(string(out), "--- FAIL: "+name+"/"+subtest+" ") {
				t.Fatalf("fault %s not caught by subtest %s:\n%s", fault, subtest, out)
			}
		})
	}
}
