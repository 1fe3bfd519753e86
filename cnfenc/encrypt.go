package cnfenc

import (
	"bytes"
	"crypto"
	"crypto/aes"
	"crypto/cipher"
	"crypto/ecdh"
	"crypto/ecdsa"
	"crypto/ed25519"
	cryptorand "crypto/rand"
	"crypto/rsa"
	"crypto/subtle"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"time"

	"golang.org/x/crypto/cryptobyte"

	"github.com/ucsec/ucsec/internal/signedfile"
	"github.com/ucsec/ucsec/internal/tlv"
	"github.com/ucsec/ucsec/sgn"
)

// version is the header version Encrypt writes, as certutils does.
var version = sgn.Version{2, 0}

// EncryptOptions are the inputs of [Encrypt] and [EncryptManualKey]. The
// fields marked Required must be set; for the others the zero value is the
// default.
type EncryptOptions struct {
	// DeviceName is the phone's device name, such as "SEP001122334455".
	// The file name is DeviceName + ".cnf.xml.enc.sgn" unless Filename is
	// set. Required unless Filename is set.
	DeviceName string

	// Filename is the name the phone asks for, such as
	// "SEP001122334455.cnf.xml.enc.sgn". When set, DeviceName is not
	// used.
	Filename string

	// Hash signs the file and digests the plaintext: crypto.SHA1 (CUCM's
	// default), crypto.SHA512 (CUCM's SHA-512 mode) or crypto.SHA256
	// (defined by the format, accepted by no known phone). Required.
	Hash crypto.Hash

	// Time returns the signing time for the timestamp element. If nil,
	// time.Now is used.
	Time func() time.Time
}

// filename returns the file name to sign for.
func (o *EncryptOptions) filename() (string, error) {
	switch {
	case o.Filename != "":
		return o.Filename, nil
	case o.DeviceName == "":
		return "", errors.New("cnfenc: EncryptOptions needs a DeviceName or a Filename")
	}
	for _, c := range []byte(o.DeviceName) {
		if !('A' <= c && c <= 'Z' || 'a' <= c && c <= 'z' || '0' <= c && c <= '9' || c == '-' || c == '_') {
			return "", fmt.Errorf("cnfenc: device name %q holds a character other than letters, digits, '-' and '_'", o.DeviceName)
		}
	}
	return EncryptedName(o.DeviceName), nil
}

// EncryptedName returns the name of a device's encrypted configuration:
// device + ".cnf.xml.enc.sgn".
func EncryptedName(device string) string { return device + ".cnf.xml.enc.sgn" }

// ShortName returns the name of a device's short signed configuration:
// device + ".cnf.xml.sgn".
func ShortName(device string) string { return device + ".cnf.xml.sgn" }

// Encrypt encrypts config to the phone whose certificate (LSC or MIC) is
// phone and signs the result as signer with priv (the TFTP key). It draws
// a fresh AES-128 key and IV from rand (nil means crypto/rand.Reader) for
// every call, wraps the key to the phone's RSA key with RSAES-PKCS1-v1_5
// and returns the .enc.sgn file.
//
// A phone certificate with an EC key gives [ErrUnsupportedKey]: no
// encrypted-configuration variant is known for it.
func Encrypt(rand io.Reader, config []byte, phone *x509.Certificate, signer *x509.Certificate, priv crypto.Signer, opts EncryptOptions) ([]byte, error) {
	if phone == nil {
		return nil, errors.New("cnfenc: no phone certificate")
	}
	pub, err := phoneKey(phone.PublicKey)
	if err != nil {
		return nil, err
	}
	var key [keySize]byte
	defer clear(key[:])
	if _, err := io.ReadFull(randOrDefault(rand), key[:]); err != nil {
		return nil, fmt.Errorf("cnfenc: reading random key: %w", err)
	}
	//lint:ignore SA1019 the .enc.sgn format defines PKCS#1 v1.5 key transport; phones support nothing else.
	wrapped, err := rsa.EncryptPKCS1v15(cryptorand.Reader, pub, key[:])
	if err != nil {
		return nil, fmt.Errorf("cnfenc: wrapping the key to the phone: %w", err)
	}
	return seal(rand, config, key[:], wrapped, pub.N.BitLen(), signer, priv, opts)
}

// EncryptManualKey encrypts config with a key that is typed into the phone
// (Settings > Security Configuration > Set Cfg Encrypt Key) instead of one
// wrapped to the phone's certificate, and signs the result as signer with
// priv. The layout of such files is inferred, not confirmed against a
// CUCM-made file (see the package documentation): use it only with phones
// you have tested.
func EncryptManualKey(rand io.Reader, config []byte, key ManualKey, signer *x509.Certificate, priv crypto.Signer, opts EncryptOptions) ([]byte, error) {
	if key.IsZero() {
		return nil, errNoManualKey
	}
	return seal(rand, config, key.k[:], nil, 8*keySize, signer, priv, opts)
}

// seal pads and encrypts config with key and a fresh IV and signs the file.
func seal(rand io.Reader, config, key, wrapped []byte, keyBits int, signer *x509.Certificate, priv crypto.Signer, opts EncryptOptions) ([]byte, error) {
	name, err := opts.filename()
	if err != nil {
		return nil, err
	}
	code, ok := signedfile.HashCode(opts.Hash)
	if !ok || !opts.Hash.Available() {
		return nil, fmt.Errorf("%w: hash %v (use SHA-1, SHA-512 or SHA-256)", sgn.ErrUnsupportedAlgorithm, opts.Hash)
	}
	var iv [blockSize]byte
	if _, err := io.ReadFull(randOrDefault(rand), iv[:]); err != nil {
		return nil, fmt.Errorf("cnfenc: reading random IV: %w", err)
	}
	ciphertext, pad, digest, err := encryptBody(key, iv[:], config, opts.Hash)
	if err != nil {
		return nil, err
	}
	info, err := encryptionInfo(iv[:], pad, keyBits, wrapped)
	if err != nil {
		return nil, err
	}
	out, err := sgn.Sign(rand, ciphertext, signer, priv, sgn.SignOptions{
		Filename: name,
		Hash:     opts.Hash,
		Version:  version,
		Time:     opts.Time,
		Extra: []sgn.Element{
			{Tag: tagEncryptionInfo, Value: info},
			{Tag: tagDigestHash, Value: []byte{code}},
			{Tag: tagDigest, Value: digest},
		},
	})
	return out, err
}

// encryptBody pads plaintext with 1 to 16 bytes of 0x0D, encrypts it with
// AES-128-CBC and returns the ciphertext, the pad count and the digest of
// the plaintext.
func encryptBody(key, iv, plaintext []byte, hash crypto.Hash) (ciphertext []byte, pad int, digest []byte, err error) {
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, 0, nil, fmt.Errorf("cnfenc: %w", err)
	}
	pad = blockSize - len(plaintext)%blockSize
	ciphertext = make([]byte, len(plaintext)+pad)
	copy(ciphertext, plaintext)
	for i := len(plaintext); i < len(ciphertext); i++ {
		ciphertext[i] = tlv.TagPadding // '\r', the same byte as header padding
	}
	cipher.NewCBCEncrypter(block, iv).CryptBlocks(ciphertext, ciphertext)
	d := hash.New()
	d.Write(plaintext)
	return ciphertext, pad, d.Sum(nil), nil
}

// encryptionInfo builds the value of the 0x10 element.
func encryptionInfo(iv []byte, pad, keyBits int, wrapped []byte) ([]byte, error) {
	b := cryptobyte.NewBuilder(make([]byte, 0, 48+len(wrapped)))
	tlv.AddElement(b, tagIVInfo, func(b *cryptobyte.Builder) {
		tlv.AddUint8(b, tagIVFlag, 0)
		tlv.AddBytes(b, tagIV, iv)
		tlv.AddUint16(b, tagPadCount, uint16(pad))
	})
	tlv.AddElement(b, tagKeyInfo, func(b *cryptobyte.Builder) {
		tlv.AddUint8(b, tagKeyFlag, 0)
		tlv.AddUint16(b, tagKeyBits, uint16(keyBits))
		tlv.AddUint8(b, tagKeyAlgorithm, KeyAES128)
		if wrapped != nil {
			tlv.AddBytes(b, tagWrappedKey, wrapped)
		}
	})
	v, err := b.Bytes()
	if err != nil {
		return nil, fmt.Errorf("cnfenc: encryption info: %w", err)
	}
	return v, nil
}

// publicKey returns key.Public(), or nil for a nil key or one whose Public
// panics (a typed nil *rsa.PrivateKey, say).
func publicKey(key crypto.Decrypter) (pub crypto.PublicKey) {
	if key == nil {
		return nil
	}
	defer func() {
		if recover() != nil {
			pub = nil
		}
	}()
	return key.Public()
}

// phoneKey returns the RSA key of a phone certificate or key.
func phoneKey(pub crypto.PublicKey) (*rsa.PublicKey, error) {
	switch k := pub.(type) {
	case *rsa.PublicKey:
		if k == nil || k.N == nil {
			return nil, errors.New("cnfenc: no phone key")
		}
		return k, nil
	case nil:
		return nil, errors.New("cnfenc: no phone key")
	case *ecdsa.PublicKey, *ecdh.PublicKey, ed25519.PublicKey:
		return nil, fmt.Errorf("%w: the phone key is %T; CUCM encrypts configuration files only to RSA phone keys, and no variant for EC keys is known", ErrUnsupportedKey, pub)
	}
	return nil, fmt.Errorf("%w: the phone key is %T, not RSA", ErrUnsupportedKey, pub)
}

func randOrDefault(r io.Reader) io.Reader {
	if r == nil {
		return cryptorand.Reader
	}
	return r
}

// Decrypt parses data and decrypts it as [File.Decrypt] does: signer must
// have signed it, and key is the phone's private key.
func Decrypt(data []byte, signer *x509.Certificate, key crypto.Decrypter) ([]byte, error) {
	f, err := Parse(data)
	if err != nil {
		return nil, err
	}
	return f.Decrypt(signer, key)
}

// Decrypt checks that signer signed the file (as
// [sgn.Header.CheckSignatureFrom] does), then unwraps the file's AES key
// with key, the private key of the phone certificate the file was
// encrypted to, decrypts the configuration, strips the padding and checks
// the plaintext against the signed digest. Nothing is decrypted unless the
// signature verifies. signer is the certificate the caller trusts to sign
// files: the certificate of the trust-list record that
// ctl.File.VerifySignedFile or ctl.Phone.CheckSignedFile returns. key may
// be a key in a token: it is used only through crypto.Decrypter, with
// rsa.PKCS1v15DecryptOptions.
//
// A signature that fails gives the errors of sgn.Header.CheckSignatureFrom;
// decryption failures are [ErrDecryption]; a file made with a manual key,
// or a key that is not RSA, give other errors that say so.
func (f *File) Decrypt(signer *x509.Certificate, key crypto.Decrypter) ([]byte, error) {
	if err := f.enc.checkSignatureFrom(signer); err != nil {
		return nil, err
	}
	return f.decrypt(key)
}

// decrypt is Decrypt after the signature check.
func (f *File) decrypt(key crypto.Decrypter) ([]byte, error) {
	if err := f.enc.supported(); err != nil {
		return nil, err
	}
	if f.enc.wrapped == nil {
		return nil, errors.New("cnfenc: the file holds no wrapped key: it was encrypted with a manual key (use DecryptManualKey)")
	}
	pub, err := phoneKey(publicKey(key))
	if err != nil {
		return nil, err
	}
	if len(f.enc.wrapped) != pub.Size() {
		return nil, fmt.Errorf("%w: the file's key is wrapped to a %d-bit key, this key has %d bits", ErrDecryption, 8*len(f.enc.wrapped), pub.N.BitLen())
	}
	// With a session key length, a padding failure gives a random key
	// rather than an error, in constant time; the digest check below then
	// fails like any other wrong key.
	//lint:ignore SA1019 the .enc.sgn format defines PKCS#1 v1.5 key transport; phones support nothing else.
	opts := &rsa.PKCS1v15DecryptOptions{SessionKeyLen: keySize}
	aesKey, err := key.Decrypt(cryptorand.Reader, f.enc.wrapped, opts)
	if err != nil {
		return nil, fmt.Errorf("%w: the phone key could not unwrap the file key: %w", ErrDecryption, err)
	}
	defer clear(aesKey)
	if len(aesKey) != keySize {
		return nil, ErrDecryption
	}
	return f.enc.open(aesKey)
}

// DecryptManualKey decrypts a file encrypted with [EncryptManualKey] as
// [File.Decrypt] does, after checking that signer signed it, and checks
// the plaintext against the signed digest.
func (f *File) DecryptManualKey(signer *x509.Certificate, key ManualKey) ([]byte, error) {
	if err := f.enc.checkSignatureFrom(signer); err != nil {
		return nil, err
	}
	return f.decryptManualKey(key)
}

// decryptManualKey is DecryptManualKey after the signature check.
func (f *File) decryptManualKey(key ManualKey) ([]byte, error) {
	if err := f.enc.supported(); err != nil {
		return nil, err
	}
	if f.enc.wrapped != nil {
		return nil, errors.New("cnfenc: the file's key is wrapped to a phone certificate (use Decrypt)")
	}
	if key.IsZero() {
		return nil, errNoManualKey
	}
	return f.enc.open(key.k[:])
}

// checkSignatureFrom checks the signature of the header Parse read.
func (e *encInfo) checkSignatureFrom(signer *x509.Certificate) error {
	if e.signed == nil {
		return errors.New("cnfenc: File was not returned by Parse")
	}
	return e.signed.CheckSignatureFrom(signer)
}

// supported reports a cipher or hash this package cannot decrypt with.
func (e *encInfo) supported() error {
	switch {
	case e.keyAlg != KeyAES128:
		return fmt.Errorf("%w: key algorithm %d (only 1, AES-128, is known)", sgn.ErrUnsupportedAlgorithm, e.keyAlg)
	case !e.hash.Available():
		return fmt.Errorf("%w: plaintext hash %v", sgn.ErrUnsupportedAlgorithm, e.hash)
	}
	return nil
}

// open decrypts the ciphertext with key, strips the padding and checks the
// digest. The plaintext is returned only if the digest matches.
func (e *encInfo) open(key []byte) ([]byte, error) {
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, ErrDecryption
	}
	buf := make([]byte, len(e.ciphertext))
	cipher.NewCBCDecrypter(block, e.iv[:]).CryptBlocks(buf, e.ciphertext)
	n := len(buf) - e.pad // Parse checked pad <= 16 <= len(buf)
	plaintext := buf[:n:n]
	d := e.hash.New()
	d.Write(plaintext)
	if subtle.ConstantTimeCompare(d.Sum(nil), e.digest) != 1 {
		clear(buf)
		return nil, ErrDecryption
	}
	return plaintext, nil
}

// ManualKey is a 128-bit configuration encryption key that an
// administrator types into a phone, for [EncryptManualKey]. Its zero value
// is "no key". Printing it with any fmt verb, or marshalling it, shows
// "ManualKey(redacted)"; use [ManualKey.Bytes] to get the key.
type ManualKey struct {
	k [keySize]byte
}

var errNoManualKey = errors.New("cnfenc: the manual key is all zeros, which means no key")

// ParseManualKey parses a manual key written as 32 hexadecimal digits, as
// CUCM and the phone show it. All zeros means "no key" and is an error.
func ParseManualKey(s string) (ManualKey, error) {
	var k ManualKey
	if len(s) != 2*keySize {
		return ManualKey{}, fmt.Errorf("cnfenc: a manual key is 32 hexadecimal digits, got %d characters", len(s))
	}
	if _, err := hex.Decode(k.k[:], []byte(s)); err != nil {
		return ManualKey{}, errors.New("cnfenc: a manual key is 32 hexadecimal digits")
	}
	if k.IsZero() {
		return ManualKey{}, errNoManualKey
	}
	return k, nil
}

// NewManualKey returns the manual key with the 16 bytes b.
func NewManualKey(b []byte) (ManualKey, error) {
	var k ManualKey
	if len(b) != keySize {
		return ManualKey{}, fmt.Errorf("cnfenc: a manual key is 16 bytes, got %d", len(b))
	}
	copy(k.k[:], b)
	if k.IsZero() {
		return ManualKey{}, errNoManualKey
	}
	return k, nil
}

// Bytes returns a copy of the key's 16 bytes.
func (k ManualKey) Bytes() []byte { return bytes.Clone(k.k[:]) }

// IsZero reports whether k is all zeros, which phones take as "no key".
func (k ManualKey) IsZero() bool { return k.k == [keySize]byte{} }

const redacted = "ManualKey(redacted)"

// String returns "ManualKey(redacted)".
func (k ManualKey) String() string { return redacted }

// GoString returns "ManualKey(redacted)".
func (k ManualKey) GoString() string { return redacted }

// Format writes "ManualKey(redacted)" for every verb, so that a key never
// reaches a log by accident.
func (k ManualKey) Format(f fmt.State, _ rune) { io.WriteString(f, redacted) }

// MarshalText returns "ManualKey(redacted)", so that encoders (JSON, say)
// do not write the key either.
func (k ManualKey) MarshalText() ([]byte, error) { return []byte(redacted), nil }
