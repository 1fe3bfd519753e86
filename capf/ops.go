package capf

import (
	"context"
	"crypto"
	"crypto/rsa"
	"crypto/x509"
	"fmt"
	"time"

	"github.com/ucsec/ucsec/internal/capfwire"
)

var curveCodes = map[KeySpec]uint8{EC256: capfwire.CurveP256, EC384: capfwire.CurveP384, EC521: capfwire.CurveP521}

// install asks for a key, issues the LSC, records it as issued, hands it
// over and records the result once the device has stored it.
func (ss *session) install() error {
	s := ss.s
	spec := ss.sch.Key.resolve()
	req := &capfwire.Frame{Command: capfwire.CmdKeyGenerateRequest, Session: ss.id}
	if bits := spec.RSABits(); bits != 0 {
		req.AddUint16(capfwire.TagKeySize, uint16(bits))
		req.AddUint8(capfwire.TagKeyType, capfwire.KeyTypeRSA)
	} else {
		req.AddUint8(capfwire.TagKeyType, capfwire.KeyTypeEC)
		req.AddUint8(capfwire.TagCurve, curveCodes[spec])
	}
	if err := ss.send(req); err != nil {
		return err
	}
	keyBy := time.Now().Add(s.keyGenTimeout())
	var f *capfwire.Frame
	for i := 0; ; i++ {
		var err error
		f, err = ss.recv(keyBy, capfwire.CmdRequestInProgress, capfwire.CmdKeyGenerateResponse)
		if err != nil {
			return err
		}
		if f.Command == capfwire.CmdKeyGenerateResponse {
			break
		}
		if i == maxInProgress {
			return protocolf("more than %d REQUEST_IN_PROGRESS frames", maxInProgress)
		}
	}
	spki, ok := f.Get(capfwire.TagPublicKey)
	if !ok {
		reason, _ := f.Uint8(capfwire.TagReason)
		return fail(capfwire.ReasonFailure, FailKeyGeneration, fmt.Errorf("capf: %s sent no public key (reason %d)", ss.device, reason))
	}
	pub, err := x509.ParsePKIXPublicKey(spki)
	if err != nil {
		return fail(capfwire.ReasonFailure, FailKeyGeneration, fmt.Errorf("%w: public key: %w", ErrProtocol, err))
	}
	if !spec.Matches(pub) {
		return fail(capfwire.ReasonFailure, FailKeyGeneration, fmt.Errorf("%w: %s sent a %T, want %v", ErrProtocol, ss.device, pub, spec))
	}
	if err := checkPublicKey(pub); err != nil {
		return fail(capfwire.ReasonFailure, FailKeyGeneration, err)
	}
	if err := ss.claim(); err != nil {
		return err
	}
	ictx, cancel := context.WithTimeout(ss.ctx, s.issueTimeout())
	cert, err := s.Issuer.Issue(ictx, &CertificateRequest{Device: ss.device, PublicKey: pub, RawSubjectPublicKeyInfo: spki})
	cancel()
	if err != nil {
		return fail(capfwire.ReasonFailure, FailIssue, err)
	}
	if !publicKeysEqual(cert.PublicKey, pub) || cert.Subject.CommonName != ss.device {
		return fail(capfwire.ReasonFailure, FailIssue, fmt.Errorf("%w: the issuer certified another key or name (%q)", ErrIssue, cert.Subject.CommonName))
	}
	serial := SerialHex(cert.SerialNumber)
	if !validSerial(serial) {
		return fail(capfwire.ReasonFailure, FailIssue, fmt.Errorf("%w: the issuer gave serial number %q (want 1 to %d hex digits, positive)", ErrIssue, serial, maxSerial))
	}
	if err := ss.recordIssued(&IssuedCertificate{Serial: serial, Device: ss.device, Issued: s.now(), DER: cert.Raw}); err != nil {
		return err
	}
	// From here on the operation ends, whatever happens: one operation
	// issues one certificate.
	ss.issued = true
	store := &capfwire.Frame{Command: capfwire.CmdStoreCertificateRequest, Session: ss.id}
	store.AddUint8(capfwire.TagCertificateType, capfwire.CertificateTypeLSC)
	if err := store.AddCertificate(capfwire.CertificateTypeLSC, cert.Raw); err != nil {
		return fail(capfwire.ReasonFailure, FailIssue, err)
	}
	if err := ss.send(store); err != nil {
		return err
	}
	f, err = ss.recv(time.Now().Add(s.authTimeout()), capfwire.CmdStoreCertificateResponse)
	if err != nil {
		return err
	}
	if reason, err := f.Uint8(capfwire.TagReason); err != nil || reason != capfwire.ReasonOK {
		return fail(capfwire.ReasonFailure, FailStore, fmt.Errorf("capf: %s did not store certificate %s (reason %d)", ss.device, serial, reason))
	}
	if err := ss.record(FailNone, func(r *record, res *Result) {
		r.cert = cert.Raw
		res.Serial = serial
	}); err != nil {
		return fail(capfwire.ReasonFailure, FailNone, err)
	}
	ss.reason = capfwire.ReasonOK
	ss.log.Info("capf: certificate installed", "serial", serial, "notAfter", cert.NotAfter.Format(time.RFC3339))
	return nil
}

// fetch asks for the device's certificate (Troubleshoot) and keeps it.
// Success ends the session with reason 0, as the reference server does.
func (ss *session) fetch() error {
	if err := ss.send(&capfwire.Frame{Command: capfwire.CmdFetchCertificateRequest, Session: ss.id}); err != nil {
		return err
	}
	f, err := ss.recv(time.Now().Add(ss.s.authTimeout()), capfwire.CmdFetchCertificateResponse)
	if err != nil {
		return err
	}
	reason, err := f.Uint8(capfwire.TagReason)
	if err != nil {
		return fmt.Errorf("%w: %w", ErrProtocol, err)
	}
	if reason != capfwire.ReasonOK {
		return fail(capfwire.ReasonFailure, FailNoCertificate, fmt.Errorf("capf: %s has no certificate to fetch (reason %d)", ss.device, reason))
	}
	_, der, err := f.Certificate()
	if err != nil {
		return fmt.Errorf("%w: %w", ErrProtocol, err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return fmt.Errorf("%w: fetched certificate: %w", ErrProtocol, err)
	}
	if err := ss.record(FailNone, func(r *record, res *Result) {
		r.fetched = cert.Raw
		res.Serial = SerialHex(cert.SerialNumber)
	}); err != nil {
		return fail(capfwire.ReasonFailure, FailNone, err)
	}
	ss.reason = capfwire.ReasonNoAction
	return nil
}

// delete tells the device to delete its LSC. A device that had none
// (reason 7) is where the operation wanted it: the session ends with
// reason 1 and the result records FailNoCertificate for the administrator.
func (ss *session) delete() error {
	if err := ss.send(&capfwire.Frame{Command: capfwire.CmdDeleteCertificateRequest, Session: ss.id}); err != nil {
		return err
	}
	f, err := ss.recv(time.Now().Add(ss.s.authTimeout()), capfwire.CmdDeleteCertificateResponse)
	if err != nil {
		return err
	}
	reason, err := f.Uint8(capfwire.TagReason)
	if err != nil {
		return fmt.Errorf("%w: %w", ErrProtocol, err)
	}
	failure := FailNone
	switch reason {
	case capfwire.ReasonOK:
	case capfwire.ReasonFailure:
		failure = FailNoCertificate
	default:
		return protocolf("DELETE_CERTIFICATE_RESPONSE reason %d", reason)
	}
	now := ss.s.now()
	if err := ss.record(failure, func(r *record, _ *Result) {
		r.cert = nil
		r.voidBefore = now
	}); err != nil {
		return fail(capfwire.ReasonFailure, FailNone, err)
	}
	ss.reason = capfwire.ReasonOK
	return nil
}

// checkPublicKey refuses RSA keys no honest device makes and that would
// make a certificate worthless: an even modulus, or a public exponent that
// is even or below 3 (with e = 1 anyone can forge signatures).
func checkPublicKey(pub crypto.PublicKey) error {
	if k, ok := pub.(*rsa.PublicKey); ok && (k.N.Bit(0) == 0 || k.E < 3 || k.E%2 == 0) {
		return fmt.Errorf("%w: unusable RSA public key (exponent %d)", ErrProtocol, k.E)
	}
	return nil
}

// publicKeysEqual compares two public keys of the crypto package types.
func publicKeysEqual(a, b crypto.PublicKey) bool {
	k, ok := a.(interface{ Equal(crypto.PublicKey) bool })
	return ok && k.Equal(b)
}
