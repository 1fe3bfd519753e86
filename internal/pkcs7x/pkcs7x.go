package pkcs7x

import (
	"crypto/x509"
	"errors"
	"fmt"

	"github.com/smallstep/pkcs7"
)

// Bounds checked before the input reaches pkcs7.Parse (see the package
// documentation).
const (
	maxInput      = 1 << 20 // bytes
	maxDepth      = 64      // nesting levels of constructed values
	maxElements   = 1 << 16 // elements, in all
	maxIndefinite = 1024    // elements inside indefinite-length values, in all
)

// ErrMalformed reports input that is not a PKCS#7 SignedData holding at least
// one certificate.
var ErrMalformed = errors.New("pkcs7x: malformed PKCS#7 certificate bundle")

// ParseCertificates returns the certificates of a PKCS#7 SignedData in DER
// (or BER), in the order they appear. It is meant for the "certs-only"
// bundles CAs return; the content, CRLs and SignerInfos of the SignedData
// are ignored and nothing is verified. Input holding no certificate, or
// anything but one SignedData, is an error wrapping [ErrMalformed].
func ParseCertificates(der []byte) (certs []*x509.Certificate, err error) {
	if len(der) > maxInput {
		return nil, fmt.Errorf("%w: %d bytes, more than %d", ErrMalformed, len(der), maxInput)
	}
	if err := precheck(der); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrMalformed, err)
	}
	defer func() {
		if r := recover(); r != nil {
			certs, err = nil, fmt.Errorf("%w: parser panic: %v", ErrMalformed, r)
		}
	}()
	p7, err := pkcs7.Parse(der)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrMalformed, err)
	}
	if len(p7.Certificates) == 0 {
		return nil, fmt.Errorf("%w: no certificates", ErrMalformed)
	}
	return p7.Certificates, nil
}

// CertificatesOnly returns a DER PKCS#7 SignedData "certs-only" bundle
// holding certs in the given order, as CAs return them (.p7b).
func CertificatesOnly(certs ...*x509.Certificate) ([]byte, error) {
	if len(certs) == 0 {
		return nil, errors.New("pkcs7x: no certificates")
	}
	var raw []byte
	for i, c := range certs {
		if c == nil || len(c.Raw) == 0 {
			return nil, fmt.Errorf("pkcs7x: certificate %d has no DER", i)
		}
		raw = append(raw, c.Raw...)
	}
	b, err := pkcs7.DegenerateCertificate(raw)
	if err != nil {
		return nil, fmt.Errorf("pkcs7x: %v", err)
	}
	return b, nil
}

// precheck walks BER input the way pkcs7's BER-to-DER conversion reads it
// (same element boundaries, same acceptance of lengths), without building
// anything, and enforces the bounds of the package documentation. It is
// stricter in one way: an element must end inside the definite-length value
// that holds it. An input it accepts costs the conversion time linear in its
// size: each element is read once, there are at most maxElements of them
// (the conversion allocates an object for each), at most maxIndefinite
// end-of-contents searches, and at most maxDepth levels of recursion.
func precheck(b []byte) error {
	w := walker{b: b}
	end, err := w.element(0, 0)
	if err != nil {
		return err
	}
	if end != len(b) {
		return fmt.Errorf("%d bytes after the outermost value", len(b)-end)
	}
	return nil
}

type walker struct {
	b          []byte
	elements   int // elements read
	indefinite int // elements read inside indefinite-length values
}

var errTruncated = errors.New("truncated BER element")

// element checks the element at off and returns the offset where the
// conversion resumes after it.
func (w *walker) element(off, depth int) (int, error) {
	b := w.b
	if depth > maxDepth {
		return 0, fmt.Errorf("nested more than %d levels", maxDepth)
	}
	if w.elements++; w.elements > maxElements {
		return 0, fmt.Errorf("more than %d elements", maxElements)
	}
	// The conversion wants an identifier byte and at least one length byte.
	if off+1 >= len(b) {
		return 0, errTruncated
	}
	id := b[off]
	if id&0x1f == 0x1f {
		return 0, errors.New("high tag numbers are not supported")
	}
	constructed := id&0x20 != 0
	off++
	l := b[off]
	off++
	length, indefinite := 0, false
	switch {
	case l == 0x80:
		indefinite = true
	case l > 0x80:
		n := int(l & 0x7f)
		if n > 4 {
			return 0, errors.New("length of more than 4 bytes")
		}
		if off+n > len(b) {
			return 0, errTruncated
		}
		if n == 4 && b[off] > 0x7f {
			return 0, errors.New("negative length")
		}
		if b[off] == 0 {
			return 0, errors.New("length with a leading zero byte")
		}
		for i := 0; i < n; i++ {
			length = length<<8 | int(b[off])
			off++
		}
	default:
		length = int(l)
	}
	end := off + length
	if end > len(b) {
		return 0, errTruncated
	}
	if !constructed {
		if indefinite {
			return 0, errors.New("indefinite length on a primitive value")
		}
		return end, nil
	}
	for off < end || indefinite {
		if indefinite {
			if w.indefinite++; w.indefinite > maxIndefinite {
				return 0, fmt.Errorf("more than %d elements in indefinite-length values", maxIndefinite)
			}
		}
		var err error
		if off, err = w.element(off, depth+1); err != nil {
			return 0, err
		}
		if !indefinite && off > end {
			// The conversion would go on reading after the end of
			// this value, and its parent would read those bytes
			// again: valid BER never does that.
			return 0, errors.New("element overruns the value holding it")
		}
		if indefinite {
			if len(b)-off < 2 {
				return 0, errTruncated
			}
			if b[off] == 0 && b[off+1] == 0 {
				return off + 2, nil
			}
		}
	}
	return end, nil
}
