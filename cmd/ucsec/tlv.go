package main

import (
	"cmp"
	"crypto/rand"
	"crypto/sha1"
	"crypto/x509"
	"encoding/hex"
	"flag"
	"fmt"
	"path/filepath"
	"strings"

	"github.com/ucsec/ucsec/ctl"
	"github.com/ucsec/ucsec/itl"
	"github.com/ucsec/ucsec/sgn"
)

var tlvGroup = &group{
	name:     "tlv",
	summary:  "parse, build and verify trust lists (CTLFile.tlv, ITLFile.tlv)",
	commands: []*command{tlvParse, tlvBuild, tlvVerify, tlvPlan},
}

// listKindFlags are --ctl and --itl, which pick the policy a trust list
// keeps; without them, the file name does.
type listKindFlags struct{ ctl, itl bool }

func addListKindFlags(fs *flag.FlagSet) *listKindFlags {
	k := new(listKindFlags)
	fs.BoolVar(&k.ctl, "ctl", false, "the list is a CTL: signed by a SAST record, at most 2 SAST records")
	fs.BoolVar(&k.itl, "itl", false, "the list is an ITL: signed by a SAST, TFTP or CCM+TFTP record, at most 64 KiB")
	return k
}

// set reports whether either flag was given.
func (k *listKindFlags) set() bool { return k.ctl || k.itl }

// policy returns the policy the flags pick or, without them, the one the
// base name of the file name implies: CTL* or ITL*, in any case.
func (k *listKindFlags) policy(name string) (ctl.Policy, error) {
	base := strings.ToUpper(filepath.Base(name))
	switch {
	case k.ctl && k.itl:
		return ctl.Policy{}, usageError("--ctl and --itl cannot be used together")
	case k.ctl, !k.itl && strings.HasPrefix(base, "CTL"):
		return ctl.CTLPolicy(), nil
	case k.itl, strings.HasPrefix(base, "ITL"):
		return itl.ITLPolicy(), nil
	}
	return ctl.Policy{}, usageError("cannot tell CTL from ITL by the name; give --ctl or --itl")
}

// parseTrustList reads and parses the trust list name, CTL or ITL; an ITL
// larger than phones accept is parsed too. Its errors are *fileError
// values.
func parseTrustList(e *env, name string) (*ctl.File, error) {
	return parseInput(e, name, ctl.Parse)
}

var tlvParse = &command{
	name:     "parse",
	synopsis: "[--json] FILE.tlv",
	summary:  "print the header and records of a trust list",
	help: `
Print the header and the records of a trust list (CTLFile.tlv, ITLFile.tlv,
or a per-phone CTLSEP<MAC>.tlv or ITLSEP<MAC>.tlv), in the spirit of CUCM's
"show ctl". This checks the layout but verifies nothing, not even the
signature: use "ucsec tlv verify" for that. An ITL too large for phones is
shown too.

Each record shows the fields it holds; Role is the name CUCM prints, Key
Algorithm that of the record's certificate ("-" without one), Certificate
Hash the SHA-1 hash of the certificate, as certutils and CUCM print it.
Elements 0x0B and 0x0C and elements ucsec does not know are listed by tag.

With --json, prints one object with the header fields (byte strings in
hex, the timestamp in RFC 3339 or null, "signer_version" only when the
header has one) and "records", each with "offset",
"length", "dns_name", "subject_name", "issuer_name", "serial_number",
"role" (the number), "role_name", "public_key_length", "signature_length",
"certificate", "certificate_sha1", "key_algorithm", "ip_address" and
"extra"; fields a record lacks are left out.`,
	examples: []string{
		"ucsec tlv parse ITLFile.tlv",
		"ucsec tlv parse --json CTLFile.tlv",
	},
	args:  oneArg,
	setup: func(fs *flag.FlagSet) action { return newTLVParseCmd(fs).run },
}

type tlvParseCmd struct{ json bool }

func newTLVParseCmd(fs *flag.FlagSet) *tlvParseCmd {
	c := new(tlvParseCmd)
	jsonFlag(fs, &c.json)
	return c
}

func (c *tlvParseCmd) run(e *env, args []string) error {
	f, err := parseTrustList(e, args[0])
	if err != nil {
		return err
	}
	r := newTLVReport(args[0], f)
	if c.json {
		return e.printJSON(r)
	}
	printTable(e.stdout, r.rows())
	for i := range r.Records {
		rec := &r.Records[i]
		fmt.Fprintf(e.stdout, "\nRecord #%d (offset %d)\n", i+1, rec.Offset)
		printTable(e.stdout, rec.rows())
	}
	return nil
}

// tlvReport is the JSON form of a trust list; "tlv parse" prints its text
// form too.
type tlvReport struct {
	headerReport
	Records []tlvRecord `json:"records"`
}

type tlvRecord struct {
	Offset          int            `json:"offset"`
	Length          int            `json:"length"`
	DNSName         string         `json:"dns_name,omitempty"`
	SubjectName     string         `json:"subject_name,omitempty"`
	IssuerName      string         `json:"issuer_name,omitempty"`
	SerialNumber    string         `json:"serial_number,omitempty"`
	Role            ctl.Role       `json:"role"`
	RoleName        string         `json:"role_name"`
	PublicKeyLength int            `json:"public_key_length"`
	SignatureLength int            `json:"signature_length"`
	Certificate     hexBytes       `json:"certificate,omitempty"`
	CertificateSHA1 hexBytes       `json:"certificate_sha1,omitempty"`
	KeyAlgorithm    string         `json:"key_algorithm,omitempty"`
	IPAddress       string         `json:"ip_address,omitempty"`
	Extra           []extraElement `json:"extra"`
}

func newTLVReport(name string, f *ctl.File) *tlvReport {
	r := &tlvReport{
		headerReport: newHeaderReport(name, &f.Header),
		Records:      make([]tlvRecord, len(f.Records)),
	}
	for i := range f.Records {
		r.Records[i] = newTLVRecord(&f.Records[i])
	}
	return r
}

func newTLVRecord(r *ctl.Record) tlvRecord {
	t := tlvRecord{
		Offset:          r.Offset,
		Length:          len(r.Raw),
		DNSName:         r.DNSName,
		SubjectName:     r.SubjectName,
		IssuerName:      r.IssuerName,
		Role:            r.Role,
		RoleName:        r.Role.ShortName(),
		PublicKeyLength: len(r.PublicKey),
		SignatureLength: len(r.Signature),
		Certificate:     r.Certificate,
		Extra:           []extraElement{},
	}
	if r.SerialNumber != nil {
		t.SerialNumber = serialHex(r.SerialNumber)
	}
	if len(r.Certificate) > 0 {
		sum := sha1.Sum(r.Certificate)
		t.CertificateSHA1 = sum[:]
		t.KeyAlgorithm = "unknown"
		if cert, err := r.ParseCertificate(); err == nil && cert.PublicKeyAlgorithm != x509.UnknownPublicKeyAlgorithm {
			t.KeyAlgorithm = strings.Replace(cert.PublicKeyAlgorithm.String(), "ECDSA", "EC", 1)
		}
	}
	if r.IPAddress.IsValid() {
		t.IPAddress = r.IPAddress.String()
	}
	if len(r.CertificateHash) > 0 {
		t.Extra = append(t.Extra, extraElement{0x0B, r.CertificateHash})
	}
	if r.HashAlgorithm != 0 {
		t.Extra = append(t.Extra, extraElement{0x0C, []byte{r.HashAlgorithm}})
	}
	for _, x := range r.Extra {
		t.Extra = append(t.Extra, extraElement{x.Tag, x.Value})
	}
	return t
}

// rows returns the rows "tlv parse" prints for a record: those of the
// fields it holds.
func (r *tlvRecord) rows() [][2]string {
	rows := [][2]string{{"Record Length", fmt.Sprintf("%d bytes", r.Length)}}
	add := func(label, value string) {
		if value != "" {
			rows = append(rows, [2]string{label, value})
		}
	}
	size := func(n int) string {
		if n == 0 {
			return ""
		}
		return fmt.Sprintf("%d bytes", n)
	}
	add("DNS Name", printable(r.DNSName))
	add("Subject Name", printable(r.SubjectName))
	add("Issuer Name", printable(r.IssuerName))
	add("Serial Number", r.SerialNumber)
	add("Role", r.Role.String())
	add("Public Key", size(r.PublicKeyLength))
	add("Signature", size(r.SignatureLength))
	add("Certificate", size(len(r.Certificate)))
	add("Key Algorithm", cmp.Or(r.KeyAlgorithm, "-"))
	add("Certificate Hash", hex.EncodeToString(r.CertificateSHA1))
	add("IP Address", r.IPAddress)
	for _, x := range r.Extra {
		rows = append(rows, elementRow(x.Tag, x.Value))
	}
	return rows
}

var tlvBuild = &command{
	name:     "build",
	synopsis: "--cert FILE --key FILE --hash ALG --record ROLE=CERT... [flags]",
	summary:  "build and sign a CTL or an ITL",
	help: `
Build a trust list from the --record certificates, in the order given, and
sign it with --key, the key of the --cert certificate, which must be one
of the records: a SAST record in a CTL; a SAST (ITLRecovery), TFTP or
CCM+TFTP record in an ITL. The signer must be RSA; record certificates may
be RSA or EC. A PEM file with a certificate and its key is fine for both.

ROLE is sast, ccm, ccm+tftp, tftp, capf, app-server, tvs or a number. A
list holds at most two SAST records. --ctl or --itl says which list to
build; without them, the base name of the output does (CTL* or ITL*). -o
is required unless --ctl or --itl is given; then the default is
CTLFile.tlv or ITLFile.tlv. The header always stores CTLFile.tlv or
ITLFile.tlv unless --filename says otherwise: per-phone copies
(CTLSEP<MAC>.tlv) carry the generic name.

--hash is required: sha1 is what CUCM writes by default, sha512 what it
writes in SHA-512 mode. --signer-version adds the signer version element
that certutils writes: 1.1 makes phones use EC certificates. An ITL of 56
KiB or more draws a warning; one over 64 KiB, which phones reject, is not
written. With --json, prints {"output", "filename", "bytes"}.`,
	examples: []string{
		"ucsec tlv build --itl --cert sast.pem --key sast.pem --hash sha1 --record sast=sast.pem --record ccm+tftp=tftp.pem --record tvs=tvs.pem",
		"ucsec tlv build --cert sast.pem --key sast.pem --hash sha512 --record sast=sast.pem --record ccm+tftp=tftp.pem -o CTLSEP001122334455.tlv",
	},
	args:  noArgs,
	setup: func(fs *flag.FlagSet) action { return newTLVBuildCmd(fs).run },
}

type tlvBuildCmd struct {
	signer        *keyPairFlags
	hash          string
	records       listFlag
	kind          *listKindFlags
	filename      string
	version       string
	signerVersion string
	out           string
	json          bool
}

func newTLVBuildCmd(fs *flag.FlagSet) *tlvBuildCmd {
	c := &tlvBuildCmd{signer: addKeyPairFlags(fs, "", "signer")}
	signingHashFlag(fs, &c.hash)
	fs.Var(&c.records, "record", "add a record: `ROLE=CERT`, a role and a certificate file, PEM or DER (repeatable, required)")
	c.kind = addListKindFlags(fs)
	fs.StringVar(&c.filename, "filename", "", "`NAME` stored in the header (default CTLFile.tlv or ITLFile.tlv)")
	fs.StringVar(&c.version, "version", "1.2", "header `VERSION`, MAJOR.MINOR")
	fs.StringVar(&c.signerVersion, "signer-version", "", "write the signer version element 0x1C: `VERSION`, such as 1.0 or 1.1")
	outputFlag(fs, &c.out, "CTLFile.tlv or ITLFile.tlv with --ctl or --itl")
	jsonFlag(fs, &c.json)
	return c
}

func (c *tlvBuildCmd) run(e *env, _ []string) error {
	hash, err := signingHash(c.hash)
	if err != nil {
		return err
	}
	version, err := parseVersion(c.version)
	if err != nil {
		return err
	}
	var signerVersion *sgn.Version
	if c.signerVersion != "" {
		v, err := parseVersion(c.signerVersion)
		if err != nil {
			return usageError(fmt.Sprintf("invalid --signer-version %q (want MAJOR.MINOR, such as 1.1)", c.signerVersion))
		}
		signerVersion = new(sgn.Version(v))
	}
	if len(c.records) == 0 {
		return usageError("missing --record")
	}
	if c.out == "" && !c.kind.set() {
		return usageError("missing -o (or --ctl or --itl, for the default name)")
	}
	policy, err := c.kind.policy(c.out)
	if err != nil {
		return err
	}
	out := cmp.Or(c.out, policy.DefaultFilename)
	if err := checkJSONOutput(c.json, out); err != nil {
		return err
	}
	roles, paths, err := parseRecordFlags(c.records)
	if err != nil {
		return err
	}
	cert, key, err := c.signer.load()
	if err != nil {
		return err
	}
	recs := make([]ctl.Record, len(roles))
	for i, path := range paths {
		if recs[i], err = newRecord(path, roles[i]); err != nil {
			return err
		}
	}
	filename := cmp.Or(c.filename, policy.DefaultFilename)
	signed, err := policy.Create(rand.Reader, &ctl.File{Header: sgn.Header{Version: sgn.Version(version), SignerVersion: signerVersion, Hash: hash, Filename: filename},
		Records: recs}, cert, key)
	if err != nil {
		return buildError{err}
	}
	if policy.Name == itl.ITLPolicy().Name && len(signed) >= itl.WarnSize {
		fmt.Fprintf(e.stderr, "ucsec: warning: ITL is %d bytes; phones reject ITLs over %d\n", len(signed), itl.MaxSize)
	}
	inputs := append([]string{c.signer.certPath, c.signer.keyPath}, paths...)
	if err := e.writeOutput(out, signed, 0o644, inputs...); err != nil {
		return err
	}
	if c.json {
		return e.printJSON(struct {
			Output   string `json:"output"`
			Filename string `json:"filename"`
			Bytes    int    `json:"bytes"`
		}{out, filename, len(signed)})
	}
	return nil
}

// buildError is an error from making a trust list. A policy the records
// break is a mistake in the input (exit status 2), not a list that fails
// to verify, so it does not unwrap.
type buildError struct{ err error }

func (e buildError) Error() string { return e.err.Error() }

// parseRecordFlags splits the --record values into roles and certificate
// files.
func parseRecordFlags(specs []string) ([]ctl.Role, []string, error) {
	roles := make([]ctl.Role, len(specs))
	paths := make([]string, len(specs))
	for i, spec := range specs {
		name, path, ok := strings.Cut(spec, "=")
		if !ok || name == "" || path == "" {
			return nil, nil, usageError(fmt.Sprintf("invalid --record %q (want ROLE=CERT, such as tftp=tftp.pem)", spec))
		}
		role, err := ctl.ParseRole(name)
		if err != nil {
			return nil, nil, usageError(fmt.Sprintf("unknown role %q in --record (use sast, ccm, ccm+tftp, tftp, capf, app-server, tvs or a number)", name))
		}
		roles[i], paths[i] = role, path
	}
	return roles, paths, nil
}

// newRecord makes a record of the certificate in the file path.
func newRecord(path string, role ctl.Role) (ctl.Record, error) {
	cert, err := loadCertificate(path)
	if err != nil {
		return ctl.Record{}, err
	}
	r, err := ctl.NewRecord(cert, role)
	if err != nil {
		return ctl.Record{}, &fileError{path, err}
	}
	return r, nil
}

var tlvVerify = &command{
	name:     "verify",
	synopsis: "[--ctl|--itl] [--sgn FILE.sgn]... [--json] FILE.tlv",
	summary:  "check a trust list's policy and signature, and files it vouches for",
	help: `
Check that a trust list keeps its policy and that its signature verifies
with the key of its own signing record: a SAST record in a CTL; a SAST,
TFTP or CCM+TFTP record in an ITL, which must also be at most 64 KiB. A
list may hold at most two SAST records. --ctl or --itl says which policy
applies; without them, the base name of FILE.tlv does (CTL* or ITL*).

This proves that the list is intact, not that its signer is trusted: a
phone trusts a new list only if its signer is in the list it already holds,
or TVS vouches for it.

Each --sgn FILE.sgn is then checked against the list, as a phone holding
it would: the file must be signed by the certificate of a TFTP or CCM+TFTP
record, for the name the phone asks for (the name in its header must end
in the base name of FILE.sgn). Prints "FILE.tlv: valid, signed by SIGNER (record #N ROLE)" and
"FILE.sgn: signed by a TFTP record of FILE.tlv" for each valid file. Exits
1 if any check fails, 2 if a file cannot be read or is malformed (2 wins
over 1). With --json, prints one object per file, one per line: {"file",
"valid", "signer", "error"}; errors then go there, not to standard error.`,
	examples: []string{
		"ucsec tlv verify ITLFile.tlv",
		"ucsec tlv verify --ctl CTLSEP001122334455.tlv --sgn SEP001122334455.cnf.xml.sgn",
	},
	args:  oneArg,
	setup: func(fs *flag.FlagSet) action { return newTLVVerifyCmd(fs).run },
}

type tlvVerifyCmd struct {
	kind   *listKindFlags
	signed listFlag
	json   bool
}

func newTLVVerifyCmd(fs *flag.FlagSet) *tlvVerifyCmd {
	c := &tlvVerifyCmd{kind: addListKindFlags(fs)}
	fs.Var(&c.signed, "sgn", "also check that signed `FILE` is signed by a TFTP or CCM+TFTP record (repeatable)")
	jsonFlag(fs, &c.json)
	return c
}

func (c *tlvVerifyCmd) run(e *env, args []string) error {
	name := args[0]
	policy, err := c.kind.policy(name)
	if err != nil {
		return err
	}
	status := exitOK
	// report reports the check of one file: text if err is nil.
	report := func(file, signer, text string, err error) error {
		status = max(status, statusOf(err))
		switch {
		case c.json:
			r := verifyResult{File: file, Valid: err == nil}
			if err != nil {
				r.Error = detail(err)
			} else {
				r.Signer = signer
			}
			return e.printJSON(r)
		case err != nil:
			fmt.Fprintf(e.stderr, "ucsec: %s\n", message(err))
		default:
			fmt.Fprintf(e.stdout, "%s: %s\n", displayName(file), text)
		}
		return nil
	}

	f, err := parseTrustList(e, name)
	if err == nil {
		if verr := policy.Verify(f); verr != nil {
			err = &fileError{name, verr}
		}
	}
	var text, signer string
	if err == nil {
		signer = f.SignerName
		text = "valid, signed by " + printable(signer)
		if r, i := policy.Signer(f); r != nil {
			text += fmt.Sprintf(" (record #%d %s)", i+1, r.Role.ShortName())
		}
	}
	if err := report(name, signer, text, err); err != nil {
		return err
	}
	if f == nil {
		return statusError(status)
	}
	for _, s := range c.signed {
		sf, err := parseSignedFile(e, s)
		var rec *ctl.Record
		if err == nil {
			if rec, err = f.VerifySignedFile(sf, requestedName(s, sf.Filename)); err != nil {
				err = &fileError{s, err}
			}
		}
		var signer, text string
		if sf != nil {
			signer = sf.SignerName
		}
		if rec != nil {
			i := 0
			for i < len(f.Records) && &f.Records[i] != rec {
				i++
			}
			text = fmt.Sprintf("signed by record #%d %s of %s", i+1, rec.Role.ShortName(), displayName(name))
		}
		if err := report(s, signer, text, err); err != nil {
			return err
		}
	}
	return statusError(status)
}

// requestedName returns the name a phone asks for to get the signed file
// at path, whose header says it was signed for stored: stored itself if
// its last element is path's base name (a file from a TFTP subdirectory
// keeps its directory in the header), else the base name, which then
// fails the name check.
func requestedName(path, stored string) string {
	base := filepath.Base(path)
	if path == "-" || base == stored || strings.HasSuffix(stored, "/"+base) {
		return stored
	}
	return base
}
