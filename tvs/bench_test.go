package tvs

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ucsec/ucsec/ctl"
	"github.com/ucsec/ucsec/internal/testpki"
)

// BenchmarkQuery measures queries per second over loopback TLS, every one
// on a new connection (the client's verdict cache is off), from
// GOMAXPROCS goroutines: "resumed" with a TLS session cache on the
// client, so that after the first each connection resumes a session (no
// certificate, no signature), "full" without, a full handshake each time.
// The TVS key is EC P-256 or RSA-2048.
func BenchmarkQuery(b *testing.B) {
	for _, mode := range []struct {
		name   string
		resume bool
	}{{"resumed", true}, {"full", false}} {
		for _, keyType := range []string{"ec256", "rsa2048"} {
			b.Run(mode.name+"/"+keyType, func(b *testing.B) {
				benchQuery(b, mode.resume, keyType)
			})
		}
	}
}

func benchQuery(b *testing.B, resume bool, keyType string) {
	id := svTVS(b)
	if keyType == "rsa2048" {
		id = svNewIdentity(b, "TVS-test-rsa", testpki.Key(b, testpki.RSA2048))
	}
	s := svStart(b, func(srv *Server) {
		srv.TLSConfig = &tls.Config{Certificates: []tls.Certificate{id.tls()}}
		srv.Logger = nil
		srv.MaxConnsPerHost = -1 // every client comes from 127.0.0.1
	})
	s.id = id
	cert := svCert(b, "known")
	s.put(b, cert, time.Hour, ctl.RoleSAST)
	c := s.client()
	c.CacheSize = -1
	var resumed, total atomic.Int64
	c.TLSConfig.VerifyConnection = func(cs tls.ConnectionState) error {
		total.Add(1)
		if cs.DidResume {
			resumed.Add(1)
		}
		return nil
	}
	if resume {
		c.TLSConfig.ClientSessionCache = tls.NewLRUClientSessionCache(64)
	}
	ctx := context.Background()
	query := func(cert *x509.Certificate) bool {
		v, err := c.Verify(ctx, cert)
		if err != nil || !v.Valid || v.Cached {
			b.Errorf("verdict %+v, %v", v, err)
			return false
		}
		return true
	}
	query(cert) // the first connection makes a session to resume
	resumed.Store(0)
	total.Store(0)

	b.ResetTimer()
	start := time.Now()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if !query(cert) {
				return
			}
		}
	})
	elapsed := time.Since(start)
	b.StopTimer()
	b.ReportMetric(float64(b.N)/elapsed.Seconds(), "queries/s")
	if n := total.Load(); n > 0 {
		b.ReportMetric(float64(resumed.Load())/float64(n), "resumed/op")
		if resume && resumed.Load() == 0 {
			b.Error("no session was resumed")
		}
		if !resume && resumed.Load() != 0 {
			b.Error("sessions resumed without a cache")
		}
	}
}

// BenchmarkAnswer is the server's work per request without TLS or
// network: read the request, look the certificate up, write the answer.
func BenchmarkAnswer(b *testing.B) {
	s := svStart(b, func(srv *Server) { srv.Logger = nil })
	cert := svCert(b, "known")
	s.put(b, cert, time.Hour, ctl.RoleSAST)
	if err := s.srv.init(); err != nil {
		b.Fatal(err)
	}
	req := svRequest(b, 1, svDevice, cert.Raw)
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		c := &fuzzConn{r: bytes.NewReader(req)}
		if err := s.srv.exchange(ctx, c, s.srv.log, time.Now()); err != nil {
			b.Fatal(err)
		}
	}
}
