package netserve

import (
	"context"
	"crypto"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"log/slog"
	"net"
	"os"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/ucsec/ucsec/internal/testpki"
)

type failingListener struct {
	net.Listener
	temporary atomic.Int32 // EMFILE errors still to return
	permanent error
}

func (l *failingListener) Accept() (net.Conn, error) {
	if l.temporary.Add(-1) >= 0 {
		return nil, &net.OpError{Op: "accept", Net: "tcp", Err: os.NewSyscallError("accept", syscall.EMFILE)}
	}
	if l.permanent != nil {
		return nil, l.permanent
	}
	return l.Listener.Accept()
}

func listen(t *testing.T) net.Listener {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	return l
}

func TestServe(t *testing.T) {
	inner := listen(t)
	l := &failingListener{Listener: inner}
	l.temporary.Store(2)
	cfg := Config{Limit: NewLimit(1, 0), ShutdownTimeout: 200 * time.Millisecond, Log: slog.New(slog.DiscardHandler), Prefix: "test:"}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	started := make(chan struct{}, 4)
	var handlerCancelled atomic.Bool
	go func() {
		done <- Serve(ctx, l, cfg, func(hctx context.Context, c net.Conn) {
			started <- struct{}{}
			<-hctx.Done() // hold the slot until the grace period ends
			handlerCancelled.Store(true)
		})
	}()
	a, err := net.Dial("tcp", inner.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	select {
	case <-started:
	case <-time.After(5 * time.Second):
		t.Fatal("first connection not served (temporary errors not retried?)")
	}
	// The one slot is taken: a second connection is closed at once.
	b, err := net.Dial("tcp", inner.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	b.SetReadDeadline(time.Now().Add(5 * time.Second))
	if n, err := b.Read(make([]byte, 1)); n != 0 || err == nil || errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("second connection: %d, %v", n, err)
	}
	b.Close()
	start := time.Now()
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if d := time.Since(start); d < 150*time.Millisecond || !handlerCancelled.Load() {
		t.Fatalf("returned after %v, handler cancelled %v", d, handlerCancelled.Load())
	}
	if _, err := net.Dial("tcp", inner.Addr().String()); err == nil {
		t.Fatal("listener still open")
	}
}

func TestServeAcceptError(t *testing.T) {
	l := &failingListener{Listener: listen(t), permanent: errors.New("boom")}
	cfg := Config{Limit: NewLimit(1, 0), Log: slog.New(slog.DiscardHandler)}
	err := Serve(context.Background(), l, cfg, func(context.Context, net.Conn) {})
	if err == nil || err.Error() != "boom" {
		t.Fatalf("%v", err)
	}
}

// CheckKeyUsage refuses a certificate whose key usage lacks
// digitalSignature, takes one without the extension, and with legacy
// returns the RSA certificates that lack keyEncipherment.
func TestCheckKeyUsage(t *testing.T) {
	ec, rsaKey := testpki.NewKey(t, testpki.EC256), testpki.Key(t, testpki.RSA2048)
	for _, tc := range []struct {
		name   string
		key    crypto.Signer
		usage  x509.KeyUsage
		legacy bool
		err    bool
		warn   bool
	}{
		{"keyEncipherment alone", rsaKey, x509.KeyUsageKeyEncipherment, false, true, false},
		{"certSign alone", ec, x509.KeyUsageCertSign, false, true, false},
		{"certSign and keyEncipherment, legacy", rsaKey, x509.KeyUsageCertSign | x509.KeyUsageKeyEncipherment, true, true, false},
		{"no extension", ec, 0, false, false, false},
		{"digitalSignature", ec, x509.KeyUsageDigitalSignature, true, false, false},
		{"RSA, legacy, no keyEncipherment", rsaKey, x509.KeyUsageDigitalSignature, true, false, true},
		{"RSA, legacy, keyEncipherment", rsaKey, x509.KeyUsageDigitalSignature | x509.KeyUsageKeyEncipherment, true, false, false},
		{"RSA, not legacy", rsaKey, x509.KeyUsageDigitalSignature, false, false, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tmpl := testpki.Server("usage")
			tmpl.KeyUsage = tc.usage
			cert := testpki.SelfSigned(t, tmpl, tc.key)
			// Leaf unset: CheckKeyUsage parses the DER itself.
			cfg := &tls.Config{Certificates: []tls.Certificate{{Certificate: [][]byte{cert.Raw}, PrivateKey: tc.key}}}
			warn, err := CheckKeyUsage(cfg, tc.legacy)
			if tc.err {
				if err == nil || !strings.Contains(err.Error(), "lacks digitalSignature") || !strings.Contains(err.Error(), "CN=usage") {
					t.Fatalf("error %v, want one naming the certificate and digitalSignature", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if (len(warn) == 1) != tc.warn || tc.warn && !warn[0].Equal(cert) {
				t.Fatalf("returned %d certificates, want a warning: %v", len(warn), tc.warn)
			}
		})
	}
}
