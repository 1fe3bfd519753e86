package main

import (
	"bytes"
	"context"
	"crypto"
	"crypto/x509"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
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

// runPeer runs a peer command within a time limit and returns its output.
func runPeer(t *testing.T, name string, args ...string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), testnet.Patience(t))
	defer cancel()
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Dir = t.TempDir()
	out, err := cmd.CombinedOutput()
	require.NoError(t, err, "%s %s:\n%s", name, strings.Join(args, " "), out)
	return string(out)
}

const (
	tftpListeningPrefix = "tftp: listening on tftp "
	httpListeningPrefix = "tftp: listening on http "
	plainDevice         = "SEPAABBCCDDEEFF" // a phone whose configuration is signed, not encrypted
	encDevice           = "SEP001122334455" // the phone of device.pem, whose configuration is encrypted
)

// startTFTP runs "tftp serve --root root" with args in-process on
// loopback and returns its TFTP and HTTP addresses and its standard
// error.
func startTFTP(t *testing.T, root string, args ...string) (tftpAddr, httpAddr string, stderr *testnet.Log) {
	t.Helper()
	argv := append([]string{"tftp", "serve", "--root", root, "--tftp", "127.0.0.1:0", "--http", "127.0.0.1:0"}, args...)
	tftpAddr, stderr, _ = startServe(t, root, tftpListeningPrefix, argv...)
	// printed before either service starts, right after the TFTP line
	for _, line := range strings.Split(stderr.String(), "\n") {
		if a, ok := strings.CutPrefix(line, httpListeningPrefix); ok {
			httpAddr = a
		}
	}
	require.NotEmpty(t, httpAddr, "%s", stderr)
	return tftpAddr, httpAddr, stderr
}

// tftpRecord waits for the transfer record of file in the log and
// returns the last one.
func tftpRecord(t *testing.T, log *testnet.Log, file string) string {
	t.Helper()
	var rec string
	require.Eventually(t, func() bool {
		for _, l := range strings.Split(log.String(), "\n") {
			if strings.Contains(l, `msg="tftpd: transfer"`) && strings.Contains(l, " file="+file+" ") {
				rec = l
			}
		}
		return rec != ""
	}, testnet.Patience(t), 10*time.Millisecond, "no record of %s in\n%s", file, log)
	return rec
}

// checkSignedFile verifies a fetched signed file with package sgn and,
// independently, with openssl over the signed bytes, and returns its
// payload.
func checkSignedFile(t *testing.T, data []byte, signer *x509.Certificate) []byte {
	t.Helper()
	f, err := sgn.Parse(data)
	require.NoError(t, err)
	require.NoError(t, f.CheckSignatureFrom(signer))
	assert.True(t, interop.OpenSSLVerify(t, signer.PublicKey, f.Hash, f.SignedBytes(), f.Signature), "openssl")
	return f.Payload
}

// tftpServeRoot writes the directory the tests serve: a ring list, the
// configurations of two phones, a 1 MiB file, the certificate of the
// phone whose configuration is encrypted, and an ITL.
func tftpServeRoot(t *testing.T) (root, certs, itlFile string) {
	t.Helper()
	dir := t.TempDir()
	root, certs = filepath.Join(dir, "root"), filepath.Join(dir, "certs")
	require.NoError(t, os.MkdirAll(root, 0o755))
	require.NoError(t, os.MkdirAll(certs, 0o755))
	config := mustRead(t, plainXML)
	writeTemp(t, root, "RingList.xml", []byte("<CiscoIPPhoneRingList></CiscoIPPhoneRingList>\n"))
	writeTemp(t, root, plainDevice+".cnf.xml", config)
	writeTemp(t, root, encDevice+".cnf.xml", config)
	big := make([]byte, 1<<20)
	for i := range big {
		big[i] = byte(i * 13)
	}
	writeTemp(t, root, "big.bin", big)
	copyFile(t, devicePEM, certs) // device.pem: its certificate
	require.NoError(t, os.Rename(filepath.Join(certs, "device.pem"), filepath.Join(certs, encDevice+".pem")))
	itlFile = filepath.Join(dir, "ITLFile.tlv")
	mustRun(t, exitOK, append(buildArgs("--itl", "--record", "ccm+tftp="+tftpPEM), "-o", itlFile)...)
	return root, certs, itlFile
}

// "tftp serve" serves signed files, trust lists and an encrypted
// configuration to Debian's tftp-hpa client and to curl, over TFTP and
// HTTP; blksize and tsize are negotiated with curl (tftp-hpa 5.2 sends no
// options, and gets RFC 1350's 512-byte blocks).
func TestTFTPServePeers(t *testing.T) {
	tftpCmd := interop.Command(t, "tftp", "tftp-hpa")
	curl := interop.Command(t, "curl", "curl")
	interop.Command(t, "openssl", "openssl")
	root, certs, itlFile := tftpServeRoot(t)
	signer, _ := loadTestCert(t, tftpPEM)
	tftpAddr, httpAddr, log := startTFTP(t, root, "--cert", tftpPEM, "--key", tftpPEM, "--hash", "sha1",
		"--phone-certs", certs, "--itl", itlFile)
	host, port, err := net.SplitHostPort(tftpAddr)
	require.NoError(t, err)
	out := t.TempDir()
	config := mustRead(t, plainXML)

	t.Run("tftp-hpa", func(t *testing.T) {
		for _, name := range []string{plainDevice + ".cnf.xml.sgn", "RingList.xml.sgn", "big.bin"} {
			local := filepath.Join(out, "hpa-"+name)
			runPeer(t, tftpCmd, "-m", "binary", host, port, "-c", "get", name, local)
			got := mustRead(t, local)
			switch name {
			case "big.bin":
				assert.Equal(t, mustRead(t, filepath.Join(root, name)), got)
			default:
				assert.Equal(t, mustRead(t, filepath.Join(root, strings.TrimSuffix(name, ".sgn"))), checkSignedFile(t, got, signer))
			}
			rec := tftpRecord(t, log, name)
			assert.Contains(t, rec, "result=ok")
			assert.Contains(t, rec, "blksize=512")
			assert.NotContains(t, rec, "options=")
		}
		local := filepath.Join(out, "hpa-ITL")
		runPeer(t, tftpCmd, "-m", "binary", host, port, "-c", "get", "ITL"+plainDevice+".tlv", local)
		assert.Equal(t, mustRead(t, itlFile), mustRead(t, local))
	})

	t.Run("curl-tftp", func(t *testing.T) {
		for i, tc := range []struct {
			name, blksize string
		}{
			{plainDevice + ".cnf.xml.sgn", "1428"},
			{"big.bin", "1428"},
			{"big.bin", "8192"},
		} {
			local := filepath.Join(out, fmt.Sprint("curl-", i))
			before := len(log.String())
			runPeer(t, curl, "-sS", "--tftp-blksize", tc.blksize, "-o", local, "tftp://"+tftpAddr+"/"+tc.name)
			got := mustRead(t, local)
			if src, ok := strings.CutSuffix(tc.name, ".sgn"); ok {
				assert.Equal(t, mustRead(t, filepath.Join(root, src)), checkSignedFile(t, got, signer))
			} else {
				assert.Equal(t, mustRead(t, filepath.Join(root, tc.name)), got)
			}
			var rec string
			require.Eventually(t, func() bool {
				rec = ""
				for _, l := range strings.Split(log.String()[before:], "\n") {
					if strings.Contains(l, " file="+tc.name+" ") {
						rec = l
					}
				}
				return rec != ""
			}, testnet.Patience(t), 10*time.Millisecond)
			// RFC 2348 blksize and RFC 2349 tsize, acknowledged
			assert.Contains(t, rec, "result=ok")
			assert.Contains(t, rec, "blksize="+tc.blksize+" ")
			assert.Regexp(t, regexp.MustCompile(`options="blksize=`+tc.blksize+` timeout=\d+ tsize=`+strconv.Itoa(len(got))+`"`), rec)
		}
	})

	t.Run("curl-http", func(t *testing.T) {
		local, etags := filepath.Join(out, "http"), filepath.Join(out, "etags")
		code := runPeer(t, curl, "-sS", "-o", local, "--etag-save", etags, "-w", "%{http_code}", "http://"+httpAddr+"/"+plainDevice+".cnf.xml.sgn")
		assert.Equal(t, "200", code)
		assert.Equal(t, config, checkSignedFile(t, mustRead(t, local), signer))
		code = runPeer(t, curl, "-sS", "-o", filepath.Join(out, "http2"), "--etag-compare", etags, "-w", "%{http_code}", "http://"+httpAddr+"/"+plainDevice+".cnf.xml.sgn")
		assert.Equal(t, "304", code)
		code = runPeer(t, curl, "-sS", "-o", local, "-w", "%{http_code}", "http://"+httpAddr+"/CTLSEPAABBCCDDEEFF.tlv")
		assert.Equal(t, "404", code, "no CTL given")
		code = runPeer(t, curl, "-sS", "--path-as-is", "-o", local, "-w", "%{http_code}", "http://"+httpAddr+"/../../etc/passwd")
		assert.Equal(t, "403", code)
	})

	// The phone's side of an encrypted configuration: the short signed
	// configuration names the phone's certificate; the encrypted one
	// decrypts with the phone's key ("cnf decrypt", as a phone does).
	t.Run("encrypted", func(t *testing.T) {
		short := filepath.Join(out, encDevice+".cnf.xml.sgn")
		runPeer(t, tftpCmd, "-m", "binary", host, port, "-c", "get", encDevice+".cnf.xml.sgn", short)
		sc, err := cnfenc.ParseShortConfig(checkSignedFile(t, mustRead(t, short), signer))
		require.NoError(t, err)
		phone, _ := loadTestCert(t, devicePEM)
		assert.True(t, sc.CertHashMatches(phone))

		enc := filepath.Join(out, encDevice+".cnf.xml.enc.sgn")
		runPeer(t, curl, "-sS", "--tftp-blksize", "1428", "-o", enc, "tftp://"+tftpAddr+"/"+encDevice+".cnf.xml.enc.sgn")
		plain := filepath.Join(out, "decrypted.xml")
		mustRun(t, exitOK, "cnf", "decrypt", "--cert", tftpPEM, "--phone-key", devicePEM, "-o", plain, enc)
		assert.Equal(t, config, mustRead(t, plain))
		rec := tftpRecord(t, log, encDevice+".cnf.xml.enc.sgn")
		assert.Contains(t, rec, "signed=true encrypted=true")

		// the plain configuration never leaves, under any name
		for _, get := range []func(string) []byte{
			func(local string) []byte {
				runPeer(t, tftpCmd, "-m", "binary", host, port, "-c", "get", encDevice+".cnf.xml", local)
				return mustRead(t, local)
			},
			func(local string) []byte {
				runPeer(t, curl, "-sS", "-o", local, "http://"+httpAddr+"/"+encDevice+".cnf.xml")
				return mustRead(t, local)
			},
		} {
			got := get(filepath.Join(out, "plain"))
			assert.NotContains(t, string(got), "authPassword")
			assert.Contains(t, string(got), "<encrConfig>true</encrConfig>")
		}
		assert.NotContains(t, log.String(), "authPassword")
	})

	// a missing file: both clients report the server's error
	o, err := exec.Command(tftpCmd, "-m", "binary", host, port, "-c", "get", "missing.xml", filepath.Join(out, "m")).CombinedOutput()
	assert.Contains(t, string(o), "File not found", "%v", err)
	err = exec.Command(curl, "-sS", "-o", filepath.Join(out, "m"), "tftp://"+tftpAddr+"/missing.xml").Run()
	var exit *exec.ExitError
	require.ErrorAs(t, err, &exit)
	assert.Equal(t, 68, exit.ExitCode(), "CURLE_TFTP_NOTFOUND")
}

// loadTestCert reads the first certificate of a PEM file.
func loadTestCert(t *testing.T, path string) (*x509.Certificate, crypto.PublicKey) {
	t.Helper()
	cert, err := loadCertificate(path)
	require.NoError(t, err)
	return cert, cert.PublicKey
}

// A configuration changed while the service runs is signed again at
// its next request; without a signer nothing is signed.
func TestTFTPServeResignAndPlain(t *testing.T) {
	root, _, _ := tftpServeRoot(t)
	signer, _ := loadTestCert(t, tftpPEM)
	_, httpAddr, log := startTFTP(t, root, "--cert", tftpPEM, "--key", tftpPEM, "--hash", "sha512", "--exclude-digest")
	get := func(name string) []byte {
		t.Helper()
		r := httpFetch(t, "http://"+httpAddr+"/"+name)
		return r
	}
	first := checkSignedFile(t, get(plainDevice+".cnf.xml.sgn"), signer)
	assert.NotContains(t, string(first), "authPassword", "--exclude-digest")
	writeTemp(t, root, plainDevice+".cnf.xml", bytes.Replace(mustRead(t, plainXML), []byte("<device"), []byte("<!-- v2 -->\n<device"), 1))
	second := checkSignedFile(t, get(plainDevice+".cnf.xml.sgn"), signer)
	assert.Contains(t, string(second), "<!-- v2 -->")
	f, err := sgn.Parse(get(plainDevice + ".cnf.xml.sgn"))
	require.NoError(t, err)
	assert.Equal(t, crypto.SHA512, f.Hash)
	assert.Contains(t, log.String(), "cached=true")

	// no signer: files as they are, no .sgn made
	root2, _, _ := tftpServeRoot(t)
	_, httpAddr2, _ := startTFTP(t, root2)
	assert.Equal(t, mustRead(t, filepath.Join(root2, "RingList.xml")), httpFetch(t, "http://"+httpAddr2+"/RingList.xml"))
	httpFetchStatus(t, "http://"+httpAddr2+"/RingList.xml.sgn", 404)
}

func TestTFTPServeUsage(t *testing.T) {
	root, certs, _ := tftpServeRoot(t)
	for _, tc := range []struct {
		args []string
		msg  string
	}{
		{nil, "missing --root"},
		{[]string{"--root", root, "--tftp", "", "--http", ""}, "nothing to serve on"},
		{[]string{"--root", root, "--cert", tftpPEM, "--key", tftpPEM}, "missing --hash"},
		{[]string{"--root", root, "--cert", tftpPEM, "--key", tftpPEM, "--hash", "md5"}, `unknown --hash "md5"`},
		{[]string{"--root", root, "--hash", "sha1"}, "--hash without --cert"},
		{[]string{"--root", root, "--phone-certs", certs}, "needs the TFTP signer"},
		{[]string{"--root", root, "--encrypt", encDevice}, "--encrypt needs --phone-certs"},
		{[]string{"--root", root, "--phone-certs", certs, "--capf-store", certs}, "not both"},
		{[]string{"--root", root, "--max-blksize", "100"}, "--max-blksize"},
		{[]string{"--root", root, "--max-per-host", "-1"}, "--max-per-host"},
		{[]string{"--root", root, "--capf-store", "redis://x", "--cert", tftpPEM, "--key", tftpPEM, "--hash", "sha1"}, "--capf-store redis://"},
	} {
		r := ucsec(t, "", append([]string{"tftp", "serve"}, tc.args...)...)
		r.check(t, exitError, "", tc.msg)
	}
	for _, tc := range []struct {
		args []string
		msg  string
	}{
		{[]string{"--root", filepath.Join(root, "nosuch")}, "no such file"},
		{[]string{"--root", filepath.Join(root, "RingList.xml")}, "is not a directory"},
		{[]string{"--root", root, "--cert", ecPEM, "--key", ecPEM, "--hash", "sha1"}, "not RSA"},
		{[]string{"--root", root, "--cert", tftpPEM, "--key", tftpPEM, "--hash", "sha1", "--itl", plainXML}, "ITLFile.tlv"},
		{[]string{"--root", root, "--cert", tftpPEM, "--key", tftpPEM, "--hash", "sha1", "--capf-store", certs}, "capf.db"},
	} {
		r := ucsec(t, "", append([]string{"tftp", "serve", "--tftp", "127.0.0.1:0", "--http", "127.0.0.1:0"}, tc.args...)...)
		assert.NotEqual(t, exitOK, r.code, "%v", tc.args)
		assert.Contains(t, r.stderr, tc.msg, "%v", tc.args)
	}
}

// httpFetch gets url and returns the body of a 200 answer.
func httpFetch(t *testing.T, url string) []byte {
	t.Helper()
	return httpFetchStatus(t, url, http.StatusOK)
}

// httpFetchStatus gets url, checks the status and returns the body.
func httpFetchStatus(t *testing.T, url string, status int) []byte {
	t.Helper()
	c := &http.Client{Timeout: testnet.Patience(t)}
	resp, err := c.Get(url)
	require.NoError(t, err)
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	require.Equal(t, status, resp.StatusCode, "%s: %s", url, body)
	return body
}
