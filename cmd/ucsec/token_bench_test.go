//go:build pkcs11

package main

import (
	"context"
	"crypto"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ucsec/ucsec/capf"
	"github.com/ucsec/ucsec/internal/testpki"
	"github.com/ucsec/ucsec/pkcs11"
	"github.com/ucsec/ucsec/pkcs11/softhsmtest"
)

// BenchmarkTokenCapfEnroll measures CAPF enrolments per second with the
// CA key in a SoftHSM2 token and with the same key in memory: a server in
// this process (memory store, LocalCA), 8 clients per GOMAXPROCS at once,
// each a whole install session (TLS handshake, null authentication, a
// pre-generated P-256 phone key, the LSC). The CA key signs twice per
// enrolment: the TLS handshake and the LSC. SoftHSM2 computes in software
// (OpenSSL), so the difference is the binding's cost (cgo calls, sessions,
// C_SignInit and C_Sign), not a hardware token's speed; a real HSM or a
// USB token is slower, and bounds the rate by its own signatures per
// second.
func BenchmarkTokenCapfEnroll(b *testing.B) {
	tk := softhsmtest.New(b, "bench")
	ecKey := testpki.NewKey(b, testpki.EC256)
	rsaKey := testpki.NewKey(b, testpki.RSA2048)
	tk.Import(b, "ec", []byte{1}, ecKey)
	tk.Import(b, "rsa", []byte{2}, rsaKey)
	phoneKey := testpki.Key(b, testpki.EC256)
	for _, kt := range []struct {
		name, object string
		mem          crypto.Signer
	}{{"P-256", "ec", ecKey}, {"RSA-2048", "rsa", rsaKey}} {
		tok, err := pkcs11.Open(tk.URI(kt.object), nil)
		if err != nil {
			b.Fatal(err)
		}
		defer tok.Close()
		cert := testpki.SelfSigned(b, testpki.CA("CAPF-bench"), kt.mem)
		for _, where := range []struct {
			name string
			key  crypto.Signer
		}{{"token", tok}, {"memory", kt.mem}} {
			b.Run(kt.name+"/"+where.name, func(b *testing.B) {
				benchEnroll(b, cert, where.key, phoneKey)
			})
		}
	}
}

func benchEnroll(b *testing.B, cert *x509.Certificate, key, phoneKey crypto.Signer) {
	st := capf.NewMemoryStore()
	srv := &capf.Server{
		Store:  st,
		Issuer: &capf.LocalCA{Certificate: cert, Signer: key},
		TLSConfig: &tls.Config{Certificates: []tls.Certificate{{
			Certificate: [][]byte{cert.Raw}, PrivateKey: key, Leaf: cert,
		}}},
		MaxConnsPerHost: -1,
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ctx, l) }()
	defer func() {
		cancel()
		if err := <-done; err != nil && !errors.Is(err, capf.ErrServerClosed) {
			b.Error(err)
		}
	}()
	addr := l.Addr().String()
	pins := []*x509.Certificate{cert}
	var seq atomic.Int64
	b.SetParallelism(8)
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			dev := fmt.Sprintf("SEP%012X", seq.Add(1))
			if err := capf.ScheduleOperation(ctx, st, dev, capf.Schedule{Operation: capf.OpInstall, Auth: capf.AuthNull, Key: capf.EC256}, time.Now()); err != nil {
				b.Error(err)
				return
			}
			c := &capf.Client{Device: dev, CAPFCertificates: pins,
				GenerateKey: func(capf.KeySpec) (crypto.Signer, error) { return phoneKey, nil }}
			out, err := c.Enroll(ctx, addr)
			if err == nil && out.Certificate == nil {
				err = fmt.Errorf("%s: no certificate installed: %+v", dev, out)
			}
			if err != nil {
				b.Error(err)
				return
			}
		}
	})
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "enrolments/s")
}
