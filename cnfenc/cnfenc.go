package cnfenc

import (
	"bytes"
	"crypto"
	"errors"

	"golang.org/x/crypto/cryptobyte"

	"github.com/ucsec/ucsec/internal/signedfile"
	"github.com/ucsec/ucsec/internal/tlv"
	"github.com/ucsec/ucsec/sgn"
)

// The errors of the signed-file header are package sgn's, and this
// package returns them for the encryption elements too: a malformed file
// wraps sgn.ErrMalformed (errors.As with a *sgn.ParseError gives the
// offset and tag), a signature that fails is sgn.ErrVerification, a
// certificate that is not the named signer wraps sgn.ErrWrongSigner, and
// a hash or cipher the format does not define wraps
// sgn.ErrUnsupportedAlgorithm. These are this package's own:
var (
	// ErrUnsupportedKey means a phone key the file's key cannot be wrapped
	// to: only RSA phone keys have a known variant.
	ErrUnsupportedKey = errors.New("cnfenc: unsupported phone key")

	// ErrDecryption means the file does not decrypt with the given key to
	// the plaintext its signer hashed: a wrong key, or a file altered after
	// signing. It is deliberately vague.
	ErrDecryption = errors.New("cnfenc: decryption failed")
)

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

// A File is a parsed encrypted configuration file: a signed-file header,
// whose Extra holds the encryption elements as stored, and the
// ciphertext. Decrypt verifies the signature and decrypts in one call.
//
// Parse works on a copy of its input: the File's byte slices alias that
// copy, and what Decrypt verifies and decrypts was taken from it by
// Parse, so changing the fields, or the bytes Parse was given, cannot make
// it decrypt anything but what the signer signed.
type File struct {
	sgn.Header

	IV              []byte      // element 0x13: the AES-CBC IV
	PadCount        int         // element 0x14: 0x0D bytes added to the plaintext
	KeyBits         int         // element 0x17: key size in bits (RSA modulus size, or 128 without a wrapped key)
	KeyAlgorithm    uint8       // element 0x18: KeyAES128
	WrappedKey      []byte      // element 0x19: the AES key encrypted to the phone's RSA key; nil in a manual-key file
	DigestHash      crypto.Hash // element 0x1A: hash of the plaintext digest
	PlaintextDigest []byte      // element 0x1B: digest of the plaintext, before padding
	Ciphertext      []byte      // what follows the header: Raw[HeaderLength:]

	enc encInfo // what is decrypted, taken at Parse
}

// encInfo is what Decrypt verifies and decrypts, taken by Parse.
type encInfo struct {
	signed     *sgn.Header // its own, not the File's: what is verified
	iv         [blockSize]byte
	pad        int
	keyAlg     uint8
	wrapped    []byte
	hash       crypto.Hash
	digest     []byte
	ciphertext []byte
}

// Parse parses an encrypted configuration file. It checks the layout and
// verifies nothing; see [File.Decrypt]. It copies data first: the File's
// byte slices alias the copy, and RawTBS is a copy of its own.
//
// Errors wrap sgn.ErrMalformed; errors.As with a *sgn.ParseError gives
// the offset and tag.
func Parse(data []byte) (*File, error) {
	data = bytes.Clone(data)
	h, err := sgn.ParseHeader(data)
	if err != nil {
		return nil, err
	}
	f := &File{Header: *h, Ciphertext: data[h.HeaderLength:]}
	if err := f.parseEncryption(); err != nil {
		return nil, err
	}
	f.enc = encInfo{
		signed:     h,
		pad:        f.PadCount,
		keyAlg:     f.KeyAlgorithm,
		wrapped:    bytes.Clone(f.WrappedKey),
		hash:       f.DigestHash,
		digest:     bytes.Clone(f.PlaintextDigest),
		ciphertext: f.Ciphertext,
	}
	copy(f.enc.iv[:], f.IV)
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
			return &sgn.ParseError{Offset: off, Msg: "unreadable header element"} // sgn.ParseHeader has checked this
		}
		switch tag {
		case tagEncryptionInfo, tagDigestHash, tagDigest:
		default:
			continue
		}
		if seen[tag] {
			return &sgn.ParseError{Offset: off, Tag: tag, Msg: "duplicate element"}
		}
		seen[tag] = true
		var err error
		switch tag {
		case tagEncryptionInfo:
			err = f.parseEncryptionInfo(off, v)
		case tagDigestHash:
			code, ok := tlv.ParseUint8(v)
			if f.DigestHash = signedfile.HashFromCode(code); !ok || f.DigestHash == 0 {
				err = &sgn.ParseError{Offset: off, Tag: tag, Msg: "unknown plaintext hash code"}
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
		return &sgn.ParseError{Offset: end, Tag: tagEncryptionInfo, Msg: "no encryption info: not an encrypted file"}
	case !seen[tagDigestHash] || !seen[tagDigest]:
		return &sgn.ParseError{Offset: end, Tag: tagDigest, Msg: "no plaintext digest"}
	case len(f.PlaintextDigest) != f.DigestHash.Size():
		return &sgn.ParseError{Offset: end, Tag: tagDigest, Msg: "plaintext digest size does not match its hash"}
	case len(f.Ciphertext) == 0 || len(f.Ciphertext)%blockSize != 0:
		// Together with PadCount <= 16, this keeps the padding inside
		// the plaintext.
		return &sgn.ParseError{Offset: end, Msg: "ciphertext is not a whole number of AES blocks"}
	}
	return nil
}

// parseEncryptionInfo reads the 0x10 container at file offset off: an IV
// info (0x11) and a key info (0x15) container, in either order.
func (f *File) parseEncryptionInfo(off int, v []byte) error {
	var seen [256]bool
	err := walk(off, v, func(off int, tag uint8, v []byte) error {
		if tag != tagIVInfo && tag != tagKeyInfo {
			return &sgn.ParseError{Offset: off, Tag: tag, Msg: "unknown element in the encryption info"}
		}
		if seen[tag] {
			return &sgn.ParseError{Offset: off, Tag: tag, Msg: "duplicate element"}
		}
		seen[tag] = true
		first, last := uint8(tagIVFlag), uint8(tagPadCount)
		if tag == tagKeyInfo {
			first, last = tagKeyFlag, tagWrappedKey
		}
		return walk(off, v, func(off int, tag uint8, v []byte) error {
			if tag < first || tag > last {
				return &sgn.ParseError{Offset: off, Tag: tag, Msg: "unknown element in the encryption info"}
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
			return &sgn.ParseError{Offset: off, Tag: req.tag, Msg: "encryption info has no " + req.name + " element"}
		}
	}
	return nil
}

// encryptionField decodes one element of the IV info or key info; seen
// records the tags read so far.
func (f *File) encryptionField(off int, tag uint8, v []byte, seen []bool) error {
	bad := func(msg string) error { return &sgn.ParseError{Offset: off, Tag: tag, Msg: msg} }
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
			return &sgn.ParseError{Offset: at, Tag: v[at-base], Msg: "element runs past the end of its container"}
		}
		if tag == tlv.TagPadding {
			return &sgn.ParseError{Offset: at, Tag: tag, Msg: "padding inside a container"}
		}
		if err := fn(at, tag, e); err != nil {
			return err
		}
	}
	return nil
}
