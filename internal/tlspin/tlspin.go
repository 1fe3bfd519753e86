// Package tlspin makes the TLS client configuration Cisco phones use for
// their own services (CAPF, TVS): the server must present, as its own
// certificate, one of the certificates the phone's trust list holds for
// that service. A certificate that merely chains to one is refused: the
// CAPF certificate is the CA that signs every phone's LSC, and an LSC is a
// TLS server certificate too, so chaining would let any enrolled phone
// pose as the CAPF. No host name is checked, since phones reach these
// services by address.
package tlspin

import (
	"bytes"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"slices"
	"time"
)

// Check reports a configuration ClientConfig cannot verify with. cfg may
// be nil. It returns nil when pinned holds parsed certificates and cfg
// sets no RootCAs, or, with no pins, when cfg sets InsecureSkipVerify
// with a VerifyConnection or VerifyPeerCertificate of the caller's own
// that replaces the check. field names the pinned certificates in
// messages, as "CAPFCertificates".
func Check(cfg *tls.Config, pinned []*x509.Certificate, field string) error {
	for _, c := range pinned {
		if c == nil || len(c.Raw) == 0 {
			return fmt.Errorf("%s holds a nil or unparsed certificate", field)
		}
	}
	custom := cfg != nil && cfg.InsecureSkipVerify && (cfg.VerifyConnection != nil || cfg.VerifyPeerCertificate != nil)
	switch {
	case cfg != nil && cfg.RootCAs != nil:
		return fmt.Errorf("TLSConfig.RootCAs is not used: the server's certificate must be one of %s itself (a certificate that chains to one is not trusted)", field)
	case len(pinned) == 0 && !custom:
		return fmt.Errorf("%s is empty: give the certificates of the phone's trust-list records for the service", field)
	}
	return nil
}

// ClientConfig returns a clone of cfg (a new configuration if cfg is nil)
// for a client; cfg and pinned must pass Check. With pins, the server's
// certificate must be byte for byte one of pinned, within its validity
// period at cfg.Time (time.Now if nil) and, if it lists extended key
// usages, good for serverAuth; cfg's own VerifyConnection then runs after,
// without verified chains. ServerName, if set, is only sent in the
// handshake (SNI). Without pins cfg is returned cloned, the caller's own
// check in charge. prefix starts error messages, as "capf: CAPF".
func ClientConfig(cfg *tls.Config, pinned []*x509.Certificate, prefix string) *tls.Config {
	var c *tls.Config
	if cfg != nil {
		c = cfg.Clone()
	} else {
		c = new(tls.Config)
	}
	if len(pinned) == 0 {
		return c
	}
	pinned = slices.Clone(pinned)
	next := c.VerifyConnection
	now := c.Time
	if now == nil {
		now = time.Now
	}
	c.InsecureSkipVerify = true // replaced by the pin below
	c.VerifyConnection = func(cs tls.ConnectionState) error {
		if err := verify(cs.PeerCertificates, pinned, now()); err != nil {
			return fmt.Errorf("%s server certificate: %w", prefix, err)
		}
		if next != nil {
			return next(cs)
		}
		return nil
	}
	return c
}

// ErrNotPinned is the error of a server certificate that is none of the
// pinned ones.
var ErrNotPinned = errors.New("not one of the trusted certificates (it is pinned: a certificate they issued is not enough)")

// verify checks the server's certificate against the pins at now.
func verify(chain, pinned []*x509.Certificate, now time.Time) error {
	if len(chain) == 0 {
		return errors.New("the server sent no certificate")
	}
	leaf := chain[0]
	if !slices.ContainsFunc(pinned, func(p *x509.Certificate) bool { return bytes.Equal(p.Raw, leaf.Raw) }) {
		return fmt.Errorf("%q is %w", leaf.Subject.String(), ErrNotPinned)
	}
	if now.Before(leaf.NotBefore) || now.After(leaf.NotAfter) {
		return x509.CertificateInvalidError{Cert: leaf, Reason: x509.Expired,
			Detail: fmt.Sprintf("current time %s is outside %s to %s", now.UTC().Format(time.RFC3339), leaf.NotBefore.UTC().Format(time.RFC3339), leaf.NotAfter.UTC().Format(time.RFC3339))}
	}
	if len(leaf.ExtKeyUsage) > 0 && !slices.Contains(leaf.ExtKeyUsage, x509.ExtKeyUsageServerAuth) && !slices.Contains(leaf.ExtKeyUsage, x509.ExtKeyUsageAny) {
		return x509.CertificateInvalidError{Cert: leaf, Reason: x509.IncompatibleUsage, Detail: "no serverAuth extended key usage"}
	}
	return nil
}
