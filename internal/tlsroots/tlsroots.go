// Package tlsroots makes the TLS client configuration Cisco phones use for
// their own services (CAPF, TVS): the server's certificate must chain to
// roots the phone holds (its ITL or CTL), and no host name is checked,
// since phones reach these services by address.
package tlsroots

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
)

// ClientConfig returns a clone of cfg for a client; cfg must pass Check.
// Without a ServerName, and unless cfg sets InsecureSkipVerify itself, the
// server's chain is verified against cfg.RootCAs for the serverAuth usage
// at cfg.Time, and no host name is checked; cfg's own VerifyConnection
// then runs after, without verified chains. With a ServerName, crypto/tls
// verifies the name too, against the same RootCAs. prefix starts error
// messages, as "capf:".
func ClientConfig(cfg *tls.Config, prefix string) *tls.Config {
	c := cfg.Clone()
	if c.InsecureSkipVerify || c.ServerName != "" {
		return c
	}
	roots, next := c.RootCAs, c.VerifyConnection
	c.InsecureSkipVerify = true // replaced by the check below, which skips the host name only
	c.VerifyConnection = func(cs tls.ConnectionState) error {
		if len(cs.PeerCertificates) == 0 {
			return errors.New(prefix + " server sent no certificate")
		}
		opts := x509.VerifyOptions{
			Roots:         roots,
			Intermediates: x509.NewCertPool(),
			KeyUsages:     []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		}
		if c.Time != nil {
			opts.CurrentTime = c.Time()
		}
		for _, ic := range cs.PeerCertificates[1:] {
			opts.Intermediates.AddCert(ic)
		}
		if _, err := cs.PeerCertificates[0].Verify(opts); err != nil {
			return fmt.Errorf("%s server certificate: %w", prefix, err)
		}
		if next != nil {
			return next(cs)
		}
		return nil
	}
	return c
}

// Check reports a configuration ClientConfig cannot verify with: nil;
// without RootCAs (crypto/tls would fall back to the system's roots, and
// any public CA could then make a certificate for the name); or with
// InsecureSkipVerify but no VerifyConnection or VerifyPeerCertificate of
// the caller's own to replace the check.
func Check(cfg *tls.Config) error {
	switch {
	case cfg == nil:
		return errors.New("TLSConfig is required to verify the server's certificate")
	case cfg.InsecureSkipVerify:
		if cfg.VerifyConnection == nil && cfg.VerifyPeerCertificate == nil {
			return errors.New("TLSConfig.InsecureSkipVerify without a VerifyConnection or VerifyPeerCertificate would trust any server")
		}
	case cfg.RootCAs == nil:
		return errors.New("TLSConfig needs RootCAs: the server's certificate or its CA, from the phone's trust list")
	}
	return nil
}
