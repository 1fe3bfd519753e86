// Package testnet holds what the tests of the module's network servers
// share: how long to wait for what should happen at once, dialling from a
// chosen loopback address, noticing that the server closed a connection,
// and a log buffer that server goroutines may write to while a test reads
// it. It is for tests only.
package testnet

import (
	"bytes"
	"errors"
	"net"
	"os"
	"regexp"
	"sync"
	"testing"
	"time"
)

// Patience is how long a test waits for what should happen at once: half
// the time left before its deadline, at most two minutes, so that a busy
// machine does not fail it and a hang does not eat the whole run.
func Patience(t testing.TB) time.Duration {
	if d, ok := t.(interface{ Deadline() (time.Time, bool) }); ok {
		if dl, ok := d.Deadline(); ok {
			return min(time.Until(dl)/2, 2*time.Minute)
		}
	}
	return 2 * time.Minute
}

// Dial opens TCP to addr from the loopback address src (such as
// "127.0.0.2", which Linux routes without configuration), within
// Patience; the connection is closed when the test ends.
func Dial(t testing.TB, src, addr string) net.Conn {
	t.Helper()
	d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(src)}, Timeout: Patience(t)}
	c, err := d.Dial("tcp", addr)
	if err != nil {
		t.Fatalf("dial %s from %s: %v", addr, src, err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// Closed reports whether the peer closed c (or reset it) without sending
// anything, waiting up to wait. It reads c: use it on a connection that
// expects nothing more.
func Closed(c net.Conn, wait time.Duration) bool {
	c.SetReadDeadline(time.Now().Add(wait))
	n, err := c.Read(make([]byte, 1))
	return n == 0 && err != nil && !errors.Is(err, os.ErrDeadlineExceeded)
}

// A Log is a bytes.Buffer for concurrent writers, such as a server's
// slog handler or a child process's output, that a test reads while they
// write.
type Log struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (l *Log) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.Write(p)
}

// String returns what was written so far.
func (l *Log) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.String()
}

// Len returns the position of the end of the text so far, a mark for
// Since and WaitFor.
func (l *Log) Len() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.Len()
}

// Since returns the text after mark.
func (l *Log) Since(mark int) string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return string(l.buf.Bytes()[mark:])
}

// WaitFor waits until the text after mark matches re, and returns the
// match (with its groups), or nil if it did not match within timeout.
func (l *Log) WaitFor(mark int, re *regexp.Regexp, timeout time.Duration) []string {
	deadline := time.Now().Add(timeout)
	for {
		if m := re.FindStringSubmatch(l.Since(mark)); m != nil || time.Now().After(deadline) {
			return m
		}
		time.Sleep(20 * time.Millisecond)
	}
}
