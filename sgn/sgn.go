package sgn

import (
	"crypto"
	"crypto/rsa"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/ucsec/ucsec/internal/signedfile"
)

// A File is a parsed signed file: a [Header] and the original file.
type File struct {
	Header
	Payload []byte // the original file: Raw[HeaderLength:]
}

// Parse parses a signed file. It checks the layout and verifies nothing;
// see [Header.CheckSignatureFrom]. The returned File's byte slices alias
// data, except RawTBS, which is a copy of the header without the signature.
//
// Errors wrap [ErrMalformed]; errors.As with a *[ParseError] gives the
// offset and tag.
func Parse(data []byte) (*File, error) {
	h, err := ParseHeader(data)
	if err != nil {
		return nil, err
	}
	return &File{Header: *h, Payload: data[h.HeaderLength:]}, nil
}

// SignOptions are the inputs of [Sign]. The fields marked Required must
// be set; for the others the zero value is the default.
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

	// SignerVersion, if set, writes the signer version element (0x1C),
	// as certutils does in trust lists.
	SignerVersion *Version

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
	h := &rawHeader{Version: opts.Version, HashCode: code, Filename: opts.Filename}
	if opts.Version == (Version{}) {
		h.Version = [2]uint8{1, 0}
	}
	if opts.SignerVersion != nil {
		v := [2]uint8(*opts.SignerVersion)
		h.SignerVersion = &v
	}
	if !opts.OmitTimestamp {
		now := time.Now
		if opts.Time != nil {
			now = opts.Time
		}
		h.Timestamp = now()
	}
	for _, e := range opts.Extra {
		if e.Tag <= tagTimestamp || e.Tag == tagSignerVersion {
			return nil, fmt.Errorf("sgn: extra element 0x%02X uses a tag of the header itself", e.Tag)
		}
		h.Extra = append(h.Extra, e)
	}
	if err := h.setSigner(signer); err != nil {
		return nil, err
	}
	return signRaw(rand, h, payload, priv)
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
	raw, err := f.Header.marshal()
	if err != nil {
		return nil, err
	}
	return append(raw, f.Payload...), nil
}
