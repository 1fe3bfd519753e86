//go:build pkcs11

package main

// The commands with keys in a token: a ucsec built with the build tag
// pkcs11 (and cgo), against SoftHSM2 tokens that package softhsmtest makes
// in the test's temporary directory. Run them with
//
//	go test -race -tags pkcs11 ./cmd/ucsec
//
// Without SoftHSM2 they skip, or fail where CI is true.

import (
	"crypto"
	"crypto/elliptic"
	"crypto/x509"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/ucsec/ucsec/ctl"
	"github.com/ucsec/ucsec/internal/interop"
	"github.com/ucsec/ucsec/internal/testpki"
	"github.com/ucsec/ucsec/itl"
	"github.com/ucsec/ucsec/pkcs11"
	"github.com/ucsec/ucsec/pkcs11/softhsmtest"
	"github.com/ucsec/ucsec/sgn"
)

// tokenSet is a SoftHSM2 token holding the keys of a cluster, made by
// newTokenSet: each key is named by a URI (with pin-source) and its
// certificate is in a file; the sast key's certificate is in the token
// too.
type tokenSet struct {
	tk  *softhsmtest.Token
	dir string

	sast, tftp, phone, capf, tvs tokenKeyFiles
	// nosign is an RSA key that may neither sign nor decrypt, its
	// certificate issued by capf; aes is a secret key.
	nosign tokenKeyFiles
	aes    string

	// locked is a key in a second token, whose user PIN is locked.
	locked string
}

type tokenKeyFiles struct {
	uri  string // with module-path and pin-source
	crt  string // the certificate alone, PEM
	cert *x509.Certificate
	pub  crypto.PublicKey
}

// newTokenSet makes the tokens of the tests: keys generated in the token
// (RSA 2048: sast, phone, nosign; ECDSA P-256: capf) and imported into it
// (RSA 2048: tftp; ECDSA P-256: tvs).
func newTokenSet(t testing.TB) *tokenSet {
	t.Helper()
	tk := softhsmtest.New(t, "ucsec")
	locked := tk.Another(t, "locked")
	s := &tokenSet{tk: tk, dir: t.TempDir()}

	// Every token and key is made before the first Open: SoftHSM2 reads
	// its token directory when the module is initialized.
	locked.GenerateRSA(t, "rsa", []byte{1}, 2048, nil)
	locked.LockUserPIN(t)
	s.locked = locked.URI("rsa")

	s.sast.pub = tk.GenerateRSA(t, "sast", []byte{1}, 2048, nil)
	tftpKey := testpki.NewKey(t, testpki.RSA2048)
	tk.Import(t, "tftp", []byte{2}, tftpKey)
	s.tftp.pub = tftpKey.Public()
	s.phone.pub = tk.GenerateRSA(t, "phone", []byte{3}, 2048, nil)
	s.capf.pub = tk.GenerateEC(t, "capf", []byte{4}, elliptic.P256(), nil)
	tvsKey := testpki.NewKey(t, testpki.EC256)
	tk.Import(t, "tvs", []byte{5}, tvsKey)
	s.tvs.pub = tvsKey.Public()
	s.nosign.pub = tk.GenerateRSA(t, "nosign", []byte{6}, 2048, &softhsmtest.KeyOptions{NoSign: true, NoDecrypt: true})
	tk.GenerateSecretKey(t, "aes", []byte{7})
	s.aes = tk.URI("aes")

	// The certificates, signed by the keys in the token.
	for _, k := range []struct {
		name string
		kf   *tokenKeyFiles
		tmpl *x509.Certificate
	}{
		{"sast", &s.sast, testpki.Leaf("ITLRecovery")},
		{"tftp", &s.tftp, testpki.Leaf("tftp")},
		{"phone", &s.phone, testpki.Leaf("SEP001122334455")},
		{"capf", &s.capf, testpki.CA("CAPF-token")},
		{"tvs", &s.tvs, testpki.Server("TVS-token")},
	} {
		k.kf.uri = tk.URI(k.name)
		key, err := pkcs11.Open(k.kf.uri, nil)
		require.NoError(t, err)
		k.kf.cert = testpki.SelfSigned(t, k.tmpl, key)
		require.NoError(t, key.Close())
		_, k.kf.crt = testpki.WritePEM(t, s.dir, k.name, k.kf.cert, nil)
	}
	s.nosign.uri = tk.URI("nosign")
	capfKey, err := pkcs11.Open(s.capf.uri, nil)
	require.NoError(t, err)
	s.nosign.cert = testpki.Issue(t, testpki.Leaf("nosign"), s.capf.cert, s.nosign.pub, capfKey)
	require.NoError(t, capfKey.Close())
	_, s.nosign.crt = testpki.WritePEM(t, s.dir, "nosign", s.nosign.cert, nil)
	// The sast key's certificate in the token, beside the key.
	tk.ImportCertificate(t, "sast", []byte{1}, s.sast.cert)
	return s
}

// An ITL and a CTL signed by keys in the token (one generated there, its
// certificate from the token; one imported, its certificate from a file)
// verify with "tlv verify" and, over their signed bytes, with openssl; a
// .sgn signed by the token verifies with "sgn verify" and against the ITL.
func TestTokenTrustLists(t *testing.T) {
	s := newTokenSet(t)
	dir := t.TempDir()

	// The ITL, signed by the SAST key generated in the token: no --cert.
	itlFile := filepath.Join(dir, "ITLFile.tlv")
	r := mustRun(t, exitOK, "tlv", "build", "--key", s.sast.uri, "--hash", "sha1", "--itl",
		"--record", "sast="+s.sast.crt, "--record", "ccm+tftp="+s.tftp.crt, "--record", "capf="+s.capf.crt, "--record", "tvs="+s.tvs.crt, "-o", itlFile)
	assert.Empty(t, r.stderr)
	mustRun(t, exitOK, "tlv", "verify", "--itl", itlFile)
	f, err := itl.Parse(mustRead(t, itlFile))
	require.NoError(t, err)
	assert.Equal(t, "ITLRecovery", f.SignerName[strings.LastIndex(f.SignerName, "=")+1:])
	assert.True(t, interop.OpenSSLVerify(t, s.sast.pub, f.Hash, f.SignedBytes(), f.Signature), "openssl does not verify the ITL")

	// The CTL, signed by the imported key, SHA-512, with --cert.
	ctlFile := filepath.Join(dir, "CTLFile.tlv")
	mustRun(t, exitOK, "tlv", "build", "--cert", s.tftp.crt, "--key", s.tftp.uri, "--hash", "sha512", "--ctl",
		"--record", "sast="+s.tftp.crt, "--record", "sast="+s.sast.crt, "--record", "ccm+tftp="+s.tftp.crt, "-o", ctlFile)
	mustRun(t, exitOK, "tlv", "verify", "--ctl", ctlFile)
	c, err := ctl.Parse(mustRead(t, ctlFile))
	require.NoError(t, err)
	assert.True(t, interop.OpenSSLVerify(t, s.tftp.pub, c.Hash, c.SignedBytes(), c.Signature), "openssl does not verify the CTL")

	// A .sgn signed by the TFTP key in the token, the PIN from the
	// environment; the ITL vouches for it.
	t.Setenv(tokenPINEnv, softhsmtest.PIN)
	in := copyFile(t, plainXML, dir)
	mustRun(t, exitOK, "sgn", "sign", "--cert", s.tftp.crt, "--key", s.tk.URIWithoutPIN("tftp"), "--hash", "sha512", in)
	mustRun(t, exitOK, "sgn", "verify", "--cert", s.tftp.crt, in+".sgn")
	sf, err := sgn.Parse(mustRead(t, in+".sgn"))
	require.NoError(t, err)
	assert.True(t, interop.OpenSSLVerify(t, s.tftp.pub, sf.Hash, sf.SignedBytes(), sf.Signature), "openssl does not verify the .sgn")
	mustRun(t, exitOK, "tlv", "verify", itlFile, "--sgn", in+".sgn")
	// Signed by another key: not vouched for.
	mustRun(t, exitInvalid, "sgn", "verify", "--cert", s.sast.crt, in+".sgn")
}

// An .enc.sgn signed by the TFTP key in the token decrypts with the
// phone's key in the token.
func TestTokenEncryptedConfig(t *testing.T) {
	s := newTokenSet(t)
	dir := t.TempDir()
	in := copyFile(t, plainXML, dir)
	mustRun(t, exitOK, "cnf", "encrypt", "--phone-cert", s.phone.crt, "--cert", s.tftp.crt, "--key", s.tftp.uri, "--hash", "sha512", "--short", in)
	r := mustRun(t, exitOK, "cnf", "decrypt", "--cert", s.tftp.crt, "--phone-key", s.phone.uri, "-o", "-", in+".enc.sgn")
	assert.Equal(t, string(mustRead(t, plainXML)), r.stdout)
	mustRun(t, exitOK, "sgn", "verify", "--cert", s.tftp.crt, in+".sgn")

	// Encrypted to another phone: the token's key does not decrypt it.
	otherKey := testpki.Key(t, testpki.RSA2048)
	_, otherCrt := testpki.WritePEM(t, dir, "other", testpki.SelfSigned(t, testpki.Leaf("SEP001122334466"), otherKey), nil)
	other := filepath.Join(dir, "other.cnf.xml")
	require.NoError(t, os.WriteFile(other, mustRead(t, plainXML), 0o644))
	mustRun(t, exitOK, "cnf", "encrypt", "--phone-cert", otherCrt, "--cert", s.tftp.crt, "--key", s.tftp.uri, "--hash", "sha1", other)
	r = ucsec(t, "", "cnf", "decrypt", "--cert", s.tftp.crt, "--phone-key", s.phone.uri, "-o", "-", other+".enc.sgn")
	r.check(t, exitInvalid, "", "was it encrypted to the key in pkcs11:token=ucsec;object=phone?")
	assert.NotContains(t, r.stderr, "pin-source", "the message names the key without its query")
}

// A CAPF whose CA key is in the token issues LSCs to 50 phones enrolling
// at once, and goes on serving after a signing call failed.
func TestTokenCapf(t *testing.T) {
	s := newTokenSet(t)
	dir := t.TempDir()
	store := filepath.Join(dir, "store")
	addr, serverLog, stop := startServer(t, store, "--cert", s.capf.crt, "--key", s.capf.uri, "--max-conns-per-host", "0")
	schedule := func(dev string) {
		t.Helper()
		mustRun(t, exitOK, "capf", "schedule", "--store", store, "--device", dev, "--op", "install", "--auth", "null", "--key", "ec256")
	}
	enroll := func(dev string) result {
		return ucsec(t, "", "capf", "enroll", "--server", addr, "--ca", s.capf.crt, "--device", dev, "--timeout", "60s", "-o", filepath.Join(dir, dev+".pem"))
	}
	check := func(dev string, r result) {
		t.Helper()
		if assert.Equal(t, exitOK, r.code, "%s: %s", dev, r.stderr) {
			assert.Contains(t, r.stdout, "certificate installed")
			loadLSC(t, filepath.Join(dir, dev+".pem"), filepath.Join(dir, dev+".pem"), s.capf.cert, dev)
		}
	}

	schedule("SEP00000000A001")
	check("SEP00000000A001", enroll("SEP00000000A001"))

	// The token drops every session (as a token reset or pulled out
	// does): the signing call under way fails, that one enrolment fails,
	// and the server goes on, logging in again.
	schedule("SEP00000000A002")
	schedule("SEP00000000A003")
	s.tk.CloseAllSessions(t)
	r := enroll("SEP00000000A002")
	assert.NotEqual(t, exitOK, r.code, "an enrolment whose signing call failed: %s", r.stdout)
	check("SEP00000000A003", enroll("SEP00000000A003"))
	assert.Contains(t, serverLog.String(), "pkcs11: key pkcs11:token=ucsec;object=capf")
	assert.NotContains(t, serverLog.String(), "pin-value")

	// 50 phones at once.
	const n = 50
	devs := make([]string, n)
	for i := range devs {
		devs[i] = fmt.Sprintf("SEP0000000B%04X", i)
		schedule(devs[i])
	}
	results := make([]result, n)
	var wg sync.WaitGroup
	for i, dev := range devs {
		wg.Go(func() { results[i] = enroll(dev) })
	}
	wg.Wait()
	for i, dev := range devs {
		check(dev, results[i])
	}
	assert.Len(t, listIssued(t, store), n+2)
	stop()
	assert.NotContains(t, serverLog.String(), softhsmtest.PIN+"\n")
}

// A TVS whose TLS key is in the token answers queries.
func TestTokenTVS(t *testing.T) {
	s := newTokenSet(t)
	addr, serverLog, stop := startServe(t, s.tvs.crt, tvsListeningPrefix,
		"tvs", "serve", "--cert", s.tvs.crt, "--key", s.tvs.uri, "--listen", "127.0.0.1:0", "--trust", "ccm+tftp="+s.tftp.crt, "--trust", "capf="+s.capf.crt)
	for range 3 {
		rep := tvsQueryJSON(t, exitOK, "--server", addr, "--ca", s.tvs.crt, s.tftp.crt)
		assert.True(t, rep.Valid)
		assert.Equal(t, []string{"CCM+TFTP"}, rep.Roles)
	}
	rep := tvsQueryJSON(t, exitOK, "--server", addr, "--ca", s.tvs.crt, s.capf.crt)
	assert.Equal(t, []string{"CAPF"}, rep.Roles)
	rep = tvsQueryJSON(t, exitInvalid, "--server", addr, "--ca", s.tvs.crt, s.sast.crt)
	assert.False(t, rep.Valid)
	stop()
	assert.Contains(t, serverLog.String(), "tvs: request answered")
}

// Each fault gives one clear error, on one line, naming the key's URI
// without its PIN.
func TestTokenFaults(t *testing.T) {
	s := newTokenSet(t)
	dir := t.TempDir()
	in := copyFile(t, plainXML, dir)
	const wrongPIN = "wrong-pin-x"
	wrongPINFile := filepath.Join(dir, "wrong-pin")
	require.NoError(t, os.WriteFile(wrongPINFile, []byte(wrongPIN+"\n"), 0o600))
	sign := func(cert, key string) []string {
		return []string{"sgn", "sign", "--cert", cert, "--key", key, "--hash", "sha256", "-o", filepath.Join(dir, "out.sgn"), in}
	}
	noPIN := s.tk.URIWithoutPIN("tftp")
	for _, tt := range []struct {
		name string
		env  string // UCSEC_PKCS11_PIN
		args []string
		want []string
	}{
		{"wrong PIN", "", sign(s.tftp.crt, noPIN+"&pin-source="+wrongPINFile),
			[]string{"pkcs11:token=ucsec;object=tftp?module-path=", "wrong PIN (CKR_PIN_INCORRECT)"}},
		{"wrong PIN from the environment", wrongPIN, sign(s.tftp.crt, noPIN),
			[]string{"pkcs11:token=ucsec;object=tftp?module-path=", "wrong PIN"}},
		{"no PIN", "", sign(s.tftp.crt, noPIN),
			[]string{"pkcs11:token=ucsec;object=tftp", "needs a PIN", "add pin-source=FILE to the URI, or set UCSEC_PKCS11_PIN"}},
		{"pin-value", "", sign(s.tftp.crt, noPIN+"&pin-value="+softhsmtest.PIN),
			[]string{"pkcs11:token=ucsec;object=tftp", "pin-value is refused", "use pin-source"}},
		{"locked token", "", sign(s.tftp.crt, s.locked),
			[]string{"pkcs11:token=locked;object=rsa", "the PIN is locked"}},
		{"missing object", "", sign(s.tftp.crt, s.tk.URI("nosuch")),
			[]string{"pkcs11:token=ucsec;object=nosuch", "no private key matches", "object=tftp;id=%02"}},
		{"secret key", "", sign(s.tftp.crt, s.aes),
			[]string{"pkcs11:token=ucsec;object=aes", "is a secret key (type=secret-key), not a private key"}},
		{"EC key for a trust list", "", []string{"tlv", "build", "--cert", s.capf.crt, "--key", s.capf.uri, "--hash", "sha1", "--record", "sast=" + s.capf.crt, "--itl", "-o", filepath.Join(dir, "ITLFile.tlv")},
			[]string{"must be RSA"}},
		{"EC key to decrypt", "", []string{"cnf", "decrypt", "--cert", s.tftp.crt, "--phone-key", s.capf.uri, "-o", "-", in},
			[]string{"pkcs11:token=ucsec;object=capf: the private key is not RSA and cannot decrypt"}},
		{"key and certificate differ", "", sign(s.sast.crt, s.tftp.uri),
			[]string{"the key in pkcs11:token=ucsec;object=tftp does not match the certificate in " + s.sast.crt}},
		{"no certificate in the token", "", []string{"sgn", "sign", "--key", s.tftp.uri, "--hash", "sha256", in},
			[]string{"missing --cert, and the token has no certificate for the key", "pkcs11:token=ucsec;object=tftp"}},
		{"module path missing", "", sign(s.tftp.crt, "pkcs11:token=ucsec;object=tftp?module-path=/nonexistent/libsofthsm2.so&pin-source="+s.tk.PINFile),
			[]string{"pkcs11:token=ucsec;object=tftp?module-path=/nonexistent/libsofthsm2.so", "cannot load the PKCS #11 module /nonexistent/libsofthsm2.so: no such file"}},
		{"no module", "", sign(s.tftp.crt, "pkcs11:token=ucsec;object=tftp"),
			[]string{"give module-path or module-name in the URI, or set UCSEC_PKCS11_MODULE"}},
		{"malformed URI", "", sign(s.tftp.crt, "pkcs11:token=ucsec;objekt=tftp?pin-value="+softhsmtest.PIN),
			[]string{"pkcs11:token=ucsec;objekt=tftp?...", "malformed PKCS #11 URI"}},
		{"mechanism refused", "", sign(s.nosign.crt, s.nosign.uri),
			[]string{"pkcs11:token=ucsec;object=nosign", "sign: the token refused the operation (CKR_KEY_FUNCTION_NOT_PERMITTED) with CKM_RSA_PKCS"}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Setenv(tokenPINEnv, tt.env)
			r := ucsec(t, "", tt.args...)
			assert.Equal(t, exitError, r.code, r.stderr)
			assert.True(t, strings.HasPrefix(r.stderr, "ucsec: ") && strings.Count(r.stderr, "\n") == 1, "not one line: %q", r.stderr)
			for _, w := range tt.want {
				assert.Contains(t, r.stderr, w)
			}
			for _, secret := range []string{wrongPIN, "pin-value=" + softhsmtest.PIN, "=" + softhsmtest.PIN + "&"} {
				assert.NotContains(t, r.stderr, secret, "the message shows the PIN")
			}
			assert.NoFileExists(t, filepath.Join(dir, "out.sgn"))
			t.Log(r.stderr)
		})
	}
	// The module path in the URI is not a PKCS #11 module.
	notModule := filepath.Join(dir, "libnot.so")
	require.NoError(t, os.WriteFile(notModule, []byte("not a library"), 0o644))
	r := ucsec(t, "", sign(s.tftp.crt, "pkcs11:token=ucsec;object=tftp?module-path="+notModule)...)
	r.check(t, exitError, "", "not a PKCS #11 library")
}
