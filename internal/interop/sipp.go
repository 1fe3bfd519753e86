package interop

import (
	"context"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// SIPpTimeout bounds one SIPp run.
const SIPpTimeout = 20 * time.Second

// SIPp returns the path of sipp (Debian's sip-tester), as Command does.
func SIPp(t testing.TB) string {
	t.Helper()
	return Command(t, "sipp", "sip-tester")
}

// Command returns the path of cmd, a real peer from the Debian package
// pkg. It skips the test when cmd is not installed, saying how to install
// it, and fails it where CI is true, because .ci/run installs the peers.
func Command(t testing.TB, cmd, pkg string) string {
	t.Helper()
	path, err := exec.LookPath(cmd)
	if err == nil {
		return path
	}
	if ci, _ := strconv.ParseBool(os.Getenv("CI")); ci {
		t.Fatalf("%s is not installed: .ci/run must install the %s package (%v)", cmd, pkg, err)
	}
	t.Skipf("%s is not installed: install it (apt-get install %s) to run this interop test (%v)", cmd, pkg, err)
	return ""
}

// FreePort returns a port of 127.0.0.1 that was free for both UDP and TCP
// a moment ago, for SIPp's -p (SIPp takes 5060 for -p 0).
func FreePort(t testing.TB) int {
	t.Helper()
	for range 10 {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		port := l.Addr().(*net.TCPAddr).Port
		c, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1), Port: port})
		l.Close()
		if err == nil {
			c.Close()
			return port
		}
	}
	t.Fatal("no port of 127.0.0.1 free for both UDP and TCP")
	return 0
}

// RunSIPp runs one call of the scenario file against target (host:port)
// with SIPp bound to 127.0.0.1 (its SIP, media and remote-control
// sockets), a receive timeout and message and error logs, plus extra
// arguments (such as "-t", "t1" for TCP, "-nr", or "-au" and "-ap" for
// [authentication]). It fails the test, with SIPp's logs, unless SIPp
// reports that the call passed (exit status 0), and returns the message
// log.
func RunSIPp(t testing.TB, scenario, target string, extra ...string) string {
	t.Helper()
	sipp := SIPp(t)
	dir := t.TempDir()
	sf, err := filepath.Abs(scenario)
	if err != nil {
		t.Fatal(err)
	}
	msgLog, errLog := filepath.Join(dir, "messages.log"), filepath.Join(dir, "errors.log")
	args := append([]string{"-sf", sf, target,
		"-i", "127.0.0.1", "-p", strconv.Itoa(FreePort(t)),
		"-ci", "127.0.0.1", // the remote-control socket too, not on 0.0.0.0
		"-m", "1", "-nostdin",
		"-recv_timeout", "5000", // ms: a missing answer fails the call
		"-timeout", "15s", "-timeout_error",
		"-trace_msg", "-message_file", msgLog,
		"-trace_err", "-error_file", errLog}, extra...)

	ctx, cancel := context.WithTimeout(context.Background(), SIPpTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, sipp, args...)
	cmd.Dir = dir // SIPp may write other files in its working directory
	cmd.WaitDelay = 2 * time.Second
	start := time.Now()
	out, err := cmd.CombinedOutput()
	t.Logf("sipp %s %s: %v", filepath.Base(scenario), strings.Join(extra, " "), time.Since(start).Round(time.Millisecond))
	msgs, _ := os.ReadFile(msgLog)
	if err != nil {
		errs, _ := os.ReadFile(errLog)
		if len(out) > 4000 {
			out = out[len(out)-4000:]
		}
		t.Fatalf("sipp %s: %v\n--- sipp %s\n--- output:\n%s\n--- messages:\n%s\n--- errors:\n%s",
			scenario, err, strings.Join(args, " "), out, msgs, errs)
	}
	return string(msgs)
}
