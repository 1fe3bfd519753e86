package cnfenc

import (
	"bytes"
	"crypto"
	"crypto/x509"
	"errors"
	"fmt"
	"strings"

	"github.com/ucsec/ucsec/internal/signedfile"
	"github.com/ucsec/ucsec/internal/tlv"
	"github.com/ucsec/ucsec/sgn"
	"golang.org/x/crypto/cryptobyte"
)

var (
	// ErrMalformed is wrapped by every error about the layout of a file.
	// Use errors.As with a *ParseError for the offset and tag.
	ErrMalformed = errors.New("cnfenc: malformed encrypted file")

	// ErrVerification means the signature does not verify. It is
	// deliberately vague.
	ErrVerification = errors.New("cnfenc: signature verification failed")

	// ErrWrongSigner means the certificate given to CheckSignatureFrom is
	// not the signer the header names. Errors that wrap it also wrap
	// sgn.ErrWrongSigner, so ctl.File.VerifySignedFile recognises them.
	ErrWrongSigner = errors.New("cnfenc: certificate is not the signer named in the file")

	// ErrUnsupportedAlgorithm means a hash, signature key or cipher that
	// the format does not define or this package does not implement.
	ErrUnsupportedAlgorithm = errors.New("cnfenc: unsupported algorithm")

	// ErrUnsupportedKey means a phone key the file's key cannot be wrapped
	// to: only RSA phone keys have a known variant.
	ErrUnsupportedKey = errors.New("cnfenc: unsupported phone key")

	// ErrNotVerified means Decrypt was called before the file's signature
	// was verified.
	ErrNotVerified = errors.New("cnfenc: signature not verified: call CheckSignatureFrom first")

	// ErrDecryption means the file does not decrypt with the given key to
	// the plaintext its signer hashed: a wrong key, or a file altered after
	// signing. It is deliberately vague.
	ErrDecryption = errors.New("cnfenc: decryption failed")
)

// ParseError locates a malformed file. It unwraps to [ErrMalformed].
type ParseError struct {
	Offset int    // byte offset of the element at fault
	Tag    uint8  // its tag, or 0 when no tag could be read
	Msg    string // what is wrong
}

func (e *ParseError) Error() string {
	return fmt.Sprintf("cnfenc: malformed encrypted file at offset %d (tag 0x%02X): %s", e.Offset, e.Tag, e.Msg)
}

// Unwrap returns ErrMalformed.
func (e *ParseError) Unwrap() error { return ErrMalformed }

// Encryption element tags, as usecallmanagernz/certutils (enccnf) writes
// and reads them; the quoted names are certutils' own.
const (
	tagEncryptionInfo = 0x10
	tagIVInfo         = 0x11
	tagIVFlag         = 0x12 // "UNKNOWN1", written as 0
	tagIV             = 0x13
	tagPadCount       = 0x14
	tagKeyInfo        = 0x15
	tagKeyFlag        = 0x16 // "UNKNOWN2", written as 0
	tagKeyBits        = 0x17
	tagKeyAlgorithm   = 0x18
	tagWrappedKey     = 0x19
	tagDigestHash     = 0x1A
	tagDigest         = 0x1B
)

// KeyAES128 is the key algorithm code (element 0x18) of AES-128-CBC, the
// only one known.
const KeyAES128 = 1

const (
	blockSize = 16 // AES block and IV size
	keySize   = 16 // AES-128
)

// A File is a parsed encrypted configuration file.
//
// Its exported fields describe the file as parsed. Verification and
// decryption use a private copy of the file taken by Parse, so changing
// the fields, or the bytes Parse was given, cannot change what is verified
// or decrypted.
type File struct {
	// File is the signed-file header (signer, hash, signature, file name,
	// timestamp). Its Payload is the ciphertext, and its Extra holds the
	// encryption elements as stored. Check the signature with this File's
	// CheckSignatureFrom, not the embedded one's, which does not allow
	// Decrypt.
	sgn.File

	IV              []byte      // element 0x13: the AES-CBC IV
	PadCount        int         // element 0x14: 0x0D bytes added to the plaintext
	KeyBits         int         // element 0x17: key size in bits (RSA modulus size, or 128 without a wrapped key)
	KeyAlgorithm    uint8       // element 0x18: KeyAES128
	WrappedKey      []byte      // element 0x19: the AES key encrypted to the phone's RSA key; nil in a manual-key file
	DigestHash      crypto.Hash // element 0x1A: hash of the plaintext digest
	PlaintextDigest []byte      // element 0x1B: digest of the plaintext, before padding

	signed   *sgn.File // the private copy: what is verified
	enc      encInfo   // its encryption elements: what is decrypted
	verified bool      // signed's signature has been checked
}

// encInfo is what decryption uses, taken from the private copy.
type encInfo struct {
	iv         [blockSize]byte
	pad        int
	keyAlg     uint8
	wrapped    []byte
	hash       crypto.Hash
	digest     []byte
	ciphertext []byte
}

// Parse parses an encrypted configuration file. It checks the layout and
// verifies nothing; see [File.CheckSignatureFrom] and [File.Decrypt]. The
// returned File's exported byte slices alias data, except RawTBS; it also
// keeps a private copy of data.
//
// Errors wrap [ErrMalformed]; errors.As with a *[ParseError] gives the
// offset and tag.
func Parse(data []byte) (*File, error) {
	signed, err := sgn.Parse(bytes.Clone(data))
	if err != nil {
		return nil, mapErr(err)
	}
	priv := &File{File: *signed}
	if err := priv.parseEncryption(); err != nil {
		return nil, err
	}
	view, err := sgn.Parse(data)
	if err != nil {
		return nil, mapErr(err)
	}
	f := &File{File: *view, signed: signed}
	if err := f.parseEncryption(); err != nil {
		return nil, err
	}
	f.enc = encInfo{
		pad:        priv.PadCount,
		keyAlg:     priv.KeyAlgorithm,
		wrapped:    priv.WrappedKey,
		hash:       priv.DigestHash,
		digest:     priv.PlaintextDigest,
		ciphertext: priv.Payload,
	}
	copy(f.enc.iv[:], priv.IV)
	return f, nil
}

// parseEncryption reads the encryption elements from the top level of the
// header.
func (f *File) parseEncryption() error {
	header := f.Raw[:f.HeaderLength]
	s := cryptobyte.String(header)
	var seen [256]bool
	for !s.Empty() {
		off := len(header) - len(s)
		var tag uint8
		var v cryptobyte.String
		if !tlv.ReadElement(&s, &tag, &v) {
			return &ParseError{Offset: off, Msg: "unreadable header element"} // sgn.Parse has checked this
		}
		switch tag {
		case tagEncryptionInfo, tagDigestHash, tagDigest:
		default:
			continue
		}
		if seen[tag] {
			return &ParseError{Offset: off, Tag: tag, Msg: "duplicate element"}
		}
		seen[tag] = true
		var err error
		switch tag {
		case tagEncryptionInfo:
			err = f.parseEncryptionInfo(off, v)
		case tagDigestHash:
			code, ok := tlv.ParseUint8(v)
			if f.DigestHash = signedfile.HashFromCode(code); !ok || f.DigestHash == 0 {
				err = &ParseError{Offset: off, Tag: tag, Msg: "unknown plaintext hash code"}
			}
		case tagDigest:
			f.PlaintextDigest = v[:len(v):len(v)]
		}
		if err != nil {
			return err
		}
	}
	end := f.HeaderLength
	switch {
	case !seen[tagEncryptionInfo]:
		return &ParseError{Offset: end, Tag: tagEncryptionInfo, Msg: "no encryption info: not an encrypted file"}
	case !seen[tagDigestHash] || !seen[tagDigest]:
		return &ParseError{Offset: end, Tag: tagDigest, Msg: "no plaintext digest"}
	case len(f.PlaintextDigest) != f.DigestHash.Size():
		return &ParseError{Offset: end, Tag: tagDigest, Msg: "plaintext digest size does not match its hash"}
	case len(f.Payload) == 0 || len(f.Payload)%blockSize != 0:
		// Together with PadCount <= 16, this keeps the padding inside
		// the plaintext.
		return &ParseError{Offset: end, Msg: "ciphertext is not a whole number of AES blocks"}
	}
	return nil
}

// parseEncryptionInfo reads the 0x10 container at file offset off: an IV
// info (0x11) and a key info (0x15) container, in either order.
func (f *File) parseEncryptionInfo(off int, v []byte) error {
	var seen [256]bool
	err := walk(off, v, func(off int, tag uint8, v []byte) error {
		if tag != tagIVInfo && tag != tagKeyInfo {
			return &ParseError{Offset: off, Tag: tag, Msg: "unknown element in the encryption info"}
		}
		if seen[tag] {
			return &ParseError{Offset: off, Tag: tag, Msg: "duplicate element"}
		}
		seen[tag] = true
		first, last := uint8(tagIVFlag), uint8(tagPadCount)
		if tag == tagKeyInfo {
			first, last = tagKeyFlag, tagWrappedKey
		}
		return walk(off, v, func(off int, tag uint8, v []byte) error {
			if tag < first || tag > last {
				return &ParseError{Offset: off, Tag: tag, Msg: "unknown element in the encryption info"}
			}
			return f.encryptionField(off, tag, v, seen[:])
		})
	})
	if err != nil {
		return err
	}
	for _, req := range []struct {
		tag  uint8
		name string
	}{
		{tagIVInfo, "IV info"}, {tagIV, "IV"}, {tagPadCount, "pad count"},
		{tagKeyInfo, "key info"}, {tagKeyAlgorithm, "key algorithm"},
	} {
		if !seen[req.tag] {
			return &ParseError{Offset: off, Tag: req.tag, Msg: "encryption info has no " + req.name + " element"}
		}
	}
	return nil
}

// encryptionField decodes one element of the IV info or key info; seen
// records the tags read so far.
func (f *File) encryptionField(off int, tag uint8, v []byte, seen []bool) error {
	bad := func(msg string) error { return &ParseError{Offset: off, Tag: tag, Msg: msg} }
	if seen[tag] {
		return bad("duplicate element")
	}
	seen[tag] = true
	switch tag {
	case tagIVFlag, tagKeyFlag:
		if len(v) != 1 {
			return bad("element is not 1 byte")
		}
	case tagIV:
		if len(v) != blockSize {
			return bad("IV is not 16 bytes")
		}
		f.IV = v[:len(v):len(v)]
	case tagPadCount:
		n, ok := tlv.ParseUint16(v)
		if !ok {
			return bad("pad count is not 2 bytes")
		}
		if n > blockSize {
			return bad("pad count larger than an AES block")
		}
		f.PadCount = int(n)
	case tagKeyBits:
		n, ok := tlv.ParseUint16(v)
		if !ok {
			return bad("key size is not 2 bytes")
		}
		f.KeyBits = int(n)
	case tagKeyAlgorithm:
		var ok bool
		if f.KeyAlgorithm, ok = tlv.ParseUint8(v); !ok {
			return bad("key algorithm is not 1 byte")
		}
	case tagWrappedKey:
		if len(v) == 0 {
			return bad("empty wrapped key")
		}
		f.WrappedKey = v[:len(v):len(v)]
	}
	return nil
}

// walk calls fn for each element of the container value v, whose value
// starts at file offset off+3.
func walk(off int, v []byte, fn func(off int, tag uint8, v []byte) error) error {
	base := off + 3
	s := cryptobyte.String(v)
	for !s.Empty() {
		at := base + len(v) - len(s)
		var tag uint8
		var e cryptobyte.String
		if !tlv.ReadElement(&s, &tag, &e) {
			return &ParseError{Offset: at, Tag: v[at-base], Msg: "element runs past the end of its container"}
		}
		if tag == tlv.TagPadding {
			return &ParseError{Offset: at, Tag: tag, Msg: "padding inside a container"}
		}
		if err := fn(at, tag, e); err != nil {
			return err
		}
	}
	return nil
}

// CheckSignature verifies the file's signature with pub, which must be an
// *rsa.PublicKey the caller trusts as a file signer, and on success allows
// [File.Decrypt]. It does not check who the header names as the signer;
// prefer [File.CheckSignatureFrom].
func (f *File) CheckSignature(pub crypto.PublicKey) error {
	return f.check(func(s *sgn.File) error { return s.CheckSignature(pub) })
}

// NamesSigner reports whether the header names cert as its signer: the
// same serial number, subject and issuer. It verifies nothing and does not
// allow Decrypt.
func (f *File) NamesSigner(cert *x509.Certificate) bool {
	return f.signed != nil && f.signed.NamesSigner(cert)
}

// CheckSignatureFrom checks that cert is the signer the header names (same
// serial number, subject and issuer) and that cert's key made the
// signature, and on success allows [File.Decrypt]. It returns an error
// wrapping [ErrWrongSigner] or [ErrVerification] (or
// [ErrUnsupportedAlgorithm]). It does not check cert's validity or chain:
// call it only with a certificate you trust to sign files, usually through
// a trust list: ctl.File.VerifySignedFile and ctl.Phone.CheckSignedFile
// call it with the TFTP and CCM+TFTP certificates of the list, and with
// no other.
func (f *File) CheckSignatureFrom(cert *x509.Certificate) error {
	return f.check(func(s *sgn.File) error { return s.CheckSignatureFrom(cert) })
}

// check runs verify on the private copy and, if it succeeds, allows
// Decrypt.
func (f *File) check(verify func(*sgn.File) error) error {
	if f.signed == nil {
		return errors.New("cnfenc: File was not returned by Parse")
	}
	if err := verify(f.signed); err != nil {
		return mapErr(err)
	}
	f.verified = true
	return nil
}

// mappedError is an error of package sgn as this package reports it: with
// this package's prefix, wrapping both this package's sentinel and the
// original error.
type mappedError struct {
	msg  string
	errs []error
}

func (e *mappedError) Error() string   { return e.msg }
func (e *mappedError) Unwrap() []error { return e.errs }

// mapErr turns an error from package sgn into this package's errors.
func mapErr(err error) error {
	if err == nil {
		return nil
	}
	if pe, ok := errors.AsType[*sgn.ParseError](err); ok {
		return &ParseError{Offset: pe.Offset, Tag: pe.Tag, Msg: pe.Msg}
	}
	for _, m := range []struct{ from, to error }{
		{sgn.ErrVerification, ErrVerification},
		{sgn.ErrWrongSigner, ErrWrongSigner},
		{sgn.ErrUnsupportedAlgorithm, ErrUnsupportedAlgorithm},
	} {
		if errors.Is(err, m.from) {
			detail := strings.TrimPrefix(err.Error(), m.from.Error())
			return &mappedError{msg: m.to.Error() + detail, errs: []error{m.to, err}}
		}
	}
	return &mappedError{msg: "cnfenc: " + strings.TrimPrefix(err.Error(), "sgn: "), errs: []error{err}}
}
