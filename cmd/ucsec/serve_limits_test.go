package main

import (
	"crypto"
	"crypto/rand"
	"crypto/sha512"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/ucsec/ucsec/internal/capfwire"
	"github.com/ucsec/ucsec/internal/testnet"
	"github.com/ucsec/ucsec/internal/testpki"
)

// The tests of the serve commands' connection limits, SUDI roots and
// certificate checks play the client with raw TLS (no certificate check)
// and the capfwire codec. Their helpers start with lim.

// limDial opens TCP to addr from the loopback address src; the connection
// is closed when the test ends.
func limDial(t *testing.T, src, addr string) net.Conn {
	t.Helper()
	c := testnet.Dial(t, src, addr)
	c.SetDeadline(time.Now().Add(testnet.Patience(t)))
	return c
}

// limTLS opens TLS to addr from src without checking the server's
// certificate.
func limTLS(t *testing.T, src, addr string) *tls.Conn {
	t.Helper()
	c := tls.Client(limDial(t, src, addr), &tls.Config{InsecureSkipVerify: true})
	require.NoError(t, c.Handshake(), "TLS from %s", src)
	return c
}

// limClosed reports whether the server closed c without a word.
func limClosed(t *testing.T, c net.Conn) bool {
	c.SetReadDeadline(time.Now().Add(testnet.Patience(t)))
	n, err := c.Read(make([]byte, 1))
	return n == 0 && err != nil && !errors.Is(err, os.ErrDeadlineExceeded)
}

// The connection limits of "capf serve" reach the server: beyond
// --max-conns-per-host from one address, and beyond --max-conns in all,
// connections are closed at once.
func TestCapfServeMaxConns(t *testing.T) {
	dir := t.TempDir()
	store := filepath.Join(dir, "store")
	caPEM, _, _ := testCA(t, dir)
	addr, serverLog, stop := startServer(t, store, "--cert", caPEM, "--key", caPEM,
		"--max-conns", "3", "--max-conns-per-host", "2", "--auth-timeout", "1h", "--keygen-timeout", "1h")
	// A session under way: the server has sent AUTH_REQUEST.
	session := func(src string) *tls.Conn {
		t.Helper()
		c := limTLS(t, src, addr)
		f, err := capfwire.ReadFrame(c)
		require.NoError(t, err)
		require.Equal(t, capfwire.CmdAuthRequest, f.Command)
		return c
	}
	held := []*tls.Conn{session("127.0.0.2"), session("127.0.0.2")}
	assert.True(t, limClosed(t, limDial(t, "127.0.0.2", addr)), "a third connection from 127.0.0.2 was not closed")
	held = append(held, session("127.0.0.1"))
	assert.True(t, limClosed(t, limDial(t, "127.0.0.1", addr)), "a fourth connection was not closed")
	for _, c := range held {
		c.Close()
	}
	stop()
	logs := serverLog.String()
	for _, want := range []string{"max_conns=3 max_conns_per_host=2",
		"capf: too many connections from one host, connection closed", "host=127.0.0.2 max_per_host=2",
		"capf: too many connections, connection closed", "max=3"} {
		assert.Contains(t, logs, want)
	}
}

// The connection limits of "tvs serve" reach the server.
func TestTVSServeMaxConns(t *testing.T) {
	dir := t.TempDir()
	tvsPEM, _ := tvsIdentity(t, dir, "tvs", "TVS-test")
	addr, serverLog, stop := startTVS(t, tvsPEM, "--trust", "sast="+sastPEM,
		"--max-conns", "3", "--max-conns-per-host", "2", "--timeout", "1h")
	held := []*tls.Conn{limTLS(t, "127.0.0.2", addr), limTLS(t, "127.0.0.2", addr)}
	assert.True(t, limClosed(t, limDial(t, "127.0.0.2", addr)), "a third connection from 127.0.0.2 was not closed")
	held = append(held, limTLS(t, "127.0.0.1", addr))
	assert.True(t, limClosed(t, limDial(t, "127.0.0.1", addr)), "a fourth connection was not closed")
	for _, c := range held {
		c.Close()
	}
	stop()
	logs := serverLog.String()
	for _, want := range []string{"max_conns=3 max_conns_per_host=2",
		"tvs: too many connections from one host, connection closed", "host=127.0.0.2 max_per_host=2",
		"tvs: too many connections, connection closed", "max=3"} {
		assert.Contains(t, logs, want)
	}
}

// limRoot makes a root CA certificate and writes it to dir/name.crt.
func limRoot(t *testing.T, dir, cn string) (cert *x509.Certificate, key crypto.Signer, path string) {
	t.Helper()
	key = testpki.NewKey(t, testpki.EC256)
	cert = testpki.SelfSigned(t, testpki.CA(cn), key)
	_, path = testpki.WritePEM(t, dir, strings.ReplaceAll(cn, " ", "-"), cert, key)
	return cert, key, path
}

// limSign signs the SHA-512 digest of msg with an EC key, as a phone
// does.
func limSign(t *testing.T, key crypto.Signer, msg []byte) []byte {
	t.Helper()
	d := sha512.Sum512(msg)
	sig, err := key.Sign(rand.Reader, d[:], crypto.SHA512)
	require.NoError(t, err)
	return sig
}

// limMICAuth authenticates device to the CAPF at addr with its MIC and,
// unless sudi is nil, SUDI data, and returns the server's answer: the
// next frame's command and, for END_SESSION, its reason.
func limMICAuth(t *testing.T, addr, device string, mic *x509.Certificate, micKey crypto.Signer, sudi *x509.Certificate, sudiKey crypto.Signer) (capfwire.Command, uint8) {
	t.Helper()
	c := limTLS(t, "127.0.0.1", addr)
	defer c.Close()
	f, err := capfwire.ReadFrame(c)
	require.NoError(t, err)
	require.Equal(t, capfwire.CmdAuthRequest, f.Command)
	r := &capfwire.Frame{Command: capfwire.CmdAuthResponse, Session: f.Session}
	r.AddUint8(capfwire.TagReason, capfwire.ReasonOK)
	r.AddUint8(capfwire.TagVersion, 3)
	require.NoError(t, r.AddString(capfwire.TagDeviceName, device))
	require.NoError(t, r.AddCertificate(capfwire.CertificateTypeMIC, mic.Raw))
	// The device name, a NUL and the certificate, as the phone signs them.
	w, err := capfwire.WrapSHA2SignedData(capfwire.HashSHA512, limSign(t, micKey, append(append([]byte(device), 0), mic.Raw...)))
	require.NoError(t, err)
	r.Add(capfwire.TagSHA2SignedData, w)
	if sudi != nil {
		// The session id, little-endian, and the SUDI certificate.
		msg := append([]byte{byte(f.Session), byte(f.Session >> 8), byte(f.Session >> 16), byte(f.Session >> 24)}, sudi.Raw...)
		sd, err := capfwire.WrapSUDI(&capfwire.SUDI{Certificate: sudi.Raw, SHA512: limSign(t, sudiKey, msg)})
		require.NoError(t, err)
		r.Add(capfwire.TagSUDIData, sd)
	}
	require.NoError(t, capfwire.WriteFrame(c, r))
	f, err = capfwire.ReadFrame(c)
	require.NoError(t, err)
	reason, _ := f.Uint8(capfwire.TagReason)
	return f.Command, reason
}

// With --sudi-roots a SUDI must chain to them: a self-signed one is
// refused, as the reference refuses it; without, only its signatures are
// checked. --require-sudi refuses MIC authentication without one.
func TestCapfServeSUDIRoots(t *testing.T) {
	dir := t.TempDir()
	caPEM, _, _ := testCA(t, dir)
	const dev = "SEP001122334455"
	micRoot, micRootKey, micRoots := limRoot(t, dir, "Fake Manufacturing CA")
	sudiRoot, sudiRootKey, sudiRoots := limRoot(t, dir, "Fake SUDI Root CA")
	micKey, sudiKey, selfMadeKey := testpki.NewKey(t, testpki.EC256), testpki.NewKey(t, testpki.EC256), testpki.NewKey(t, testpki.EC256)
	mic := testpki.Issue(t, testpki.MIC("CP-8865-"+dev), micRoot, micKey.Public(), micRootKey)
	sudi := testpki.Issue(t, testpki.MIC("CP-8865 FCH1234ABCD"), sudiRoot, sudiKey.Public(), sudiRootKey)
	selfMade := testpki.SelfSigned(t, testpki.MIC("CP-8865 FCH1234ABCD"), selfMadeKey)

	serve := func(args ...string) (addr string, log *testnet.Log, stop func(), store string) {
		store = filepath.Join(t.TempDir(), "store")
		addr, log, stop = startServer(t, store, append([]string{"--cert", caPEM, "--key", caPEM, "--roots", micRoots}, args...)...)
		return addr, log, stop, store
	}
	schedule := func(store string) {
		mustRun(t, exitOK, "capf", "schedule", "--store", store, "--device", dev, "--op", "install", "--auth", "mic", "--key", "ec256")
	}

	addr, log, stop, store := serve("--sudi-roots", sudiRoots, "--require-sudi")
	schedule(store)
	for _, tc := range []struct {
		name    string
		sudi    *x509.Certificate
		sudiKey crypto.Signer
		ok      bool
	}{
		{"self-signed SUDI", selfMade, selfMadeKey, false},
		{"no SUDI", nil, nil, false},
		{"SUDI of the roots", sudi, sudiKey, true},
	} {
		cmd, reason := limMICAuth(t, addr, dev, mic, micKey, tc.sudi, tc.sudiKey)
		if tc.ok {
			assert.Equal(t, capfwire.CmdKeyGenerateRequest, cmd, tc.name)
		} else {
			assert.Equal(t, [2]any{capfwire.CmdEndSession, capfwire.ReasonFailure}, [2]any{cmd, reason}, tc.name)
		}
	}
	stop() // the server logs a session after its END_SESSION: wait for it
	for _, want := range []string{"sudi_roots=true require_sudi=true",
		"SUDI certificate: x509: certificate signed by unknown authority", "authentication failed: no SUDI data"} {
		assert.Contains(t, log.String(), want)
	}

	// Without --sudi-roots the self-made SUDI passes: its signatures are
	// right.
	addr, _, stop, store = serve()
	schedule(store)
	cmd, reason := limMICAuth(t, addr, dev, mic, micKey, selfMade, selfMadeKey)
	assert.Equal(t, capfwire.CmdKeyGenerateRequest, cmd, "END_SESSION %d", reason)
	stop()
}

// A CAPF or TVS certificate whose key usage lacks digitalSignature stops
// the server before it opens anything, with a clear error; so do flags
// out of range.
func TestServeRefusals(t *testing.T) {
	dir := t.TempDir()
	caPEM, _, _ := testCA(t, dir)
	noSign, _, _ := writeSelfSigned(t, dir, "capf-nosign", &x509.Certificate{
		Subject: pkix.Name{CommonName: "CAPF-nosign"}, BasicConstraintsValid: true, IsCA: true, MaxPathLenZero: true,
		KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageKeyEncipherment,
	})
	tvsNoSign, _, _ := writeSelfSigned(t, dir, "tvs-nosign", &x509.Certificate{
		Subject: pkix.Name{CommonName: "TVS-nosign"}, KeyUsage: x509.KeyUsageKeyEncipherment,
	})
	store := filepath.Join(dir, "store")
	capfServe := func(args ...string) []string {
		return append([]string{"capf", "serve", "--store", store, "--listen", "127.0.0.1:0"}, args...)
	}
	tvsServe := func(args ...string) []string {
		return append([]string{"tvs", "serve", "--listen", "127.0.0.1:0", "--trust", "sast=" + sastPEM}, args...)
	}
	for _, tc := range []struct {
		name string
		args []string
		msg  string
	}{
		{"capf: no digitalSignature", capfServe("--cert", noSign, "--key", noSign),
			noSign + `: the CAPF certificate cannot serve TLS: certificate "CN=CAPF-nosign": its key usage lacks digitalSignature`},
		{"tvs: no digitalSignature", tvsServe("--cert", tvsNoSign, "--key", tvsNoSign),
			tvsNoSign + `: the TVS certificate cannot serve TLS: certificate "CN=TVS-nosign": its key usage lacks digitalSignature`},
		{"capf: --require-sudi alone", capfServe("--cert", caPEM, "--key", caPEM, "--require-sudi"), "--require-sudi needs --sudi-roots"},
		{"capf: --sudi-intermediates alone", capfServe("--cert", caPEM, "--key", caPEM, "--sudi-intermediates", caPEM), "--sudi-intermediates needs --sudi-roots"},
		{"capf: --sudi-roots missing", capfServe("--cert", caPEM, "--key", caPEM, "--sudi-roots", filepath.Join(dir, "missing.pem")), "missing.pem"},
		{"capf: --max-conns 0", capfServe("--cert", caPEM, "--key", caPEM, "--max-conns", "0"), "--max-conns must be at least 1"},
		{"capf: --max-conns-per-host -1", capfServe("--cert", caPEM, "--key", caPEM, "--max-conns-per-host", "-1"), "--max-conns-per-host must be 0"},
		{"tvs: --max-conns-per-host -1", tvsServe("--cert", caPEM, "--key", caPEM, "--max-conns-per-host", "-1"), "--max-conns-per-host must be 0"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ucsec(t, "", tc.args...).check(t, exitError, "", tc.msg)
			assert.NoDirExists(t, store, "the store was created")
		})
	}

	// The help names the flags.
	r := mustRun(t, exitOK, "capf", "serve", "-h")
	for _, want := range []string{"--sudi-roots FILE", "--sudi-intermediates FILE", "--require-sudi", "--max-conns N", "--max-conns-per-host N",
		"(default 16)", "digitalSignature"} {
		assert.Contains(t, r.stdout, want)
	}
	r = mustRun(t, exitOK, "tvs", "serve", "-h")
	for _, want := range []string{"--max-conns N", "--max-conns-per-host N", "digitalSignature"} {
		assert.Contains(t, r.stdout, want)
	}
}
