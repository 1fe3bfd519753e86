package tlspin

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/ucsec/ucsec/internal/testpki"
)

// tpHandshake runs a TLS handshake on loopback between a server presenting
// chain and a client with cfg, returning the client's error.
func tpHandshake(t *testing.T, chain tls.Certificate, cfg *tls.Config) error {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	go func() {
		c, err := l.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		tc := tls.Server(c, &tls.Config{Certificates: []tls.Certificate{chain}})
		tc.Handshake()
		tc.Read(make([]byte, 1)) // until the client closes
	}()
	d := tls.Dialer{Config: cfg}
	c, err := d.Dial("tcp", l.Addr().String())
	if err != nil {
		return err
	}
	return c.Close()
}

// A certificate that the pinned CAPF certificate issued, with serverAuth
// (as every LSC has), is refused: only the pinned certificate itself is
// trusted.
func TestClientConfigPinsTheLeaf(t *testing.T) {
	caKey, lscKey := testpki.NewKey(t, testpki.EC256), testpki.NewKey(t, testpki.EC256)
	ca := testpki.SelfSigned(t, testpki.CA("CAPF-test"), caKey)
	capfCA := testpki.TLSCertificate(ca, caKey)
	lscCert := testpki.Issue(t, testpki.Leaf("SEP001122334455"), ca, lscKey.Public(), caKey)
	lsc := testpki.TLSCertificate(lscCert, lscKey)
	chainedLSC := testpki.TLSCertificate(lscCert, lscKey, ca)
	otherKey := testpki.NewKey(t, testpki.EC256)
	other := testpki.TLSCertificate(testpki.SelfSigned(t, testpki.CA("CAPF-other"), otherKey), otherKey)
	clientOnlyTmpl := testpki.CA("CAPF-client-only")
	clientOnlyTmpl.ExtKeyUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}
	clientOnlyKey := testpki.NewKey(t, testpki.EC256)
	clientOnly := testpki.TLSCertificate(testpki.SelfSigned(t, clientOnlyTmpl, clientOnlyKey), clientOnlyKey)
	pins := []*x509.Certificate{capfCA.Leaf, clientOnly.Leaf}

	for _, tt := range []struct {
		name   string
		server tls.Certificate
		cfg    *tls.Config
		want   string // "" for success, else part of the error
	}{
		{"the pinned certificate", capfCA, nil, ""},
		{"an LSC it issued", lsc, nil, "not one of the trusted certificates"},
		{"an LSC it issued, sent with the CA", chainedLSC, nil, "not one of the trusted certificates"},
		{"another CA", other, nil, "not one of the trusted certificates"},
		{"pinned, but no serverAuth", clientOnly, nil, "incompatible key usage"},
		{"pinned, expired by Time", capfCA, &tls.Config{Time: func() time.Time { return ca.NotAfter.AddDate(1, 0, 0) }}, "expired"},
		{"pinned, the caller's check refuses", capfCA, &tls.Config{VerifyConnection: func(tls.ConnectionState) error { return errors.New("caller says no") }}, "caller says no"},
		{"pinned, with a ServerName that does not match", capfCA, &tls.Config{ServerName: "capf.example.com"}, ""},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if err := Check(tt.cfg, pins, "Pins"); err != nil {
				t.Fatal(err)
			}
			err := tpHandshake(t, tt.server, ClientConfig(tt.cfg, pins, "test:"))
			switch {
			case tt.want == "" && err != nil:
				t.Fatalf("refused: %v", err)
			case tt.want != "" && err == nil:
				t.Fatal("accepted")
			case tt.want != "" && !strings.Contains(err.Error(), tt.want):
				t.Fatalf("error %q, want it to say %q", err, tt.want)
			}
		})
	}
}

func TestCheck(t *testing.T) {
	pin := func(tls.ConnectionState) error { return nil }
	cert := &x509.Certificate{Raw: []byte{0x30, 0}}
	for _, tt := range []struct {
		name   string
		cfg    *tls.Config
		pinned []*x509.Certificate
		ok     bool
	}{
		{"nothing", nil, nil, false},
		{"empty config, no pins", &tls.Config{}, nil, false},
		{"pins", nil, []*x509.Certificate{cert}, true},
		{"pins and a config", &tls.Config{MinVersion: tls.VersionTLS13}, []*x509.Certificate{cert}, true},
		{"an unparsed pin", nil, []*x509.Certificate{{}}, false},
		{"a nil pin", nil, []*x509.Certificate{nil}, false},
		{"RootCAs: would trust what the CA issued", &tls.Config{RootCAs: x509.NewCertPool()}, []*x509.Certificate{cert}, false},
		{"RootCAs alone", &tls.Config{RootCAs: x509.NewCertPool()}, nil, false},
		{"ServerName only", &tls.Config{ServerName: "tvs.example.com"}, nil, false},
		{"InsecureSkipVerify alone", &tls.Config{InsecureSkipVerify: true}, nil, false},
		{"InsecureSkipVerify with the caller's check", &tls.Config{InsecureSkipVerify: true, VerifyConnection: pin}, nil, true},
	} {
		if err := Check(tt.cfg, tt.pinned, "Pins"); (err == nil) != tt.ok {
			t.Errorf("%s: %v", tt.name, err)
		}
	}
}

// ClientConfig leaves the caller's configuration alone.
func TestClientConfigClones(t *testing.T) {
	cfg := &tls.Config{}
	c := ClientConfig(cfg, []*x509.Certificate{{Raw: []byte{1}}}, "test:")
	if !c.InsecureSkipVerify || c.VerifyConnection == nil {
		t.Fatal("no pin replaced the verification")
	}
	if cfg.InsecureSkipVerify || cfg.VerifyConnection != nil {
		t.Fatal("the caller's configuration changed")
	}
}
