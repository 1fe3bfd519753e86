package main

import (
	"crypto/tls"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/ucsec/ucsec/internal/pemutil"
	"github.com/ucsec/ucsec/internal/testpki"
)

// pinServer serves TLS on loopback with a certificate that the CA in
// caPEM (certificate and key) issued, with serverAuth as every LSC has,
// sent with the CA certificate: what any phone enrolled with that CA
// could present. It returns the address.
func pinServer(t *testing.T, caPEM string) string {
	t.Helper()
	ca, err := pemutil.ParseCertificate(mustRead(t, caPEM))
	require.NoError(t, err)
	caKey, err := pemutil.ParseSigner(mustRead(t, caPEM))
	require.NoError(t, err)
	key := testpki.NewKey(t, testpki.EC256)
	leaf := testpki.Issue(t, testpki.Leaf("SEP00000000BEEF"), ca, key.Public(), caKey)
	l, err := tls.Listen("tcp", "127.0.0.1:0", &tls.Config{Certificates: []tls.Certificate{testpki.TLSCertificate(leaf, key, ca)}})
	require.NoError(t, err)
	t.Cleanup(func() { l.Close() })
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				c.SetDeadline(time.Now().Add(time.Minute))
				c.(*tls.Conn).Handshake()
				c.Read(make([]byte, 1))
			}()
		}
	}()
	return l.Addr().String()
}

// "capf enroll --ca" and "tvs query --ca/--itl" pin the certificate: a
// server presenting one that it issued (a phone's LSC) is refused.
func TestServerCertificatePinned(t *testing.T) {
	dir := t.TempDir()
	caPEM, caCrt, _ := testCA(t, dir)
	addr := pinServer(t, caPEM)
	const refused = "not one of the trusted certificates"

	ucsec(t, "", "capf", "enroll", "--server", addr, "--ca", caCrt, "--device", "SEP001122334455", "--string", "1234",
		"-o", filepath.Join(dir, "lsc.pem")).check(t, exitError, "", refused)
	ucsec(t, "", "tvs", "query", "--server", addr, "--ca", caCrt, sastPEM).check(t, exitError, "", refused)

	itlFile := filepath.Join(dir, "ITLFile.tlv")
	mustRun(t, exitOK, append(buildArgs("--itl", "--record", "ccm+tftp="+tftpPEM, "--record", "tvs="+caCrt), "-o", itlFile)...)
	ucsec(t, "", "tvs", "query", "--server", addr, "--itl", itlFile, sastPEM).check(t, exitError, "", refused)
}
