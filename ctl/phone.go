package ctl

import (
	"bytes"
	"context"
	"crypto/x509"
	"errors"
	"fmt"

	"github.com/ucsec/ucsec/sgn"
)

// A SignedFile is a file signed by a TFTP certificate, such as an
// *sgn.File or a *cnfenc.File (an encrypted configuration): anything that
// embeds an sgn.Header.
type SignedFile interface {
	// SignedFilename returns the file name the signature covers: the name
	// the file was signed for (the header's FILENAME element).
	SignedFilename() string

	// NamesSigner reports whether the file names cert as its signer,
	// without verifying anything.
	NamesSigner(cert *x509.Certificate) bool

	// CheckSignatureFrom checks that cert is the signer the file names and
	// that cert's key made the signature.
	CheckSignatureFrom(cert *x509.Certificate) error
}

// VerifySignedFile reports whether the trust list vouches for sf as the
// file name, the name the phone asked for (such as
// "SEP001122334455.cnf.xml.sgn"): sf must have been signed for that name,
// its signer must be the certificate of a record with a role that signs
// files (TFTP or CCM+TFTP), and the signature must verify. It returns the
// record that vouched for the file, whose certificate is the file's signer
// (decrypt an encrypted configuration with it), or an error wrapping
// [ErrWrongFile], [ErrUntrusted] (the signer is not such a record) or
// sgn.ErrVerification.
//
// The name check stops a validly signed file from being served as another
// one (another phone's configuration, say). Nothing here stops an older
// file signed for the same name from being served again.
//
// It does not check the trust list itself; do that first (see
// [File.Verify] and [Phone]).
func (f *File) VerifySignedFile(sf SignedFile, name string) (*Record, error) {
	if got := sf.SignedFilename(); got != name {
		return nil, fmt.Errorf("%w: signed for %q, not %q", ErrWrongFile, got, name)
	}
	var notFileSigner *Record
	var failed error
	for i := range f.Records {
		r := &f.Records[i]
		cert, err := r.ParseCertificate()
		if err != nil || !sf.NamesSigner(cert) {
			continue
		}
		if !r.Role.canSignFiles() {
			notFileSigner = r
			continue
		}
		err = sf.CheckSignatureFrom(cert)
		if err == nil {
			return r, nil
		}
		if failed == nil {
			// The named signer, but the signature fails with this
			// certificate: another record may still hold one that works.
			failed = err
		}
	}
	switch {
	case failed != nil:
		return nil, failed
	case notFileSigner != nil:
		return nil, fmt.Errorf("%w: the signer's record has role %s, not TFTP or CCM+TFTP", ErrUntrusted, notFileSigner.Role.ShortName())
	}
	return nil, fmt.Errorf("%w: the signer is not in the trust list", ErrUntrusted)
}

// A Verifier vouches for a certificate that a phone does not hold, as the
// Trust Verification Service (TVS, TCP port 2445) does for Cisco phones. A
// TVS client implements it.
type Verifier interface {
	// VerifyCertificate reports whether cert is trusted in role. An error
	// means no answer (TVS unreachable), which a phone treats as "no".
	VerifyCertificate(ctx context.Context, cert *x509.Certificate, role Role) (bool, error)
}

// Rule names the row of the phone's decision table that decided: the
// constants below, one per row.
type Rule string

// The rows of the decision table.
const (
	RuleFirstList   Rule = "P1" // no CTL and no ITL: accept the first list (leap of faith), and any file
	RuleCTLSigner   Rule = "P2" // the new list is signed by a SAST certificate of the phone's CTL
	RuleKnownSigner Rule = "P3" // the new list is signed by a SAST certificate of the phone's ITL
	RuleTVS         Rule = "P4" // unknown signer; TVS vouches for it
	RuleTVSRefused  Rule = "P5" // unknown signer; TVS unreachable or does not know it: reject, keep the old list
	RuleNoTVS       Rule = "P6" // unknown signer and no TVS on the device: reject until the lists are deleted by hand
	RuleRollback    Rule = "P7" // the phone holds an empty ITL (rollback): accept any list and any file
	RuleSignedFile  Rule = "P8" // a signed file: accept only if a TFTP-capable record signed it
)

// Phone is the trust state of a phone: the lists it holds, and its TVS.
// It makes the decisions a Cisco phone makes when a new CTL or ITL, or a
// signed configuration file, arrives. A Phone is not safe for concurrent
// use while its fields change.
type Phone struct {
	CTL *File    // the CTL the phone holds, nil if none
	ITL *File    // the ITL the phone holds, nil if none; an ITL with no records is the rollback ITL
	TVS Verifier // nil for a device without TVS (Jabber, 7940/7960, ...)
}

func (p *Phone) rollback() bool {
	return p.CTL == nil && p.ITL != nil && len(p.ITL.Records) == 0
}

// AcceptList decides whether the phone accepts candidate, a new trust list
// that must keep policy (CTLPolicy, or itl.ITLPolicy). It returns the rule
// that decided and nil to accept, or an error wrapping [ErrUntrusted],
// [ErrPolicy] or [ErrVerification] to reject. The caller replaces the
// phone's list on acceptance.
//
// The candidate must first be sound on its own: keep the policy and be
// signed by its own signing record. Then, in order: an empty ITL on the
// phone accepts it (P7); a phone with no list accepts it (P1); a signer
// whose certificate is a SAST record of the phone's CTL (P2) or ITL (P3) is
// accepted; otherwise TVS decides (P4, P5): the signer is accepted only if
// TVS vouches for it in the SAST role. Without TVS it is rejected (P6).
func (p *Phone) AcceptList(ctx context.Context, candidate *File, policy Policy) (Rule, error) {
	if err := policy.Verify(candidate); err != nil {
		return "", err
	}
	signer, _ := policy.signerRecord(candidate.Records, candidate.SerialNumber, candidate.IssuerName)
	switch {
	case p.rollback():
		return RuleRollback, nil
	case p.CTL == nil && p.ITL == nil:
		return RuleFirstList, nil
	case p.CTL != nil && p.CTL.holdsSAST(signer.Record):
		return RuleCTLSigner, nil
	case p.ITL != nil && p.ITL.holdsSAST(signer.Record):
		return RuleKnownSigner, nil
	case p.TVS == nil:
		return RuleNoTVS, fmt.Errorf("%w: unknown signer and no TVS to ask", ErrUntrusted)
	}
	cert, err := signer.ParseCertificate()
	if err != nil {
		return RuleTVSRefused, fmt.Errorf("%w: unknown signer without a certificate to ask TVS about", ErrUntrusted)
	}
	// The role asked for is SAST, the role of a trust list's signer,
	// whatever role the candidate gives its own signer: otherwise a
	// certificate that TVS vouches for only as a TFTP signer could replace
	// the phone's trust list by putting itself in a TFTP record.
	ok, err := p.TVS.VerifyCertificate(ctx, cert, RoleSAST)
	switch {
	case err != nil:
		return RuleTVSRefused, fmt.Errorf("%w: unknown signer and TVS did not answer: %w", ErrUntrusted, err)
	case !ok:
		return RuleTVSRefused, fmt.Errorf("%w: unknown signer and TVS does not vouch for it", ErrUntrusted)
	}
	return RuleTVS, nil
}

// holdsSAST reports whether the list has a SAST record for the same
// certificate (or, for records without one, the same public key) as r.
func (f *File) holdsSAST(r *Record) bool {
	for i := range f.Records {
		s := &f.Records[i]
		if s.Role != RoleSAST {
			continue
		}
		if len(r.Certificate) > 0 && bytes.Equal(s.Certificate, r.Certificate) {
			return true
		}
		if len(r.Certificate) == 0 && len(r.PublicKey) > 0 && bytes.Equal(s.PublicKey, r.PublicKey) {
			return true
		}
	}
	return false
}

// CheckSignedFile decides whether the phone applies sf, a signed file
// (configuration, ring list, ...) it asked for as name. A phone with no
// list (P1) or with the rollback ITL (P7) applies any file, and the record
// is nil; otherwise the file must be signed for name by a TFTP or CCM+TFTP
// record of its CTL or ITL (P8; see [File.VerifySignedFile]), which is
// returned.
func (p *Phone) CheckSignedFile(sf SignedFile, name string) (Rule, *Record, error) {
	switch {
	case p.rollback():
		return RuleRollback, nil, nil
	case p.CTL == nil && p.ITL == nil:
		return RuleFirstList, nil, nil
	}
	var err error
	for _, f := range []*File{p.CTL, p.ITL} {
		if f == nil {
			continue
		}
		r, e := f.VerifySignedFile(sf, name)
		if e == nil {
			return RuleSignedFile, r, nil
		}
		// A signature that fails says more than a signer not found.
		if err == nil || errors.Is(e, sgn.ErrVerification) {
			err = e
		}
	}
	return RuleSignedFile, nil, err
}
