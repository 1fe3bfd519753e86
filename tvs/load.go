package tvs

import (
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"slices"
	"time"

	"github.com/ucsec/ucsec/ctl"
)

// LoadTrustList puts the certificates of the trust list f (a CTL or an
// ITL, from [ctl.Parse] or built) into st, with the TTL ttl, and returns
// how many it put. A certificate that several records hold is put once,
// with the roles of all of them. Records without a certificate (CUCM
// writes some) are skipped.
//
// A certificate the store already holds is replaced: it gets the roles
// this list gives it, not the union with the roles it had.
//
// Every record is checked before anything is put: a certificate that does
// not parse, or a role this package does not know (see [Entry]), makes
// LoadTrustList fail with an error wrapping [ErrInvalid], having put
// nothing. A store error part way through can leave some certificates
// put.
//
// LoadTrustList does not verify f: check it with [ctl.File.Verify], and
// decide whether to trust its signer, first.
func LoadTrustList(ctx context.Context, st Store, f *ctl.File, ttl time.Duration) (int, error) {
	if f == nil {
		return 0, fmt.Errorf("%w: nil trust list", ErrInvalid)
	}
	var es []*Entry
	index := make(map[[32]byte]int) // sum -> index in es
	for i := range f.Records {
		r := &f.Records[i]
		if len(r.Certificate) == 0 {
			continue
		}
		sum := sha256.Sum256(r.Certificate)
		if j, ok := index[sum]; ok {
			if !slices.Contains(es[j].Roles, r.Role) {
				es[j].Roles = append(es[j].Roles, r.Role)
			}
			continue
		}
		cert, err := x509.ParseCertificate(r.Certificate)
		if err != nil {
			return 0, fmt.Errorf("%w: record %d (%s): certificate: %v", ErrInvalid, i+1, r.Role.ShortName(), err)
		}
		index[sum] = len(es)
		es = append(es, &Entry{Certificate: cert, Roles: []ctl.Role{r.Role}, TTL: ttl})
	}
	return putAll(ctx, st, es)
}

// LoadCertificates puts the certificates in data into st, each with the
// roles roles and the TTL ttl, and returns how many it put. data is PEM
// text with one or more CERTIFICATE blocks (blocks of other types, such as
// a private key, and text between blocks are ignored), or one DER
// certificate. A certificate given twice is put once. A certificate the
// store already holds is replaced.
//
// Everything is checked before anything is put: data that holds no
// certificate, a malformed one, or roles or a TTL that an [Entry] may not
// have, make LoadCertificates fail with an error wrapping [ErrInvalid],
// having put nothing. A store error part way through can leave some
// certificates put.
func LoadCertificates(ctx context.Context, st Store, data []byte, roles []ctl.Role, ttl time.Duration) (int, error) {
	certs, err := parseCertificates(data)
	if err != nil {
		return 0, err
	}
	var es []*Entry
	seen := make(map[[32]byte]bool)
	for _, c := range certs {
		sum := sha256.Sum256(c.Raw)
		if seen[sum] {
			continue
		}
		seen[sum] = true
		es = append(es, &Entry{Certificate: c, Roles: slices.Clone(roles), TTL: ttl})
	}
	return putAll(ctx, st, es)
}

// putAll checks every entry, then puts them in order.
func putAll(ctx context.Context, st Store, es []*Entry) (int, error) {
	rs := make([]*record, len(es))
	for i, e := range es {
		var err error
		if rs[i], err = newRecord(e); err != nil {
			return 0, fmt.Errorf("%w (certificate %s)", err, e.Certificate.Subject)
		}
	}
	for i, r := range rs {
		if err := st.Put(ctx, r.sum, r.marshal()); err != nil {
			return i, err
		}
	}
	return len(es), nil
}

// parseCertificates returns the certificates in PEM or DER data.
func parseCertificates(data []byte) ([]*x509.Certificate, error) {
	if !isPEM(data) {
		c, err := x509.ParseCertificate(data)
		if err != nil {
			return nil, fmt.Errorf("%w: neither PEM nor a DER certificate: %v", ErrInvalid, err)
		}
		return []*x509.Certificate{c}, nil
	}
	var certs []*x509.Certificate
	for block, rest := pem.Decode(data); block != nil; block, rest = pem.Decode(rest) {
		if block.Type != "CERTIFICATE" {
			continue
		}
		c, err := x509.ParseCertificate(block.Bytes)
		if err != nil {
			return nil, fmt.Errorf("%w: PEM certificate %d: %v", ErrInvalid, len(certs)+1, err)
		}
		certs = append(certs, c)
	}
	// pem.Decode skips a block it cannot decode: count the headers to
	// notice.
	if n := bytes.Count(data, []byte("-----BEGIN CERTIFICATE-----")); n != len(certs) {
		return nil, fmt.Errorf("%w: %d of the %d PEM CERTIFICATE blocks are malformed", ErrInvalid, n-len(certs), n)
	}
	if len(certs) == 0 {
		return nil, fmt.Errorf("%w: no CERTIFICATE in PEM data", ErrInvalid)
	}
	return certs, nil
}

// isPEM reports whether data is PEM text: it starts, after white space,
// with a "-----BEGIN" line. (Searching for a PEM block anywhere would let
// a DER certificate carry another certificate in PEM form inside an
// extension and have that one read instead.)
func isPEM(data []byte) bool {
	return bytes.HasPrefix(bytes.TrimLeft(data, " \t\r\n"), []byte("-----BEGIN"))
}
