package tftpd

import (
	"bytes"
	"context"
	"crypto"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/ucsec/ucsec/cnfenc"
	"github.com/ucsec/ucsec/internal/interop"
	"github.com/ucsec/ucsec/internal/testnet"
	"github.com/ucsec/ucsec/sgn"
)

// The real peers: Debian's tftp-hpa client (tftp) and curl fetch from
// the service over TFTP and HTTP, and openssl checks the signatures.

// run runs a peer with a time limit and returns its output.
func run(t testing.TB, name string, args ...string) []byte {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Dir = t.TempDir()
	out, err := cmd.CombinedOutput()
	require.NoError(t, err, "%s %s:\n%s", name, strings.Join(args, " "), out)
	return out
}

// checkSigned verifies a signed file with package sgn and, independently,
// with openssl over the signed bytes.
func checkSigned(t *testing.T, fx *fixture, data []byte, name string, hash crypto.Hash) []byte {
	t.Helper()
	payload := verifySigned(t, data, name, fx.cert, hash)
	f, err := sgn.Parse(data)
	require.NoError(t, err)
	assert.True(t, interop.OpenSSLVerify(t, fx.cert.PublicKey, hash, f.SignedBytes(), f.Signature), "openssl: %s", name)
	return payload
}

func peerFixture(t *testing.T) (*fixture, string) {
	t.Helper()
	interop.Command(t, "openssl", "openssl")
	fx := newFixture(t)
	fx.srv.MaxPerHost = -1
	fx.write(t, "big.bin", bytes.Repeat([]byte("0123456789abcdef"), 1<<16))
	return fx, ""
}

func TestPeerTFTPHPA(t *testing.T) {
	tftpCmd := interop.Command(t, "tftp", "tftp-hpa")
	fx, _ := peerFixture(t)
	addr, _ := serveTFTP(t, fx.srv, "")
	host, port, _ := net.SplitHostPort(addr)
	out := t.TempDir()
	for _, hash := range []crypto.Hash{crypto.SHA1, crypto.SHA512} {
		t.Run(hash.String(), func(t *testing.T) {
			fx2 := newFixture(t)
			fx2.srv.Hash = hash
			addr, _ := serveTFTP(t, fx2.srv, "")
			_, port2, _ := net.SplitHostPort(addr)
			for _, name := range []string{testDevice + ".cnf.xml.sgn", "English_United_States/g3-tones.xml.sgn"} {
				local := filepath.Join(out, hash.String()+filepath.Base(name))
				run(t, tftpCmd, "-v", "-m", "binary", host, port2, "-c", "get", name, local)
				got, err := os.ReadFile(local)
				require.NoError(t, err)
				assert.Equal(t, fx2.read(t, strings.TrimSuffix(name, ".sgn")), checkSigned(t, fx2, got, name, hash))
			}
		})
	}
	// 1 MiB without options (tftp-hpa 5.2 sends none): 512-byte blocks
	local := filepath.Join(out, "big.bin")
	o := run(t, tftpCmd, "-v", "-m", "binary", host, port, "-c", "get", "big.bin", local)
	got, err := os.ReadFile(local)
	require.NoError(t, err)
	assert.Equal(t, fx.read(t, "big.bin"), got, "%s", o)
	rec := fx.record(t, "big.bin")
	assert.Contains(t, rec, "file=big.bin result=ok bytes=1048576")
	assert.Contains(t, rec, "blksize=512")
	assert.NotContains(t, rec, "options=")

	// a missing file: tftp-hpa reports the server's error
	cmd := exec.Command(tftpCmd, "-v", "-m", "binary", host, port, "-c", "get", "missing.xml", filepath.Join(out, "m"))
	msg, _ := cmd.CombinedOutput()
	assert.Contains(t, string(msg), "File not found")
}

func TestPeerCurlTFTP(t *testing.T) {
	curl := interop.Command(t, "curl", "curl")
	fx, _ := peerFixture(t)
	fx.srv.Encrypt = func(dev string) bool { return dev == testDevice }
	fx.srv.PhoneCertificates = staticCerts{testDevice: fx.phone}
	addr, _ := serveTFTP(t, fx.srv, "")
	out := t.TempDir()

	for i, tc := range []struct {
		name    string
		args    []string
		blksize string // the block size the server acknowledged, as logged; "" for no options
	}{
		{"RingList.xml.sgn", nil, "512"},
		{"default.cnf.xml.sgn", []string{"--tftp-blksize", "1428"}, "1428"},
		{"big.bin.sgn", []string{"--tftp-blksize", "1428"}, "1428"},
		{"big.bin", []string{"--tftp-blksize", "8192"}, "8192"},
		{"big.bin", []string{"--tftp-no-options"}, ""},
	} {
		t.Run(fmt.Sprint(i, tc.name), func(t *testing.T) {
			local := filepath.Join(out, fmt.Sprint(i))
			before := fx.records()
			run(t, curl, append(tc.args, "-sS", "-o", local, "tftp://"+addr+"/"+tc.name)...)
			got, err := os.ReadFile(local)
			require.NoError(t, err)
			if src, ok := strings.CutSuffix(tc.name, ".sgn"); ok {
				assert.Equal(t, fx.read(t, src), checkSigned(t, fx, got, tc.name, crypto.SHA1))
			} else {
				assert.Equal(t, fx.read(t, tc.name), got)
			}
			last := waitRecord(t, fx, tc.name, len(before))
			assert.Contains(t, last, "file="+tc.name+" result=ok")
			if tc.blksize == "" {
				assert.NotContains(t, last, "options=")
				return
			}
			// curl asks for tsize and timeout (RFC 2349) and blksize (RFC 2348)
			assert.Contains(t, last, "blksize="+tc.blksize+" options=")
			assert.Regexp(t, fmt.Sprintf(`options="[^"]*tsize=%d\b`, len(got)), last)
			assert.Regexp(t, `options="[^"]*blksize=`+tc.blksize, last)
			assert.Regexp(t, `options="[^"]*timeout=\d+`, last)
		})
	}

	// the phone's side: the short configuration points to the encrypted
	// one, which decrypts with the phone's key
	short := filepath.Join(out, "short")
	run(t, curl, "-sS", "-o", short, "tftp://"+addr+"/"+testDevice+".cnf.xml.sgn")
	b, err := os.ReadFile(short)
	require.NoError(t, err)
	info := checkSigned(t, fx, b, testDevice+".cnf.xml.sgn", crypto.SHA1)
	sc, err := cnfenc.ParseShortConfig(info)
	require.NoError(t, err)
	assert.True(t, sc.CertHashMatches(fx.phone))
	enc := filepath.Join(out, "enc")
	run(t, curl, "-sS", "--tftp-blksize", "1428", "-o", enc, "tftp://"+addr+"/"+testDevice+".cnf.xml.enc.sgn")
	b, err = os.ReadFile(enc)
	require.NoError(t, err)
	f, err := sgn.ParseHeader(b)
	require.NoError(t, err)
	assert.True(t, interop.OpenSSLVerify(t, fx.cert.PublicKey, crypto.SHA1, append(f.RawTBS, b[f.HeaderLength:]...), f.Signature))
	plain, err := cnfenc.Decrypt(b, fx.cert, fx.phoneKy.(crypto.Decrypter))
	require.NoError(t, err)
	assert.Equal(t, fx.read(t, testDevice+".cnf.xml"), plain)

	// the plain configuration of an encrypted device never leaves
	cmd := exec.Command(curl, "-sS", "-o", filepath.Join(out, "x"), "tftp://"+addr+"/"+testDevice+".cnf.xml")
	o, err := cmd.CombinedOutput()
	require.NoError(t, err, "%s", o)
	b, _ = os.ReadFile(filepath.Join(out, "x"))
	assert.NotContains(t, string(b), "authPassword")
	assert.Contains(t, string(b), "<encrConfig>true</encrConfig>")

	// curl reports the server's error for a missing file: exit status 68,
	// CURLE_TFTP_NOTFOUND
	err = exec.Command(curl, "-sS", "-o", filepath.Join(out, "m"), "tftp://"+addr+"/missing").Run()
	var exit *exec.ExitError
	require.ErrorAs(t, err, &exit)
	assert.Equal(t, 68, exit.ExitCode())
}

// waitRecord waits for a record of file after the first n records, and
// returns it.
func waitRecord(t *testing.T, fx *fixture, file string, n int) string {
	t.Helper()
	var rec string
	require.Eventually(t, func() bool {
		recs := fx.records()
		for _, r := range recs[min(n, len(recs)):] {
			if strings.Contains(r, " file="+file+" ") {
				rec = r
			}
		}
		return rec != ""
	}, testnet.Patience(t), 10*time.Millisecond, "no record of %s", file)
	return rec
}

func TestPeerCurlHTTP(t *testing.T) {
	curl := interop.Command(t, "curl", "curl")
	fx, _ := peerFixture(t)
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- fx.srv.ServeHTTPListener(ctx, l) }()
	defer func() { cancel(); assert.NoError(t, <-done) }()
	base := "http://" + l.Addr().String() + "/"
	out := t.TempDir()

	local, etags := filepath.Join(out, "f"), filepath.Join(out, "etag")
	code := run(t, curl, "-sS", "-o", local, "--etag-save", etags, "-w", "%{http_code}", base+testDevice+".cnf.xml.sgn")
	assert.Equal(t, "200", string(code))
	got, err := os.ReadFile(local)
	require.NoError(t, err)
	assert.Equal(t, fx.read(t, testDevice+".cnf.xml"), checkSigned(t, fx, got, testDevice+".cnf.xml.sgn", crypto.SHA1))
	code = run(t, curl, "-sS", "-o", filepath.Join(out, "g"), "--etag-compare", etags, "-w", "%{http_code}", base+testDevice+".cnf.xml.sgn")
	assert.Equal(t, strconv.Itoa(http.StatusNotModified), string(code))

	code = run(t, curl, "-sS", "-o", local, "-w", "%{http_code}", base+"big.bin.sgn")
	assert.Equal(t, "200", string(code))
	got, err = os.ReadFile(local)
	require.NoError(t, err)
	assert.Equal(t, fx.read(t, "big.bin"), checkSigned(t, fx, got, "big.bin.sgn", crypto.SHA1))

	code = run(t, curl, "-sS", "-o", local, "--path-as-is", "-w", "%{http_code}", base+"../../etc/passwd")
	assert.Equal(t, "403", string(code))
}
