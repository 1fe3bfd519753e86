package trustplan

import (
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/ucsec/ucsec/cnfenc"
	"github.com/ucsec/ucsec/ctl"
	"github.com/ucsec/ucsec/itl"
	"github.com/ucsec/ucsec/sgn"
	"github.com/ucsec/ucsec/tvs"
)

// Held is what a group of phones holds: the trust lists they check a new
// list or a signed file against. A zero Held is a phone with no list, such
// as a new or reset phone.
type Held struct {
	CTL *ctl.File // the CTL, nil if none
	ITL *ctl.File // the ITL, nil if none; an ITL without records is the rollback ITL
}

// A Publication is what a cluster is about to publish. Phones fetch it in
// this order, and [Plan] checks it so: the CTL, the ITL, then the files,
// each against the lists the phones hold after the step before.
type Publication struct {
	CTL   *ctl.File    // the new CTLFile.tlv, nil if none
	ITL   *ctl.File    // the new ITLFile.tlv, nil if none
	Files []SignedFile // signed files, such as configurations
}

// A SignedFile is a signed file to publish, under the name phones ask for.
type SignedFile struct {
	Name string         // the name phones ask for, such as "SEP001122334455.cnf.xml.sgn"
	File ctl.SignedFile // an *sgn.File or a *cnfenc.File
}

// A Result is the plan for one group of phones.
type Result struct {
	// Decisions holds one decision per file of the publication, in the
	// order phones fetch them: the CTL, the ITL, then the files.
	Decisions []Decision `json:"decisions"`
	// After is what the phones hold once they have fetched everything:
	// the lists they accepted, else those they held.
	After Held `json:"-"`
}

// Accepted reports whether the phones accept every file.
func (r *Result) Accepted() bool {
	for i := range r.Decisions {
		if !r.Decisions[i].Accepted {
			return false
		}
	}
	return true
}

// String returns the decisions one a line, each rejection followed by
// its fixes, indented.
func (r *Result) String() string {
	var b strings.Builder
	for i := range r.Decisions {
		d := &r.Decisions[i]
		b.WriteString(d.String())
		b.WriteByte('\n')
		for _, f := range d.Fixes {
			fmt.Fprintf(&b, "  fix (%s): %s\n", f.Kind, f.Text)
		}
	}
	return b.String()
}

// A Decision is what the phones do with one file.
type Decision struct {
	// File is the file's name: the header's file name for a trust list
	// (CTLFile.tlv, ITLFile.tlv), the name phones ask for otherwise.
	File     string `json:"file"`
	Accepted bool   `json:"accepted"`
	// Rule is the row of the phone's decision table that decided, as
	// ctl.Phone reports it: P1 to P8. It is "" for a trust list that
	// fails on its own (its policy or its signature), which no phone
	// accepts.
	Rule ctl.Rule `json:"rule,omitempty"`
	// Signer is the certificate that signed the file, when a list holds
	// it: the list's own signing record, or for a signed file a record of
	// the lists involved. Nil if unknown.
	Signer *Cert `json:"signer,omitempty"`
	// Why says why the phones reject the file; "" when they accept it.
	Why string `json:"why,omitempty"`
	// Err is the rejection as ctl.Phone returns it, wrapping
	// ctl.ErrUntrusted, ctl.ErrPolicy, ctl.ErrWrongFile or
	// sgn.ErrVerification; nil when the phones accept the file.
	Err error `json:"-"`
	// Fixes are the ways to have the phones accept the file, in the order
	// to consider them; nil when they accept it.
	Fixes []Fix `json:"fixes,omitempty"`
}

// String returns the decision on one line, such as "ITLFile.tlv:
// accepted by P3, signed by CN=ITLRecovery (SHA-256 …)" or "ITLFile.tlv:
// rejected by P5: …".
func (d *Decision) String() string {
	rule := string(d.Rule)
	if rule == "" {
		rule = "no rule"
	}
	if d.Accepted {
		s := d.File + ": accepted by " + rule
		if d.Signer != nil {
			s += ", signed by " + d.Signer.String()
		}
		return s
	}
	return d.File + ": rejected by " + rule + ": " + d.Why
}

// A Cert is a certificate as a plan names it: its subject and the SHA-256
// hash of its DER, the fingerprint that "ucsec tvs list" shows and that
// CUCM's certificate pages list.
type Cert struct {
	Subject     string            `json:"subject"` // as crypto/x509/pkix.Name.String gives it
	SHA256      string            `json:"sha256"`  // in lowercase hex
	Certificate *x509.Certificate `json:"-"`
}

func newCert(c *x509.Certificate) Cert {
	sum := sha256.Sum256(c.Raw)
	return Cert{Subject: c.Subject.String(), SHA256: hex.EncodeToString(sum[:]), Certificate: c}
}

// String returns "SUBJECT (SHA-256 HEX)".
func (c *Cert) String() string { return c.Subject + " (SHA-256 " + c.SHA256 + ")" }

// A FixKind is a way to have phones accept a file they reject.
type FixKind string

// The kinds of fix.
const (
	// FixTVS: have TVS vouch for the new list's signer in the SAST role
	// before publishing (on CUCM, import it as Phone-SAST-trust). Offered
	// only when the phones would then accept the list (P4): they can reach
	// TVS through a TVS record of their ITL.
	FixTVS FixKind = "tvs"
	// FixKeepSigner: sign the new list once more with the key that signed
	// the lists the phones hold, listing the new signer beside it as a
	// second SAST record; once the phones hold that list, the next one may
	// be signed by the new key.
	FixKeepSigner FixKind = "keep-signer"
	// FixRecoveryKey: sign the new list with another key the phones hold
	// as SAST: the ITLRecovery key (or, on CUCM 12.0 and later, the
	// CallManager key that "utils itl reset localkey" signs with).
	FixRecoveryKey FixKind = "recovery-key"
	// FixList: have the phones accept a trust list holding the file's
	// signer in a TFTP or CCM+TFTP record before the file.
	FixList FixKind = "list"
	// FixFileSigner: sign the file with the key of a TFTP or CCM+TFTP
	// certificate the phones hold.
	FixFileSigner FixKind = "tftp-signer"
	// FixResign: the file fails on its own (its policy, its signature, or
	// the name it was signed for): build or sign it again.
	FixResign FixKind = "resign"
	// FixReset: delete the phones' trust lists by hand; they then take the
	// new list on first contact (P1).
	FixReset FixKind = "reset"
)

// A Fix is one way to have the phones accept a file they reject.
type Fix struct {
	Kind FixKind `json:"kind"`
	// Certificates are those the fix names: the one TVS must vouch for,
	// the keys that may sign, the signer a list must hold.
	Certificates []Cert `json:"certificates,omitempty"`
	// Text says what to do, naming each certificate by subject and
	// SHA-256.
	Text string `json:"text"`
}

// String returns f.Text.
func (f Fix) String() string { return f.Text }

// errTVSUnreachable is the answer of the TVS of a phone whose ITL holds
// no TVS record: it has no service certificate to pin, so it cannot ask.
var errTVSUnreachable = errors.New("trustplan: the phones' ITL holds no TVS certificate, so they cannot reach TVS")

// errTVSStore wraps an error of the TVS store: the service gives no
// answer, as tvs.Server gives none when its store fails.
var errTVSStore = errors.New("trustplan: TVS store")

// storeVerifier answers for a TVS from its store, without the network,
// as tvs.Server answers and a tvs.Client reads the answer. A phone
// whose ITL holds no TVS record gets no answer.
type storeVerifier struct {
	store tvs.Store            // nil: vouches for nothing
	extra *x509.Certificate    // also vouched for, as SAST (a fix being tried)
	reach func() (bool, error) // false: the phone cannot reach TVS
}

func (v *storeVerifier) VerifyCertificate(ctx context.Context, cert *x509.Certificate, role ctl.Role) (bool, error) {
	if ok, err := v.reach(); !ok {
		return false, err
	}
	if v.extra != nil && v.extra.Equal(cert) && role == ctl.RoleSAST {
		return true, nil
	}
	if v.store == nil {
		return false, nil
	}
	e, err := tvs.Lookup(ctx, v.store, sha256.Sum256(cert.Raw))
	switch {
	case errors.Is(err, tvs.ErrNotFound):
		return false, nil
	case err != nil:
		return false, fmt.Errorf("%w: %w", errTVSStore, err)
	case !bytes.Equal(e.Certificate.Raw, cert.Raw):
		return false, fmt.Errorf("%w: %w: the record of %s holds another certificate", errTVSStore, tvs.ErrCorrupt, cert.Subject)
	}
	verdict := tvs.Verdict{Valid: true, Roles: e.Roles}
	return verdict.Has(role), nil
}

// reachesTVS reports whether a phone holding itl can ask TVS: whether its
// ITL holds a TVS certificate to pin the service to.
func reachesTVS(list *ctl.File) (bool, error) {
	if list == nil {
		return false, errTVSUnreachable
	}
	certs, err := list.Certificates(ctl.RoleTVS)
	if err != nil || len(certs) == 0 {
		return false, errTVSUnreachable
	}
	return true, nil
}

// Plan works out what phones holding held do with pub, step by step, as
// they fetch it: the CTL, then the ITL, then each file. Each step is
// ctl.Phone's decision (AcceptList with the CTL or ITL policy,
// CheckSignedFile for a file), made on the lists the phones hold after
// the step before: an accepted list replaces the held one, a rejected
// one leaves it. So Plan and ctl.Phone never disagree.
//
// store is what the cluster's TVS vouches for, the store it answers from
// (a tvs.MemoryStore loaded with tvs.LoadTrustList and
// tvs.LoadCertificates, or a running service's own store), or nil for
// phones without TVS (P6). The phones ask it without the network, as a
// tvs.Client pinned to the TVS records of their ITL would: phones whose
// ITL holds no TVS record cannot reach it, and an error of the store is
// no answer (P5).
//
// For each file the phones reject, Plan says why and which fixes would
// work, naming the certificates involved. Fixes that the phone model can
// try without keys (TVS vouching for a signer, a phone with no lists) are
// tried, and offered only if the phones would then accept the file.
//
// Plan returns an error only for an unusable input (a file without a
// name or without content) or when ctx ends.
func Plan(ctx context.Context, held Held, store tvs.Store, pub Publication) (*Result, error) {
	for i, f := range pub.Files {
		if f.Name == "" || f.File == nil {
			return nil, fmt.Errorf("trustplan: file %d has no name or no content", i+1)
		}
	}
	p := &planner{ctx: ctx, held: held, store: store, pub: pub, cur: held}
	r := &Result{}
	for _, l := range []struct {
		f      *ctl.File
		policy ctl.Policy
		set    func(*Held, *ctl.File)
	}{
		{pub.CTL, ctl.CTLPolicy(), func(h *Held, f *ctl.File) { h.CTL = f }},
		{pub.ITL, itl.ITLPolicy(), func(h *Held, f *ctl.File) { h.ITL = f }},
	} {
		if l.f == nil {
			continue
		}
		d := p.list(l.f, l.policy)
		if d.Accepted {
			l.set(&p.cur, l.f)
		} else {
			p.rejected = append(p.rejected, l.f)
		}
		r.Decisions = append(r.Decisions, d)
	}
	for _, f := range pub.Files {
		r.Decisions = append(r.Decisions, p.file(f))
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	r.After = p.cur
	return r, nil
}

// planner is the state of one Plan.
type planner struct {
	ctx      context.Context
	held     Held // what the phones held at the start
	store    tvs.Store
	pub      Publication
	cur      Held        // what they hold now
	rejected []*ctl.File // the lists of pub they rejected
}

// phone returns the phone model for the lists h, with a TVS that also
// vouches for extra as SAST (nil for none). Without a store and extra the
// phone has no TVS.
func (p *planner) phone(h Held, extra *x509.Certificate) *ctl.Phone {
	ph := &ctl.Phone{CTL: h.CTL, ITL: h.ITL}
	if p.store != nil || extra != nil {
		ph.TVS = &storeVerifier{store: p.store, extra: extra, reach: func() (bool, error) { return reachesTVS(h.ITL) }}
	}
	return ph
}

// list decides a new trust list f of policy.
func (p *planner) list(f *ctl.File, policy ctl.Policy) Decision {
	d := Decision{File: listName(f, policy)}
	var signer *x509.Certificate
	if rec, _ := policy.Signer(f); rec != nil {
		if c, err := rec.ParseCertificate(); err == nil {
			signer = c
			d.Signer = new(newCert(c))
		}
	}
	d.Rule, d.Err = p.phone(p.cur, nil).AcceptList(p.ctx, f, policy)
	if d.Accepted = d.Err == nil; d.Accepted {
		return d
	}
	kind := policy.Name
	if d.Rule == "" {
		d.Why = "the " + kind + " is not valid on its own: " + d.Err.Error()
		d.Fixes = []Fix{{Kind: FixResign, Text: "build and sign the " + kind + " again: it breaks its policy or its signature does not verify (ucsec tlv verify says which)"}}
		return d
	}

	who := "its signer (" + f.SignerName + ", a record without a certificate)"
	if d.Signer != nil {
		who = "its signer, " + d.Signer.String() + ","
	}
	d.Why = who + " is not a SAST certificate of the lists these phones hold, "
	switch {
	case d.Rule == ctl.RuleNoTVS:
		d.Why += "and they have no TVS to ask"
	case errors.Is(d.Err, errTVSUnreachable):
		d.Why += "and they cannot ask TVS: their ITL holds no TVS certificate"
	case signer == nil:
		d.Why += "and there is no certificate to ask TVS about"
	case errors.Is(d.Err, errTVSStore):
		d.Why += "and TVS gives no answer: " + d.Err.Error()
	default:
		d.Why += "and TVS does not vouch for it as SAST"
	}

	if signer != nil {
		if _, err := p.phone(p.cur, signer).AcceptList(p.ctx, f, policy); err == nil {
			c := newCert(signer)
			text := "have TVS"
			if p.store == nil {
				text = "if these phones can ask TVS (their ITL names one), have it"
			}
			d.Fixes = append(d.Fixes, Fix{Kind: FixTVS, Certificates: []Cert{c},
				Text: fmt.Sprintf("%s vouch for %s in the SAST role before publishing (ucsec tvs add --trust sast=CERT; on CUCM, import it as Phone-SAST-trust)", text, c.String())})
		}
	}
	keep, others := p.heldSASTs()
	newSAST := "the new signer"
	if d.Signer != nil {
		newSAST += ", " + d.Signer.String()
	}
	if len(keep) > 0 {
		d.Fixes = append(d.Fixes, Fix{Kind: FixKeepSigner, Certificates: keep,
			Text: fmt.Sprintf("keep the old signer for one more cycle: sign the new %s with the key of %s, which signed the lists these phones hold, and keep that certificate in it as a SAST record beside %s; once the phones hold that list, the next may be signed by the new key alone", kind, certList(keep), newSAST)})
	}
	if len(others) > 0 {
		d.Fixes = append(d.Fixes, Fix{Kind: FixRecoveryKey, Certificates: others,
			Text: fmt.Sprintf("sign the new %s with the key of %s, another SAST certificate these phones hold (the ITLRecovery key; on CUCM 12.0 and later \"utils itl reset localkey\" signs the ITL with the CallManager key), and keep that certificate in it as a SAST record", kind, certList(others))})
	}
	if _, err := p.phone(Held{}, nil).AcceptList(p.ctx, f, policy); err == nil {
		d.Fixes = append(d.Fixes, p.resetFix())
	}
	return d
}

// heldSASTs returns the certificates of the SAST records of the lists the
// phones hold, which they accept a new list from (P2, P3): first those
// that signed a held list, then the others.
func (p *planner) heldSASTs() (signers, others []Cert) {
	var all []*x509.Certificate
	for _, f := range []*ctl.File{p.cur.CTL, p.cur.ITL} {
		if f == nil {
			continue
		}
		for _, c := range certificates(f, ctl.RoleSAST) {
			if !slices.ContainsFunc(all, c.Equal) {
				all = append(all, c)
			}
		}
	}
	var signed []*x509.Certificate
	for _, l := range []struct {
		f      *ctl.File
		policy ctl.Policy
	}{{p.cur.CTL, ctl.CTLPolicy()}, {p.cur.ITL, itl.ITLPolicy()}} {
		if l.f == nil {
			continue
		}
		if rec, _ := l.policy.Signer(l.f); rec != nil {
			if c, err := rec.ParseCertificate(); err == nil {
				signed = append(signed, c)
			}
		}
	}
	for _, c := range all {
		if slices.ContainsFunc(signed, c.Equal) {
			signers = append(signers, newCert(c))
		} else {
			others = append(others, newCert(c))
		}
	}
	return signers, others
}

// resetFix is the last resort: lists deleted by hand.
func (p *planner) resetFix() Fix {
	text := "reset these phones' trust lists: delete the CTL and the ITL on each phone by hand (Settings > Security > Trust List, or a factory reset); they then take the new files on first contact (P1)"
	if p.cur.CTL == nil && p.cur.ITL != nil {
		text += "; or, while they still accept the cluster's lists, publish the rollback ITL first (enterprise parameter Prepare Cluster for Rollback to pre-8.0), after which they accept any list (P7)"
	}
	return Fix{Kind: FixReset, Text: text}
}

// file decides a signed file.
func (p *planner) file(sf SignedFile) Decision {
	d := Decision{File: sf.Name}
	signer := p.fileSigner(sf.File)
	if signer != nil {
		d.Signer = new(newCert(signer))
	}
	d.Rule, _, d.Err = p.phone(p.cur, nil).CheckSignedFile(sf.File, sf.Name)
	if d.Accepted = d.Err == nil; d.Accepted {
		return d
	}
	switch {
	case errors.Is(d.Err, ctl.ErrWrongFile):
		d.Why = fmt.Sprintf("it was signed for %q, not for %q, the name the phones ask for", sf.File.SignedFilename(), sf.Name)
		d.Fixes = []Fix{{Kind: FixResign, Text: fmt.Sprintf("sign it again for the name the phones ask for, %s", sf.Name)}}
		return d
	case errors.Is(d.Err, sgn.ErrVerification):
		d.Why = "its signature does not verify with its signer's certificate: " + d.Err.Error()
		d.Fixes = []Fix{{Kind: FixResign, Text: "sign it again: the file was changed after signing, or signed by another key with the same name and serial number"}}
		return d
	}

	who := "its signer, " + signerName(sf.File) + ","
	if d.Signer != nil {
		who = "its signer, " + d.Signer.String() + ","
	}
	if roles := p.heldRoles(signer); len(roles) > 0 {
		d.Why = who + " is held by these phones only as " + strings.Join(roles, " and ") + ", not as TFTP or CCM+TFTP"
	} else {
		d.Why = who + " is not in the lists these phones hold"
	}
	var in *ctl.File // a rejected list of pub that would have vouched for it
	for _, f := range p.rejected {
		if _, err := f.VerifySignedFile(sf.File, sf.Name); err == nil {
			in = f
			break
		}
	}
	if in != nil {
		d.Why += fmt.Sprintf(" (the new %s, which holds it, was rejected)", listKind(in, p.pub))
	}

	var certs []Cert
	name := "the certificate of " + signerName(sf.File)
	if d.Signer != nil {
		certs, name = []Cert{*d.Signer}, d.Signer.String()
	}
	if in != nil {
		d.Fixes = append(d.Fixes, Fix{Kind: FixList, Certificates: certs,
			Text: fmt.Sprintf("have these phones accept the new %s first: it holds %s as a file signer (see its fixes)", listKind(in, p.pub), name)})
	} else {
		d.Fixes = append(d.Fixes, Fix{Kind: FixList, Certificates: certs,
			Text: fmt.Sprintf("publish, before the file, an ITL that these phones accept and that holds %s in a TFTP or CCM+TFTP record", name)})
	}
	var tftp []Cert
	for _, f := range []*ctl.File{p.cur.CTL, p.cur.ITL} {
		if f == nil {
			continue
		}
		for _, role := range []ctl.Role{ctl.RoleTFTP, ctl.RoleCCMTFTP} {
			for _, c := range certificates(f, role) {
				if !slices.ContainsFunc(tftp, func(x Cert) bool { return x.Certificate.Equal(c) }) {
					tftp = append(tftp, newCert(c))
				}
			}
		}
	}
	if len(tftp) > 0 {
		d.Fixes = append(d.Fixes, Fix{Kind: FixFileSigner, Certificates: tftp,
			Text: fmt.Sprintf("sign the file with the key of %s, a file signer these phones hold", certList(tftp))})
	}
	if _, _, err := p.phone(Held{}, nil).CheckSignedFile(sf.File, sf.Name); err == nil {
		d.Fixes = append(d.Fixes, p.resetFix())
	}
	return d
}

// heldRoles returns the roles of the records of the lists the phones hold
// whose certificate is cert.
func (p *planner) heldRoles(cert *x509.Certificate) []string {
	var roles []string
	if cert == nil {
		return nil
	}
	for _, f := range []*ctl.File{p.cur.CTL, p.cur.ITL} {
		if f == nil {
			continue
		}
		for i := range f.Records {
			r := &f.Records[i]
			if bytes.Equal(r.Certificate, cert.Raw) && !slices.Contains(roles, r.Role.ShortName()) {
				roles = append(roles, r.Role.ShortName())
			}
		}
	}
	return roles
}

// fileSigner returns the certificate that a signed file names as its
// signer, from the records of the lists involved, or nil.
func (p *planner) fileSigner(sf ctl.SignedFile) *x509.Certificate {
	for _, f := range []*ctl.File{p.cur.CTL, p.cur.ITL, p.pub.CTL, p.pub.ITL, p.held.CTL, p.held.ITL} {
		if f == nil {
			continue
		}
		for i := range f.Records {
			c, err := f.Records[i].ParseCertificate()
			if err == nil && sf.NamesSigner(c) {
				return c
			}
		}
	}
	return nil
}

// certificates returns the parsed certificates of f's records in role,
// skipping those that do not parse.
func certificates(f *ctl.File, role ctl.Role) []*x509.Certificate {
	var out []*x509.Certificate
	for i := range f.Records {
		r := &f.Records[i]
		if r.Role != role || len(r.Certificate) == 0 {
			continue
		}
		if c, err := r.ParseCertificate(); err == nil {
			out = append(out, c)
		}
	}
	return out
}

// signerName returns the signer name a signed file's header gives.
func signerName(sf ctl.SignedFile) string {
	var h *sgn.Header
	switch f := sf.(type) {
	case *sgn.File:
		h = &f.Header
	case *cnfenc.File:
		h = &f.Header
	case *ctl.File:
		h = &f.Header
	}
	if h == nil || h.SignerName == "" {
		return "the signer its header names"
	}
	return fmt.Sprintf("%s (serial %x)", h.SignerName, h.SerialNumber)
}

// listName returns the name a new list is published under.
func listName(f *ctl.File, policy ctl.Policy) string {
	if f.Filename != "" {
		return f.Filename
	}
	return policy.DefaultFilename
}

// listKind returns "CTL" or "ITL" for a list of pub.
func listKind(f *ctl.File, pub Publication) string {
	if f == pub.CTL {
		return "CTL"
	}
	return "ITL"
}

// certList names certificates: "A", "A or B", "A, B or C".
func certList(cs []Cert) string {
	var b strings.Builder
	for i := range cs {
		switch {
		case i == 0:
		case i == len(cs)-1:
			b.WriteString(" or ")
		default:
			b.WriteString(", ")
		}
		b.WriteString(cs[i].String())
	}
	return b.String()
}
