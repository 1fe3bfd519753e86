package capf

import (
	"bytes"
	"context"
	"crypto"
	"crypto/sha256"
	"crypto/subtle"
	"crypto/x509"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"strings"
	"time"

	"github.com/ucsec/ucsec/internal/netserve"

	"github.com/ucsec/ucsec/internal/capfwire"
)

// protocolVersion is the VERSION the server announces; devices may answer
// with a lower one (Jabber sends 2).
const protocolVersion = 3

// maxInProgress bounds the REQUEST_IN_PROGRESS frames accepted while a
// device generates its key.
const maxInProgress = 16

// A session is the server side of one connection.
type session struct {
	s      *Server
	ctx    context.Context
	conn   sessionConn
	id     uint32
	log    *slog.Logger
	device string
	rec    *record   // the device's record read at authentication
	sch    *Schedule // its pending operation
	authed bool      // the device has authenticated
	issued bool      // a certificate was issued (and recorded) in this session
	reason uint8     // END_SESSION reason sent

	// The LSC the device authenticated with, if any, checked again
	// against the record when the operation is claimed.
	authLSC *x509.Certificate
}

// sessionConn is what a session needs of its connection: a *tls.Conn
// after the handshake, or a stand-in in tests.
type sessionConn interface {
	io.ReadWriter
	SetDeadline(time.Time) error
	SetWriteDeadline(time.Time) error
}

// endError carries the END_SESSION reason to send and what to record.
type endError struct {
	reason  uint8
	failure Failure // recorded against the pending operation, if any
	err     error
}

func (e *endError) Error() string { return e.err.Error() }
func (e *endError) Unwrap() error { return e.err }

func fail(reason uint8, f Failure, err error) error { return &endError{reason, f, err} }

func protocolf(format string, args ...any) error {
	return fmt.Errorf("%w: "+format, append([]any{ErrProtocol}, args...)...)
}

// Socket deadlines are always from the real clock (time.Now): Server.Time
// is for the business logic (deadlines of operations, records,
// certificates) and may be shifted.

func (s *Server) serveConn(ctx context.Context, raw net.Conn) error {
	start := time.Now()
	conn, done, err := netserve.Handshake(ctx, raw, s.tls, s.firstByteTimeout(), s.handshakeTimeout())
	defer done()
	ss := &session{s: s, ctx: ctx, conn: conn, id: s.sessionID()}
	ss.log = s.log.With("session", ss.id, "remote", raw.RemoteAddr().String())
	if err != nil {
		err = fmt.Errorf("capf: TLS handshake: %w", err)
	} else {
		err = ss.run()
	}
	attrs := []any{"reason", ss.reason, "duration", time.Since(start)}
	if ss.sch != nil {
		attrs = append(attrs, "operation", ss.sch.Operation.String(), "auth", ss.sch.Auth.String())
	}
	if err != nil {
		ss.log.Warn("capf: session failed", append(attrs, "err", err)...)
	} else {
		ss.log.Info("capf: session done", attrs...)
	}
	return err
}

// run drives the session after the TLS handshake and sends END_SESSION.
// The returned error is nil when the operation (or nothing) was carried
// out.
func (ss *session) run() error {
	err := ss.operate()
	// What to record of a failure. Before the device has authenticated
	// nothing is written (the string check counts its own failures, and an
	// expired operation may be closed by anyone); after, every failure is
	// recorded, including a device that went away.
	failure, gone := FailNone, false
	var ee *endError
	switch {
	case err == nil:
	case errors.As(err, &ee):
		ss.reason, failure = ee.reason, ee.failure
	case errors.Is(err, net.ErrClosed) || errors.Is(err, errPeerGone):
		failure, gone = FailProtocol, true
	default:
		ss.reason, failure = capfwire.ReasonFailure, FailProtocol
	}
	if ss.issued && failure == FailProtocol {
		failure = FailStore // the certificate went out; was it stored?
	}
	if failure != FailNone && ss.sch != nil && (ss.authed || failure == FailDeadline) {
		if rerr := ss.record(failure, nil); rerr != nil {
			ss.log.Error("capf: recording the failure", "err", rerr)
		}
	}
	if gone {
		return err
	}
	end := &capfwire.Frame{Command: capfwire.CmdEndSession, Session: ss.id}
	end.AddUint8(capfwire.TagReason, ss.reason)
	if werr := ss.send(end); werr != nil && err == nil {
		err = werr
	}
	return err
}

var errPeerGone = errors.New("capf: device closed the connection")

func (ss *session) send(f *capfwire.Frame) error {
	ss.conn.SetWriteDeadline(time.Now().Add(ss.s.authTimeout()))
	return capfwire.WriteFrame(ss.conn, f)
}

// recv reads the next frame, by the deadline, which must carry the
// session id and one of the wanted commands and no element twice.
func (ss *session) recv(deadline time.Time, want ...capfwire.Command) (*capfwire.Frame, error) {
	ss.conn.SetDeadline(deadline)
	f, err := capfwire.ReadFrame(ss.conn)
	if err != nil {
		if errors.Is(err, io.EOF) {
			return nil, errPeerGone
		}
		return nil, fmt.Errorf("%w: %w", ErrProtocol, err)
	}
	if f.Session != ss.id {
		return nil, protocolf("session id %d, want %d", f.Session, ss.id)
	}
	ok := false
	for _, c := range want {
		ok = ok || f.Command == c
	}
	if !ok {
		return nil, protocolf("unexpected %v", f.Command)
	}
	var seen [256]bool
	for _, e := range f.Elements {
		if seen[e.Tag] {
			return nil, protocolf("%v: element %v repeated", f.Command, e.Tag)
		}
		seen[e.Tag] = true
	}
	return f, nil
}

// operate runs the session from AUTH_REQUEST to the operation's last
// frame, leaving END_SESSION to run.
func (ss *session) operate() error {
	s := ss.s
	req := &capfwire.Frame{Command: capfwire.CmdAuthRequest, Session: ss.id}
	req.AddUint8(capfwire.TagVersion, protocolVersion)
	req.AddUint8(capfwire.TagAuthType, capfwire.AuthNone)
	if err := ss.send(req); err != nil {
		return err
	}
	f, err := ss.recv(time.Now().Add(s.authTimeout()), capfwire.CmdAuthResponse)
	if err != nil {
		return err
	}
	if v, err := f.Uint8(capfwire.TagVersion); err != nil || v == 0 || v > protocolVersion {
		return protocolf("AUTH_RESPONSE version %d (err %v)", v, err)
	}
	name, err := f.Text(capfwire.TagDeviceName)
	if err != nil {
		return fmt.Errorf("%w: %w", ErrProtocol, err)
	}
	if err := checkDeviceName(name); err != nil {
		return fmt.Errorf("%w: %w", ErrProtocol, err)
	}
	ss.device = name
	ss.log = ss.log.With("device", name)
	rec, err := lookup(ss.ctx, s.Store, name)
	if errors.Is(err, ErrUnknownDevice) {
		return fail(capfwire.ReasonUnknownDevice, FailNone, err)
	} else if err != nil {
		return fail(capfwire.ReasonFailure, FailNone, err)
	}
	ss.rec = rec
	if rec.pending == nil || rec.pending.Operation == OpNone {
		ss.reason = capfwire.ReasonNoAction
		return nil
	}
	sch := rec.pending.Schedule
	ss.sch = &sch
	if sch.Expired(s.now()) {
		return fail(capfwire.ReasonFailure, FailDeadline, fmt.Errorf("capf: %v operation for %s expired at %s", sch.Operation, name, sch.Deadline.Format(time.RFC3339)))
	}
	if err := ss.authenticate(f); err != nil {
		return err
	}
	ss.authed = true
	switch sch.Operation {
	case OpInstall:
		return ss.install()
	case OpFetch:
		return ss.fetch()
	case OpDelete:
		return ss.delete()
	}
	return fail(capfwire.ReasonFailure, FailNone, fmt.Errorf("%w: stored operation %v", ErrInvalid, sch.Operation))
}

// sameOperation reports whether p is still the operation sch.
func sameOperation(p *pending, sch *Schedule) bool {
	return p != nil && p.Operation == sch.Operation && p.Scheduled.Equal(sch.Scheduled)
}

// owner returns the session's identity in a claim: the server's and its
// own id.
func (ss *session) owner() claimOwner {
	var o claimOwner
	copy(o[:8], ss.s.instance[:])
	binary.BigEndian.PutUint32(o[8:], ss.id)
	return o
}

// record stores the outcome of the session. apply, if not nil, changes the
// device's certificate state to what the device acknowledged; it runs even
// if the operation was cancelled or rescheduled meanwhile, since the
// device did what it did. The result is recorded, and the operation
// updated, only if it is still the one read at authentication: a success,
// a failure no retry can mend (deadline, lockout, missing certificate), or
// any failure after a certificate was issued ends it; other failures leave
// it pending so that the device may retry.
func (ss *session) record(f Failure, apply func(r *record, res *Result)) error {
	now := ss.s.now()
	sch := ss.sch
	owner := ss.owner()
	changed := false
	err := modify(ss.ctx, ss.s.Store, ss.device, func(r *record) (*record, error) {
		changed = true
		if r == nil {
			return nil, errUnchanged // removed meanwhile
		}
		res := &Result{Operation: sch.Operation, Failure: f, Time: now}
		if apply != nil {
			apply(r, res)
		}
		if ss.authed {
			r.lastSeen = now
		}
		p := r.pending
		if changed = !sameOperation(p, sch); changed {
			return r, nil
		}
		r.last = res
		switch {
		case f == FailNone, f == FailDeadline, f == FailLocked, f == FailNoCertificate, ss.issued:
			r.pending = nil
		case p.claim.owner == owner:
			p.claim = claim{} // released for a retry
		}
		return r, nil
	})
	if err == nil && changed {
		ss.log.Warn("capf: the operation was cancelled or rescheduled during the session; its result is not recorded", "failure", f.String())
	}
	return err
}

// claimLease is how long a claim on an operation keeps other sessions
// from carrying it out: as long as the claiming session can still run
// from the claim to the device's acknowledgement.
func (s *Server) claimLease() time.Duration { return 2*s.authTimeout() + s.issueTimeout() }

// claim marks the operation as being carried out by this session, right
// before a certificate is issued, so that no other session, of this
// server or another on the store, issues one for it meanwhile; and checks
// the authenticating LSC against the record once more (it may have been
// replaced since it was read).
//
// An operation that issued a certificate in a session whose claim lapsed
// (its server stopped before the device's acknowledgement was recorded)
// ends here with [FailStore]: whether the device stored that certificate
// is unknown, and the operation has had its one certificate.
func (ss *session) claim() error {
	now := ss.s.now()
	owner := ss.owner()
	var refused error
	orphan := false
	err := modify(ss.ctx, ss.s.Store, ss.device, func(r *record) (*record, error) {
		refused, orphan = nil, false
		var p *pending
		if r != nil {
			p = r.pending
		}
		switch {
		case !sameOperation(p, ss.sch):
			refused = fail(capfwire.ReasonFailure, FailNone, fmt.Errorf("capf: the operation for %s was cancelled, rescheduled or carried out by another session during the session", ss.device))
		case p.claim.live(now) && p.claim.owner != owner:
			refused = fail(capfwire.ReasonFailure, FailNone, fmt.Errorf("capf: %v is carrying out the operation for %s", p.claim.owner, ss.device))
		case p.issued != "":
			orphan = true
			refused = fail(capfwire.ReasonFailure, FailStore, fmt.Errorf("capf: the operation for %s issued certificate %s in a session that ended before the device acknowledged it", ss.device, p.issued))
		case ss.authLSC != nil:
			if err := currentLSC(r, ss.authLSC); err != nil {
				refused = fail(capfwire.ReasonFailure, FailAuthCertificate, err)
			}
		}
		if refused != nil {
			return nil, refused
		}
		p.claim = claim{owner: owner, until: now.Add(ss.s.claimLease())}
		return r, nil
	})
	if refused != nil && errors.Is(err, refused) {
		// An orphaned operation has had its certificate: this session's
		// failure ends it.
		ss.issued = orphan
		return refused
	}
	if err != nil {
		return fail(capfwire.ReasonFailure, FailNone, err)
	}
	return nil
}

// recordIssued records the certificate in the issued log, in one
// transaction with the operation's record, which must still be claimed
// by this session and must not have issued one: so a session whose claim
// lapsed and was taken over cannot record, and sends nothing.
func (ss *session) recordIssued(c *IssuedCertificate) error {
	owner := ss.owner()
	var refused error
	rec := IssuedRecord{Serial: c.Serial, Device: c.Device, Data: encodeIssued(c)}
	err := ss.s.Store.RecordIssued(ss.ctx, rec, recordFunc(ss.device, func(r *record) (*record, error) {
		refused = nil
		var p *pending
		if r != nil {
			p = r.pending
		}
		switch {
		case !sameOperation(p, ss.sch):
			refused = fmt.Errorf("capf: the operation for %s was cancelled, rescheduled or carried out by another session while the certificate was issued", ss.device)
		case p.claim.owner != owner || p.issued != "":
			refused = fmt.Errorf("capf: this session's claim on the operation for %s lapsed, and %v took it over", ss.device, p.claim.owner)
		}
		if refused != nil {
			return nil, refused
		}
		p.issued = c.Serial
		return r, nil
	}))
	switch {
	case refused != nil && errors.Is(err, refused):
		// Another session carries the operation out, or nobody does: the
		// certificate is dropped, nothing is recorded.
		return fail(capfwire.ReasonFailure, FailNone, refused)
	case err != nil:
		return fail(capfwire.ReasonFailure, FailIssue, err)
	}
	return nil
}

func (ss *session) authenticate(f *capfwire.Frame) error {
	switch ss.sch.Auth {
	case AuthNull:
		return nil
	case AuthString:
		return ss.checkString(f)
	case AuthLSC, AuthMIC:
		if err := ss.checkCertificate(f); err != nil {
			return fail(capfwire.ReasonFailure, FailAuthCertificate, err)
		}
		return nil
	}
	return fail(capfwire.ReasonFailure, FailNone, fmt.Errorf("%w: stored authentication mode %v", ErrInvalid, ss.sch.Auth))
}

// checkString compares the PASSWORD with the scheduled string inside a
// store transaction, so that concurrent guesses are counted one by one and
// the lockout is exact.
func (ss *session) checkString(f *capfwire.Frame) error {
	pw, err := f.Password()
	if err != nil {
		return fmt.Errorf("%w: %w", ErrProtocol, err)
	}
	got := sha256.Sum256([]byte(pw))
	max := ss.s.maxAuthFailures()
	now := ss.s.now()
	sch := ss.sch
	var failure Failure
	err = modify(ss.ctx, ss.s.Store, ss.device, func(r *record) (*record, error) {
		failure = FailNone
		var p *pending
		if r != nil {
			p = r.pending
		}
		if !sameOperation(p, sch) {
			failure = FailCancelled
			return nil, errUnchanged
		}
		want := sha256.Sum256([]byte(p.AuthString))
		if p.Failures < max && subtle.ConstantTimeCompare(got[:], want[:]) == 1 {
			return nil, errUnchanged
		}
		r.lastSeen = now
		p.Failures++
		failure = FailAuthString
		if p.Failures >= max {
			failure = FailLocked
			r.pending = nil
		}
		r.last = &Result{Operation: p.Operation, Failure: failure, Time: now}
		return r, nil
	})
	switch {
	case err != nil:
		return fail(capfwire.ReasonFailure, FailNone, err)
	case failure == FailNone:
		return nil
	case failure == FailCancelled:
		return fail(capfwire.ReasonFailure, FailNone, fmt.Errorf("capf: operation for %s cancelled during the session", ss.device))
	}
	// Recorded above, inside the transaction.
	return fail(capfwire.ReasonFailure, FailNone, fmt.Errorf("%w: wrong authentication string (%v)", ErrAuth, failure))
}

// checkCertificate verifies the certificate authentication modes:
// signatures by the certificate's key over the device name and the
// certificate, a chain to the LSC or MIC roots, the certificate bound to
// the device name, and the SUDI data if present.
func (ss *session) checkCertificate(f *capfwire.Frame) error {
	s := ss.s
	_, der, err := f.Certificate()
	if err != nil {
		return fmt.Errorf("%w: %w", ErrAuth, err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return fmt.Errorf("%w: certificate: %w", ErrAuth, err)
	}
	msg := authMessage(ss.device, der)
	sha1sig, has1 := f.Get(capfwire.TagSignedData)
	v20, has20 := f.Get(capfwire.TagSHA2SignedData)
	if !has20 {
		return fmt.Errorf("%w: no SHA-512 signature (SHA2_SIGNED_DATA)", ErrAuth)
	}
	if has1 {
		if err := verifySignature(cert.PublicKey, crypto.SHA1, msg, sha1sig); err != nil {
			return fmt.Errorf("%w: SHA-1 signature: %w", ErrAuth, err)
		}
	}
	hid, sig, err := capfwire.UnwrapSHA2SignedData(v20)
	if err != nil || hid != capfwire.HashSHA512 {
		return fmt.Errorf("%w: SHA2_SIGNED_DATA is not a SHA-512 signature", ErrAuth)
	}
	if err := verifySignature(cert.PublicKey, crypto.SHA512, msg, sig); err != nil {
		return fmt.Errorf("%w: SHA-512 signature: %w", ErrAuth, err)
	}
	mic, err := ss.verifyChain(cert)
	if err != nil {
		return err
	}
	match := s.MatchName
	if match == nil {
		match = defaultMatchName
	}
	if !match(cert, ss.device, mic) {
		return fmt.Errorf("%w: certificate %q does not name device %s", ErrAuth, cert.Subject.CommonName, ss.device)
	}
	if !mic {
		if err := ss.checkLSC(cert); err != nil {
			return err
		}
		ss.authLSC = cert
	}
	v16, ok := f.Get(capfwire.TagSUDIData)
	if !ok {
		if s.RequireSUDI {
			return fmt.Errorf("%w: no SUDI data", ErrAuth)
		}
		return nil
	}
	return ss.checkSUDI(v16)
}

// checkLSC refuses an LSC that the server issued to the device but that
// is not the one the device last acknowledged: replaced, deleted, or never
// acknowledged. So an old LSC key, stolen or left on a retired phone, and
// a certificate a device took but did not store cannot authenticate. An
// LSC issued elsewhere (another CAPF under LSCRoots) is accepted while the
// record holds no LSC.
func (ss *session) checkLSC(cert *x509.Certificate) error {
	if err := currentLSC(ss.rec, cert); err != nil {
		return err
	}
	if ss.rec.cert != nil {
		return nil // it is the current one
	}
	issued, err := ss.s.Store.Issued(ss.ctx, ss.device)
	if err != nil {
		return err
	}
	serial := SerialHex(cert.SerialNumber)
	for _, c := range issued {
		if c.Device == ss.device && c.Serial == serial {
			return fmt.Errorf("%w: LSC %s was never stored, or was deleted, by %s", ErrAuth, serial, ss.device)
		}
	}
	return nil
}

// currentLSC checks an LSC against the device's record: it must be the
// recorded LSC if there is one, and not older than a delete.
func currentLSC(r *record, cert *x509.Certificate) error {
	switch {
	case r.cert != nil && !bytes.Equal(cert.Raw, r.cert):
		return fmt.Errorf("%w: LSC %s is not the device's current LSC", ErrAuth, SerialHex(cert.SerialNumber))
	case r.cert == nil && !r.voidBefore.IsZero() && !cert.NotBefore.After(r.voidBefore):
		return fmt.Errorf("%w: LSC %s was deleted", ErrAuth, SerialHex(cert.SerialNumber))
	}
	return nil
}

func defaultMatchName(cert *x509.Certificate, device string, mic bool) bool {
	cn := cert.Subject.CommonName
	return cn == device || mic && strings.HasSuffix(cn, "-"+device)
}

// verifyChain verifies cert as an LSC, then as a MIC, and reports which.
func (ss *session) verifyChain(cert *x509.Certificate) (mic bool, err error) {
	s := ss.s
	now := s.now()
	any := []x509.ExtKeyUsage{x509.ExtKeyUsageAny}
	if s.lscRoots != nil {
		if _, err := cert.Verify(x509.VerifyOptions{Roots: s.lscRoots, Intermediates: s.LSCIntermediates, CurrentTime: now, KeyUsages: any}); err == nil {
			return false, nil
		}
	}
	if s.MICRoots != nil {
		at := now
		if s.AllowExpiredMIC && now.After(cert.NotAfter) {
			at = cert.NotAfter
		}
		_, err := cert.Verify(x509.VerifyOptions{Roots: s.MICRoots, Intermediates: s.MICIntermediates, CurrentTime: at, KeyUsages: any})
		if err == nil {
			return true, nil
		}
		return false, fmt.Errorf("%w: certificate chains to no LSC or MIC root: %w", ErrAuth, err)
	}
	return false, fmt.Errorf("%w: certificate chains to no LSC root", ErrAuth)
}

func (ss *session) checkSUDI(v []byte) error {
	s := ss.s
	sd, err := capfwire.UnwrapSUDI(v)
	if err != nil {
		return fmt.Errorf("%w: %w", ErrAuth, err)
	}
	cert, err := x509.ParseCertificate(sd.Certificate)
	if err != nil {
		return fmt.Errorf("%w: SUDI certificate: %w", ErrAuth, err)
	}
	msg := sudiMessage(ss.id, sd.Certificate)
	if err := verifySignature(cert.PublicKey, crypto.SHA512, msg, sd.SHA512); err != nil {
		return fmt.Errorf("%w: SUDI SHA-512 signature: %w", ErrAuth, err)
	}
	if sd.SHA1 != nil {
		if err := verifySignature(cert.PublicKey, crypto.SHA1, msg, sd.SHA1); err != nil {
			return fmt.Errorf("%w: SUDI SHA-1 signature: %w", ErrAuth, err)
		}
	}
	if s.SUDIRoots != nil {
		if _, err := cert.Verify(x509.VerifyOptions{Roots: s.SUDIRoots, Intermediates: s.SUDIIntermediates, CurrentTime: s.now(), KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageAny}}); err != nil {
			return fmt.Errorf("%w: SUDI certificate: %w", ErrAuth, err)
		}
	}
	return nil
}
