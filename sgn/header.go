package sgn

import (
	"crypto"
	"crypto/x509"
	"errors"
	"fmt"
	"math/big"
	"time"

	"github.com/ucsec/ucsec/internal/signedfile"
)

// The errors of the signed-file header. Every format built on it returns
// these: package ctl for trust lists and package cnfenc for encrypted
// configurations wrap them, so errors.Is(err, sgn.ErrVerification) holds
// whatever kind of file failed.
var (
	// ErrMalformed is wrapped by every error about the layout of a file.
	// Use errors.As with a *ParseError for the offset and tag.
	ErrMalformed = errors.New("sgn: malformed signed file")

	// ErrVerification means the signature does not verify. It is
	// deliberately vague.
	ErrVerification = errors.New("sgn: signature verification failed")

	// ErrWrongSigner means the certificate given to CheckSignatureFrom is not
	// the signer the header names.
	ErrWrongSigner = errors.New("sgn: certificate is not the signer named in the file")

	// ErrUnsupportedAlgorithm means a key or hash that signed files cannot
	// use (a non-RSA signing key, an RSA size without a header code, a hash
	// other than SHA-1, SHA-256 or SHA-512), or, in a format built on the
	// header, a cipher the format does not define.
	ErrUnsupportedAlgorithm = errors.New("sgn: unsupported algorithm")
)

// ParseError locates what is malformed in a signed file: an element of
// the header, or of what follows it in a format built on it (the records
// of a trust list, say). It unwraps to [ErrMalformed].
type ParseError struct {
	Offset int    // byte offset in the file of the element at fault
	Tag    uint8  // its tag, or 0 when no tag could be read
	Msg    string // what is wrong
}

func (e *ParseError) Error() string {
	return fmt.Sprintf("sgn: malformed signed file at offset %d (tag 0x%02X): %s", e.Offset, e.Tag, e.Msg)
}

// Unwrap returns ErrMalformed.
func (e *ParseError) Unwrap() error { return ErrMalformed }

// Version is a header version, major then minor.
type Version [2]uint8

// String returns the version as "major.minor".
func (v Version) String() string { return fmt.Sprintf("%d.%d", v[0], v[1]) }

// Element is a tag/length/value element that a parser keeps as it found
// it, because it does not interpret it.
type Element struct {
	Tag   uint8
	Value []byte
}

// A Header is the signed-file header that .sgn files, trust lists
// (CTLFile.tlv, ITLFile.tlv) and encrypted configurations (.enc.sgn)
// share: who signed the file, with which hash, for which file name and
// when, and the signature. [File], ctl.File and cnfenc.File embed it, as
// x509.Certificate holds pkix.Name, so its fields and methods are theirs.
//
// The signature covers the whole file but the signature element: RawTBS,
// then what follows the header (Raw[HeaderLength:]).
type Header struct {
	Version       Version     // 1.0 (certutils), 1.1 (Cisco firmware), 1.2 (trust lists), 2.0 (encrypted files)
	HeaderLength  int         // offset of what follows the header (Parse only)
	SignerVersion *Version    // element 0x1C, nil if absent (certutils writes it; 1.1 enables EC keys on phones)
	SignerName    string      // subject of the signer, as the header spells it
	IssuerName    string      // issuer of the signer, as the header spells it
	SerialNumber  *big.Int    // serial number of the signer
	Hash          crypto.Hash // crypto.SHA1, crypto.SHA256 or crypto.SHA512
	Signature     []byte      // RSA PKCS#1 v1.5 signature
	Filename      string      // the name the file was signed for, "" if absent
	Timestamp     time.Time   // signing time, zero if absent
	Padding       int         // number of 0x0D padding bytes at the end of the header (Parse only)
	Extra         []Element   // header elements this package does not interpret, in order
	Raw           []byte      // the complete file (Parse only)
	RawTBS        []byte      // the signed part of the header, a copy; see SignedBytes (Parse only)

	raw     *rawHeader // as parsed: what is verified
	payload []byte     // what follows the header, as parsed
}

// ParseHeader parses the header at the start of data, a signed file of any
// kind; what follows it is data[h.HeaderLength:]. It checks the layout and
// verifies nothing; see [Header.CheckSignatureFrom]. The returned Header's
// byte slices alias data, except RawTBS, which is a copy of the header
// without the signature element.
//
// Errors wrap [ErrMalformed]; errors.As with a *[ParseError] gives the
// offset and tag.
func ParseHeader(data []byte) (*Header, error) {
	r, err := parseRaw(data)
	if err != nil {
		return nil, err
	}
	h := &Header{
		Version:      Version(r.Version),
		HeaderLength: r.Length,
		SignerName:   r.SignerName,
		IssuerName:   r.IssuerName,
		SerialNumber: new(big.Int).SetBytes(r.SerialNumber),
		Hash:         r.hash(),
		Signature:    r.Signature,
		Filename:     r.Filename,
		Timestamp:    r.Timestamp,
		Padding:      r.Padding,
		Extra:        r.Extra,
		Raw:          data,
		RawTBS:       r.TBS,
		raw:          r,
		payload:      data[r.Length:],
	}
	if r.SignerVersion != nil {
		v := Version(*r.SignerVersion)
		h.SignerVersion = &v
	}
	return h, nil
}

// SignedFilename returns h.Filename, the name the file was signed for:
// what a trust list checks against the name a phone asked for (see
// ctl.SignedFile).
func (h *Header) SignedFilename() string { return h.Filename }

// SignedBytes returns the bytes the signature covers: RawTBS followed by
// what follows the header, in a new slice. Verification does not need it
// (it hashes the two parts in place); it is for callers that hand the
// bytes to other tools.
func (h *Header) SignedBytes() []byte {
	out := make([]byte, 0, len(h.RawTBS)+len(h.payload))
	return append(append(out, h.RawTBS...), h.payload...)
}

var errNotParsed = errors.New("sgn: the header was not returned by a parse")

// CheckSignature verifies the file's signature with pub, which must be an
// *rsa.PublicKey. It does not check who the signer is; prefer
// [Header.CheckSignatureFrom]. It verifies the bytes the header was parsed
// from, whatever the fields say now.
func (h *Header) CheckSignature(pub crypto.PublicKey) error {
	if h.raw == nil {
		return errNotParsed
	}
	return h.raw.verify(h.payload, pub)
}

// NamesSigner reports whether the header names cert as its signer: the
// same serial number, subject and issuer. It verifies nothing; see
// [Header.CheckSignatureFrom].
func (h *Header) NamesSigner(cert *x509.Certificate) bool {
	return h.raw != nil && h.raw.checkSigner(cert) == nil
}

// CheckSignatureFrom checks that cert is the signer the header names (same
// serial number, subject and issuer) and that cert's key made the
// signature. It returns an error wrapping [ErrWrongSigner] or
// [ErrVerification] (or [ErrUnsupportedAlgorithm] for a non-RSA
// certificate). It does not check cert's validity period or chain: the
// caller decides whom to trust, usually from a trust list.
func (h *Header) CheckSignatureFrom(cert *x509.Certificate) error {
	if h.raw == nil {
		return errNotParsed
	}
	if err := h.raw.checkSigner(cert); err != nil {
		return err
	}
	return h.raw.verify(h.payload, cert.PublicKey)
}

// marshal re-encodes a parsed header from its fields, in the layout it
// was parsed with. The tests use it to check that parsing loses nothing.
func (h *Header) marshal() ([]byte, error) {
	if h.raw == nil {
		return nil, errNotParsed
	}
	r := *h.raw
	r.Version = h.Version
	r.SignerName, r.IssuerName, r.Filename = h.SignerName, h.IssuerName, h.Filename
	r.Signature, r.Timestamp, r.Padding, r.Extra = h.Signature, h.Timestamp, h.Padding, h.Extra
	if new(big.Int).SetBytes(r.SerialNumber).Cmp(h.SerialNumber) != 0 {
		r.SerialNumber = h.SerialNumber.Bytes()
	}
	r.HashCode, _ = signedfile.HashCode(h.Hash)
	if h.SignerVersion != nil {
		v := [2]uint8(*h.SignerVersion)
		r.SignerVersion = &v
	} else {
		r.SignerVersion = nil
	}
	raw, _, err := r.marshal()
	return raw, err
}
