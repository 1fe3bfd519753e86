package main

import (
	"bytes"
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"fmt"
	"math/big"
	"net"
	"strings"
	"time"

	"github.com/ucsec/ucsec/capf"
	"github.com/ucsec/ucsec/cnfenc"
	"github.com/ucsec/ucsec/ctl"
	"github.com/ucsec/ucsec/sgn"
)

// The negative cases of provisioning: each runs something the cluster or
// a phone must refuse, and returns nil when it was refused, or an error
// saying what was accepted that should not have been.

// negTamperedConfig has an attacker between the provisioned phone p and
// the file service change p's configuration files in transit, and checks
// that the phone refuses each altered file by rule P8 and keeps nothing
// from it:
//
//   - one byte of the configuration in SEP….cnf.xml.sgn changed (the
//     short configuration of a secure phone with an RSA LSC, the full
//     one of any other phone): the signature fails (sgn.ErrVerification);
//   - for a secure phone with an RSA LSC, one byte of the ciphertext of
//     SEP….cnf.xml.enc.sgn changed: the signature fails, nothing is
//     decrypted (a phone with an EC LSC has no encrypted configuration,
//     see publish);
//   - another phone's configuration, validly signed, served under p's
//     name: refused as signed for another file (ctl.ErrWrongFile). This
//     one needs a second phone whose configuration the cluster published,
//     and is skipped without one.
func negTamperedConfig(ctx context.Context, c *cluster, p *phone) error {
	if p.trust == nil {
		return errors.New("phone not provisioned")
	}
	short, enc := cnfenc.ShortName(p.Device), cnfenc.EncryptedName(p.Device)
	type tamper struct {
		what string
		file string // the file changed
		edit func([]byte) ([]byte, error)
		want error
	}
	cases := []tamper{
		{"a byte of the signed configuration changed", short, flipPayloadByte(sgnPayload), sgn.ErrVerification},
	}
	if p.Secure && p.key != nil && isRSA(p.key.Public()) {
		cases = append(cases, tamper{"a byte of the encrypted configuration changed", enc, flipPayloadByte(encPayload), sgn.ErrVerification})
	}
	for dev := range c.published() {
		if dev == p.Device {
			continue
		}
		other := dev
		cases = append(cases, tamper{"another phone's configuration served in its place", short, func([]byte) ([]byte, error) {
			return p.fetch(c)(ctx, cnfenc.ShortName(other))
		}, ctl.ErrWrongFile})
		break
	}

	var errs []error
	for _, tc := range cases {
		mitm := &tamperer{get: p.fetch(c), file: tc.file, edit: tc.edit}
		before := *p.trust
		_, _, err := p.loadConfig(ctx, mitm.fetch)
		switch {
		case !mitm.done:
			errs = append(errs, fmt.Errorf("%s: the file was never changed (%v)", tc.what, err))
		case err == nil:
			errs = append(errs, fmt.Errorf("%s: the phone accepted it", tc.what))
		case !errors.Is(err, tc.want):
			errs = append(errs, fmt.Errorf("%s: refused for another reason than %v: %w", tc.what, tc.want, err))
		case *p.trust != before:
			errs = append(errs, fmt.Errorf("%s: the phone's trust lists changed", tc.what))
		}
	}
	return errors.Join(errs...)
}

// sgnPayload returns the offset of a signed file's payload.
func sgnPayload(data []byte) (int, error) {
	f, err := sgn.Parse(data)
	if err != nil {
		return 0, err
	}
	return f.HeaderLength, nil
}

// encPayload returns the offset of an encrypted file's ciphertext.
func encPayload(data []byte) (int, error) {
	f, err := cnfenc.Parse(data)
	if err != nil {
		return 0, err
	}
	return f.HeaderLength, nil
}

// flipPayloadByte returns an edit that changes one bit of the first
// payload byte of a file (found by payload), keeping its layout.
func flipPayloadByte(payload func([]byte) (int, error)) func([]byte) ([]byte, error) {
	return func(data []byte) ([]byte, error) {
		off, err := payload(data)
		if err != nil {
			return nil, err
		}
		if off >= len(data) {
			return nil, errors.New("empty payload")
		}
		out := bytes.Clone(data)
		out[off+len(out[off:])/2] ^= 0x01
		return out, nil
	}
}

// tamperer is an attacker on the path between a phone and the file
// service, over TFTP or HTTP: it passes downloads through get and changes
// what comes for file with edit.
type tamperer struct {
	get  fetchFunc
	file string
	edit func([]byte) ([]byte, error)
	done bool // what came for file was changed
}

func (t *tamperer) fetch(ctx context.Context, name string) ([]byte, error) {
	data, err := t.get(ctx, name)
	if err != nil || name != t.file {
		return data, err
	}
	if data, err = t.edit(data); err != nil {
		return nil, fmt.Errorf("tamper %s: %w", t.file, err)
	}
	t.done = true
	return data, nil
}

// negWrongAuthString schedules an install with an authentication string
// for a device that no phone of the run has, and has a phone enroll for
// it with another string. The CAPF must end the session with END_SESSION
// reason 7 (a *capf.EndError), issue nothing, and keep the operation
// pending with one failure counted. The operation is then cancelled.
func negWrongAuthString(ctx context.Context, c *cluster) error {
	const scheduled, typed = "246813", "135792"
	p := &phone{Device: c.decoyDevice(), Secure: true}
	if err := c.schedule(ctx, p.Device, scheduled); err != nil {
		return err
	}
	defer capf.CancelOperation(context.WithoutCancel(ctx), c.capf, p.Device, time.Now())
	p.report = &provisionReport{Device: p.Device, Secure: true}
	if err := p.firstContact(ctx, c); err != nil {
		return err
	}
	askedKey := false
	out, err := p.enroll(ctx, c.CAPFAddr, typed, func(capf.KeySpec) (crypto.Signer, error) {
		askedKey = true
		return nil, errors.New("a wrong authentication string must not get this far")
	})
	var end *capf.EndError
	switch {
	case err == nil:
		return fmt.Errorf("the CAPF accepted a wrong authentication string (operation %s)", out.Operation)
	case askedKey:
		return fmt.Errorf("the CAPF asked for a key after a wrong authentication string: %w", err)
	case !errors.As(err, &end):
		return fmt.Errorf("the session failed, but not with END_SESSION: %w", err)
	case end.Reason != 7:
		return fmt.Errorf("END_SESSION reason %d, expected 7", end.Reason)
	case out != nil && out.Certificate != nil:
		return errors.New("a certificate was issued")
	}
	d, err := c.capfDevice(ctx, p.Device)
	if err != nil {
		return err
	}
	switch {
	case d.Pending == nil || d.Pending.Operation != capf.OpInstall:
		return fmt.Errorf("the operation is no longer pending (%s)", d.Status())
	case d.Pending.Failures != 1:
		return fmt.Errorf("%d failures counted, expected 1", d.Pending.Failures)
	case d.Certificate != nil:
		return errors.New("the CAPF recorded an LSC for the device")
	}
	if !strings.Contains(d.Status(), "Pending") {
		return fmt.Errorf("status %q, expected the operation pending", d.Status())
	}
	return nil
}

// negRogueCAPF has a CAPF that is not the cluster's enrol the provisioned
// phone p. Its certificate is a phone's LSC, which the cluster's CAPF CA
// issued and which therefore chains to the same root as the real CAPF's:
// the phone must still refuse it, at the TLS handshake, before it sends
// its authentication string, because the certificate is no CAPF record of
// its trust lists.
func negRogueCAPF(ctx context.Context, p *phone) error {
	if p.lsc == nil || p.key == nil {
		return errors.New("phone not provisioned")
	}
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return err
	}
	now := time.Now()
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "rogue CAPF CA"},
		NotBefore: now.Add(-time.Hour), NotAfter: now.AddDate(2, 0, 0),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, caKey.Public(), caKey)
	if err != nil {
		return err
	}
	ca, err := x509.ParseCertificate(der)
	if err != nil {
		return err
	}
	st := capf.NewMemoryStore()
	spec, _ := capf.SpecOf(p.key.Public())
	if err := capf.ScheduleOperation(ctx, st, p.Device, capf.Schedule{Operation: capf.OpInstall, Key: spec}, now); err != nil {
		return err
	}
	srv := &capf.Server{
		Store:     st,
		Issuer:    &capf.LocalCA{Certificate: ca, Signer: caKey},
		TLSConfig: &tls.Config{Certificates: []tls.Certificate{{Certificate: [][]byte{p.lsc.Raw}, PrivateKey: p.key, Leaf: p.lsc}}},
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	sctx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- srv.Serve(sctx, l) }()
	defer func() { cancel(); <-done }()

	_, err = p.enroll(ctx, l.Addr().String(), "000000", func(capf.KeySpec) (crypto.Signer, error) { return p.key, nil })
	switch {
	case err == nil:
		return errors.New("the phone enrolled with a rogue CAPF")
	case !strings.Contains(err.Error(), "not one of the trusted certificates"):
		return fmt.Errorf("refused, but not for its certificate: %w", err)
	}
	return nil
}
