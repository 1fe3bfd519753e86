package main

import (
	"context"
	"crypto/x509"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"

	"github.com/ucsec/ucsec/internal/testnet"
	"github.com/ucsec/ucsec/internal/testpki"
)

// writeSelfSigned signs tmpl with a fresh EC P-256 key and writes the
// certificate and its PKCS #8 key to dir/<name>.pem, both in one file,
// and the certificate alone to dir/<name>.crt. It returns the two paths
// and the certificate.
func writeSelfSigned(t testing.TB, dir, name string, tmpl *x509.Certificate) (pemPath, crtPath string, cert *x509.Certificate) {
	t.Helper()
	key := testpki.NewKey(t, testpki.EC256)
	cert = testpki.SelfSigned(t, tmpl, key)
	pemPath, crtPath = testpki.WritePEM(t, dir, name, cert, key)
	return pemPath, crtPath, cert
}

// startServe runs the command line argv (a "... serve" command listening
// on 127.0.0.1:0) in-process, its context registered in testServers under
// key, and waits for the line starting with listening. It returns the
// address that line names, the command's standard error, and a function
// that stops it (as SIGINT would) and checks that it exited with status 0.
func startServe(t *testing.T, key, listening string, argv ...string) (addr string, stderr *testnet.Log, stop func()) {
	t.Helper()
	name := strings.Join(argv[:2], " ")
	ctx, cancel := context.WithCancel(context.Background())
	testServers.Store(key, ctx)
	stderr = new(testnet.Log)
	var stdout testnet.Log
	done := make(chan int, 1)
	go func() {
		done <- run(argv, strings.NewReader(""), &stdout, stderr)
	}()
	var once sync.Once
	stop = func() {
		once.Do(func() {
			cancel()
			select {
			case code := <-done:
				assert.Equal(t, exitOK, code, "%s: stderr:\n%s", name, stderr)
			case <-time.After(30 * time.Second):
				t.Errorf("%s did not stop", name)
			}
			testServers.Delete(key)
		})
	}
	t.Cleanup(stop)
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(5 * time.Millisecond) {
		select {
		case code := <-done:
			t.Fatalf("%s exited with status %d:\n%s", name, code, stderr)
		default:
		}
		for _, line := range strings.Split(stderr.String(), "\n") {
			if a, ok := strings.CutPrefix(line, listening); ok {
				return a, stderr, stop
			}
		}
	}
	t.Fatalf("%s did not start:\n%s", name, stderr)
	return
}
