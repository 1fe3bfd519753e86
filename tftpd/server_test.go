package tftpd

import (
	"bytes"
	"context"
	"crypto"
	"crypto/x509"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/ucsec/ucsec/capf"
	"github.com/ucsec/ucsec/cnfenc"
	"github.com/ucsec/ucsec/internal/testkeys"
	"github.com/ucsec/ucsec/sgn"
)

// verifySigned checks that data is name signed by cert with hash, and
// returns the payload.
func verifySigned(t *testing.T, data []byte, name string, cert *x509.Certificate, hash crypto.Hash) []byte {
	t.Helper()
	f, err := sgn.Parse(data)
	require.NoError(t, err)
	require.NoError(t, f.CheckSignatureFrom(cert))
	assert.Equal(t, name, f.Filename)
	assert.Equal(t, hash, f.Hash)
	return f.Payload
}

func TestOpenPlainAndSigned(t *testing.T) {
	fx := newFixture(t)
	ctx := context.Background()

	f, err := fx.srv.Open(ctx, "RingList.xml")
	require.NoError(t, err)
	assert.Equal(t, fx.read(t, "RingList.xml"), f.Data)
	assert.False(t, f.Signed || f.Cached || f.Encrypted || f.Stripped)
	assert.Equal(t, "RingList.xml", f.Source)

	// a leading '/' is the root, as tftpd-hpa -s and an HTTP path
	f, err = fx.srv.Open(ctx, "/English_United_States/g3-tones.xml")
	require.NoError(t, err)
	assert.Equal(t, "English_United_States/g3-tones.xml", f.Name)

	for _, name := range []string{"RingList.xml.sgn", "English_United_States/g3-tones.xml.sgn", testDevice + ".cnf.xml.sgn"} {
		f, err = fx.srv.Open(ctx, name)
		require.NoError(t, err, name)
		assert.True(t, f.Signed)
		assert.False(t, f.Cached)
		src := strings.TrimSuffix(name, ".sgn")
		assert.Equal(t, fx.read(t, src), verifySigned(t, f.Data, name, fx.cert, crypto.SHA1), name)
		assert.Equal(t, src, f.Source)

		// again: from the cache, the same bytes
		g, err := fx.srv.Open(ctx, name)
		require.NoError(t, err)
		assert.True(t, g.Cached)
		assert.Equal(t, f.Data, g.Data)
		assert.Equal(t, f.ETag(), g.ETag())
	}
	st := fx.srv.Stats()
	assert.Equal(t, uint64(3), st.Signatures)
	assert.Equal(t, uint64(3), st.CacheHits)
	assert.Equal(t, 3, st.CacheEntries)

	// a signed file in the root is served as it is
	fx.write(t, "Given.xml.sgn", []byte("not even a signed file"))
	fx.write(t, "Given.xml", []byte("x"))
	f, err = fx.srv.Open(ctx, "Given.xml.sgn")
	require.NoError(t, err)
	assert.Equal(t, "not even a signed file", string(f.Data))
	assert.False(t, f.Signed)

	for _, name := range []string{"Missing.xml", "Missing.xml.sgn", ".sgn", "English_United_States/.sgn", "RingList.xml.sgn.sgn.sgn"} {
		_, err = fx.srv.Open(ctx, name)
		assert.ErrorIs(t, err, ErrNotFound, name)
	}
	// one level of signing only: RingList.xml.sgn.sgn signs the made RingList.xml.sgn? No: only files of the root are signed.
	_, err = fx.srv.Open(ctx, "RingList.xml.sgn.sgn")
	assert.ErrorIs(t, err, ErrNotFound)
}

// A source that changes is signed again; the old signature is never
// served.
func TestOpenResignsChangedSource(t *testing.T) {
	fx := newFixture(t)
	ctx := context.Background()
	first, err := fx.srv.Open(ctx, "RingList.xml.sgn")
	require.NoError(t, err)
	for i, write := range []func(testing.TB, string, []byte){fx.replace, fx.write} {
		content := []byte(strings.Repeat("<x/>", i+2))
		write(t, "RingList.xml", content)
		f, err := fx.srv.Open(ctx, "RingList.xml.sgn")
		require.NoError(t, err)
		assert.False(t, f.Cached)
		assert.Equal(t, content, verifySigned(t, f.Data, "RingList.xml.sgn", fx.cert, crypto.SHA1))
		assert.NotEqual(t, first.ETag(), f.ETag())
	}
	assert.Equal(t, uint64(3), fx.srv.Stats().Signatures)
	assert.Equal(t, 1, fx.srv.Stats().CacheEntries, "older versions are dropped")
}

func TestOpenSHA512AndNoSigner(t *testing.T) {
	fx := newFixture(t)
	fx.srv.Hash = crypto.SHA512
	f, err := fx.srv.Open(context.Background(), "RingList.xml.sgn")
	require.NoError(t, err)
	verifySigned(t, f.Data, "RingList.xml.sgn", fx.cert, crypto.SHA512)

	// without a signer nothing is signed, and the rest is served
	plain := &Server{Root: fx.root}
	_, err = plain.Open(context.Background(), "RingList.xml.sgn")
	assert.ErrorIs(t, err, ErrNotFound)
	f, err = plain.Open(context.Background(), testDevice+".cnf.xml")
	require.NoError(t, err)
	assert.Equal(t, fx.read(t, testDevice+".cnf.xml"), f.Data)
}

// 32 requests for one cold file make one signature.
func TestOpenSingleFlight(t *testing.T) {
	fx := newFixture(t)
	var wg sync.WaitGroup
	datas := make([][]byte, 32)
	for i := range datas {
		wg.Go(func() {
			f, err := fx.srv.Open(context.Background(), testDevice+".cnf.xml.sgn")
			if assert.NoError(t, err) {
				datas[i] = f.Data
			}
		})
	}
	wg.Wait()
	assert.Equal(t, uint64(1), fx.srv.Stats().Signatures)
	for _, d := range datas {
		assert.Equal(t, datas[0], d)
	}
}

// The cache keeps at most MaxCacheBytes, least recently used out; with
// no cache, every request signs.
func TestOpenCacheBound(t *testing.T) {
	fx := newFixture(t)
	for i := range 8 {
		fx.write(t, "f"+string(rune('0'+i)), bytes.Repeat([]byte{'a'}, 1000))
	}
	fx.srv.MaxCacheBytes = 3000 // two signed files of about 1,400 bytes
	ctx := context.Background()
	for i := range 8 {
		_, err := fx.srv.Open(ctx, "f"+string(rune('0'+i))+".sgn")
		require.NoError(t, err)
	}
	st := fx.srv.Stats()
	assert.LessOrEqual(t, st.CacheBytes, int64(3000))
	assert.Equal(t, 2, st.CacheEntries)
	f, err := fx.srv.Open(ctx, "f7.sgn")
	require.NoError(t, err)
	assert.True(t, f.Cached)
	f, err = fx.srv.Open(ctx, "f0.sgn")
	require.NoError(t, err)
	assert.False(t, f.Cached)

	none := &Server{Root: fx.root, Certificate: fx.cert, Key: fx.key, MaxCacheBytes: -1}
	for range 2 {
		f, err := none.Open(ctx, "f0.sgn")
		require.NoError(t, err)
		assert.False(t, f.Cached)
	}
	assert.Equal(t, uint64(2), none.Stats().Signatures)
}

func TestOpenTrustLists(t *testing.T) {
	fx := newFixture(t)
	ctx := context.Background()
	itlBytes := testkeys.Vector(t, "ITLFile.tlv")
	ctlBytes := testkeys.Vector(t, "CTLFile-sha512-v1.1.tlv")

	// no list configured or in the root
	for _, name := range []string{ITLName, CTLName, "ITLSEP001122334455.tlv"} {
		_, err := fx.srv.Open(ctx, name)
		assert.ErrorIs(t, err, ErrNotFound, name)
	}

	// lists in the root are served under the per-device names too
	fx.write(t, ITLName, itlBytes)
	for _, name := range []string{ITLName, "ITLSEP001122334455.tlv", "ITLCSFJSMITH.tlv"} {
		f, err := fx.srv.Open(ctx, name)
		require.NoError(t, err, name)
		assert.Equal(t, itlBytes, f.Data)
		assert.Equal(t, ITLName, f.Source)
		assert.False(t, f.Signed)
	}
	_, err := fx.srv.Open(ctx, "CTLSEP001122334455.tlv")
	assert.ErrorIs(t, err, ErrNotFound)
	// a per-device file in the root wins
	fx.write(t, "ITLSEPAABBCCDDEEFF.tlv", []byte("own"))
	f, err := fx.srv.Open(ctx, "ITLSEPAABBCCDDEEFF.tlv")
	require.NoError(t, err)
	assert.Equal(t, "own", string(f.Data))

	// configured lists win over the root's
	srv := &Server{Root: fx.root, ITL: ctlBytes, CTL: ctlBytes}
	for _, name := range []string{ITLName, CTLName, "ITLSEP001122334455.tlv", "CTLSEP001122334455.tlv"} {
		f, err := srv.Open(ctx, name)
		require.NoError(t, err, name)
		assert.Equal(t, ctlBytes, f.Data, name)
		assert.Empty(t, f.Source)
	}
	// a list that does not parse is a configuration error
	bad := &Server{Root: fx.root, ITL: []byte("junk")}
	_, err = bad.Open(ctx, ITLName)
	assert.ErrorIs(t, err, ErrConfig)
}

func TestOpenExcludeDigest(t *testing.T) {
	fx := newFixture(t)
	fx.srv.ExcludeDigest = true
	ctx := context.Background()
	full := fx.read(t, testDevice+".cnf.xml")
	want, n, err := cnfenc.ExcludeDigestCredentials(full)
	require.NoError(t, err)
	require.Positive(t, n)

	f, err := fx.srv.Open(ctx, testDevice+".cnf.xml")
	require.NoError(t, err)
	assert.Equal(t, want, f.Data)
	assert.True(t, f.Stripped)
	assert.NotContains(t, string(f.Data), "secret")

	f, err = fx.srv.Open(ctx, testDevice+".cnf.xml.sgn")
	require.NoError(t, err)
	assert.True(t, f.Stripped && f.Signed)
	assert.Equal(t, want, verifySigned(t, f.Data, testDevice+".cnf.xml.sgn", fx.cert, crypto.SHA1))

	// other files are untouched
	f, err = fx.srv.Open(ctx, "RingList.xml")
	require.NoError(t, err)
	assert.False(t, f.Stripped)

	// a configuration that is not XML is not served at all
	fx.write(t, "SEPBAD000000000.cnf.xml", []byte("<device><authPassword>x</authPassword>"))
	for _, name := range []string{"SEPBAD000000000.cnf.xml", "SEPBAD000000000.cnf.xml.sgn"} {
		_, err = fx.srv.Open(ctx, name)
		assert.ErrorIs(t, err, ErrUnavailable, name)
	}
}

// failingCerts is a phone-certificate source that is down.
type failingCerts struct{}

func (failingCerts) PhoneCertificate(context.Context, string) (*x509.Certificate, error) {
	return nil, errors.New("store down")
}

func TestOpenEncrypted(t *testing.T) {
	for _, source := range []string{"capf", "dir"} {
		t.Run(source, func(t *testing.T) {
			fx := newFixture(t)
			ctx := context.Background()
			store := capf.NewMemoryStore()
			certDir := t.TempDir()
			certRoot, err := os.OpenRoot(certDir)
			require.NoError(t, err)
			defer certRoot.Close()
			// setCert gives the device a certificate for key and returns it
			setCert := func(cert *x509.Certificate, key crypto.Signer) *x509.Certificate {
				if source == "dir" {
					writePEM(t, filepath.Join(certDir, testDevice+".pem"), cert.Raw)
					return cert
				}
				return enroll(t, store, testDevice, key)
			}
			if source == "capf" {
				fx.srv.PhoneCertificates = CAPFCertificates{Store: store}
			} else {
				fx.srv.PhoneCertificates = CertDirectory{Root: certRoot}
			}
			fx.srv.Encrypt = EncryptAll
			full := fx.read(t, testDevice+".cnf.xml")

			// no certificate yet: the configuration without credentials
			for _, name := range []string{testDevice + ".cnf.xml", testDevice + ".cnf.xml.sgn"} {
				f, err := fx.srv.Open(ctx, name)
				require.NoError(t, err)
				assert.True(t, f.Stripped, name)
				assert.False(t, f.Encrypted, name)
				assert.NotContains(t, string(f.Data), "secret")
			}
			_, err = fx.srv.Open(ctx, testDevice+".cnf.xml.enc.sgn")
			assert.ErrorIs(t, err, ErrNotFound)

			phone := setCert(fx.phone, fx.phoneKy)
			enc, err := fx.srv.Open(ctx, testDevice+".cnf.xml.enc.sgn")
			require.NoError(t, err)
			assert.True(t, enc.Encrypted && enc.Signed)
			plain, err := cnfenc.Decrypt(enc.Data, fx.cert, fx.phoneKy.(crypto.Decrypter))
			require.NoError(t, err)
			assert.Equal(t, full, plain, "the encrypted configuration keeps its credentials")

			short, err := fx.srv.Open(ctx, testDevice+".cnf.xml.sgn")
			require.NoError(t, err)
			payload := verifySigned(t, short.Data, testDevice+".cnf.xml.sgn", fx.cert, crypto.SHA1)
			assert.Contains(t, string(payload), "<encrConfig>true</encrConfig>")
			assert.Contains(t, string(payload), cnfenc.CertHash(phone))
			assert.NotContains(t, string(payload), "secret")

			// the plain name gets the short configuration, unsigned
			f, err := fx.srv.Open(ctx, testDevice+".cnf.xml")
			require.NoError(t, err)
			assert.Equal(t, payload, f.Data)
			assert.False(t, f.Signed)

			// cached until something changes
			again, err := fx.srv.Open(ctx, testDevice+".cnf.xml.enc.sgn")
			require.NoError(t, err)
			assert.True(t, again.Cached)
			assert.Equal(t, enc.Data, again.Data)
			assert.Equal(t, uint64(1), fx.srv.Stats().Encryptions)

			// a new LSC: a fresh encryption, to it
			newPhone, newKey := testkeys.Load(t, "sast")
			newPhone = setCert(newPhone, newKey)
			enc2, err := fx.srv.Open(ctx, testDevice+".cnf.xml.enc.sgn")
			require.NoError(t, err)
			assert.False(t, enc2.Cached)
			plain, err = cnfenc.Decrypt(enc2.Data, fx.cert, newKey.(crypto.Decrypter))
			require.NoError(t, err)
			assert.Equal(t, full, plain)
			_, err = cnfenc.Decrypt(enc2.Data, fx.cert, fx.phoneKy.(crypto.Decrypter))
			assert.Error(t, err, "the old key no longer decrypts")
			short, err = fx.srv.Open(ctx, testDevice+".cnf.xml.sgn")
			require.NoError(t, err)
			assert.Contains(t, string(short.Data), cnfenc.CertHash(newPhone))

			// a changed configuration: a fresh encryption
			fx.replace(t, testDevice+".cnf.xml", phoneConfig(2000))
			enc3, err := fx.srv.Open(ctx, testDevice+".cnf.xml.enc.sgn")
			require.NoError(t, err)
			plain, err = cnfenc.Decrypt(enc3.Data, fx.cert, newKey.(crypto.Decrypter))
			require.NoError(t, err)
			assert.Equal(t, phoneConfig(2000), plain)

			// devices the policy leaves out are served as usual
			fx.srv.Encrypt = func(dev string) bool { return dev == testDevice }
			f, err = fx.srv.Open(ctx, "default.cnf.xml")
			require.NoError(t, err)
			assert.False(t, f.Stripped)
		})
	}
}

func TestOpenEncryptedFailsClosed(t *testing.T) {
	fx := newFixture(t)
	fx.srv.Encrypt = EncryptAll
	fx.srv.PhoneCertificates = failingCerts{}
	for _, suffix := range []string{".cnf.xml", ".cnf.xml.sgn", ".cnf.xml.enc.sgn"} {
		_, err := fx.srv.Open(context.Background(), testDevice+suffix)
		assert.ErrorIs(t, err, ErrUnavailable, suffix)
	}
	// an EC phone certificate cannot be encrypted to
	ec, _ := testkeys.Load(t, "tftp-ec-p384")
	fx2 := newFixture(t)
	fx2.srv.Encrypt = EncryptAll
	fx2.srv.PhoneCertificates = staticCerts{testDevice: ec}
	_, err := fx2.srv.Open(context.Background(), testDevice+".cnf.xml.enc.sgn")
	assert.ErrorIs(t, err, ErrUnavailable)
	assert.ErrorIs(t, err, cnfenc.ErrUnsupportedKey)
}

type staticCerts map[string]*x509.Certificate

func (s staticCerts) PhoneCertificate(_ context.Context, dev string) (*x509.Certificate, error) {
	return s[dev], nil
}

func TestOpenNames(t *testing.T) {
	fx := newFixture(t)
	outside := t.TempDir()
	require.NoError(t, os.WriteFile(filepath.Join(outside, "secret"), []byte("SECRET"), 0o644))
	require.NoError(t, os.Symlink(filepath.Join(outside, "secret"), filepath.Join(fx.dir, "abs-link")))
	rel, err := filepath.Rel(fx.dir, filepath.Join(outside, "secret"))
	require.NoError(t, err)
	require.NoError(t, os.Symlink(rel, filepath.Join(fx.dir, "rel-link")))
	require.NoError(t, os.Symlink(rel, filepath.Join(fx.dir, "rel-link.xml")))
	require.NoError(t, os.Symlink("RingList.xml", filepath.Join(fx.dir, "inside-link")))
	require.NoError(t, os.Symlink(outside, filepath.Join(fx.dir, "dir-link")))
	require.NoError(t, syscall.Mkfifo(filepath.Join(fx.dir, "fifo"), 0o644))
	ctx := context.Background()

	for name, want := range map[string]error{
		"":                                      ErrForbidden,
		"/":                                     ErrForbidden,
		"//etc/passwd":                          ErrForbidden,
		"../secret":                             ErrForbidden,
		"English_United_States/../RingList.xml": ErrForbidden,
		"./RingList.xml":                        ErrForbidden,
		"RingList.xml/":                         ErrForbidden,
		"a//b":                                  ErrForbidden,
		"RingList.xml\x00.sgn":                  ErrForbidden,
		"..\\secret":                            ErrForbidden,
		"C:\\secret":                            ErrForbidden,
		"Ring\nList.xml":                        ErrForbidden,
		"Ring\x7fList.xml":                      ErrForbidden,
		"\xff\xfe":                              ErrForbidden,
		strings.Repeat("a", 256):                ErrForbidden,
		"abs-link":                              ErrForbidden,
		"rel-link":                              ErrForbidden,
		"rel-link.xml.sgn":                      ErrForbidden,
		"dir-link/secret":                       ErrForbidden,
		"fifo":                                  ErrForbidden,
		"fifo.sgn":                              ErrForbidden,
		"English_United_States":                 ErrForbidden,
		"RingList.xml/x":                        ErrNotFound,
		"/etc/passwd":                           ErrNotFound, // the root's etc/passwd: there is none
		"nothing":                               ErrNotFound,
	} {
		f, err := fx.srv.Open(ctx, name)
		assert.ErrorIs(t, err, want, "%q", name)
		assert.Nil(t, f)
	}
	f, err := fx.srv.Open(ctx, "inside-link")
	require.NoError(t, err)
	assert.Equal(t, fx.read(t, "RingList.xml"), f.Data)
	assert.NotContains(t, fx.logs.String(), "SECRET")
}

func TestOpenTooLarge(t *testing.T) {
	fx := newFixture(t)
	fx.srv.MaxFileSize = 100
	_, err := fx.srv.Open(context.Background(), testDevice+".cnf.xml")
	assert.ErrorIs(t, err, ErrTooLarge)
	_, err = fx.srv.Open(context.Background(), testDevice+".cnf.xml.sgn")
	assert.ErrorIs(t, err, ErrTooLarge)
}

func TestConfigErrors(t *testing.T) {
	fx := newFixture(t)
	other, otherKey := testkeys.Load(t, "sast")
	ec, ecKey := testkeys.Load(t, "tftp-ec-p384")
	for name, srv := range map[string]*Server{
		"no root":        {},
		"cert, no key":   {Root: fx.root, Certificate: fx.cert},
		"wrong key":      {Root: fx.root, Certificate: fx.cert, Key: otherKey},
		"ec signer":      {Root: fx.root, Certificate: ec, Key: ecKey},
		"md5":            {Root: fx.root, Certificate: other, Key: otherKey, Hash: crypto.MD5},
		"encrypt only":   {Root: fx.root, Encrypt: EncryptAll, PhoneCertificates: staticCerts{}},
		"no phone certs": {Root: fx.root, Certificate: fx.cert, Key: fx.key, Encrypt: EncryptAll},
		"block size":     {Root: fx.root, MaxBlockSize: 100},
		"negative":       {Root: fx.root, TransferTimeout: -time.Second},
	} {
		_, err := srv.Open(context.Background(), "RingList.xml")
		assert.ErrorIs(t, err, ErrConfig, name)
	}
}

func TestCleanName(t *testing.T) {
	for in, want := range map[string]string{
		"SEP001122334455.cnf.xml":      "SEP001122334455.cnf.xml",
		"/Desktops/320x196x4/List.xml": "Desktops/320x196x4/List.xml",
		"with space.xml":               "with space.xml",
		"Ünïcode.xml":                  "Ünïcode.xml",
	} {
		got, err := CleanName(in)
		require.NoError(t, err, in)
		assert.Equal(t, want, got)
	}
	for _, in := range []string{"a\u0085b", "a\\b", "..", "a/./b"} {
		_, err := CleanName(in)
		assert.ErrorIs(t, err, ErrForbidden, "%q", in)
	}
}

func TestDeviceAndTrustListNames(t *testing.T) {
	for name, want := range map[string][2]string{
		"SEP001122334455.cnf.xml":         {"SEP001122334455", configSuffix},
		"SEP001122334455.cnf.xml.sgn":     {"SEP001122334455", shortSuffix},
		"SEP001122334455.cnf.xml.enc.sgn": {"SEP001122334455", encSuffix},
		"default.cnf.xml":                 {"default", configSuffix},
		"dir/SEP001122334455.cnf.xml":     {},
		".cnf.xml":                        {},
		"SEP001122334455.cnf.xml.enc":     {},
	} {
		dev, suf, ok := deviceConfig(name)
		assert.Equal(t, want[0] != "", ok, name)
		assert.Equal(t, want, [2]string{dev, suf}, name)
	}
	for name, want := range map[string]string{
		"ITLFile.tlv":            ITLName,
		"CTLFile.tlv":            CTLName,
		"ITLSEP001122334455.tlv": ITLName,
		"CTLSEP001122334455.tlv": CTLName,
		"ITL.tlv":                "",
		"XTLSEP001122334455.tlv": "",
		"dir/ITLFile.tlv":        "",
		"ITLa/b.tlv":             "",
	} {
		g, _, ok := trustList(name)
		assert.Equal(t, want != "", ok, name)
		assert.Equal(t, want, g, name)
	}
}
