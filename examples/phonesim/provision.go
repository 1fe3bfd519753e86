package main

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net/http"
	"runtime"
	"strings"
	"time"

	"github.com/ucsec/ucsec/capf"
	"github.com/ucsec/ucsec/cnfenc"
	"github.com/ucsec/ucsec/ctl"
	"github.com/ucsec/ucsec/itl"
	"github.com/ucsec/ucsec/sgn"
	"github.com/ucsec/ucsec/tvs"
)

// The phone's provisioning life, as a Cisco phone goes through it with
// the cluster's services: trust lists, CAPF enrolment, its configuration,
// and later a rolled-over ITL through TVS.

// A phone is a simulated phone. Set Device, Extension and Secure; the
// rest is its state, filled by provision.
type phone struct {
	Device    string // SEP + 12 hex digits
	Extension string // its directory number, as the cluster configures it
	// Secure phones enroll with CAPF for an LSC and get an encrypted
	// configuration (a signed one if the LSC key is not RSA, see
	// loadConfig); a non-secure phone gets its configuration signed.
	Secure bool
	// HTTP downloads from the file service; nil means a client shared by
	// all phones.
	HTTP *http.Client

	trust  *ctl.Phone  // its trust lists and TVS
	tvs    *tvs.Client // its TVS client, trust.TVS
	lsc    *x509.Certificate
	key    crypto.Signer // the LSC's key, an *rsa.PrivateKey or *ecdsa.PrivateKey
	report *provisionReport
}

// A provisionReport says how far a phone's provisioning got.
type provisionReport struct {
	Device    string `json:"device"`
	Extension string `json:"extension"` // read from the configuration
	Secure    bool   `json:"secure"`
	// LSCSerial is the LSC's serial number in lowercase hex
	// (capf.SerialHex); "" for a non-secure phone.
	LSCSerial string `json:"lscSerial,omitempty"`
	// Key is the kind of the LSC's key, as capf.KeySpec names it
	// ("rsa2048", "ec256"); "" for a non-secure phone.
	Key string `json:"key,omitempty"`
	// Config is "encrypted" (a secure phone with an RSA LSC decrypted
	// its configuration) or "signed" (a non-secure phone, or a secure one
	// with an EC LSC, read its signed full configuration); "" until then.
	Config string `json:"config,omitempty"`
	// ITL lists the rules by which the phone accepted each ITL: P1 on
	// first contact, P4 for the rolled-over one. CTL is the rule that
	// accepted the CTL (P3: signed by the ITL's SAST), ConfigRule the one
	// that accepted the configuration files (P8).
	ITL        []ctl.Rule `json:"itl"`
	CTL        ctl.Rule   `json:"ctl,omitempty"`
	ConfigRule ctl.Rule   `json:"configRule,omitempty"`
	// Step is the step that failed and Err its error; both "" on
	// success.
	Step string `json:"step,omitempty"`
	Err  string `json:"error,omitempty"`
	// Took is how long provision took.
	Took time.Duration `json:"took"`
}

// itlRules returns the ITL rules as the table shows them, "P1 P4".
func (r *provisionReport) itlRules() string {
	s := make([]string, len(r.ITL))
	for i, rule := range r.ITL {
		s[i] = string(rule)
	}
	return strings.Join(s, " ")
}

// fail records that step failed with err and returns err wrapped with the
// step.
func (r *provisionReport) fail(step string, err error) error {
	r.Step, r.Err = step, err.Error()
	return fmt.Errorf("%s: %s: %w", r.Device, step, err)
}

// defaultHTTP downloads from the file service for phones without their own
// client; it keeps enough idle connections for many phones at once.
var defaultHTTP = &http.Client{
	Timeout:   30 * time.Second,
	Transport: &http.Transport{MaxIdleConnsPerHost: 64, IdleConnTimeout: 30 * time.Second},
}

// maxDownload bounds a downloaded file: an ITL is at most 64 KiB
// (itl.MaxSize), a configuration a few kilobytes.
const maxDownload = 1 << 20

// keygenSlots bounds the RSA key generations running at once to the
// number of CPUs, so that many phones provisioning together queue for
// them instead of all slowing down together (and past the CAPF's and the
// TLS handshakes' timeouts).
var keygenSlots = make(chan struct{}, max(1, runtime.GOMAXPROCS(0)))

// generateKey makes a phone key of spec, as the CAPF asks for it: an RSA
// key in a keygen slot (RSA-2048 takes tens of milliseconds), an EC key
// (well under a millisecond for P-256) at once.
func generateKey(ctx context.Context, spec capf.KeySpec) (crypto.Signer, error) {
	if !spec.Valid() {
		return nil, fmt.Errorf("CAPF asked for a key of unknown specification %v", spec)
	}
	if curve := spec.Curve(); curve != nil {
		k, err := ecdsa.GenerateKey(curve, rand.Reader)
		if err != nil {
			return nil, err
		}
		return k, nil
	}
	select {
	case keygenSlots <- struct{}{}:
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	defer func() { <-keygenSlots }()
	k, err := rsa.GenerateKey(rand.Reader, spec.RSABits())
	if err != nil {
		return nil, err
	}
	return k, nil
}

// provision takes a phone through its provisioning with the cluster c:
//
//  1. it downloads ITLFile.tlv and accepts it as its first list (P1), then
//     CTLFile.tlv, signed by the ITL's SAST (P3); its TVS is the
//     cluster's, checked against the ITL's TVS record;
//  2. a secure phone enrolls with the CAPF of its first node
//     (c.capfAddrFor) over TLS, checking the CAPF's certificate against
//     the CAPF records of its lists, with authString (scheduled by
//     c.schedule; "" for the null string), and gets its LSC, on a key of
//     the specification the CAPF asks for (c.keys(): RSA-2048 by default,
//     made while the lists download, in a keygen slot; or EC P-256);
//  3. the cluster publishes its configuration (c.deviceReady);
//  4. it downloads SEP….cnf.xml.sgn and applies it only if a TFTP record
//     of its lists signed it for that name (P8). A secure phone with an
//     RSA LSC then checks that the short configuration's certHash is its
//     LSC's, downloads SEP….cnf.xml.enc.sgn, checks it the same way (P8)
//     and decrypts it with its LSC key; one with an EC LSC reads its
//     full configuration from SEP….cnf.xml.sgn, as a non-secure phone
//     does (see loadConfig);
//  5. it reads its extension, its nodes (their SIP servers and TVS, in
//     order) and its digest credentials from the full configuration.
//
// It returns what the phone brings to SIP, and a report that is never
// nil, even with an error.
func (p *phone) provision(ctx context.Context, c *cluster, authString string) (*sipIdentity, *provisionReport, error) {
	start := time.Now()
	p.report = &provisionReport{Device: p.Device, Secure: p.Secure}
	r := p.report
	defer func() { r.Took = time.Since(start) }()

	// A secure phone's key, made while the lists download if it is of
	// the slow kind, RSA: the phone makes the kind its model prefers,
	// which is the kind the cluster schedules (c.keys()).
	type keyResult struct {
		key crypto.Signer
		err error
	}
	var keyCh chan keyResult
	preSpec := c.keys()
	if p.Secure && preSpec.RSABits() != 0 {
		keyCh = make(chan keyResult, 1)
		go func() {
			k, err := generateKey(ctx, preSpec)
			keyCh <- keyResult{k, err}
		}()
	}

	if err := p.firstContact(ctx, c); err != nil {
		return nil, r, err
	}

	if p.Secure {
		out, err := p.enroll(ctx, c.capfAddrFor(p.Device), authString, func(spec capf.KeySpec) (crypto.Signer, error) {
			if keyCh != nil && spec == preSpec {
				kr := <-keyCh
				return kr.key, kr.err
			}
			return generateKey(ctx, spec)
		})
		if err != nil {
			return nil, r, r.fail("capf", err)
		}
		if out.Certificate == nil || out.Key == nil {
			return nil, r, r.fail("capf", fmt.Errorf("no LSC issued (operation %s)", out.Operation))
		}
		p.lsc, p.key = out.Certificate, out.Key
		r.LSCSerial = capf.SerialHex(p.lsc.SerialNumber)
		if spec, ok := capf.SpecOf(p.lsc.PublicKey); ok {
			r.Key = spec.String()
		}
	}

	if err := c.deviceReady(ctx, p.Device, p.Extension, p.Secure); err != nil {
		return nil, r, r.fail("publish", err)
	}

	settings, state, err := p.loadConfig(ctx, p.fetch(c))
	if err != nil {
		return nil, r, r.fail("config", err)
	}
	r.Config, r.ConfigRule = state, ctl.RuleSignedFile
	r.Extension = settings.Extension
	if settings.Extension != p.Extension {
		return nil, r, r.fail("config", fmt.Errorf("configured extension %s, expected %s", settings.Extension, p.Extension))
	}
	wantMode := securityModeNonSecure
	if p.Secure {
		wantMode = securityModeEncrypted
	}
	if settings.SecurityMode != wantMode {
		return nil, r, r.fail("config", fmt.Errorf("device security mode %d, expected %d", settings.SecurityMode, wantMode))
	}

	// From now on the phone asks the TVS of the nodes its configuration
	// names, in order.
	if len(settings.TVSServers) > 0 {
		p.tvs.Servers = settings.TVSServers
	}

	id := &sipIdentity{
		Device:         p.Device,
		Extension:      settings.Extension,
		Secure:         p.Secure,
		Trust:          p.ccmPool(),
		DigestUser:     settings.AuthName,
		DigestPassword: settings.Password,
		SIPServer:      settings.SIPServer,
		SIPServers:     settings.SIPServers,
		Phone:          p.trust,
	}
	if p.Secure {
		id.LSC = tlsCert(p.lsc, p.key)
	}
	return id, r, nil
}

// client returns the phone's HTTP client.
func (p *phone) client() *http.Client {
	if p.HTTP != nil {
		return p.HTTP
	}
	return defaultHTTP
}

// firstContact is step 1 of provision: the phone, holding no list yet,
// downloads and accepts the ITL (P1) and the CTL (P3), and gets a TVS
// client that trusts the ITL's TVS records, asking the TVS of its nodes
// (c.tvsAddrsFor, until its configuration names them).
func (p *phone) firstContact(ctx context.Context, c *cluster) error {
	r := p.report
	p.trust = &ctl.Phone{}
	f, err := p.downloadList(ctx, c, itlName, itl.Parse)
	if err != nil {
		return r.fail("itl", err)
	}
	rule, err := p.trust.AcceptList(ctx, f, itl.ITLPolicy())
	if err != nil {
		return r.fail("itl", err)
	}
	p.trust.ITL = f
	r.ITL = append(r.ITL, rule)

	tvsCerts, err := roleCerts(ctl.RoleTVS, f)
	if err != nil {
		return r.fail("itl", err)
	}
	if len(tvsCerts) == 0 {
		return r.fail("itl", errors.New("the ITL has no TVS record"))
	}
	p.tvs = &tvs.Client{
		Servers:         c.tvsAddrsFor(p.Device),
		TVSCertificates: tvsCerts,
		DeviceName:      "CP-8845-" + p.Device,
		Timeout:         10 * time.Second,
	}
	p.trust.TVS = p.tvs

	f, err = p.downloadList(ctx, c, ctlName, ctl.Parse)
	if err != nil {
		return r.fail("ctl", err)
	}
	rule, err = p.trust.AcceptList(ctx, f, ctl.CTLPolicy())
	if err != nil {
		return r.fail("ctl", err)
	}
	p.trust.CTL = f
	r.CTL = rule
	return nil
}

// enroll runs one CAPF session for the phone. As a phone does, the
// client pins the CAPF certificates of its lists' CAPF records: the CAPF
// CA signs every phone's LSC, so a certificate that merely chains to it
// (another phone's LSC) is refused.
func (p *phone) enroll(ctx context.Context, addr, authString string, genKey func(capf.KeySpec) (crypto.Signer, error)) (*capf.Outcome, error) {
	pinned, err := roleCerts(ctl.RoleCAPF, p.trust.CTL, p.trust.ITL)
	if err != nil {
		return nil, err
	}
	if len(pinned) == 0 {
		return nil, errors.New("no CAPF record in the trust lists")
	}
	client := &capf.Client{
		Device:           p.Device,
		CAPFCertificates: pinned,
		AuthString:       authString,
		GenerateKey:      genKey,
		Timeout:          30 * time.Second,
	}
	return client.Enroll(ctx, addr)
}

// loadConfig downloads the phone's configuration with get and checks it as
// step 4 of provision says, returning its settings and "encrypted" or
// "signed". It changes nothing in the phone: a file it refuses leaves the
// phone as it was.
//
// A secure phone whose LSC key is not RSA (an EC key, -keys ec) accepts
// its full configuration signed, as a non-secure phone does: the
// encrypted configuration wraps its file key to the phone's RSA key
// with RSAES-PKCS1-v1_5 (no EC variant of the .enc.sgn format is known,
// and package cnfenc supports none), so the cluster cannot encrypt to an
// EC LSC and publishes the full file signed. A phone with
// an RSA LSC insists on the encrypted file: a signed full configuration
// served in its place is refused.
func (p *phone) loadConfig(ctx context.Context, get fetchFunc) (*phoneSettings, string, error) {
	name := cnfenc.ShortName(p.Device)
	data, err := get(ctx, name)
	if err != nil {
		return nil, "", err
	}
	sf, err := sgn.Parse(data)
	if err != nil {
		return nil, "", fmt.Errorf("%s: %w", name, err)
	}
	if _, _, err := p.trust.CheckSignedFile(sf, name); err != nil {
		return nil, "", fmt.Errorf("%s refused: %w", name, err)
	}
	if !p.Secure || (p.key != nil && !isRSA(p.key.Public())) {
		s, err := parseFullConfig(sf.Payload, p.Device)
		if err != nil {
			return nil, "", fmt.Errorf("%s: %w", name, err)
		}
		return s, "signed", nil
	}

	short, err := cnfenc.ParseShortConfig(sf.Payload)
	if err != nil {
		return nil, "", fmt.Errorf("%s: %w", name, err)
	}
	switch {
	case short.FullConfig || !short.EncrConfig:
		return nil, "", fmt.Errorf("%s: not a short configuration of an encrypted one", name)
	case p.lsc == nil:
		return nil, "", errors.New("the phone has no LSC to decrypt its configuration with")
	case !short.CertHashMatches(p.lsc) || !strings.EqualFold(short.CertHash, cnfenc.CertHash(p.lsc)):
		return nil, "", fmt.Errorf("%s: certHash %s is not that of the phone's LSC", name, short.CertHash)
	}

	encName := cnfenc.EncryptedName(p.Device)
	data, err = get(ctx, encName)
	if err != nil {
		return nil, "", err
	}
	ef, err := cnfenc.Parse(data)
	if err != nil {
		return nil, "", fmt.Errorf("%s: %w", encName, err)
	}
	_, rec, err := p.trust.CheckSignedFile(ef, encName)
	if err != nil {
		return nil, "", fmt.Errorf("%s refused: %w", encName, err)
	}
	if rec == nil {
		// A phone without a trust list has no signer to check the file
		// against: it cannot decrypt what it cannot authenticate.
		return nil, "", fmt.Errorf("%s: no trust-list record to check its signer with", encName)
	}
	signer, err := rec.ParseCertificate()
	if err != nil {
		return nil, "", fmt.Errorf("%s: the signer's record: %w", encName, err)
	}
	dec, ok := p.key.(crypto.Decrypter)
	if !ok {
		return nil, "", fmt.Errorf("the LSC key, a %T, cannot decrypt", p.key)
	}
	full, err := ef.Decrypt(signer, dec)
	if err != nil {
		return nil, "", fmt.Errorf("%s: %w", encName, err)
	}
	s, err := parseFullConfig(full, p.Device)
	if err != nil {
		return nil, "", fmt.Errorf("%s: %w", encName, err)
	}
	return s, "encrypted", nil
}

// isRSA reports whether pub is an RSA key, the only kind an encrypted
// configuration can be encrypted to.
func isRSA(pub crypto.PublicKey) bool {
	_, ok := pub.(*rsa.PublicKey)
	return ok
}

// acceptRolledITL downloads the cluster's ITL again, as a phone does at
// every restart, and offers it to the phone. After c.rollITL the new
// list's signer is not in the lists the phone holds, so only the TVS can
// vouch for it: the phone accepts it by rule P4 and replaces its ITL.
// It returns the rule that decided; a refused list (P5) gives an error
// and the phone keeps its old ITL. The rule is added to the report's ITL
// rules. Call it while nothing else uses the phone's ctl.Phone.
func (p *phone) acceptRolledITL(ctx context.Context, c *cluster) (ctl.Rule, error) {
	if p.trust == nil || p.report == nil {
		return "", errors.New("phone not provisioned")
	}
	f, err := p.downloadList(ctx, c, itlName, itl.Parse)
	if err != nil {
		return "", err
	}
	rule, err := p.trust.AcceptList(ctx, f, itl.ITLPolicy())
	p.report.ITL = append(p.report.ITL, rule)
	if err != nil {
		return rule, fmt.Errorf("%s: new ITL refused (%s): %w", p.Device, rule, err)
	}
	p.trust.ITL = f
	return rule, nil
}

// downloadList downloads a trust list and parses it.
func (p *phone) downloadList(ctx context.Context, c *cluster, name string, parse func([]byte) (*ctl.File, error)) (*ctl.File, error) {
	data, err := download(ctx, p.client(), c.FileURL, name)
	if err != nil {
		return nil, err
	}
	f, err := parse(data)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	return f, nil
}

// ccmPool returns the certificates the phone's lists hold in the CCM or
// CCM+TFTP role: the SIP server must present one of them.
func (p *phone) ccmPool() *x509.CertPool {
	pool := x509.NewCertPool()
	for _, f := range []*ctl.File{p.trust.CTL, p.trust.ITL} {
		if f == nil {
			continue
		}
		for i := range f.Records {
			r := &f.Records[i]
			if r.Role != ctl.RoleCCM && r.Role != ctl.RoleCCMTFTP {
				continue
			}
			if cert, err := r.ParseCertificate(); err == nil {
				pool.AddCert(cert)
			}
		}
	}
	return pool
}

// roleCerts returns the certificates of the records in role of lists (nil
// lists are skipped).
func roleCerts(role ctl.Role, lists ...*ctl.File) ([]*x509.Certificate, error) {
	var certs []*x509.Certificate
	for _, f := range lists {
		if f == nil {
			continue
		}
		c, err := f.Certificates(role)
		if err != nil {
			return nil, err
		}
		certs = append(certs, c...)
	}
	return certs, nil
}

// download fetches base+name: over TFTP for a tftp:// base, else with
// hc.
func download(ctx context.Context, hc *http.Client, base, name string) ([]byte, error) {
	if addr, ok := strings.CutPrefix(base, "tftp://"); ok {
		return tftpGet(ctx, strings.TrimSuffix(addr, "/"), name)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, base+name, nil)
	if err != nil {
		return nil, err
	}
	resp, err := hc.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("%s: %s", name, resp.Status)
	}
	data, err := io.ReadAll(io.LimitReader(resp.Body, maxDownload+1))
	if err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	if len(data) > maxDownload {
		return nil, fmt.Errorf("%s: larger than %d bytes", name, maxDownload)
	}
	return data, nil
}
