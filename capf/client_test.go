package capf

import (
	"bytes"
	"context"
	"crypto"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha1"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ucsec/ucsec/internal/capfwire"
	"github.com/ucsec/ucsec/internal/testpki"
)

// The client tests run the Client against a scripted fake CAPF server that
// speaks raw capfwire over real TLS on 127.0.0.1, and compare the client's
// frames with the bytes the reference implementation (usecallmanagernz
// capfd and capfc) exchanges.

const ctDevice = "SEP001122334455"

// ctHex decodes hex written with spaces and | separators between fields.
func ctHex(s string) []byte {
	b, err := hex.DecodeString(strings.NewReplacer(" ", "", "|", "").Replace(s))
	if err != nil {
		panic(err)
	}
	return b
}

func ctCat(parts ...[]byte) []byte { return bytes.Join(parts, nil) }

func ctEl(tag capfwire.Tag, v []byte) capfwire.Element { return capfwire.Element{Tag: tag, Value: v} }

// ctFrame marshals a frame.
func ctFrame(cmd capfwire.Command, sid uint32, elems ...capfwire.Element) []byte {
	b, err := (&capfwire.Frame{Command: cmd, Session: sid, Elements: elems}).Marshal()
	if err != nil {
		panic(err)
	}
	return b
}

func ctSID(sid uint32) []byte {
	return []byte{byte(sid >> 24), byte(sid >> 16), byte(sid >> 8), byte(sid)}
}

var (
	ctCAOnce sync.Once
	ctCACert *x509.Certificate
	ctCAKey  crypto.Signer
)

// ctCA is the throw-away CAPF certificate (a P-256 CA, as CUCM 14SU2
// wants it) that the fake server presents and that issues test LSCs.
func ctCA(t testing.TB) (*x509.Certificate, crypto.Signer) {
	t.Helper()
	ctCAOnce.Do(func() {
		ctCAKey = testpki.NewKey(t, testpki.EC256)
		ctCACert = testpki.SelfSigned(t, testpki.CA("CAPF-test"), ctCAKey)
	})
	return ctCACert, ctCAKey
}

// ctIssue returns an LSC named cn for pub, issued by ctCA.
func ctIssue(t testing.TB, cn string, pub crypto.PublicKey) *x509.Certificate {
	t.Helper()
	ca, caKey := ctCA(t)
	return testpki.Issue(t, testpki.Leaf(cn), ca, pub, caKey)
}

// ctPins are the CAPF certificates of the phone's trust list: ctCA.
func ctPins(t testing.TB) []*x509.Certificate {
	ca, _ := ctCA(t)
	return []*x509.Certificate{ca}
}

// ctPeer is the fake server's end of one connection. Its methods stop the
// script (through ctAbort) on the first unexpected thing.
type ctPeer struct {
	t      *testing.T
	conn   net.Conn
	sid    uint32
	cancel context.CancelFunc // the client's context
}

type ctAbort struct{}

func (p *ctPeer) fail(format string, args ...any) {
	p.t.Helper()
	p.t.Errorf("server: "+format, args...)
	panic(ctAbort{})
}

func (p *ctPeer) sendRaw(b []byte) {
	p.t.Helper()
	if _, err := p.conn.Write(b); err != nil {
		p.fail("write: %v", err)
	}
}

func (p *ctPeer) send(cmd capfwire.Command, elems ...capfwire.Element) {
	p.t.Helper()
	p.sendRaw(ctFrame(cmd, p.sid, elems...))
}

// recvRaw reads one whole frame.
func (p *ctPeer) recvRaw() []byte {
	p.t.Helper()
	hdr := make([]byte, capfwire.HeaderSize)
	if _, err := io.ReadFull(p.conn, hdr); err != nil {
		p.fail("reading header: %v", err)
	}
	b := make([]byte, capfwire.HeaderSize+(int(hdr[6])<<8|int(hdr[7])))
	copy(b, hdr)
	if _, err := io.ReadFull(p.conn, b[capfwire.HeaderSize:]); err != nil {
		p.fail("reading payload: %v", err)
	}
	return b
}

// recv reads a frame and checks its command and session id.
func (p *ctPeer) recv(want capfwire.Command) *capfwire.Frame {
	p.t.Helper()
	b := p.recvRaw()
	f, err := capfwire.ReadFrame(bytes.NewReader(b))
	if err != nil {
		p.fail("client sent %x: %v", b, err)
	}
	if f.Command != want || f.Session != p.sid {
		p.fail("client sent %v with session %d, want %v with %d", f.Command, f.Session, want, p.sid)
	}
	return f
}

// expect reads a frame and compares it with wire.
func (p *ctPeer) expect(wire []byte) {
	p.t.Helper()
	if got := p.recvRaw(); !bytes.Equal(got, wire) {
		p.fail("client sent %x\nwant        %x", got, wire)
	}
}

// expectClosed waits for the client to close the connection.
func (p *ctPeer) expectClosed() {
	p.t.Helper()
	if b, err := io.ReadAll(p.conn); len(b) > 0 {
		p.fail("client sent %x (%v), want it to close", b, err)
	}
}

// auth sends a CUCM-style AUTH_REQUEST and returns the AUTH_RESPONSE.
func (p *ctPeer) auth() *capfwire.Frame {
	p.t.Helper()
	p.send(capfwire.CmdAuthRequest, ctEl(capfwire.TagVersion, []byte{3}))
	return p.recv(capfwire.CmdAuthResponse)
}

func (p *ctPeer) end(reason uint8) {
	p.t.Helper()
	p.send(capfwire.CmdEndSession, ctEl(capfwire.TagReason, []byte{reason}))
}

// ctSID0 is the session id the fake server uses unless a test sets another.
const ctSID0 = 0x0a0b0c0d

type ctOptions struct {
	ctx       context.Context
	sid       uint32
	handshake bool             // the TLS handshake must fail
	server    *tls.Certificate // what the server presents; nil: ctCA
}

// ctRun runs c.Enroll against a fake server running script. A Client
// with neither CAPFCertificates nor a TLSConfig that skips verification
// pins the test CAPF certificate.
func ctRun(t *testing.T, c *Client, script func(p *ctPeer)) (*Outcome, error) {
	t.Helper()
	return ctRunWith(t, c, ctOptions{}, script)
}

func ctRunWith(t *testing.T, c *Client, o ctOptions, script func(p *ctPeer)) (*Outcome, error) {
	t.Helper()
	if c.CAPFCertificates == nil && (c.TLSConfig == nil || !c.TLSConfig.InsecureSkipVerify) {
		c.CAPFCertificates = ctPins(t)
	}
	if c.Device == "" {
		c.Device = ctDevice
	}
	if o.sid == 0 {
		o.sid = ctSID0
	}
	parent := o.ctx
	if parent == nil {
		parent = context.Background()
	}
	ctx, cancel := context.WithTimeout(parent, 10*time.Second)
	defer cancel()

	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srvTLS := &tls.Config{Certificates: []tls.Certificate{testpki.TLSCertificate(ctCA(t))}}
	if o.server != nil {
		srvTLS.Certificates = []tls.Certificate{*o.server}
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		raw, err := ln.Accept()
		if err != nil {
			return // the client never connected
		}
		defer raw.Close()
		raw.SetDeadline(time.Now().Add(10 * time.Second))
		conn := tls.Server(raw, srvTLS)
		defer conn.Close()
		if err := conn.Handshake(); err != nil {
			if !o.handshake {
				t.Errorf("server: TLS handshake: %v", err)
			}
			return
		}
		if o.handshake {
			t.Errorf("server: TLS handshake succeeded")
			return
		}
		defer func() {
			if r := recover(); r != nil {
				if _, ok := r.(ctAbort); !ok {
					panic(r)
				}
			}
		}()
		script(&ctPeer{t: t, conn: conn, sid: o.sid, cancel: cancel})
	}()
	out, err := c.Enroll(ctx, ln.Addr().String())
	ln.Close()
	<-done
	if err != nil && !strings.HasPrefix(err.Error(), "capf: ") {
		t.Errorf("error %q lacks the capf: prefix", err)
	}
	return out, err
}

// ctKeys returns a GenerateKey that hands out key and records the specs
// it was asked for.
func ctKeys(key crypto.Signer, err error) (func(KeySpec) (crypto.Signer, error), func() []KeySpec) {
	var mu sync.Mutex
	var asked []KeySpec
	return func(k KeySpec) (crypto.Signer, error) {
			mu.Lock()
			defer mu.Unlock()
			asked = append(asked, k)
			return key, err
		}, func() []KeySpec {
			mu.Lock()
			defer mu.Unlock()
			return slices.Clone(asked)
		}
}

func TestClientAuthResponseFixtures(t *testing.T) {
	t.Parallel()
	device := []byte(ctDevice + "\x00")
	tests := []struct {
		name, auth string
		want       []byte
	}{
		{"no password", "", ctCat(ctHex("55 02 00000001 001f | 01 0001 01 | 07 0001 03 | 0b 0001 00 | 0d 0010"), device)},
		{"password 123456", "123456", ctCat(ctHex("55 02 00000001 0025 | 01 0001 01 | 07 0001 03 | 0b 0007"), []byte("123456\x00"), ctHex("0d 0010"), device)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			c := &Client{AuthString: tt.auth}
			out, err := ctRunWith(t, c, ctOptions{sid: 1}, func(p *ctPeer) {
				p.sendRaw(ctHex("55 01 00000001 0008 | 07 0001 03 | 08 0001 00")) // capfd's AUTH_REQUEST
				p.expect(tt.want)
				p.sendRaw(ctHex("55 0f 00000001 0004 | 01 0001 00"))
			})
			if err != nil {
				t.Fatal(err)
			}
			if want := (Outcome{Session: 1, Operation: OpNone, Reason: 0}); *out != want {
				t.Errorf("outcome %+v, want %+v", *out, want)
			}
		})
	}
}

func TestClientInstall(t *testing.T) {
	t.Parallel()
	rsa2048 := testpki.Key(t, testpki.RSA2048)
	p256, p384, p521 := testpki.NewKey(t, testpki.EC256), testpki.NewKey(t, testpki.EC384), testpki.NewKey(t, testpki.EC521)
	tests := []struct {
		name    string
		request []byte // KEY_GENERATE_REQUEST payload
		spec    KeySpec
		key     crypto.Signer // nil: the default generator
		skip    bool          // SkipInProgress
		spkiLen string        // expected KEY_GENERATE_RESPONSE header tail and element header, if fixed
	}{
		{"RSA-2048", ctHex("0a 0002 0800 | 11 0001 00"), RSA2048, rsa2048, false, "0129 | 09 0126"},
		{"RSA-2048 without KEY_TYPE", ctHex("0a 0002 0800"), RSA2048, rsa2048, false, "0129 | 09 0126"},
		{"RSA-2048 without REQUEST_IN_PROGRESS", ctHex("11 0001 00 | 0a 0002 0800"), RSA2048, rsa2048, true, "0129 | 09 0126"},
		{"EC P-256", ctHex("11 0001 01 | 12 0001 00"), EC256, p256, false, "005e | 09 005b"},
		{"EC P-384", ctHex("11 0001 01 | 12 0001 01"), EC384, p384, false, ""},
		{"EC P-521", ctHex("11 0001 01 | 12 0001 02"), EC521, p521, false, ""},
		{"EC P-256 generated", ctHex("11 0001 01 | 12 0001 00"), EC256, nil, false, "005e | 09 005b"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			c := &Client{SkipInProgress: tt.skip}
			key := tt.key
			var asked func() []KeySpec
			if key != nil {
				c.GenerateKey, asked = ctKeys(key, nil)
			}
			var issued *x509.Certificate
			out, err := ctRun(t, c, func(p *ctPeer) {
				p.auth()
				p.sendRaw(ctCat(ctHex("55 03"), ctSID(p.sid), []byte{0, byte(len(tt.request))}, tt.request))
				if !tt.skip {
					p.expect(ctCat(ctHex("55 11"), ctSID(p.sid), ctHex("0000")))
				}
				b := p.recvRaw()
				f, err := capfwire.ReadFrame(bytes.NewReader(b))
				if err != nil || f.Command != capfwire.CmdKeyGenerateResponse || f.Session != p.sid || len(f.Elements) != 1 || f.Elements[0].Tag != capfwire.TagPublicKey {
					p.fail("KEY_GENERATE_RESPONSE %x (%v), want PUBLIC_KEY only", b, err)
				}
				if tt.spkiLen != "" && !bytes.Equal(b[6:11], ctHex(tt.spkiLen)) {
					p.fail("KEY_GENERATE_RESPONSE starts %x, want lengths %s", b[:11], tt.spkiLen)
				}
				pub, err := x509.ParsePKIXPublicKey(f.Elements[0].Value)
				if err != nil || !tt.spec.Matches(pub) {
					p.fail("PUBLIC_KEY %T (%v), want %v", pub, err, tt.spec)
				}
				issued = ctIssue(t, ctDevice, pub)
				wrapped, _ := capfwire.WrapCertificate(capfwire.CertificateTypeLSC, issued.Raw)
				p.send(capfwire.CmdStoreCertificateRequest, ctEl(capfwire.TagCertificateType, []byte{1}), ctEl(capfwire.TagCertificate, wrapped))
				p.expect(ctCat(ctHex("55 0a"), ctSID(p.sid), ctHex("0004 | 01 0001 01")))
				p.end(capfwire.ReasonOK)
			})
			if err != nil {
				t.Fatal(err)
			}
			if out.Session != ctSID0 || out.Operation != OpInstall || out.Reason != 1 || out.Deleted {
				t.Errorf("outcome %+v", out)
			}
			if out.Certificate == nil || !bytes.Equal(out.Certificate.Raw, issued.Raw) {
				t.Errorf("certificate not the one issued")
			}
			if out.Key == nil || !out.Key.Public().(interface{ Equal(crypto.PublicKey) bool }).Equal(issued.PublicKey) {
				t.Errorf("key %T does not match the certificate", out.Key)
			}
			if key != nil {
				if out.Key != key {
					t.Errorf("key is not the one GenerateKey returned")
				}
				if got := asked(); !slices.Equal(got, []KeySpec{tt.spec}) {
					t.Errorf("GenerateKey asked for %v, want [%v]", got, tt.spec)
				}
			}
		})
	}
}

// TestClientKeyRefused: a key request the client cannot meet is answered
// with REASON 7 and no PUBLIC_KEY.
func TestClientKeyRefused(t *testing.T) {
	t.Parallel()
	p256 := testpki.NewKey(t, testpki.EC256)
	boom := errors.New("token full")
	tests := []struct {
		name     string
		request  []byte
		key      crypto.Signer
		keyErr   error
		progress bool  // REQUEST_IN_PROGRESS comes first (generation was tried)
		is       error // the error matches it
	}{
		{"RSA 1000 bits", ctHex("0a 0002 03e8 | 11 0001 00"), p256, nil, false, ErrProtocol},
		{"RSA 512 bits", ctHex("0a 0002 0200"), p256, nil, false, ErrProtocol},
		{"RSA without KEY_SIZE", ctHex("11 0001 00"), p256, nil, false, ErrProtocol},
		{"KEY_SIZE of one byte", ctHex("0a 0001 08"), p256, nil, false, ErrProtocol},
		{"key type 2", ctHex("11 0001 02 | 12 0001 00"), p256, nil, false, ErrProtocol},
		{"KEY_TYPE of two bytes", ctHex("11 0002 0001 | 12 0001 00"), p256, nil, false, ErrProtocol},
		{"curve 3", ctHex("11 0001 01 | 12 0001 03"), p256, nil, false, ErrProtocol},
		{"EC without CURVE", ctHex("11 0001 01"), p256, nil, false, ErrProtocol},
		{"GenerateKey fails", ctHex("11 0001 01 | 12 0001 00"), nil, boom, true, boom},
		{"GenerateKey returns a P-256 key for P-384", ctHex("11 0001 01 | 12 0001 01"), p256, nil, true, nil},
		{"GenerateKey returns nil", ctHex("11 0001 01 | 12 0001 00"), nil, nil, true, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			c := &Client{}
			var asked func() []KeySpec
			c.GenerateKey, asked = ctKeys(tt.key, tt.keyErr)
			out, err := ctRun(t, c, func(p *ctPeer) {
				p.auth()
				p.sendRaw(ctCat(ctHex("55 03"), ctSID(p.sid), []byte{0, byte(len(tt.request))}, tt.request))
				if tt.progress {
					p.expect(ctCat(ctHex("55 11"), ctSID(p.sid), ctHex("0000")))
				}
				p.expect(ctCat(ctHex("55 04"), ctSID(p.sid), ctHex("0004 | 01 0001 07")))
				p.end(capfwire.ReasonFailure)
			})
			if err == nil {
				t.Fatal("no error")
			}
			if tt.is != nil && !errors.Is(err, tt.is) {
				t.Errorf("error %q is not %v", err, tt.is)
			}
			var end *EndError
			if !errors.As(err, &end) || end.Reason != 7 {
				t.Errorf("error %q does not carry END_SESSION 7", err)
			}
			if out == nil || out.Operation != OpInstall || out.Reason != 7 || out.Certificate != nil || out.Key != nil {
				t.Errorf("outcome %+v", out)
			}
			if n := len(asked()); tt.progress != (n == 1) {
				t.Errorf("GenerateKey called %d times", n)
			}
		})
	}
}

// TestClientStoreRefused: a certificate that is not for the generated key
// or the device, or not signed by the CAPF certificate, is answered with
// REASON 7.
func TestClientStoreRefused(t *testing.T) {
	t.Parallel()
	key, other := testpki.NewKey(t, testpki.EC256), testpki.NewKey(t, testpki.EC256)
	good := ctIssue(t, ctDevice, key.Public())
	otherKey := testpki.NewKey(t, testpki.EC256)
	otherCA := testpki.SelfSigned(t, testpki.CA("Other CA"), otherKey)
	wrap := func(der []byte) []byte {
		v, err := capfwire.WrapCertificate(capfwire.CertificateTypeLSC, der)
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
	tests := []struct {
		name  string
		elems []capfwire.Element
		end   uint8
	}{
		{"other key", []capfwire.Element{ctEl(capfwire.TagCertificate, wrap(ctIssue(t, ctDevice, other.Public()).Raw))}, 1},
		{"other name", []capfwire.Element{ctEl(capfwire.TagCertificate, wrap(ctIssue(t, "SEP999999999999", key.Public()).Raw))}, 1},
		{"issued by another CA", []capfwire.Element{ctEl(capfwire.TagCertificate, wrap(testpki.Issue(t, testpki.Leaf(ctDevice), otherCA, key.Public(), otherKey).Raw))}, 1},
		{"self-signed", []capfwire.Element{ctEl(capfwire.TagCertificate, wrap(testpki.SelfSigned(t, testpki.Leaf(ctDevice), key).Raw))}, 1},
		{"not a certificate", []capfwire.Element{ctEl(capfwire.TagCertificate, wrap(ctHex("30 03 02 01 05")))}, 1},
		{"bad wrapper", []capfwire.Element{ctEl(capfwire.TagCertificate, ctCat(ctHex("02"), wrap(good.Raw)[1:]))}, 1},
		{"no CERTIFICATE", []capfwire.Element{ctEl(capfwire.TagCertificateType, []byte{1})}, 1},
		{"other key, END 7", []capfwire.Element{ctEl(capfwire.TagCertificate, wrap(ctIssue(t, ctDevice, other.Public()).Raw))}, 7},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			c := &Client{SkipInProgress: true}
			c.GenerateKey, _ = ctKeys(key, nil)
			out, err := ctRun(t, c, func(p *ctPeer) {
				p.auth()
				p.send(capfwire.CmdKeyGenerateRequest, ctEl(capfwire.TagKeyType, []byte{1}), ctEl(capfwire.TagCurve, []byte{0}))
				p.recv(capfwire.CmdKeyGenerateResponse)
				p.send(capfwire.CmdStoreCertificateRequest, tt.elems...)
				p.expect(ctCat(ctHex("55 0a"), ctSID(p.sid), ctHex("0004 | 01 0001 07")))
				p.end(tt.end) // capfd ends with 1 even then
			})
			if !errors.Is(err, ErrProtocol) {
				t.Fatalf("error %v, want ErrProtocol", err)
			}
			var end *EndError
			if errors.As(err, &end) != (tt.end == 7) {
				t.Errorf("error %q: EndError %v", err, end)
			}
			if out == nil || out.Operation != OpInstall || out.Reason != tt.end || out.Certificate != nil || out.Key != nil {
				t.Errorf("outcome %+v", out)
			}
		})
	}
}

func TestClientCertificateAuth(t *testing.T) {
	t.Parallel()
	rsaKey, ecKey := testpki.NewKey(t, testpki.RSA2048), testpki.NewKey(t, testpki.EC256)
	tests := []struct {
		name    string
		key     crypto.Signer
		cn      string
		mic     bool
		sudi    bool
		auth    string
		version uint8
	}{
		{"RSA LSC", rsaKey, ctDevice, false, false, "", 0},
		{"EC MIC", ecKey, "CP-8841-" + ctDevice, true, false, "", 0},
		{"RSA LSC with SUDI", rsaKey, ctDevice, false, true, "", 0},
		{"EC MIC with SUDI", ecKey, "CP-8841-" + ctDevice, true, true, "", 0},
		{"RSA LSC, password and version 2", rsaKey, ctDevice, false, false, "123456", 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			key := tt.key
			cert := ctIssue(t, tt.cn, key.Public())
			c := &Client{Certificate: cert, Key: key, MIC: tt.mic, AuthString: tt.auth, Version: tt.version}
			wantTags := []capfwire.Tag{1, 4, 6, 7, 11, 13, 20}
			if tt.sudi {
				c.SUDIKey = testpki.Key(t, testpki.RSA2048)
				c.SUDI = ctIssue(t, "ACT2 SUDI "+ctDevice, c.SUDIKey.Public())
				wantTags = []capfwire.Tag{1, 4, 6, 7, 11, 13, 16, 20}
			}
			out, err := ctRun(t, c, func(p *ctPeer) {
				f := p.auth()
				var tags []capfwire.Tag
				for _, e := range f.Elements {
					tags = append(tags, e.Tag)
				}
				if !slices.Equal(tags, wantTags) {
					p.fail("AUTH_RESPONSE tags %v, want %v", tags, wantTags)
				}
				if r, err := f.Uint8(capfwire.TagReason); err != nil || r != 1 {
					t.Errorf("REASON %d, %v", r, err)
				}
				wantVersion := tt.version
				if wantVersion == 0 {
					wantVersion = 3
				}
				if v, err := f.Uint8(capfwire.TagVersion); err != nil || v != wantVersion {
					t.Errorf("VERSION %d, %v", v, err)
				}
				if pw, err := f.Text(capfwire.TagPassword); err != nil || pw != tt.auth {
					t.Errorf("PASSWORD %q, %v", pw, err)
				}
				if d, err := f.Text(capfwire.TagDeviceName); err != nil || d != ctDevice {
					t.Errorf("DEVICE_NAME %q, %v", d, err)
				}
				ct, der, err := f.Certificate()
				wantType := capfwire.CertificateTypeLSC
				if tt.mic {
					wantType = capfwire.CertificateTypeMIC
				}
				if err != nil || ct != wantType || !bytes.Equal(der, cert.Raw) {
					p.fail("CERTIFICATE type %d (%v), want %d and the certificate", ct, err, wantType)
				}
				msg := authMessage(ctDevice, cert.Raw)
				sig1, _ := f.Get(capfwire.TagSignedData)
				if err := verifySignature(cert.PublicKey, crypto.SHA1, msg, sig1); err != nil {
					t.Errorf("SIGNED_DATA: %v", err)
				}
				if pub, ok := cert.PublicKey.(*rsa.PublicKey); ok {
					// The bare-digest form the reference client makes, not DigestInfo.
					d := sha1.Sum(msg)
					if err := rsa.VerifyPKCS1v15(pub, crypto.Hash(0), d[:], sig1); err != nil {
						t.Errorf("SIGNED_DATA is not a bare-digest signature: %v", err)
					}
				}
				v, _ := f.Get(capfwire.TagSHA2SignedData)
				id, sig512, err := capfwire.UnwrapSHA2SignedData(v)
				if err != nil || id != capfwire.HashSHA512 {
					t.Errorf("SHA2_SIGNED_DATA hash id %d, %v", id, err)
				} else if err := verifySignature(cert.PublicKey, crypto.SHA512, msg, sig512); err != nil {
					t.Errorf("SHA2_SIGNED_DATA: %v", err)
				}
				if tt.sudi {
					v, _ := f.Get(capfwire.TagSUDIData)
					s, err := capfwire.UnwrapSUDI(v)
					if err != nil {
						p.fail("SUDI_DATA: %v", err)
					}
					if !bytes.Equal(s.Certificate, c.SUDI.Raw) {
						t.Errorf("SUDI_DATA certificate is not the SUDI")
					}
					if !bytes.Equal(v[:3], []byte{0, byte(len(c.SUDI.Raw) >> 8), byte(len(c.SUDI.Raw))}) {
						t.Errorf("SUDI_DATA starts %x", v[:3])
					}
					smsg := sudiMessage(p.sid, c.SUDI.Raw)
					if err := verifySignature(c.SUDI.PublicKey, crypto.SHA1, smsg, s.SHA1); err != nil {
						t.Errorf("SUDI SHA-1 signature: %v", err)
					}
					if err := verifySignature(c.SUDI.PublicKey, crypto.SHA512, smsg, s.SHA512); err != nil {
						t.Errorf("SUDI SHA-512 signature: %v", err)
					}
					// Bound to the session: not valid for another id.
					if verifySignature(c.SUDI.PublicKey, crypto.SHA512, sudiMessage(p.sid+1, c.SUDI.Raw), s.SHA512) == nil {
						t.Errorf("SUDI signature verifies for another session")
					}
				}
				p.end(capfwire.ReasonNoAction)
			})
			if err != nil || out.Reason != 0 || out.Operation != OpNone {
				t.Fatalf("outcome %+v, %v", out, err)
			}
		})
	}
}

func TestClientFetch(t *testing.T) {
	t.Parallel()
	lsc := ctIssue(t, ctDevice, testpki.NewKey(t, testpki.EC256).Public())
	wrapped, err := capfwire.WrapCertificate(capfwire.CertificateTypeLSC, lsc.Raw)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name    string
		current *x509.Certificate
		payload []byte
	}{
		{"with certificate", lsc, ctCat(ctHex("01 0001 01 | 04"), []byte{byte(len(wrapped) >> 8), byte(len(wrapped))}, wrapped)},
		{"without certificate", nil, ctHex("01 0001 07")},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			out, err := ctRun(t, &Client{Current: tt.current}, func(p *ctPeer) {
				p.auth()
				p.sendRaw(ctCat(ctHex("55 0b"), ctSID(p.sid), ctHex("0000")))
				p.expect(ctCat(ctHex("55 0c"), ctSID(p.sid), []byte{byte(len(tt.payload) >> 8), byte(len(tt.payload))}, tt.payload))
				p.end(capfwire.ReasonNoAction)
			})
			if err != nil {
				t.Fatal(err)
			}
			if want := (Outcome{Session: ctSID0, Operation: OpFetch}); *out != want {
				t.Errorf("outcome %+v, want %+v", *out, want)
			}
		})
	}
}

func TestClientDelete(t *testing.T) {
	t.Parallel()
	lsc := ctIssue(t, ctDevice, testpki.NewKey(t, testpki.EC256).Public())
	for _, current := range []*x509.Certificate{lsc, nil} {
		t.Run(fmt.Sprintf("current=%v", current != nil), func(t *testing.T) {
			t.Parallel()
			reason := byte(7)
			if current != nil {
				reason = 1
			}
			out, err := ctRun(t, &Client{Current: current}, func(p *ctPeer) {
				p.auth()
				p.sendRaw(ctCat(ctHex("55 0d"), ctSID(p.sid), ctHex("0000")))
				p.expect(ctCat(ctHex("55 0e"), ctSID(p.sid), ctHex("0004 | 01 0001"), []byte{reason}))
				p.end(capfwire.ReasonOK)
			})
			if err != nil {
				t.Fatal(err)
			}
			if want := (Outcome{Session: ctSID0, Operation: OpDelete, Reason: 1, Deleted: current != nil}); *out != want {
				t.Errorf("outcome %+v, want %+v", *out, want)
			}
		})
	}
}

func TestClientEndSession(t *testing.T) {
	t.Parallel()
	for _, reason := range []uint8{0, 1, 7, 9, 42} {
		t.Run(fmt.Sprint(reason), func(t *testing.T) {
			t.Parallel()
			out, err := ctRun(t, &Client{}, func(p *ctPeer) {
				p.auth()
				p.end(reason)
			})
			if out == nil || out.Reason != reason || out.Operation != OpNone || out.Session != ctSID0 {
				t.Errorf("outcome %+v", out)
			}
			if reason <= 1 {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			var end *EndError
			if !errors.As(err, &end) || end.Reason != reason || !errors.Is(err, ErrRefused) {
				t.Fatalf("error %v, want an EndError with reason %d", err, reason)
			}
			if errors.Is(err, ErrUnknownDevice) != (reason == 9) {
				t.Errorf("error %q: ErrUnknownDevice is %v", err, errors.Is(err, ErrUnknownDevice))
			}
		})
	}
}

func TestClientProtocolErrors(t *testing.T) {
	t.Parallel()
	key := testpki.NewKey(t, testpki.EC256)
	ecRequest := []capfwire.Element{ctEl(capfwire.TagKeyType, []byte{1}), ctEl(capfwire.TagCurve, []byte{0})}
	keyed := func(p *ctPeer) {
		p.auth()
		p.send(capfwire.CmdKeyGenerateRequest, ecRequest...)
		p.recv(capfwire.CmdRequestInProgress)
		p.recv(capfwire.CmdKeyGenerateResponse)
	}
	tests := []struct {
		name     string
		script   func(p *ctPeer)
		started  bool  // an Outcome is returned
		is       error // also matched, besides ErrProtocol
		op       Operation
		endError bool
	}{
		{"not CAPF", func(p *ctPeer) { p.sendRaw([]byte("HTTP/1.1 400 Bad Request\r\n\r\n")) }, false, nil, 0, false},
		{"first frame END_SESSION", func(p *ctPeer) { p.end(1) }, false, nil, 0, false},
		{"AUTH_REQUEST without VERSION", func(p *ctPeer) { p.send(capfwire.CmdAuthRequest) }, false, nil, 0, false},
		{"closes at once", func(p *ctPeer) {}, false, io.ErrUnexpectedEOF, 0, false},
		{"truncated AUTH_REQUEST", func(p *ctPeer) { p.sendRaw(ctCat(ctHex("55 01"), ctSID(p.sid), ctHex("0004 | 07 00"))) }, false, io.ErrUnexpectedEOF, 0, false},
		{"closes after AUTH_REQUEST", func(p *ctPeer) { p.auth() }, true, io.ErrUnexpectedEOF, 0, false},
		{"closes after the key", keyed, true, io.ErrUnexpectedEOF, OpInstall, false},
		{"wrong session id", func(p *ctPeer) {
			p.auth()
			p.sid++
			p.send(capfwire.CmdKeyGenerateRequest, ecRequest...)
			p.expectClosed()
		}, true, nil, 0, false},
		{"wrong session id on END_SESSION", func(p *ctPeer) {
			p.auth()
			p.sid = 0
			p.end(1)
			p.expectClosed()
		}, true, nil, 0, false},
		{"element overruns", func(p *ctPeer) {
			p.auth()
			p.sendRaw(ctCat(ctHex("55 0f"), ctSID(p.sid), ctHex("0004 | 01 0005 01")))
			p.expectClosed()
		}, true, nil, 0, false},
		{"garbage after auth", func(p *ctPeer) {
			p.auth()
			p.sendRaw(bytes.Repeat([]byte{0xff}, 64))
			p.expectClosed()
		}, true, nil, 0, false},
		{"STORE without KEY_GENERATE", func(p *ctPeer) {
			p.auth()
			p.send(capfwire.CmdStoreCertificateRequest)
			p.expectClosed()
		}, true, nil, 0, false},
		{"second KEY_GENERATE_REQUEST", func(p *ctPeer) {
			keyed(p)
			p.send(capfwire.CmdKeyGenerateRequest, ecRequest...)
			p.expectClosed()
		}, true, nil, OpInstall, false},
		{"FETCH after FETCH", func(p *ctPeer) {
			p.auth()
			p.send(capfwire.CmdFetchCertificateRequest)
			p.recv(capfwire.CmdFetchCertificateResponse)
			p.send(capfwire.CmdFetchCertificateRequest)
			p.expectClosed()
		}, true, nil, OpFetch, false},
		{"DELETE after KEY_GENERATE", func(p *ctPeer) {
			keyed(p)
			p.send(capfwire.CmdDeleteCertificateRequest)
			p.expectClosed()
		}, true, nil, OpInstall, false},
		{"RETRY_LATER", func(p *ctPeer) {
			p.auth()
			p.send(capfwire.CmdRetryLater)
			p.expectClosed()
		}, true, nil, 0, false},
		{"AUTH_REQUEST again", func(p *ctPeer) {
			p.auth()
			p.send(capfwire.CmdAuthRequest, ctEl(capfwire.TagVersion, []byte{3}))
			p.expectClosed()
		}, true, nil, 0, false},
		{"END_SESSION without REASON", func(p *ctPeer) {
			p.auth()
			p.send(capfwire.CmdEndSession)
			p.expectClosed()
		}, true, capfwire.ErrMissing, 0, false},
		{"END_SESSION with a 2-byte REASON", func(p *ctPeer) {
			p.auth()
			p.send(capfwire.CmdEndSession, ctEl(capfwire.TagReason, []byte{0, 1}))
			p.expectClosed()
		}, true, capfwire.ErrMalformed, 0, false},
		{"END_SESSION 1 before the certificate", func(p *ctPeer) {
			keyed(p)
			p.end(1)
		}, true, nil, OpInstall, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			c := &Client{}
			c.GenerateKey, _ = ctKeys(key, nil)
			out, err := ctRun(t, c, tt.script)
			if !errors.Is(err, ErrProtocol) {
				t.Fatalf("error %v, want ErrProtocol", err)
			}
			if tt.is != nil && !errors.Is(err, tt.is) {
				t.Errorf("error %q is not %v", err, tt.is)
			}
			if (out != nil) != tt.started {
				t.Fatalf("outcome %+v", out)
			}
			if out != nil && (out.Operation != tt.op || out.Session != ctSID0 || out.Certificate != nil) {
				t.Errorf("outcome %+v", out)
			}
		})
	}
}

func TestClientTimeout(t *testing.T) {
	t.Parallel()
	start := time.Now()
	out, err := ctRun(t, &Client{Timeout: 100 * time.Millisecond}, func(p *ctPeer) {
		p.auth()
		p.expectClosed() // and send nothing
	})
	if !errors.Is(err, os.ErrDeadlineExceeded) || errors.Is(err, ErrProtocol) {
		t.Errorf("error %v, want a timeout", err)
	}
	if out == nil || out.Session != ctSID0 {
		t.Errorf("outcome %+v", out)
	}
	if d := time.Since(start); d > 3*time.Second {
		t.Errorf("took %v", d)
	}
}

func TestClientCancel(t *testing.T) {
	t.Parallel()
	t.Run("waiting for the server", func(t *testing.T) {
		t.Parallel()
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		out, err := ctRunWith(t, &Client{}, ctOptions{ctx: ctx}, func(p *ctPeer) {
			p.auth()
			cancel()
			p.expectClosed()
		})
		if !errors.Is(err, context.Canceled) || out == nil {
			t.Errorf("outcome %+v, error %v; want context.Canceled", out, err)
		}
	})
	t.Run("during key generation", func(t *testing.T) {
		t.Parallel()
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		key := testpki.NewKey(t, testpki.EC256)
		c := &Client{GenerateKey: func(KeySpec) (crypto.Signer, error) {
			cancel()
			return key, nil
		}}
		out, err := ctRunWith(t, c, ctOptions{ctx: ctx}, func(p *ctPeer) {
			p.auth()
			p.send(capfwire.CmdKeyGenerateRequest, ctEl(capfwire.TagKeyType, []byte{1}), ctEl(capfwire.TagCurve, []byte{0}))
			p.recv(capfwire.CmdRequestInProgress)
			p.expectClosed()
		})
		if !errors.Is(err, context.Canceled) || out == nil || out.Operation != OpInstall {
			t.Errorf("outcome %+v, error %v; want context.Canceled", out, err)
		}
	})
	t.Run("before dialling", func(t *testing.T) {
		t.Parallel()
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		out, err := ctRunWith(t, &Client{}, ctOptions{ctx: ctx}, func(p *ctPeer) { t.Error("server reached") })
		if !errors.Is(err, context.Canceled) || out != nil {
			t.Errorf("outcome %+v, error %v; want context.Canceled", out, err)
		}
	})
}

func TestClientTLS(t *testing.T) {
	t.Parallel()
	otherKey := testpki.NewKey(t, testpki.EC256)
	other := ctIssue(t, "other", otherKey.Public())
	// An LSC that the CAPF certificate issued, with serverAuth as every
	// LSC has: whoever enrolled a phone holds one.
	lscKey := testpki.NewKey(t, testpki.EC256)
	lsc := ctIssue(t, "SEP00000000BEEF", lscKey.Public())
	ca, _ := ctCA(t)
	lscServer := testpki.TLSCertificate(lsc, lscKey, ca)
	errPinned := errors.New("not the pinned certificate")
	tests := []struct {
		name   string
		pins   []*x509.Certificate
		cfg    *tls.Config
		server *tls.Certificate
		ok     bool
	}{
		{"the pinned CAPF certificate, no host name", ctPins(t), nil, nil, true},
		{"ServerName is only sent", ctPins(t), &tls.Config{ServerName: "capf.example"}, nil, true},
		{"an LSC the CAPF certificate issued", ctPins(t), nil, &lscServer, false},
		{"another certificate pinned", []*x509.Certificate{other}, nil, nil, false},
		{"VerifyConnection refuses", ctPins(t), &tls.Config{VerifyConnection: func(tls.ConnectionState) error { return errPinned }}, nil, false},
		{"InsecureSkipVerify with the caller's check", nil, &tls.Config{InsecureSkipVerify: true, VerifyConnection: func(tls.ConnectionState) error { return nil }}, nil, true},
		{"expired by Time", ctPins(t), &tls.Config{Time: func() time.Time { return time.Now().AddDate(11, 0, 0) }}, nil, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			var cfg *tls.Config
			if tt.cfg != nil {
				cfg = tt.cfg.Clone()
			}
			c := &Client{CAPFCertificates: tt.pins, TLSConfig: tt.cfg}
			out, err := ctRunWith(t, c, ctOptions{handshake: !tt.ok, server: tt.server}, func(p *ctPeer) {
				p.auth()
				p.end(0)
			})
			if tt.ok {
				if err != nil || out == nil {
					t.Fatalf("outcome %+v, error %v", out, err)
				}
			} else if err == nil || out != nil || !strings.Contains(err.Error(), "TLS handshake") {
				t.Fatalf("outcome %+v, error %v; want a handshake failure", out, err)
			}
			if cfg != nil && (tt.cfg.InsecureSkipVerify != cfg.InsecureSkipVerify || (tt.cfg.VerifyConnection == nil) != (cfg.VerifyConnection == nil)) {
				t.Errorf("Run changed the caller's TLSConfig")
			}
		})
	}
}

// TestClientLSCIssuers: with LSCIssuers, a certificate from that CA (an
// external CA behind the CAPF) is stored, and one from the CAPF
// certificate is not.
func TestClientLSCIssuers(t *testing.T) {
	t.Parallel()
	key := testpki.NewKey(t, testpki.EC256)
	// An external CA, not the CAPF.
	otherKey := testpki.NewKey(t, testpki.EC256)
	otherCA := testpki.SelfSigned(t, testpki.CA("Other CA"), otherKey)
	for _, tt := range []struct {
		name string
		cert *x509.Certificate
		ok   bool
	}{
		{"from the external CA", testpki.Issue(t, testpki.Leaf(ctDevice), otherCA, key.Public(), otherKey), true},
		{"from the CAPF certificate", ctIssue(t, ctDevice, key.Public()), false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			c := &Client{SkipInProgress: true, LSCIssuers: []*x509.Certificate{otherCA}}
			c.GenerateKey, _ = ctKeys(key, nil)
			wrapped, err := capfwire.WrapCertificate(capfwire.CertificateTypeLSC, tt.cert.Raw)
			if err != nil {
				t.Fatal(err)
			}
			reason := byte(1)
			if !tt.ok {
				reason = 7
			}
			out, err := ctRun(t, c, func(p *ctPeer) {
				p.auth()
				p.send(capfwire.CmdKeyGenerateRequest, ctEl(capfwire.TagKeyType, []byte{1}), ctEl(capfwire.TagCurve, []byte{0}))
				p.recv(capfwire.CmdKeyGenerateResponse)
				p.send(capfwire.CmdStoreCertificateRequest, ctEl(capfwire.TagCertificate, wrapped))
				p.expect(ctCat(ctHex("55 0a"), ctSID(p.sid), ctHex("0004 | 01 0001"), []byte{reason}))
				p.end(1)
			})
			if tt.ok != (err == nil) || tt.ok != (out != nil && out.Certificate != nil) {
				t.Fatalf("outcome %+v, error %v", out, err)
			}
		})
	}
}

func TestClientInvalid(t *testing.T) {
	t.Parallel()
	ecKey, ecKey2 := testpki.NewKey(t, testpki.EC256), testpki.NewKey(t, testpki.EC256)
	ecCert := ctIssue(t, ctDevice, ecKey.Public())
	_, edKey, _ := ed25519.GenerateKey(rand.Reader)
	edCert := ctIssue(t, ctDevice, edKey.Public())
	pins := ctPins(t)
	tests := []struct {
		name string
		c    Client
	}{
		{"no device", Client{CAPFCertificates: pins}},
		{"device with a space", Client{Device: "SEP 001122334455", CAPFCertificates: pins}},
		{"device too long", Client{Device: strings.Repeat("A", 65), CAPFCertificates: pins}},
		{"no CAPFCertificates", Client{Device: ctDevice}},
		{"no CAPFCertificates, a TLSConfig", Client{Device: ctDevice, TLSConfig: &tls.Config{}}},
		{"RootCAs: would trust every LSC", Client{Device: ctDevice, CAPFCertificates: pins, TLSConfig: &tls.Config{RootCAs: x509.NewCertPool()}}},
		{"unparsed CAPF certificate", Client{Device: ctDevice, CAPFCertificates: []*x509.Certificate{{}}}},
		{"unparsed LSC issuer", Client{Device: ctDevice, CAPFCertificates: pins, LSCIssuers: []*x509.Certificate{nil}}},
		{"NUL in AuthString", Client{Device: ctDevice, CAPFCertificates: pins, AuthString: "12\x0034"}},
		{"Certificate without Key", Client{Device: ctDevice, CAPFCertificates: pins, Certificate: ecCert}},
		{"Key without Certificate", Client{Device: ctDevice, CAPFCertificates: pins, Key: ecKey}},
		{"Key of another Certificate", Client{Device: ctDevice, CAPFCertificates: pins, Certificate: ecCert, Key: ecKey2}},
		{"Ed25519 Key", Client{Device: ctDevice, CAPFCertificates: pins, Certificate: edCert, Key: edKey}},
		{"unparsed Certificate", Client{Device: ctDevice, CAPFCertificates: pins, Certificate: &x509.Certificate{PublicKey: ecKey.Public()}, Key: ecKey}},
		{"SUDI without Certificate", Client{Device: ctDevice, CAPFCertificates: pins, SUDI: ecCert, SUDIKey: ecKey}},
		{"EC SUDI", Client{Device: ctDevice, CAPFCertificates: pins, Certificate: ecCert, Key: ecKey, SUDI: ecCert, SUDIKey: ecKey}},
		{"SUDI without SUDIKey", Client{Device: ctDevice, CAPFCertificates: pins, Certificate: ecCert, Key: ecKey, SUDI: ecCert}},
		{"unparsed Current", Client{Device: ctDevice, CAPFCertificates: pins, Current: &x509.Certificate{}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			a, b := net.Pipe()
			defer b.Close()
			out, err := tt.c.Run(context.Background(), a)
			if !errors.Is(err, ErrInvalid) || out != nil || !strings.HasPrefix(err.Error(), "capf: ") {
				t.Errorf("outcome %+v, error %v; want ErrInvalid", out, err)
			}
			if _, err := b.Write([]byte{0}); !errors.Is(err, io.ErrClosedPipe) {
				t.Errorf("Run left the connection open: %v", err)
			}
			if _, err := tt.c.Enroll(context.Background(), "127.0.0.1:1"); !errors.Is(err, ErrInvalid) {
				t.Errorf("Enroll: %v, want ErrInvalid before dialling", err)
			}
		})
	}
}

// ctScripted is a connection for Client.session: it reads from a fixed
// server transcript and records each Write.
type ctScripted struct {
	r      *bytes.Reader
	writes [][]byte
}

func (c *ctScripted) Read(b []byte) (int, error) { return c.r.Read(b) }
func (c *ctScripted) Write(b []byte) (int, error) {
	c.writes = append(c.writes, bytes.Clone(b))
	return len(b), nil
}
func (c *ctScripted) SetDeadline(time.Time) error { return nil }

// ctTranscript is a whole EC install as the server sends it, and the
// client that goes with it.
func ctTranscript(t testing.TB) ([]byte, *Client) {
	key := testpki.NewKey(t, testpki.EC256)
	cert := ctIssue(t, ctDevice, key.Public())
	wrapped, err := capfwire.WrapCertificate(capfwire.CertificateTypeLSC, cert.Raw)
	if err != nil {
		t.Fatal(err)
	}
	const sid = 7
	server := ctCat(
		ctFrame(capfwire.CmdAuthRequest, sid, ctEl(capfwire.TagVersion, []byte{3}), ctEl(capfwire.TagAuthType, []byte{0})),
		ctFrame(capfwire.CmdKeyGenerateRequest, sid, ctEl(capfwire.TagKeyType, []byte{1}), ctEl(capfwire.TagCurve, []byte{0})),
		ctFrame(capfwire.CmdStoreCertificateRequest, sid, ctEl(capfwire.TagCertificateType, []byte{1}), ctEl(capfwire.TagCertificate, wrapped)),
		ctFrame(capfwire.CmdEndSession, sid, ctEl(capfwire.TagReason, []byte{1})),
	)
	c := &Client{Device: ctDevice, Current: cert, GenerateKey: func(KeySpec) (crypto.Signer, error) { return key, nil }}
	return server, c
}

// TestClientOneWritePerFrame: every frame goes out in a single Write.
func TestClientOneWritePerFrame(t *testing.T) {
	t.Parallel()
	server, c := ctTranscript(t)
	conn := &ctScripted{r: bytes.NewReader(server)}
	out, err := c.session(context.Background(), conn, ctPins(t))
	if err != nil || out.Certificate == nil {
		t.Fatalf("outcome %+v, error %v", out, err)
	}
	want := []capfwire.Command{capfwire.CmdAuthResponse, capfwire.CmdRequestInProgress, capfwire.CmdKeyGenerateResponse, capfwire.CmdStoreCertificateResponse}
	if len(conn.writes) != len(want) {
		t.Fatalf("%d writes, want %d", len(conn.writes), len(want))
	}
	for i, w := range conn.writes {
		r := bytes.NewReader(w)
		f, err := capfwire.ReadFrame(r)
		if err != nil || f.Command != want[i] || f.Session != 7 || r.Len() != 0 {
			t.Errorf("write %d: %x is not one %v frame (%v)", i, w, want[i], err)
		}
	}
}

// FuzzClientSession feeds arbitrary server bytes to a client session: it
// must never panic, and succeed only with an END_SESSION of reason 0 or 1.
func FuzzClientSession(f *testing.F) {
	server, c := ctTranscript(f)
	f.Add(server)
	f.Add(server[:40])
	f.Add(ctCat(server[:12], ctFrame(capfwire.CmdFetchCertificateRequest, 7), ctFrame(capfwire.CmdEndSession, 7, ctEl(capfwire.TagReason, []byte{0}))))
	f.Add(ctCat(server[:12], ctFrame(capfwire.CmdDeleteCertificateRequest, 7), ctFrame(capfwire.CmdEndSession, 7, ctEl(capfwire.TagReason, []byte{9}))))
	f.Add(ctCat(server[:12], ctFrame(capfwire.CmdKeyGenerateRequest, 7, ctEl(capfwire.TagKeySize, []byte{0x03, 0xe8}))))
	f.Fuzz(func(t *testing.T, data []byte) {
		out, err := c.session(context.Background(), &ctScripted{r: bytes.NewReader(data)}, ctPins(t))
		if err == nil && (out == nil || out.Reason > 1) {
			t.Fatalf("success with outcome %+v", out)
		}
		if out != nil && (out.Certificate == nil) != (out.Key == nil) {
			t.Fatalf("outcome %+v: certificate without key", out)
		}
		if err != nil && !strings.HasPrefix(err.Error(), "capf: ") {
			t.Fatalf("error %q lacks the capf: prefix", err)
		}
	})
}
