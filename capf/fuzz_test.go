package capf

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"io"
	"reflect"
	"testing"
	"time"

	"github.com/ucsec/ucsec/internal/capfwire"
	"github.com/ucsec/ucsec/internal/testpki"
)

// fuzzConn feeds the fuzzer's bytes to the server as the device's side
// and counts what the server writes.
type fuzzConn struct {
	r       *bytes.Reader
	written int
}

func (c *fuzzConn) Read(b []byte) (int, error)       { return c.r.Read(b) }
func (c *fuzzConn) Write(b []byte) (int, error)      { c.written += len(b); return len(b), nil }
func (c *fuzzConn) SetDeadline(time.Time) error      { return nil }
func (c *fuzzConn) SetWriteDeadline(time.Time) error { return nil }

func fuzzFrame(cmd capfwire.Command, add func(f *capfwire.Frame)) []byte {
	f := &capfwire.Frame{Command: cmd, Session: 1}
	if add != nil {
		add(f)
	}
	b, _ := f.Marshal()
	return b
}

// FuzzServerSession runs the server's side of a session, after the TLS
// handshake, on whatever a device sends: it must end, without a panic and
// with a bounded amount of output, whatever the input. Two devices are
// scheduled: SEP001122334455 for an EC install by null string and
// SEP665544332211 for a fetch by the string 1234.
func FuzzServerSession(f *testing.F) {
	caKey := testpki.NewKey(f, testpki.EC256)
	ca := testpki.SelfSigned(f, testpki.CA("fuzz CAPF"), caKey)
	spki, _ := x509.MarshalPKIXPublicKey(testpki.Key(f, testpki.EC256).Public())
	auth := func(dev, pw string) []byte {
		return fuzzFrame(capfwire.CmdAuthResponse, func(f *capfwire.Frame) {
			f.AddUint8(capfwire.TagReason, 1)
			f.AddUint8(capfwire.TagVersion, 3)
			f.AddString(capfwire.TagPassword, pw)
			f.AddString(capfwire.TagDeviceName, dev)
		})
	}
	install := bytes.Join([][]byte{
		auth("SEP001122334455", ""),
		fuzzFrame(capfwire.CmdRequestInProgress, nil),
		fuzzFrame(capfwire.CmdKeyGenerateResponse, func(f *capfwire.Frame) { f.Add(capfwire.TagPublicKey, spki) }),
		fuzzFrame(capfwire.CmdStoreCertificateResponse, func(f *capfwire.Frame) { f.AddUint8(capfwire.TagReason, 1) }),
	}, nil)
	f.Add(install)
	f.Add(bytes.Join([][]byte{
		auth("SEP665544332211", "1234"),
		fuzzFrame(capfwire.CmdFetchCertificateResponse, func(f *capfwire.Frame) {
			f.AddUint8(capfwire.TagReason, 1)
			f.AddCertificate(capfwire.CertificateTypeLSC, ca.Raw)
		}),
	}, nil))
	f.Add(auth("SEP665544332211", "9999"))
	f.Add(install[:40])
	f.Fuzz(func(t *testing.T, data []byte) {
		ctx := context.Background()
		st := NewMemoryStore()
		now := time.Now()
		if err := ScheduleOperation(ctx, st, "SEP001122334455", Schedule{Operation: OpInstall, Key: EC256}, now); err != nil {
			t.Fatal(err)
		}
		if err := ScheduleOperation(ctx, st, "SEP665544332211", Schedule{Operation: OpFetch, Auth: AuthString, AuthString: "1234"}, now); err != nil {
			t.Fatal(err)
		}
		srv := &Server{
			Store:     st,
			Issuer:    &LocalCA{Certificate: ca, Signer: caKey},
			TLSConfig: &tls.Config{Certificates: []tls.Certificate{{}}},
			Rand:      zeroReader{},
		}
		if err := srv.init(); err != nil {
			t.Fatal(err)
		}
		conn := &fuzzConn{r: bytes.NewReader(data)}
		ss := &session{s: srv, ctx: ctx, conn: conn, id: 1, log: srv.log}
		if err := ss.run(); err != nil && bytes.Equal(data, install) {
			t.Log(err)
		}
		// AUTH_REQUEST, at most three requests, END_SESSION: a few frames,
		// each bounded by the certificate issued.
		if conn.written > 8*1024 {
			t.Fatalf("server wrote %d bytes", conn.written)
		}
		d, err := LookupDevice(ctx, st, "SEP001122334455")
		if err != nil {
			t.Fatal(err)
		}
		if bytes.Equal(data, install) && (ss.reason != capfwire.ReasonOK || d.Certificate == nil) {
			t.Fatalf("the valid install seed ended with reason %d", ss.reason)
		}
		if ss.reason == capfwire.ReasonOK && d.Pending == nil && d.Certificate == nil {
			t.Fatal("install reported done, no certificate recorded")
		}
	})
}

type zeroReader struct{}

func (zeroReader) Read(b []byte) (int, error) { clear(b); return len(b), nil }

var _ io.Reader = zeroReader{}

// FuzzDecodeRecord decodes device records as a store might hand them
// back: it must not panic, must refuse what it cannot read with
// ErrCorrupt or ErrStoreVersion, and what it reads must encode, and read
// back the same.
func FuzzDecodeRecord(f *testing.F) {
	full, _ := hex.DecodeString(fullRecordV1)
	f.Add(full)
	for _, r := range []*record{{name: "SEP1"}, {name: "SEP1", pending: &pending{}, last: &Result{}}} {
		b, _ := r.encode()
		f.Add(b)
	}
	f.Add([]byte{2})
	f.Fuzz(func(t *testing.T, data []byte) {
		r, err := decodeRecord("SEP1", data)
		if err != nil {
			if !errors.Is(err, ErrCorrupt) && !errors.Is(err, ErrStoreVersion) {
				t.Fatalf("error %v wraps neither ErrCorrupt nor ErrStoreVersion", err)
			}
			return
		}
		if r == nil {
			if len(data) != 0 {
				t.Fatal("no record, no error")
			}
			return
		}
		b, err := r.encode()
		if err != nil {
			t.Fatalf("decoded record does not encode: %v", err)
		}
		r2, err := decodeRecord("SEP1", b)
		if err != nil {
			t.Fatalf("encoded record does not decode: %v", err)
		}
		if !reflect.DeepEqual(r, r2) {
			t.Fatalf("round trip: %+v, then %+v", r, r2)
		}
		if b2, _ := r2.encode(); !bytes.Equal(b, b2) {
			t.Fatalf("encodings differ: %x, then %x", b, b2)
		}
	})
}

// FuzzDecodeIssued does the same for the data of issued log entries.
func FuzzDecodeIssued(f *testing.F) {
	f.Add(encodeIssued(&IssuedCertificate{Issued: time.Date(2025, 1, 2, 3, 4, 5, 6, time.UTC), DER: []byte{0x30, 0}}))
	f.Add(encodeIssued(&IssuedCertificate{}))
	f.Add([]byte{2})
	f.Fuzz(func(t *testing.T, data []byte) {
		c, err := decodeIssued(IssuedRecord{Serial: "0a", Device: "SEP1", Data: data})
		if err != nil {
			if !errors.Is(err, ErrCorrupt) && !errors.Is(err, ErrStoreVersion) {
				t.Fatalf("error %v wraps neither ErrCorrupt nor ErrStoreVersion", err)
			}
			return
		}
		b := encodeIssued(c)
		c2, err := decodeIssued(IssuedRecord{Serial: "0a", Device: "SEP1", Data: b})
		if err != nil || !reflect.DeepEqual(c, c2) {
			t.Fatalf("round trip: %+v, then %+v, %v", c, c2, err)
		}
	})
}
