package tlsroots

import (
	"crypto/tls"
	"crypto/x509"
	"testing"
)

func TestCheck(t *testing.T) {
	pin := func(tls.ConnectionState) error { return nil }
	for _, tt := range []struct {
		name string
		cfg  *tls.Config
		ok   bool
	}{
		{"nil", nil, false},
		{"empty", &tls.Config{}, false},
		{"ServerName only: would use the system's roots", &tls.Config{ServerName: "tvs.example.com"}, false},
		{"RootCAs", &tls.Config{RootCAs: x509.NewCertPool()}, true},
		{"RootCAs and ServerName", &tls.Config{RootCAs: x509.NewCertPool(), ServerName: "tvs.example.com"}, true},
		{"InsecureSkipVerify alone", &tls.Config{InsecureSkipVerify: true}, false},
		{"InsecureSkipVerify with a pin", &tls.Config{InsecureSkipVerify: true, VerifyConnection: pin}, true},
	} {
		if err := Check(tt.cfg); (err == nil) != tt.ok {
			t.Errorf("%s: %v", tt.name, err)
		}
	}
}

// ClientConfig leaves the caller's configuration alone.
func TestClientConfigClones(t *testing.T) {
	cfg := &tls.Config{RootCAs: x509.NewCertPool()}
	c := ClientConfig(cfg, "test:")
	if !c.InsecureSkipVerify || c.VerifyConnection == nil {
		t.Fatal("no verification replaced the host name check")
	}
	if cfg.InsecureSkipVerify || cfg.VerifyConnection != nil {
		t.Fatal("the caller's configuration changed")
	}
}
