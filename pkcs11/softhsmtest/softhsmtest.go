//go:build cgo

package softhsmtest

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rsa"
	"crypto/x509"
	"encoding/asn1"
	"encoding/binary"
	"encoding/hex"
	"encoding/pem"
	"fmt"
	"math/big"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	p11 "github.com/miekg/pkcs11"
)

// Fixed PINs of the tokens New makes.
const (
	PIN   = "1234"
	SOPIN = "12345678"
)

// modulePaths are where Debian and others install SoftHSM2's module.
var modulePaths = []string{
	"/usr/lib/softhsm/libsofthsm2.so",
	"/usr/lib/x86_64-linux-gnu/softhsm/libsofthsm2.so",
	"/usr/lib/aarch64-linux-gnu/softhsm/libsofthsm2.so",
	"/usr/local/lib/softhsm/libsofthsm2.so",
	"/usr/lib64/pkcs11/libsofthsm2.so",
	"/usr/lib/pkcs11/libsofthsm2.so",
}

// Module returns the path of SoftHSM2's module (the environment variable
// SOFTHSM2_MODULE, or where distributions install it). Without SoftHSM2
// (the module or softhsm2-util) it skips the test, or fails it where CI
// is true.
func Module(t testing.TB) string {
	t.Helper()
	paths := modulePaths
	if m := os.Getenv("SOFTHSM2_MODULE"); m != "" {
		paths = []string{m}
	}
	_, utilErr := exec.LookPath("softhsm2-util")
	for _, p := range paths {
		if _, err := os.Stat(p); err == nil && utilErr == nil {
			return p
		}
	}
	if ci, _ := strconv.ParseBool(os.Getenv("CI")); ci {
		t.Fatal("SoftHSM2 is not installed (apt-get install softhsm2), and CI is true: the token tests must run")
	}
	t.Skip("SoftHSM2 is not installed: apt-get install softhsm2 to run the token tests")
	return ""
}

// A Token is a SoftHSM2 token made by New.
type Token struct {
	Module  string // SoftHSM2's module
	Label   string // the token's label
	PIN     string // the user PIN
	PINFile string // a file holding the user PIN, for pin-source
	Dir     string // the token directory, shared by the tokens of one New
	Conf    string // the configuration file SOFTHSM2_CONF names
}

// New makes a token directory under t.TempDir(), points SOFTHSM2_CONF at
// a configuration naming it (t.Setenv: the test must not be parallel), and
// initializes a token labelled label in it, with user PIN PIN and SO PIN
// SOPIN. Another adds tokens to the same directory.
func New(t testing.TB, label string) *Token {
	t.Helper()
	mod := Module(t)
	root := t.TempDir()
	dir := filepath.Join(root, "tokens")
	if err := os.Mkdir(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	conf := filepath.Join(root, "softhsm2.conf")
	text := "directories.tokendir = " + dir + "\nobjectstore.backend = file\nlog.level = ERROR\nslots.removable = false\n"
	if err := os.WriteFile(conf, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	pinFile := filepath.Join(root, "pin")
	if err := os.WriteFile(pinFile, []byte(PIN+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv("SOFTHSM2_CONF", conf)
	tk := &Token{Module: mod, PIN: PIN, PINFile: pinFile, Dir: dir, Conf: conf}
	return tk.Another(t, label)
}

// Another initializes one more token, labelled label, in tk's directory.
func (tk *Token) Another(t testing.TB, label string) *Token {
	t.Helper()
	util(t, "--init-token", "--free", "--label", label, "--pin", PIN, "--so-pin", SOPIN)
	other := *tk
	other.Label = label
	return &other
}

func util(t testing.TB, args ...string) string {
	t.Helper()
	out, err := exec.Command("softhsm2-util", args...).CombinedOutput()
	if err != nil {
		t.Fatalf("softhsm2-util %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return string(out)
}

// URI returns a pkcs11: URI naming the object labelled object in the
// token (none if object is ""), with module-path and pin-source, followed
// by extra path attributes if any (such as "id=%01").
func (tk *Token) URI(object string, extra ...string) string {
	return tk.uri(object, extra, "&pin-source="+tk.PINFile)
}

// URIWithoutPIN is URI without pin-source.
func (tk *Token) URIWithoutPIN(object string, extra ...string) string {
	return tk.uri(object, extra, "")
}

func (tk *Token) uri(object string, extra []string, query string) string {
	path := "token=" + escape(tk.Label)
	if object != "" {
		path += ";object=" + escape(object)
	}
	for _, e := range extra {
		path += ";" + e
	}
	return "pkcs11:" + path + "?module-path=" + tk.Module + query
}

func escape(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		if 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || strings.IndexByte("-._~", c) >= 0 {
			b.WriteByte(c)
		} else {
			fmt.Fprintf(&b, "%%%02X", c)
		}
	}
	return b.String()
}

// KeyOptions change the keys that GenerateRSA and GenerateEC make; the
// zero value makes a key that signs and (RSA) decrypts.
type KeyOptions struct {
	NoSign             bool   // CKA_SIGN false
	NoDecrypt          bool   // CKA_DECRYPT false
	AlwaysAuthenticate bool   // CKA_ALWAYS_AUTHENTICATE: the PIN for every operation
	AllowedMechanisms  []uint // CKA_ALLOWED_MECHANISMS, if not nil
	NoPublicKey        bool   // destroy the public key object after generating
}

// GenerateRSA generates an RSA key pair of bits bits in the token, with
// label and id (CKA_LABEL, CKA_ID), and returns its public key.
func (tk *Token) GenerateRSA(t testing.TB, label string, id []byte, bits int, o *KeyOptions) *rsa.PublicKey {
	t.Helper()
	var pub *rsa.PublicKey
	tk.with(t, func(ctx *p11.Ctx, s p11.SessionHandle) error {
		pubT := append(common(label, id, p11.CKO_PUBLIC_KEY, p11.CKK_RSA),
			p11.NewAttribute(p11.CKA_MODULUS_BITS, bits),
			p11.NewAttribute(p11.CKA_PUBLIC_EXPONENT, []byte{1, 0, 1}),
			p11.NewAttribute(p11.CKA_VERIFY, true), p11.NewAttribute(p11.CKA_ENCRYPT, true))
		hpub, _, err := ctx.GenerateKeyPair(s, []*p11.Mechanism{p11.NewMechanism(p11.CKM_RSA_PKCS_KEY_PAIR_GEN, nil)},
			pubT, privateTemplate(label, id, p11.CKK_RSA, o))
		if err != nil {
			return fmt.Errorf("C_GenerateKeyPair: %w", err)
		}
		a, err := ctx.GetAttributeValue(s, hpub, []*p11.Attribute{p11.NewAttribute(p11.CKA_MODULUS, nil), p11.NewAttribute(p11.CKA_PUBLIC_EXPONENT, nil)})
		if err != nil {
			return err
		}
		var e int
		for _, b := range a[1].Value {
			e = e<<8 | int(b)
		}
		pub = &rsa.PublicKey{N: new(big.Int).SetBytes(a[0].Value), E: e}
		if o != nil && o.NoPublicKey {
			return ctx.DestroyObject(s, hpub)
		}
		return nil
	})
	return pub
}

// GenerateEC generates an ECDSA key pair on curve (P-256, P-384 or P-521)
// in the token, with label and id, and returns its public key.
func (tk *Token) GenerateEC(t testing.TB, label string, id []byte, curve elliptic.Curve, o *KeyOptions) *ecdsa.PublicKey {
	t.Helper()
	oid, ok := curveOIDs[curve]
	if !ok {
		t.Fatalf("softhsmtest: unsupported curve %s", curve.Params().Name)
	}
	params, _ := asn1.Marshal(oid)
	var pub *ecdsa.PublicKey
	tk.with(t, func(ctx *p11.Ctx, s p11.SessionHandle) error {
		pubT := append(common(label, id, p11.CKO_PUBLIC_KEY, p11.CKK_EC),
			p11.NewAttribute(p11.CKA_EC_PARAMS, params), p11.NewAttribute(p11.CKA_VERIFY, true))
		hpub, _, err := ctx.GenerateKeyPair(s, []*p11.Mechanism{p11.NewMechanism(p11.CKM_EC_KEY_PAIR_GEN, nil)},
			pubT, privateTemplate(label, id, p11.CKK_EC, o))
		if err != nil {
			return fmt.Errorf("C_GenerateKeyPair: %w", err)
		}
		a, err := ctx.GetAttributeValue(s, hpub, []*p11.Attribute{p11.NewAttribute(p11.CKA_EC_POINT, nil)})
		if err != nil {
			return err
		}
		var point []byte
		if _, err := asn1.Unmarshal(a[0].Value, &point); err != nil {
			return err
		}
		if pub, err = ecdsa.ParseUncompressedPublicKey(curve, point); err != nil {
			return err
		}
		if o != nil && o.NoPublicKey {
			return ctx.DestroyObject(s, hpub)
		}
		return nil
	})
	return pub
}

var curveOIDs = map[elliptic.Curve]asn1.ObjectIdentifier{
	elliptic.P256(): {1, 2, 840, 10045, 3, 1, 7},
	elliptic.P384(): {1, 3, 132, 0, 34},
	elliptic.P521(): {1, 3, 132, 0, 35},
}

func common(label string, id []byte, class, keyType uint) []*p11.Attribute {
	a := []*p11.Attribute{
		p11.NewAttribute(p11.CKA_CLASS, class),
		p11.NewAttribute(p11.CKA_KEY_TYPE, keyType),
		p11.NewAttribute(p11.CKA_TOKEN, true),
		p11.NewAttribute(p11.CKA_LABEL, label),
	}
	if len(id) > 0 {
		a = append(a, p11.NewAttribute(p11.CKA_ID, id))
	}
	return a
}

func privateTemplate(label string, id []byte, keyType uint, o *KeyOptions) []*p11.Attribute {
	if o == nil {
		o = new(KeyOptions)
	}
	a := append(common(label, id, p11.CKO_PRIVATE_KEY, keyType),
		p11.NewAttribute(p11.CKA_PRIVATE, true),
		p11.NewAttribute(p11.CKA_SENSITIVE, true),
		p11.NewAttribute(p11.CKA_EXTRACTABLE, false),
		p11.NewAttribute(p11.CKA_SIGN, !o.NoSign),
		p11.NewAttribute(p11.CKA_ALWAYS_AUTHENTICATE, o.AlwaysAuthenticate))
	if keyType == p11.CKK_RSA {
		a = append(a, p11.NewAttribute(p11.CKA_DECRYPT, !o.NoDecrypt))
	}
	if o.AllowedMechanisms != nil {
		var v []byte
		for _, m := range o.AllowedMechanisms {
			v = append(v, p11.NewAttribute(0, m).Value...)
		}
		a = append(a, p11.NewAttribute(p11.CKA_ALLOWED_MECHANISMS, v))
	}
	return a
}

// Import imports key into the token with softhsm2-util --import, with
// label and id (which must not be empty: softhsm2-util requires one).
// softhsm2-util stores the private key and its public key.
func (tk *Token) Import(t testing.TB, label string, id []byte, key crypto.Signer) {
	t.Helper()
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(t.TempDir(), "key.pem")
	if err := os.WriteFile(file, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	util(t, "--import", file, "--token", tk.Label, "--label", label, "--id", hex.EncodeToString(id), "--pin", tk.PIN)
	if err := os.Remove(file); err != nil {
		t.Fatal(err)
	}
}

// ImportCertificate stores cert in the token as a certificate object
// (CKO_CERTIFICATE, CKC_X_509) with label and id.
func (tk *Token) ImportCertificate(t testing.TB, label string, id []byte, cert *x509.Certificate) {
	t.Helper()
	tk.with(t, func(ctx *p11.Ctx, s p11.SessionHandle) error {
		a := []*p11.Attribute{
			p11.NewAttribute(p11.CKA_CLASS, p11.CKO_CERTIFICATE),
			p11.NewAttribute(p11.CKA_CERTIFICATE_TYPE, p11.CKC_X_509),
			p11.NewAttribute(p11.CKA_TOKEN, true),
			p11.NewAttribute(p11.CKA_LABEL, label),
			p11.NewAttribute(p11.CKA_SUBJECT, cert.RawSubject),
			p11.NewAttribute(p11.CKA_ISSUER, cert.RawIssuer),
			p11.NewAttribute(p11.CKA_VALUE, cert.Raw),
		}
		if len(id) > 0 {
			a = append(a, p11.NewAttribute(p11.CKA_ID, id))
		}
		_, err := ctx.CreateObject(s, a)
		return err
	})
}

// GenerateSecretKey generates an AES-128 key in the token, with label and
// id: an object that is not a private key.
func (tk *Token) GenerateSecretKey(t testing.TB, label string, id []byte) {
	t.Helper()
	tk.with(t, func(ctx *p11.Ctx, s p11.SessionHandle) error {
		a := append(common(label, id, p11.CKO_SECRET_KEY, p11.CKK_AES), p11.NewAttribute(p11.CKA_VALUE_LEN, 16))
		_, err := ctx.GenerateKey(s, []*p11.Mechanism{p11.NewMechanism(p11.CKM_AES_KEY_GEN, nil)}, a)
		return err
	})
}

// with runs fn in a read-write session of the token, logged in as its
// user. It initializes the module unless the program already has (and
// then finalizes it), and never logs out: a key open in the program keeps
// its login.
func (tk *Token) with(t testing.TB, fn func(*p11.Ctx, p11.SessionHandle) error) {
	t.Helper()
	ctx := p11.New(tk.Module)
	if ctx == nil {
		t.Fatalf("softhsmtest: cannot load %s", tk.Module)
	}
	err := ctx.Initialize()
	owned := err == nil
	if err != nil && err != p11.Error(p11.CKR_CRYPTOKI_ALREADY_INITIALIZED) {
		t.Fatalf("softhsmtest: C_Initialize: %v", err)
	}
	if owned {
		defer ctx.Finalize()
	}
	slot := tk.slot(t, ctx)
	s, err := ctx.OpenSession(slot, p11.CKF_SERIAL_SESSION|p11.CKF_RW_SESSION)
	if err != nil {
		t.Fatalf("softhsmtest: C_OpenSession: %v", err)
	}
	defer ctx.CloseSession(s)
	if err := ctx.Login(s, p11.CKU_USER, tk.PIN); err != nil && err != p11.Error(p11.CKR_USER_ALREADY_LOGGED_IN) {
		t.Fatalf("softhsmtest: C_Login: %v", err)
	}
	if err := fn(ctx, s); err != nil {
		t.Fatalf("softhsmtest: token %q: %v", tk.Label, err)
	}
}

func (tk *Token) slot(t testing.TB, ctx *p11.Ctx) uint {
	t.Helper()
	slots, err := ctx.GetSlotList(true)
	if err != nil {
		t.Fatalf("softhsmtest: C_GetSlotList: %v", err)
	}
	for _, s := range slots {
		if ti, err := ctx.GetTokenInfo(s); err == nil && ti.Label == tk.Label {
			return s
		}
	}
	t.Fatalf("softhsmtest: no token %q: was the module initialized before the token was made? (make tokens before opening keys)", tk.Label)
	return 0
}

// CloseAllSessions closes every session of the token in this program
// (C_CloseAllSessions), which logs it out: what a token that was reset or
// pulled out, or an HSM that dropped its connections, does to the
// program's keys. The module must be initialized, by an open key.
func (tk *Token) CloseAllSessions(t testing.TB) {
	t.Helper()
	ctx := p11.New(tk.Module)
	if ctx == nil {
		t.Fatalf("softhsmtest: cannot load %s", tk.Module)
	}
	if err := ctx.Initialize(); err == nil {
		ctx.Finalize()
		t.Fatal("softhsmtest: CloseAllSessions with no key open")
	}
	if err := ctx.CloseAllSessions(tk.slot(t, ctx)); err != nil {
		t.Fatalf("softhsmtest: C_CloseAllSessions: %v", err)
	}
}

// Token flags and the attribute in which SoftHSM2 keeps them.
const (
	ckfUserPINLocked = 0x00040000
	// CKA_VENDOR_DEFINED + 0x5348 ("SH") + 3: SoftHSM2's token flags.
	tokenFlagsAttr = 0x8000534B
)

// LockUserPIN marks the token's user PIN locked, as a token does after
// too many wrong PINs. SoftHSM2 never locks a PIN itself, but reports the
// flags its token file holds: this sets CKF_USER_PIN_LOCKED there. Call
// it with no key of the token open.
func (tk *Token) LockUserPIN(t testing.TB) {
	t.Helper()
	files, _ := filepath.Glob(filepath.Join(tk.Dir, "*", "token.object"))
	label := []byte(fmt.Sprintf("%-32s", tk.Label))
	// An attribute of the file: type and kind (2: an unsigned long), 8
	// bytes big-endian each, then the value, 8 bytes.
	var head [16]byte
	binary.BigEndian.PutUint64(head[:8], tokenFlagsAttr)
	binary.BigEndian.PutUint64(head[8:], 2)
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Contains(b, label) {
			continue
		}
		i := bytes.Index(b, head[:])
		if i < 0 || i+24 > len(b) {
			t.Fatalf("softhsmtest: no token flags in %s: another SoftHSM2 file format?", f)
		}
		v := b[i+16 : i+24]
		binary.BigEndian.PutUint64(v, binary.BigEndian.Uint64(v)|ckfUserPINLocked)
		if err := os.WriteFile(f, b, 0o600); err != nil {
			t.Fatal(err)
		}
		return
	}
	t.Fatalf("softhsmtest: no token file for %q in %s", tk.Label, tk.Dir)
}
