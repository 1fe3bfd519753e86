package ctl

import (
	"crypto/x509"
	"errors"
	"fmt"
	"math/big"
	"math/bits"
	"net/netip"
	"slices"
	"strconv"
	"strings"

	"github.com/ucsec/ucsec/internal/trustlist"
	"github.com/ucsec/ucsec/sgn"
)

// The errors of the header are package sgn's: a malformed file wraps
// sgn.ErrMalformed (errors.As with a *sgn.ParseError gives the offset and
// tag, in the header or the records), a signature that fails is
// sgn.ErrVerification, and a key or hash trust lists cannot use wraps
// sgn.ErrUnsupportedAlgorithm. These are this package's own:
var (
	// ErrPolicy is wrapped by every violation of a trust-list policy (who
	// signs, how many SAST records, size). Use errors.As with a
	// *PolicyError for details.
	ErrPolicy = errors.New("ctl: trust list policy violated")

	// ErrUntrusted means a trust list or signed file was not accepted: its
	// signer is not trusted.
	ErrUntrusted = errors.New("ctl: signer is not trusted")

	// ErrWrongFile means a signed file was signed for another file name
	// than the one asked for.
	ErrWrongFile = errors.New("ctl: signed for another file name")
)

// PolicyError says which policy rule a trust list breaks. It unwraps to
// [ErrPolicy].
type PolicyError struct {
	Policy string // "CTL" or "ITL"
	Record int    // 1-based index of the record at fault, or 0
	Offset int    // byte offset of that record, or 0
	Msg    string
}

func (e *PolicyError) Error() string {
	switch {
	case e.Record > 0 && e.Offset > 0:
		return fmt.Sprintf("%s: %s policy: record %d at offset %d: %s", strings.ToLower(e.Policy), e.Policy, e.Record, e.Offset, e.Msg)
	case e.Record > 0:
		return fmt.Sprintf("%s: %s policy: record %d: %s", strings.ToLower(e.Policy), e.Policy, e.Record, e.Msg)
	}
	return fmt.Sprintf("%s: %s policy: %s", strings.ToLower(e.Policy), e.Policy, e.Msg)
}

// Unwrap returns ErrPolicy.
func (e *PolicyError) Unwrap() error { return ErrPolicy }

// Role is what a record's certificate is trusted for.
type Role uint16

// Roles (the "function" of a record).
const (
	RoleSAST      Role = 0  // System Administrator Security Token: signs CTL and ITL files
	RoleCCM       Role = 1  // CallManager: SIP-TLS and SCCP-TLS server
	RoleCCMTFTP   Role = 2  // CallManager and TFTP
	RoleTFTP      Role = 3  // TFTP: signs configuration files
	RoleCAPF      Role = 4  // Certificate Authority Proxy Function
	RoleAppServer Role = 7  // HTTPS application server (called HTTPS before certutils 4.0)
	RoleTVS       Role = 21 // Trust Verification Service
)

var roleNames = []struct {
	role  Role
	name  string // as CUCM's show ctl prints it
	short string // as flags and certutils spell it
}{
	{RoleSAST, "System Administrator Security Token", "SAST"},
	{RoleCCM, "CCM", "CCM"},
	{RoleCCMTFTP, "CCM+TFTP", "CCM+TFTP"},
	{RoleTFTP, "TFTP", "TFTP"},
	{RoleCAPF, "CAPF", "CAPF"},
	{RoleAppServer, "APP-SERVER", "APP-SERVER"},
	{RoleTVS, "TVS", "TVS"},
}

// String returns the role as CUCM's "show ctl" prints it ("System
// Administrator Security Token", "CCM+TFTP", …), or the number for a role
// this package does not know.
func (r Role) String() string {
	for _, n := range roleNames {
		if n.role == r {
			return n.name
		}
	}
	return strconv.Itoa(int(r))
}

// ShortName returns the role's short name ("SAST", "CCM+TFTP", …), or the
// number for a role this package does not know.
func (r Role) ShortName() string {
	for _, n := range roleNames {
		if n.role == r {
			return n.short
		}
	}
	return strconv.Itoa(int(r))
}

// ParseRole parses a role name, in any case: a short name (sast, ccm,
// ccm+tftp or tftp+ccm, tftp, capf, app-server or https, tvs), the name
// String returns, or a number.
func ParseRole(s string) (Role, error) {
	u := strings.ToUpper(strings.TrimSpace(s))
	switch u {
	case "TFTP+CCM":
		return RoleCCMTFTP, nil
	case "HTTPS":
		return RoleAppServer, nil
	}
	for _, n := range roleNames {
		if u == n.short || u == strings.ToUpper(n.name) {
			return n.role, nil
		}
	}
	if v, err := strconv.ParseUint(u, 10, 16); err == nil {
		return Role(v), nil
	}
	return 0, fmt.Errorf("ctl: unknown role %q", s)
}

// canSignFiles reports whether a record with role r may sign configuration
// files (.sgn, .enc.sgn).
func (r Role) canSignFiles() bool { return r == RoleTFTP || r == RoleCCMTFTP }

// A Record is one certificate entry of a trust list. Every field is
// optional, as CUCM writes them: records without a certificate exist.
type Record struct {
	Role            Role
	DNSName         string        // host name or address text; CUCM always writes it, certutils never
	SubjectName     string        // subject DN string of the certificate
	IssuerName      string        // issuer DN string of the certificate
	SerialNumber    *big.Int      // serial number of the certificate, nil if absent
	PublicKey       []byte        // RSA: PKCS#1 RSAPublicKey DER; EC: uncompressed X9.62 point
	Signature       []byte        // the certificate's own signature value
	Certificate     []byte        // the DER certificate; see ParseCertificate
	IPAddress       netip.Addr    // CUCM writes the node's IPv4 address; zero if absent
	CertificateHash []byte        // element 0x0B, seen in no sample
	HashAlgorithm   uint8         // element 0x0C, seen in no sample
	Extra           []sgn.Element // elements this package does not interpret, in order
	Offset          int           // offset of the record in the file (Parse only)
	// Raw is the record's bytes (Parse only). Re-encoding a record keeps
	// their element order and the serial number as stored in them
	// (perhaps with leading zero bytes) while it has that value.
	Raw []byte
}

// ParseCertificate parses the record's certificate.
func (r *Record) ParseCertificate() (*x509.Certificate, error) {
	if len(r.Certificate) == 0 {
		return nil, errors.New("ctl: record has no certificate")
	}
	return x509.ParseCertificate(r.Certificate)
}

// Certificates returns the certificates of f's records in role, in
// record order; records without a certificate are skipped, and one whose
// certificate does not parse is an error. A phone trusts these for the
// service of the role: the CAPF or TVS certificates of its trust list are
// what a capf.Client or tvs.Client pins.
func (f *File) Certificates(role Role) ([]*x509.Certificate, error) {
	var certs []*x509.Certificate
	for i := range f.Records {
		r := &f.Records[i]
		if r.Role != role || len(r.Certificate) == 0 {
			continue
		}
		cert, err := r.ParseCertificate()
		if err != nil {
			return nil, fmt.Errorf("ctl: record %d (%v): %w", i+1, role, err)
		}
		certs = append(certs, cert)
	}
	return certs, nil
}

// fromWire fills r from a parsed record, except its serial number and
// names, which parseRecords sets.
func (r *Record) fromWire(w *trustlist.Record) {
	r.Role = Role(w.Role)
	r.PublicKey, r.Signature, r.Certificate = w.PublicKey, w.Signature, w.Certificate
	r.CertificateHash, r.HashAlgorithm = w.CertificateHash, w.HashAlgorithm
	r.Offset, r.Raw = w.Offset, w.Raw
	if a, ok := netip.AddrFromSlice(w.IPAddress); ok {
		r.IPAddress = a
	}
	r.Extra = w.Extra
}

// toWire returns the record for encoding: in the parsed order if there is
// one, with the values of r's fields.
func (r *Record) toWire() *trustlist.Record {
	w := &trustlist.Record{
		Role:            uint16(r.Role),
		DNSName:         r.DNSName,
		SubjectName:     r.SubjectName,
		IssuerName:      r.IssuerName,
		PublicKey:       r.PublicKey,
		Signature:       r.Signature,
		Certificate:     r.Certificate,
		CertificateHash: r.CertificateHash,
		HashAlgorithm:   r.HashAlgorithm,
	}
	w.Extra = r.Extra
	// The element order and the serial number as Parse found them, from
	// the record's bytes.
	var order, rawSerial []byte
	if r.Raw != nil {
		var parsed trustlist.Record
		rd := trustlist.NewRecordReader(r.Raw, 0)
		if ok, err := rd.Next(&parsed); ok && err == nil && len(parsed.Raw) == len(r.Raw) {
			order, rawSerial = parsed.Order, parsed.SerialNumber
		}
	}
	if r.SerialNumber != nil {
		w.SerialNumber = r.SerialNumber.Bytes()
		if rawSerial != nil && new(big.Int).SetBytes(rawSerial).Cmp(r.SerialNumber) == 0 {
			w.SerialNumber = rawSerial // keep leading zero bytes as stored
		}
		if len(w.SerialNumber) == 0 {
			w.SerialNumber = []byte{0}
		}
	}
	if r.IPAddress.IsValid() {
		w.IPAddress = r.IPAddress.AsSlice()
	}
	if order == nil {
		return w
	}
	// Keep the parsed order if the extra elements are those parsed, and
	// add the elements of fields set since.
	var tags []uint8
	for _, t := range order {
		if !trustlist.Known(t) {
			tags = append(tags, t)
		}
	}
	extras := make([]uint8, len(w.Extra))
	for i, e := range w.Extra {
		extras[i] = e.Tag
	}
	if !slices.Equal(tags, extras) {
		return w
	}
	w.Order = slices.Clip(order)
	for _, t := range w.DefaultOrder() {
		if t == trustlist.TagDNSName && w.DNSName == "" {
			continue // written by default in new records only
		}
		if !slices.Contains(w.Order, t) {
			w.Order = append(w.Order, t)
		}
	}
	return w
}

// A File is a parsed or to-be-created trust list: a signed-file header,
// then the records. For [Create], the template's header gives the hash
// (required), version, file name, timestamp and signer version; the
// signer fields come from the signing certificate.
type File struct {
	sgn.Header
	Records []Record
}

// Parse parses a trust list (CTLFile.tlv, ITLFile.tlv and their per-phone
// CTLSEP/ITLSEP copies: the format is the same). It checks the layout and
// verifies nothing; see [File.Verify]. Byte slices in the result alias
// data, except RawTBS, which is a copy.
//
// Errors wrap sgn.ErrMalformed; errors.As with a *sgn.ParseError gives the
// offset and tag.
func Parse(data []byte) (*File, error) {
	h, err := sgn.ParseHeader(data)
	if err != nil {
		return nil, err
	}
	f := &File{Header: *h}
	if err := f.parseRecords(data[h.HeaderLength:], h.HeaderLength); err != nil {
		return nil, err
	}
	return f, nil
}

// parseRecords fills f.Records from the records in data, at file offset
// base. It allocates per file, not per record, where it can: one array of
// records, one of serial numbers and their words, one string for all the
// names.
func (f *File) parseRecords(data []byte, base int) error {
	n := trustlist.CountRecords(data)
	f.Records = make([]Record, n)
	serials := make([]big.Int, n)
	words := make([]big.Word, 0, 3*n) // serials are at most 20 bytes
	var all strings.Builder           // the names of all records
	all.Grow(n * 80)
	type span struct{ dns, subject, issuer int }
	spans := make([]span, n) // name lengths, to cut all into strings
	i := 0
	rd := trustlist.NewRecordReader(data, base)
	var w trustlist.Record // on the stack: no closure holds it
	for {
		ok, err := rd.Next(&w)
		if err != nil {
			return err
		}
		if !ok {
			break
		}
		if i == n {
			return errors.New("trustlist: more records than counted")
		}
		r := &f.Records[i]
		r.fromWire(&w)
		if w.SerialNumber != nil {
			start := len(words)
			words = appendWords(words, w.SerialNumber)
			r.SerialNumber = serials[i].SetBits(words[start:len(words):len(words)])
		}
		for _, t := range w.Text {
			all.Write(t)
		}
		spans[i] = span{len(w.Text[0]), len(w.Text[1]), len(w.Text[2])}
		i++
	}
	f.Records = f.Records[:i]
	s := all.String()
	for j := range f.Records {
		r, sp := &f.Records[j], spans[j]
		r.DNSName, s = s[:sp.dns], s[sp.dns:]
		r.SubjectName, s = s[:sp.subject], s[sp.subject:]
		r.IssuerName, s = s[:sp.issuer], s[sp.issuer:]
	}
	return nil
}

// appendWords appends the big-endian magnitude b to words as little-endian
// big.Words, the form big.Int.SetBits takes: a word at a time, from the
// least significant end.
func appendWords(words []big.Word, b []byte) []big.Word {
	const size = bits.UintSize / 8
	for len(b) > 0 {
		n := min(len(b), size)
		var w big.Word
		for _, c := range b[len(b)-n:] {
			w = w<<8 | big.Word(c)
		}
		words = append(words, w)
		b = b[:len(b)-n]
	}
	return words
}

// marshal re-encodes a parsed file: the header as parsed (package sgn
// checks that its fields round-trip), then the records from their fields.
// The tests use it to check that Parse loses nothing.
func (f *File) marshal() ([]byte, error) {
	recs, err := f.marshalRecords()
	if err != nil {
		return nil, err
	}
	return append(f.Raw[:f.HeaderLength:f.HeaderLength], recs...), nil
}

func (f *File) marshalRecords() ([]byte, error) {
	wire := make([]trustlist.Record, len(f.Records))
	for i := range f.Records {
		wire[i] = *f.Records[i].toWire()
	}
	return trustlist.Marshal(wire)
}
