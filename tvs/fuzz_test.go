package tvs

import (
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/tls"
	"errors"
	"io"
	"log/slog"
	"slices"
	"testing"
	"time"

	"github.com/ucsec/ucsec/ctl"
	"github.com/ucsec/ucsec/internal/capfwire"
)

// fuzzConn is the connection the server's answer path reads the request
// from and writes the answer to.
type fuzzConn struct {
	r *bytes.Reader
	w bytes.Buffer
}

func (c *fuzzConn) Read(b []byte) (int, error)  { return c.r.Read(b) }
func (c *fuzzConn) Write(b []byte) (int, error) { return c.w.Write(b) }

// FuzzServerRequest runs the server's answer path, after the TLS
// handshake, over arbitrary request bytes: it must not panic, must read
// no more than one frame, and must answer every VERIFY_REQUEST of
// version 1, whatever its elements, with exactly one VERIFY_RESPONSE that
// echoes its id: STATUS 0 with the stored roles and TTL for the known
// certificate sent once, STATUS 1 alone otherwise. Anything else gets no answer.
func FuzzServerRequest(f *testing.F) {
	known := svCert(f, "known")
	st := NewMemoryStore()
	if err := Put(context.Background(), st, &Entry{Certificate: known, Roles: []ctl.Role{ctl.RoleCAPF, ctl.RoleTVS}, TTL: time.Hour}); err != nil {
		f.Fatal(err)
	}
	srv := &Server{Store: st, TLSConfig: &tls.Config{Certificates: []tls.Certificate{svTVS(f).tls()}}}
	if err := srv.init(); err != nil {
		f.Fatal(err)
	}
	log := slog.New(slog.DiscardHandler)

	f.Add(svRequest(f, 1, svDevice, known.Raw))
	f.Add(svRequest(f, 0xdeadbeef, "CP-0000-SEP000000000000", []byte("not a certificate")))
	f.Add(svFrame(f, 1, capfwire.TVSCmdVerifyRequest, 2, svEl(capfwire.TVSTagCertificate, known.Raw), svEl(capfwire.TVSTagCertificate, nil)))
	f.Add(svFrame(f, 1, capfwire.TVSCmdVerifyRequest, 3))
	f.Add(svFrame(f, 1, capfwire.TVSCmdQueryRequest, 4, svEl(capfwire.TVSTagCertificate, known.Raw)))
	f.Add(svFrame(f, 2, capfwire.TVSCmdVerifyRequest, 5, svEl(capfwire.TVSTagCertificate, known.Raw)))
	f.Add([]byte{0x57, 1, 1, 0, 0, 0, 0, 1, 0, 5, 2, 0, 9, 0x30, 0x82})
	f.Add([]byte{0x55, 1, 0, 0, 0, 1, 0, 0})
	f.Add(append(svRequest(f, 6, svDevice, known.Raw), svRequest(f, 7, svDevice, known.Raw)...))

	f.Fuzz(func(t *testing.T, data []byte) {
		c := &fuzzConn{r: bytes.NewReader(data)}
		err := srv.exchange(context.Background(), c, log, time.Now())

		// The request as the server should see it.
		req, reqErr := capfwire.ReadTVSFrame(bytes.NewReader(data))
		consumed := len(data) - c.r.Len()
		if reqErr == nil {
			b, _ := req.Marshal()
			if consumed != len(b) {
				t.Fatalf("read %d bytes of a %d-byte frame", consumed, len(b))
			}
		}
		answerable := reqErr == nil && req.Version == capfwire.TVSVersion && req.Command == capfwire.TVSCmdVerifyRequest
		if !answerable {
			if err == nil || c.w.Len() != 0 {
				t.Fatalf("answered %x (err %v) to a request that gets none", c.w.Bytes(), err)
			}
			if reqErr != nil && !errors.Is(err, ErrProtocol) && !errors.Is(err, io.EOF) {
				t.Fatalf("error %v for a frame that does not decode (%v)", err, reqErr)
			}
			return
		}
		if err != nil {
			t.Fatalf("no answer to a VERIFY_REQUEST: %v", err)
		}
		resp, err := capfwire.ReadTVSFrame(&c.w)
		if err != nil {
			t.Fatalf("answer does not decode: %v", err)
		}
		if c.w.Len() != 0 {
			t.Fatalf("%d bytes after the answer", c.w.Len())
		}
		if resp.Version != 1 || resp.Command != capfwire.TVSCmdVerifyResponse || resp.Reserved != 0 || resp.ID != req.ID {
			t.Fatalf("answer header %d %v %d id %d, request id %d", resp.Version, resp.Command, resp.Reserved, resp.ID, req.ID)
		}
		der, _ := req.Certificate()
		want := capfwire.Elements{{Tag: capfwire.TVSTagStatus, Value: []byte{capfwire.TVSStatusInvalid}}}
		if bytes.Equal(der, known.Raw) && !repeated(req.Elements, capfwire.TVSTagCertificate) {
			want = capfwire.Elements{
				{Tag: capfwire.TVSTagStatus, Value: []byte{capfwire.TVSStatusValid}},
				{Tag: capfwire.TVSTagRoles, Value: []byte{byte(ctl.RoleCAPF), byte(ctl.RoleTVS)}},
				{Tag: capfwire.TVSTagTTL, Value: []byte{0, 0, 0x0e, 0x10}},
			}
		}
		got, _ := resp.Marshal()
		wantB, _ := (&capfwire.TVSFrame{Version: 1, Command: capfwire.TVSCmdVerifyResponse, ID: req.ID, Elements: want}).Marshal()
		if !bytes.Equal(got, wantB) {
			t.Fatalf("answer %x, want %x", got, wantB)
		}
	})
}

// FuzzParseRecord decodes arbitrary records, as a Store may return
// anything: it must not panic; a record it reads, hashed or not, is one
// that Put could have written with the same entry, and what it reads
// hashed it reads unhashed too.
func FuzzParseRecord(f *testing.F) {
	cert := svCert(f, "fuzz")
	sum := sha256.Sum256(cert.Raw)
	r, err := newRecord(&Entry{Certificate: cert, Roles: []ctl.Role{ctl.RoleCCM, ctl.RoleTVS}, TTL: time.Hour})
	if err != nil {
		f.Fatal(err)
	}
	v := r.marshal()
	f.Add(v)
	f.Add(append(bytes.Clone(v), 0x01, 0, 2, 'h', 'i'))
	f.Add(append(bytes.Clone(v), 0x80, 0, 0))
	f.Add(v[:recordHead+2])
	f.Add([]byte{2})
	f.Add([]byte{})

	f.Fuzz(func(t *testing.T, v []byte) {
		e, err := parseRecord(sum, bytes.Clone(v), false)
		eh, errh := parseRecord(sum, bytes.Clone(v), true)
		if errh == nil && err != nil {
			t.Fatalf("read hashed, not unhashed: %v", err)
		}
		if err != nil {
			if !errors.Is(err, ErrCorrupt) && !errors.Is(err, ErrStoreVersion) {
				t.Fatalf("error %v wraps neither ErrCorrupt nor ErrStoreVersion", err)
			}
			return
		}
		r, err := newRecord(e)
		if err != nil {
			t.Fatalf("read an entry that Put refuses: %v", err)
		}
		again, err := parseRecord(r.sum, r.marshal(), true)
		if err != nil {
			t.Fatalf("Put's record of what was read does not read: %v", err)
		}
		if !bytes.Equal(again.Certificate.Raw, e.Certificate.Raw) || !slices.Equal(again.Roles, e.Roles) || again.TTL != e.TTL {
			t.Fatalf("round trip changed the entry")
		}
		if errh == nil && (r.sum != sum || !bytes.Equal(eh.Certificate.Raw, e.Certificate.Raw)) {
			t.Fatalf("read hashed, but the certificate's hash is %x", r.sum)
		}
	})
}
