package tftpd

import (
	"bytes"
	"context"
	"crypto"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/ucsec/ucsec/capf"
	"github.com/ucsec/ucsec/internal/testkeys"
	"github.com/ucsec/ucsec/internal/testnet"
	"github.com/ucsec/ucsec/internal/testpki"
)

// testDevice is the phone of the tests; its certificate and key are the
// certutils test device's.
const testDevice = "SEP001122334455"

// phoneConfig returns a phone configuration of about size bytes with SIP
// digest credentials on each line.
func phoneConfig(size int) []byte {
	var b bytes.Buffer
	b.WriteString(`<?xml version="1.0" encoding="UTF-8"?>
<device>
<fullConfig>true</fullConfig>
<ipAddressMode>0</ipAddressMode>
<loadInformation>sip88xx.14-2-1-0001-14</loadInformation>
<capfAuthMode>0</capfAuthMode>
<capfList><capf><phonePort>3804</phonePort><processNodeName>cucm</processNodeName></capf></capfList>
<sipProfile><sipLines>
`)
	for i := 1; b.Len() < size-200; i++ {
		fmt.Fprintf(&b, "<line button=\"%d\"><featureID>9</featureID><name>%d</name><authName>user%d</authName><authPassword>secret%d</authPassword><displayName>Line %d</displayName></line>\n", i, 1000+i, i, i, i)
	}
	b.WriteString("</sipLines></sipProfile>\n</device>\n")
	return b.Bytes()
}

// fixture is a root directory with files and a server on it.
type fixture struct {
	dir     string
	root    *os.Root
	cert    *x509.Certificate
	key     crypto.Signer
	phone   *x509.Certificate
	phoneKy crypto.Signer
	logs    *testnet.Log
	srv     *Server
}

// newFixture makes a root with a few files and a Server signing with the
// test TFTP key; change srv's fields before its first use.
func newFixture(t testing.TB) *fixture {
	t.Helper()
	fx := &fixture{dir: t.TempDir(), logs: &testnet.Log{}}
	fx.cert, fx.key = testkeys.Load(t, "tftp")
	fx.phone, fx.phoneKy = testkeys.Load(t, "device")
	fx.write(t, "RingList.xml", []byte("<CiscoIPPhoneRingList></CiscoIPPhoneRingList>\n"))
	fx.write(t, testDevice+".cnf.xml", phoneConfig(4096))
	fx.write(t, "default.cnf.xml", phoneConfig(1024))
	fx.write(t, "English_United_States/g3-tones.xml", []byte("<tones/>\n"))
	root, err := os.OpenRoot(fx.dir)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { root.Close() })
	fx.root = root
	fx.srv = &Server{
		Root:        root,
		Certificate: fx.cert,
		Key:         fx.key,
		Logger:      slog.New(slog.NewTextHandler(fx.logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
		Time:        func() time.Time { return time.Unix(1700000000, 0) },
	}
	return fx
}

func (fx *fixture) write(t testing.TB, name string, data []byte) {
	t.Helper()
	p := filepath.Join(fx.dir, filepath.FromSlash(name))
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, data, 0o644); err != nil {
		t.Fatal(err)
	}
}

// replace writes name anew by rename, as a provisioning tool should.
func (fx *fixture) replace(t testing.TB, name string, data []byte) {
	t.Helper()
	p := filepath.Join(fx.dir, filepath.FromSlash(name))
	tmp := p + ".tmp"
	if err := os.WriteFile(tmp, data, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, p); err != nil {
		t.Fatal(err)
	}
}

func (fx *fixture) read(t testing.TB, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(fx.dir, filepath.FromSlash(name)))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// records returns the transfer records logged so far.
func (fx *fixture) records() []string {
	var out []string
	for _, l := range strings.Split(fx.logs.String(), "\n") {
		if strings.Contains(l, `msg="tftpd: transfer"`) {
			out = append(out, l)
		}
	}
	return out
}

// record waits for the transfer record of file and returns the last one.
// A transfer logs after its last acknowledgement, so its record may come
// after the client is done, and after the record of a later transfer.
func (fx *fixture) record(t testing.TB, file string) string {
	t.Helper()
	var last string
	require.Eventually(t, func() bool {
		for _, r := range fx.records() {
			if strings.Contains(r, " file="+file+" ") || strings.Contains(r, " file="+strconv.Quote(file)+" ") {
				last = r
			}
		}
		return last != ""
	}, testnet.Patience(t), 10*time.Millisecond, "no record of %s", file)
	return last
}

// writePEM writes a certificate as PEM by rename.
func writePEM(t testing.TB, path string, der []byte) {
	t.Helper()
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, path); err != nil {
		t.Fatal(err)
	}
}

// enroll runs a CAPF install for device against a server on store, the
// phone making key, and returns the LSC now in the store.
func enroll(t testing.TB, store capf.Store, device string, key crypto.Signer) *x509.Certificate {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	caKey := testpki.Key(t, testpki.EC256)
	ca := testpki.SelfSigned(t, testpki.CA("tftpd test CAPF"), caKey)
	if err := capf.ScheduleOperation(ctx, store, device, capf.Schedule{
		Operation: capf.OpInstall, Auth: capf.AuthNull, Key: capf.RSA2048, Deadline: time.Now().Add(time.Hour),
	}, time.Now()); err != nil {
		t.Fatal(err)
	}
	srv := &capf.Server{
		Store:     store,
		Issuer:    &capf.LocalCA{Certificate: ca, Signer: caKey},
		TLSConfig: &tls.Config{Certificates: []tls.Certificate{testpki.TLSCertificate(ca, caKey)}},
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ctx, l) }()
	defer func() { cancel(); <-done }()
	phone := &capf.Client{
		Device:           device,
		CAPFCertificates: []*x509.Certificate{ca},
		GenerateKey:      func(capf.KeySpec) (crypto.Signer, error) { return key, nil },
	}
	out, err := phone.Enroll(ctx, l.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	d, err := capf.LookupDevice(ctx, store, device)
	if err != nil || !bytes.Equal(d.Certificate, out.Certificate.Raw) {
		t.Fatalf("LSC not in the store: %v", err)
	}
	return out.Certificate
}

var netipLoopback = netip.MustParseAddr("127.0.0.1")

// limitFor returns the server's limiter, set up.
func (s *Server) limitFor(t testing.TB) *limiter {
	t.Helper()
	if err := s.init(); err != nil {
		t.Fatal(err)
	}
	return s.limit
}
