package sgn

import (
	"crypto"
	"crypto/rsa"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"math/big"
	"strings"
	"time"

	"github.com/ucsec/ucsec/internal/signedfile"
)

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
	// use (a non-RSA key, an RSA size without a header code, a hash other
	// than SHA-1, SHA-256 or SHA-512).
	ErrUnsupportedAlgorithm = errors.New("sgn: unsupported algorithm")
)

// ParseError locates a malformed file. It unwraps to [ErrMalformed].
type ParseError struct {
	Offset int    // byte offset of the element at fault
	Tag    uint8  // its tag, or 0 when no tag could be read
	Msg    string // what is wrong
}

func (e *ParseError) Error() string {
	return fmt.Sprintf("sgn: malformed signed file at offset %d (tag 0x%02X): %s", e.Offset, e.Tag, e.Msg)
}

// Unwrap returns ErrMalformed.
func (e *ParseError) Unwrap() error { return ErrMalformed }

// mapErr turns an error from internal/signedfile into this package's errors.
func mapErr(err error) error {
	return signedfile.PublicErrors{
		Prefix:       "sgn: ",
		Verification: ErrVerification,
		Signer:       ErrWrongSigner,
		Unsupported:  ErrUnsupportedAlgorithm,
		ParseError: func(off int, tag uint8, msg string) error {
			return &ParseError{Offset: off, Tag: tag, Msg: msg}
		},
	}.Map(err)
}

// A File is a parsed signed file.
type File struct {
	Version      Version     // header version: 1.0 (certutils), 1.1 (Cisco firmware), 1.2 (trust lists)
	HeaderLength int         // offset of the payload
	SignerName   string      // subject of the signer, as the header spells it
	IssuerName   string      // issuer of the signer, as the header spells it
	SerialNumber *big.Int    // serial number of the signer
	Hash         crypto.Hash // crypto.SHA1, crypto.SHA256 or crypto.SHA512
	Signature    []byte      // RSA PKCS#1 v1.5 signature
	Filename     string      // the name the file was signed for, "" if absent
	Timestamp    time.Time   // signing time, zero if absent
	Padding      int         // number of 0x0D padding bytes at the end of the header
	Extra        []Element   // header elements this package does not interpret, in order
	Raw          []byte      // the complete file
	RawTBS       []byte      // the signed part of the header; see SignedBytes
	Payload      []byte      // the original file: Raw[HeaderLength:]
	header       *signedfile.Header
}

// Version is a header version, major then minor.
type Version [2]uint8

// String returns the version as "major.minor".
func (v Version) String() string { return fmt.Sprintf("%d.%d", v[0], v[1]) }

// Element is a header element that this package does not interpret.
type Element struct {
	Tag   uint8
	Value []byte
}

// Parse parses a signed file. It checks the layout and verifies nothing;
// see [File.CheckSignatureFrom]. The returned File's byte slices alias data,
// except RawTBS, which is a copy of the header without the signature.
//
// Errors wrap [ErrMalformed]; errors.As with a *[ParseError] gives the
// offset and tag.
func Parse(data []byte) (*File, error) {
	h, err := signedfile.Parse(data)
	if err != nil {
		return nil, mapErr(err)
	}
	f := &File{
		Version:      Version(h.Version),
		HeaderLength: h.Length,
		SignerName:   h.SignerName,
		IssuerName:   h.IssuerName,
		SerialNumber: new(big.Int).SetBytes(h.SerialNumber),
		Hash:         h.Hash(),
		Signature:    h.Signature,
		Filename:     h.Filename,
		Timestamp:    h.Timestamp,
		Padding:      h.Padding,
		Raw:          data,
		RawTBS:       h.TBS,
		Payload:      data[h.Length:],
		header:       h,
	}
	for _, e := range h.Extra {
		f.Extra = append(f.Extra, Element(e))
	}
	return f, nil
}

// SignedFilename returns f.Filename, the name the file was signed for (as
// used by ctl.SignedFile).
func (f *File) SignedFilename() string { return f.Filename }

// SignedBytes returns the bytes the signature covers: RawTBS followed by
// Payload, in a new slice. Verification does not need it (it hashes the two
// parts in place); it is for callers that hand the bytes to other tools.
func (f *File) SignedBytes() []byte {
	out := make([]byte, 0, len(f.RawTBS)+len(f.Payload))
	return append(append(out, f.RawTBS...), f.Payload...)
}

// CheckSignature verifies the file's signature with pub, which must be an
// *rsa.PublicKey. It does not check who the signer is; prefer
// [File.CheckSignatureFrom].
func (f *File) CheckSignature(pub crypto.PublicKey) error {
	if f.header == nil {
		return errors.New("sgn: File was not returned by Parse")
	}
	return mapErr(f.header.Verify(f.Payload, pub))
}

// NamesSigner reports whether the header names cert as its signer: the
// same serial number, subject and issuer. It verifies nothing; see
// [File.CheckSignatureFrom].
func (f *File) NamesSigner(cert *x509.Certificate) bool {
	return f.header != nil && f.header.CheckSigner(cert) == nil
}

// CheckSignatureFrom checks that cert is the signer the header names (same
// serial number, subject and issuer) and that cert's key made the signature.
// It returns an error wrapping [ErrWrongSigner] or [ErrVerification] (or
// [ErrUnsupportedAlgorithm] for a non-RSA certificate). It does not check
// cert's validity period or chain: the caller decides whom to trust, usually
// from a trust list.
func (f *File) CheckSignatureFrom(cert *x509.Certificate) error {
	if f.header == nil {
		return errors.New("sgn: File was not returned by Parse")
	}
	if err := f.header.CheckSigner(cert); err != nil {
		return mapErr(err)
	}
	return f.CheckSignature(cert.PublicKey)
}

// SignOptions are the inputs of [Sign].
type SignOptions struct {
	// Filename is the name the phone asks for, relative to the TFTP root
	// and including the .sgn suffix (for example "SEP001122334455.cnf.xml.sgn"
	// or "Desktops/320x196x4/List.xml.sgn"). Required.
	Filename string

	// Hash is crypto.SHA1 (CUCM's default), crypto.SHA512 (CUCM's SHA-512
	// mode) or crypto.SHA256 (defined by the format, accepted by no known
	// phone). Required: there is no default.
	Hash crypto.Hash

	// Version is the header version; zero means 1.0.
	Version Version

	// Time returns the signing time for the timestamp element. If nil,
	// time.Now is used.
	Time func() time.Time

	// OmitTimestamp leaves the timestamp element out, as Cisco firmware
	// files do.
	OmitTimestamp bool

	// Extra lists header elements to write after the timestamp, in order,
	// such as the encryption elements of an .enc.sgn file (package cnfenc
	// writes those). Their tags must not be tags the header itself uses
	// (0x01 to 0x0F and 0x1C). The signature covers them.
	Extra []Element
}

// Sign signs payload and returns the signed file. The header names signer
// (which must hold the public key of priv) and is signed by priv with RSA
// PKCS#1 v1.5 and opts.Hash. rand is passed to priv.Sign; PKCS#1 v1.5
// signatures are deterministic, so the same inputs give the same bytes.
//
// If priv implements [crypto.MessageSigner] (some KMS keys), it is given the
// signed bytes rather than their digest.
func Sign(rand io.Reader, payload []byte, signer *x509.Certificate, priv crypto.Signer, opts SignOptions) ([]byte, error) {
	if opts.Filename == "" {
		return nil, errors.New("sgn: SignOptions.Filename is required")
	}
	code, ok := signedfile.HashCode(opts.Hash)
	if !ok {
		return nil, fmt.Errorf("%w: hash %v (use SHA-1, SHA-256 or SHA-512)", ErrUnsupportedAlgorithm, opts.Hash)
	}
	if priv == nil || signer == nil {
		return nil, errors.New("sgn: signer certificate and key are required")
	}
	certPub, ok := signer.PublicKey.(*rsa.PublicKey)
	if !ok {
		return nil, fmt.Errorf("%w: signer certificate key must be RSA, got %T", ErrUnsupportedAlgorithm, signer.PublicKey)
	}
	if !certPub.Equal(priv.Public()) {
		return nil, errors.New("sgn: private key does not match the signer certificate")
	}
	h := &signedfile.Header{Version: opts.Version, HashCode: code, Filename: opts.Filename}
	if opts.Version == (Version{}) {
		h.Version = [2]uint8{1, 0}
	}
	if !opts.OmitTimestamp {
		now := time.Now
		if opts.Time != nil {
			now = opts.Time
		}
		h.Timestamp = now()
	}
	for _, e := range opts.Extra {
		if e.Tag <= signedfile.TagTimestamp || e.Tag == signedfile.TagSignerVersion {
			return nil, fmt.Errorf("sgn: extra element 0x%02X uses a tag of the header itself", e.Tag)
		}
		h.Extra = append(h.Extra, signedfile.Element(e))
	}
	if err := h.SetSigner(signer); err != nil {
		return nil, mapErr(err)
	}
	out, err := signedfile.Sign(rand, h, payload, priv)
	return out, mapErr(err)
}

// Strip returns the original file inside a signed file, after checking that
// the header is well formed. It verifies nothing. The result aliases data.
func Strip(data []byte) ([]byte, error) {
	f, err := Parse(data)
	if err != nil {
		return nil, err
	}
	return f.Payload, nil
}

// StrippedName returns the conventional name of a stripped file: name
// without its last suffix if that is .sgn or .sha512 (as certutils' stripsgn
// does), otherwise name with ".stripped" appended.
func StrippedName(name string) string {
	for _, suffix := range []string{".sgn", ".sha512"} {
		if s, ok := strings.CutSuffix(name, suffix); ok && s != "" {
			return s
		}
	}
	return name + ".stripped"
}

// marshal re-encodes a parsed file from its fields. It is how the tests
// check that Parse loses nothing.
func (f *File) marshal() ([]byte, error) {
	h := *f.header
	h.Version = f.Version
	h.SignerName, h.IssuerName, h.Filename = f.SignerName, f.IssuerName, f.Filename
	h.Signature, h.Timestamp, h.Padding = f.Signature, f.Timestamp, f.Padding
	if new(big.Int).SetBytes(h.SerialNumber).Cmp(f.SerialNumber) != 0 {
		h.SerialNumber = f.SerialNumber.Bytes()
	}
	code, _ := signedfile.HashCode(f.Hash)
	h.HashCode = code
	raw, _, err := h.Marshal()
	if err != nil {
		return nil, mapErr(err)
	}
	return append(raw, f.Payload...), nil
}
