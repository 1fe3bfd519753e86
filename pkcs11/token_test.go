//go:build cgo

package pkcs11_test

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha1"
	"crypto/sha256"
	"crypto/sha512"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"math/big"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	p11 "github.com/miekg/pkcs11"

	"github.com/ucsec/ucsec/pkcs11"
	"github.com/ucsec/ucsec/pkcs11/softhsmtest"
)

// selfSigned returns a self-signed certificate of key.
func selfSigned(t testing.TB, cn string, key crypto.Signer) *x509.Certificate {
	t.Helper()
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(time.Now().UnixNano()),
		Subject:      pkix.Name{CommonName: cn},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(24 * time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature | x509.KeyUsageKeyEncipherment,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return cert
}

// open opens uri and closes the key when the test ends.
func open(t testing.TB, uri string, opts *pkcs11.Options) pkcs11.Key {
	t.Helper()
	k, err := pkcs11.Open(uri, opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { k.Close() })
	return k
}

func equalKeys(a, b crypto.PublicKey) bool {
	k, ok := a.(interface{ Equal(crypto.PublicKey) bool })
	return ok && k.Equal(b)
}

// verify checks sig, by pub, over digest of hash; opts may be PSS.
func verify(pub crypto.PublicKey, hash crypto.Hash, digest, sig []byte, opts crypto.SignerOpts) error {
	switch pub := pub.(type) {
	case *rsa.PublicKey:
		if pss, ok := opts.(*rsa.PSSOptions); ok {
			return rsa.VerifyPSS(pub, hash, digest, sig, pss)
		}
		return rsa.VerifyPKCS1v15(pub, hash, digest, sig)
	case *ecdsa.PublicKey:
		if !ecdsa.VerifyASN1(pub, digest, sig) {
			return errors.New("ECDSA signature does not verify")
		}
		return nil
	}
	return errors.New("unknown key type")
}

func digest(h crypto.Hash, msg []byte) []byte {
	switch h {
	case crypto.SHA1:
		d := sha1.Sum(msg)
		return d[:]
	case crypto.SHA256:
		d := sha256.Sum256(msg)
		return d[:]
	case crypto.SHA384:
		d := sha512.Sum384(msg)
		return d[:]
	case crypto.SHA512:
		d := sha512.Sum512(msg)
		return d[:]
	}
	panic("hash")
}

// Keys generated in the token and imported into it sign with every hash
// the trust lists and TLS use, and their signatures verify with the
// public key the token gave when it made them (or the imported one).
func TestSign(t *testing.T) {
	tk := softhsmtest.New(t, "ucsec")
	rsaGen := tk.GenerateRSA(t, "rsa-gen", []byte{1}, 2048, nil)
	ecGen := tk.GenerateEC(t, "ec-gen", []byte{2}, elliptic.P256(), nil)
	rsaKey, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	tk.Import(t, "rsa-imp", []byte{3}, rsaKey)
	ecKey, err := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tk.Import(t, "ec-imp", []byte{4}, ecKey)
	ecCert := selfSigned(t, "ec-imp", ecKey)
	tk.ImportCertificate(t, "ec-imp", []byte{4}, ecCert)
	ec521 := tk.GenerateEC(t, "ec-521", []byte{5}, elliptic.P521(), nil)

	msg := []byte("ITLFile.tlv signed bytes")
	for _, tt := range []struct {
		object string
		pub    crypto.PublicKey
		hashes []crypto.Hash
	}{
		{"rsa-gen", rsaGen, []crypto.Hash{crypto.SHA1, crypto.SHA256, crypto.SHA384, crypto.SHA512}},
		{"ec-gen", ecGen, []crypto.Hash{crypto.SHA1, crypto.SHA256, crypto.SHA512}},
		{"rsa-imp", &rsaKey.PublicKey, []crypto.Hash{crypto.SHA1, crypto.SHA512}},
		{"ec-imp", &ecKey.PublicKey, []crypto.Hash{crypto.SHA256, crypto.SHA384, crypto.SHA512}},
		{"ec-521", ec521, []crypto.Hash{crypto.SHA256, crypto.SHA512}},
	} {
		t.Run(tt.object, func(t *testing.T) {
			k := open(t, tk.URI(tt.object), nil)
			if !equalKeys(k.Public(), tt.pub) {
				t.Fatalf("Public() = %v, want the key's", k.Public())
			}
			for _, h := range tt.hashes {
				opts := []crypto.SignerOpts{h}
				if _, ok := tt.pub.(*rsa.PublicKey); ok {
					opts = append(opts, &rsa.PSSOptions{Hash: h, SaltLength: rsa.PSSSaltLengthEqualsHash},
						&rsa.PSSOptions{Hash: h, SaltLength: rsa.PSSSaltLengthAuto})
				}
				for _, o := range opts {
					d := digest(h, msg)
					sig, err := k.Sign(rand.Reader, d, o)
					if err != nil {
						t.Fatalf("Sign(%v, %T): %v", h, o, err)
					}
					if err := verify(tt.pub, h, d, sig, o); err != nil {
						t.Errorf("Sign(%v, %T): %v", h, o, err)
					}
				}
			}
			if _, ok := k.(crypto.Decrypter); ok != (tt.object[:3] == "rsa") {
				t.Errorf("crypto.Decrypter: %v, want it for RSA keys only", ok)
			}
		})
	}

	// The certificate of the key's id.
	k := open(t, tk.URI("", "id=%04"), nil)
	cert, err := k.Certificate()
	if err != nil || !bytes.Equal(cert.Raw, ecCert.Raw) {
		t.Errorf("Certificate() = %v, %v; want the imported one", cert, err)
	}
	_, err = open(t, tk.URI("rsa-gen"), nil).Certificate()
	if !errors.Is(err, pkcs11.ErrNoCertificate) {
		t.Errorf("Certificate() of a key without one: %v, want ErrNoCertificate", err)
	}
	// A wrong digest length.
	if _, err := k.Sign(rand.Reader, []byte{1, 2, 3}, crypto.SHA256); !errors.Is(err, pkcs11.ErrUnsupported) {
		t.Errorf("Sign with a short digest: %v", err)
	}
}

// An EC key whose public key object is gone takes its public key from
// its certificate; without one, Open says it cannot know it.
func TestECPublicFromCertificate(t *testing.T) {
	tk := softhsmtest.New(t, "ucsec")
	tk.GenerateEC(t, "bare", []byte{1}, elliptic.P256(), &softhsmtest.KeyOptions{NoPublicKey: true})
	tk.GenerateEC(t, "with-cert", []byte{2}, elliptic.P256(), &softhsmtest.KeyOptions{NoPublicKey: true})
	// A certificate for the second key: signed by another key, as a CA
	// would, holding the token key's public key.
	pub := tk.GenerateEC(t, "pub", []byte{3}, elliptic.P256(), nil)
	ca, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(7), Subject: pkix.Name{CommonName: "pub"}, NotBefore: time.Now(), NotAfter: time.Now().Add(time.Hour)}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, pub, ca)
	if err != nil {
		t.Fatal(err)
	}
	cert, _ := x509.ParseCertificate(der)
	tk.ImportCertificate(t, "pub", []byte{3}, cert)

	_, err = pkcs11.Open(tk.URI("bare"), nil)
	if !errors.Is(err, pkcs11.ErrKeyType) || !strings.Contains(err.Error(), "public key is unknown") {
		t.Errorf("Open of an EC key without public key or certificate: %v", err)
	}
	k := open(t, tk.URI("pub"), nil)
	if !equalKeys(k.Public(), pub) {
		t.Error("wrong public key")
	}
}

// Decrypt undoes rsa.EncryptPKCS1v15, as .enc.sgn and the TLS RSA key
// exchange need; with SessionKeyLen, a ciphertext that does not decrypt
// gives random bytes, not an error.
func TestDecrypt(t *testing.T) {
	tk := softhsmtest.New(t, "ucsec")
	pub := tk.GenerateRSA(t, "phone", []byte{1}, 2048, nil)
	k := open(t, tk.URI("phone"), nil)
	d := k.(crypto.Decrypter)
	secret := []byte("0123456789abcdef")
	//lint:ignore SA1019 the .enc.sgn key transport, which the token decrypts.
	ct, err := rsa.EncryptPKCS1v15(rand.Reader, pub, secret)
	if err != nil {
		t.Fatal(err)
	}
	//lint:ignore SA1019 the .enc.sgn key transport, which the token decrypts.
	for _, opts := range []crypto.DecrypterOpts{nil, &rsa.PKCS1v15DecryptOptions{}, &rsa.PKCS1v15DecryptOptions{SessionKeyLen: 16}} {
		pt, err := d.Decrypt(rand.Reader, ct, opts)
		if err != nil || !bytes.Equal(pt, secret) {
			t.Errorf("Decrypt(%v) = %x, %v", opts, pt, err)
		}
	}
	bad := bytes.Clone(ct)
	bad[0] ^= 0x80
	if _, err := d.Decrypt(rand.Reader, bad, nil); err == nil {
		t.Error("a corrupted ciphertext decrypted")
	}
	//lint:ignore SA1019 the .enc.sgn key transport, which the token decrypts.
	pt, err := d.Decrypt(rand.Reader, bad, &rsa.PKCS1v15DecryptOptions{SessionKeyLen: 16})
	if err != nil || len(pt) != 16 || bytes.Equal(pt, secret) {
		t.Errorf("Decrypt of a corrupted ciphertext with SessionKeyLen: %x, %v; want 16 random bytes", pt, err)
	}
	if _, err := d.Decrypt(rand.Reader, ct, &rsa.OAEPOptions{Hash: crypto.SHA256}); !errors.Is(err, pkcs11.ErrUnsupported) {
		t.Errorf("OAEP: %v, want ErrUnsupported", err)
	}
}

// Many goroutines sign at once through a few sessions: every signature
// verifies, and the key closes cleanly after.
func TestConcurrent(t *testing.T) {
	tk := softhsmtest.New(t, "ucsec")
	rsaPub := tk.GenerateRSA(t, "rsa", []byte{1}, 2048, nil)
	ecPub := tk.GenerateEC(t, "ec", []byte{2}, elliptic.P256(), nil)
	for _, tt := range []struct {
		object string
		pub    crypto.PublicKey
	}{{"rsa", rsaPub}, {"ec", ecPub}} {
		k := open(t, tk.URI(tt.object), &pkcs11.Options{MaxSessions: 3})
		var wg sync.WaitGroup
		errs := make(chan error, 64)
		for g := range 32 {
			wg.Go(func() {
				for i := range 8 {
					d := digest(crypto.SHA256, []byte{byte(g), byte(i)})
					sig, err := k.Sign(rand.Reader, d, crypto.SHA256)
					if err == nil {
						err = verify(tt.pub, crypto.SHA256, d, sig, crypto.SHA256)
					}
					if err != nil {
						errs <- err
						return
					}
				}
			})
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			t.Errorf("%s: %v", tt.object, err)
		}
		if err := k.Close(); err != nil {
			t.Fatal(err)
		}
	}
}

// A closed key refuses to work; the module is finalized with its last
// key and initialized again by the next Open.
func TestClose(t *testing.T) {
	tk := softhsmtest.New(t, "ucsec")
	tk.GenerateRSA(t, "rsa", []byte{1}, 2048, nil)
	for range 3 {
		k, err := pkcs11.Open(tk.URI("rsa"), nil)
		if err != nil {
			t.Fatal(err)
		}
		k2, err := pkcs11.Open(tk.URI("rsa"), nil) // a second key of the module
		if err != nil {
			t.Fatal(err)
		}
		if err := k.Close(); err != nil {
			t.Fatal(err)
		}
		if err := k.Close(); err != nil {
			t.Fatalf("second Close: %v", err)
		}
		d := digest(crypto.SHA256, nil)
		if _, err := k.Sign(rand.Reader, d, crypto.SHA256); !errors.Is(err, pkcs11.ErrClosed) {
			t.Errorf("Sign after Close: %v, want ErrClosed", err)
		}
		if _, err := k2.Sign(rand.Reader, d, crypto.SHA256); err != nil {
			t.Errorf("Sign with another key of the token after the first closed: %v", err)
		}
		k2.Close()
	}
}

// When the token drops the sessions (reset, pulled out, an HSM that lost
// its connection), the operation under way fails, and the next one logs
// in again and succeeds.
func TestSessionsLost(t *testing.T) {
	tk := softhsmtest.New(t, "ucsec")
	pub := tk.GenerateRSA(t, "rsa", []byte{1}, 2048, nil)
	k := open(t, tk.URI("rsa"), nil)
	d := digest(crypto.SHA256, []byte("x"))
	sign := func() error {
		sig, err := k.Sign(rand.Reader, d, crypto.SHA256)
		if err == nil {
			err = verify(pub, crypto.SHA256, d, sig, crypto.SHA256)
		}
		return err
	}
	if err := sign(); err != nil {
		t.Fatal(err)
	}
	tk.CloseAllSessions(t)
	err := sign()
	if err == nil {
		t.Fatal("Sign succeeded in a session the token closed")
	}
	t.Logf("the failed call: %v", err)
	for i := range 3 {
		if err := sign(); err != nil {
			t.Fatalf("Sign %d after the token dropped the sessions: %v", i, err)
		}
	}
}

// A key that wants the PIN for every operation (CKA_ALWAYS_AUTHENTICATE)
// gets it.
func TestAlwaysAuthenticate(t *testing.T) {
	tk := softhsmtest.New(t, "ucsec")
	pub := tk.GenerateRSA(t, "rsa", []byte{1}, 2048, &softhsmtest.KeyOptions{AlwaysAuthenticate: true})
	k := open(t, tk.URI("rsa"), nil)
	for range 2 {
		d := digest(crypto.SHA1, []byte("x"))
		sig, err := k.Sign(rand.Reader, d, crypto.SHA1)
		if err != nil {
			t.Fatal(err)
		}
		if err := verify(pub, crypto.SHA1, d, sig, crypto.SHA1); err != nil {
			t.Fatal(err)
		}
	}
}

// Each fault gives one clear error, on one line, naming the URI without
// its PIN and saying what is wrong.
func TestFaults(t *testing.T) {
	tk := softhsmtest.New(t, "ucsec")
	locked := tk.Another(t, "locked")
	tk.Another(t, "twin")
	twin2 := tk.Another(t, "twin") // two tokens of one label
	tk.GenerateRSA(t, "rsa", []byte{1}, 2048, nil)
	tk.GenerateRSA(t, "nosign", []byte{2}, 2048, &softhsmtest.KeyOptions{NoSign: true, NoDecrypt: true})
	tk.GenerateRSA(t, "pss-only", []byte{3}, 2048, &softhsmtest.KeyOptions{AllowedMechanisms: []uint{p11.CKM_RSA_PKCS_PSS}})
	tk.GenerateEC(t, "dup", []byte{4}, elliptic.P256(), nil)
	tk.GenerateEC(t, "dup", []byte{5}, elliptic.P256(), nil)
	tk.GenerateSecretKey(t, "aes", []byte{6})
	locked.GenerateRSA(t, "rsa", []byte{1}, 2048, nil)
	locked.LockUserPIN(t)
	_ = twin2

	dir := t.TempDir()
	wrongPIN := filepath.Join(dir, "wrong-pin")
	if err := os.WriteFile(wrongPIN, []byte("9999\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	notModule := filepath.Join(dir, "libnot.so")
	if err := os.WriteFile(notModule, []byte("not a library"), 0o644); err != nil {
		t.Fatal(err)
	}
	base := "pkcs11:token=ucsec;object=rsa?module-path=" + tk.Module

	for _, tt := range []struct {
		name string
		uri  string
		opts *pkcs11.Options
		want error
		text string // in the message
	}{
		{"wrong PIN", base + "&pin-source=" + wrongPIN, nil, pkcs11.ErrPINIncorrect, "wrong PIN (CKR_PIN_INCORRECT)"},
		{"wrong PIN from options", tk.URIWithoutPIN("rsa"), &pkcs11.Options{PIN: "0000"}, pkcs11.ErrPINIncorrect, "wrong PIN"},
		{"locked token", locked.URI("rsa"), nil, pkcs11.ErrPINLocked, `token "locked" reports its user PIN locked`},
		{"no PIN", tk.URIWithoutPIN("rsa"), nil, pkcs11.ErrNoPIN, "needs a PIN"},
		{"pin-value refused", base + "&pin-value=1234", nil, pkcs11.ErrPINValue, "pin-value is refused"},
		{"pin-value wrong", base + "&pin-value=4321", &pkcs11.Options{AllowPINValue: true}, pkcs11.ErrPINIncorrect, "pin-value=xxxxx"},
		{"pin-source missing", base + "&pin-source=" + filepath.Join(dir, "nosuch"), nil, pkcs11.ErrPINSource, "no such file"},
		{"missing object", tk.URI("nosuch"), nil, pkcs11.ErrKeyNotFound, "object=rsa;id=%01"},
		{"missing id", tk.URI("rsa", "id=%09"), nil, pkcs11.ErrKeyNotFound, "no private key matches"},
		{"secret key", tk.URI("aes"), nil, pkcs11.ErrKeyType, "is a secret key (type=secret-key), not a private key"},
		{"type=cert", tk.URI("rsa", "type=cert"), nil, pkcs11.ErrKeyType, "type=cert names no private key"},
		{"two keys", tk.URI("dup"), nil, pkcs11.ErrAmbiguous, "more than one private key"},
		{"no such token", "pkcs11:token=nosuch?module-path=" + tk.Module, nil, pkcs11.ErrTokenNotFound, `"ucsec"`},
		{"two tokens", twin2.URI("rsa"), nil, pkcs11.ErrAmbiguous, "2 tokens match"},
		{"module path missing", "pkcs11:token=ucsec?module-path=/nonexistent/libp11.so", nil, pkcs11.ErrModule, "/nonexistent/libp11.so: no such file"},
		{"not a module", "pkcs11:token=ucsec?module-path=" + notModule, nil, pkcs11.ErrModule, "not a PKCS #11 library"},
		{"module name unknown", "pkcs11:token=ucsec?module-name=nosuchmodule", nil, pkcs11.ErrModule, `module-name "nosuchmodule": no module of that name`},
		{"no module", "pkcs11:token=ucsec", nil, pkcs11.ErrNoModule, "give module-path"},
		{"malformed", "pkcs11:token=ucsec;bogus=1?pin-value=1234", nil, pkcs11.ErrMalformedURI, `unknown path attribute "bogus"`},
		{"not a URI", "/etc/key.pem", nil, pkcs11.ErrMalformedURI, "does not start with"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			k, err := pkcs11.Open(tt.uri, tt.opts)
			if err == nil {
				k.Close()
				t.Fatal("Open succeeded")
			}
			msg := err.Error()
			if !errors.Is(err, tt.want) || !strings.Contains(msg, tt.text) {
				t.Errorf("Open: %q\nwant %v and %q", msg, tt.want, tt.text)
			}
			if _, ok := errors.AsType[*pkcs11.Error](err); !ok {
				t.Errorf("Open: %T, want *pkcs11.Error", err)
			}
			for _, secret := range []string{"=1234", "=4321", "9999"} {
				if strings.Contains(msg, secret) {
					t.Errorf("the message shows the PIN: %q", msg)
				}
			}
			if strings.Contains(msg, "\n") || !strings.HasPrefix(msg, "pkcs11: key ") {
				t.Errorf("not one line naming the key: %q", msg)
			}
		})
	}

	// Keys the token will not use as asked: one error at the call, and
	// the key goes on working for what it may do.
	d := digest(crypto.SHA256, []byte("x"))
	nosign := open(t, tk.URI("nosign"), nil)
	_, err := nosign.Sign(rand.Reader, d, crypto.SHA256)
	if !errors.Is(err, pkcs11.ErrRefused) || !strings.Contains(err.Error(), "sign: the token refused the operation (CKR_KEY_FUNCTION_NOT_PERMITTED) with CKM_RSA_PKCS") {
		t.Errorf("Sign with CKA_SIGN false: %v", err)
	}
	_, err = nosign.(crypto.Decrypter).Decrypt(rand.Reader, make([]byte, 256), nil)
	if !errors.Is(err, pkcs11.ErrRefused) {
		t.Errorf("Decrypt with CKA_DECRYPT false: %v", err)
	}
	pssOnly := open(t, tk.URI("pss-only"), nil)
	_, err = pssOnly.Sign(rand.Reader, d, crypto.SHA256)
	if !errors.Is(err, pkcs11.ErrRefused) || !strings.Contains(err.Error(), "CKM_RSA_PKCS") {
		t.Errorf("PKCS #1 v1.5 with a PSS-only key: %v", err)
	}
	if _, err := pssOnly.Sign(rand.Reader, d, &rsa.PSSOptions{Hash: crypto.SHA256, SaltLength: rsa.PSSSaltLengthEqualsHash}); err != nil {
		t.Errorf("PSS with a PSS-only key, after a refusal: %v", err)
	}
	t.Logf("refused: %v", err)
}
