package main

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	_ "crypto/md5" // for cert hash
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha1"
	_ "crypto/sha256" // for cert hash
	_ "crypto/sha512" // for cert hash
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"encoding/base64"
	"encoding/hex"
	"encoding/pem"
	"flag"
	"fmt"
	"io"
	"math/big"
	"slices"
	"strings"
	"time"

	"github.com/ucsec/ucsec/internal/pemutil"
)

var certGroup = &group{
	name:     "cert",
	summary:  "make lab certificates and compute certificate hashes",
	commands: []*command{certNew, certHash},
}

var certNew = &command{
	name:     "new",
	synopsis: "--cn NAME [flags]",
	summary:  "make a certificate and private key for labs and tests",
	help: `
Make a certificate and its private key for labs and tests, and write both
to one PEM file (certificate first, then the PKCS#8 key) with mode 0600.
The default file name is the lowercased common name plus ".pem". These are
not for production: keep real keys where CUCM or your CA keeps them.

The certificate is self-signed unless --ca-cert and --ca-key name the CA to
sign it with; --ca makes a CA certificate. Subject: CN, then OU, then O.
Serial number: 128 random bits. Validity: from an hour ago for --days days.
Key usage: digital signature and key encipherment (RSA only), plus
certificate and CRL signing if self-signed or --ca; extended key usage:
server and client authentication; DNS name: the lowercased common name if
it is a host name. Phones need RSA keys of at most 2048 bits.

Prints the file name and the certificate's SHA-1 fingerprint; with --json,
{"output", "serial_number", "not_before", "not_after", "sha1"}.`,
	examples: []string{
		"ucsec cert new --cn tftp -o tftp.pem",
		"ucsec cert new --cn LabCA --org Example --ca -o ca.pem",
		"ucsec cert new --cn cucm.example.com --ou VTG --ca-cert ca.pem --ca-key ca.pem",
	},
	args:  noArgs,
	setup: func(fs *flag.FlagSet) action { return newCertNewCmd(fs).run },
}

// keyTypes are the key types "cert new" makes.
var keyTypes = []struct {
	name     string
	generate func() (crypto.Signer, error)
}{
	{"rsa1024", rsaKey(1024)},
	{"rsa2048", rsaKey(2048)},
	{"rsa4096", rsaKey(4096)},
	{"p256", ecKey(elliptic.P256())},
	{"p384", ecKey(elliptic.P384())},
}

func rsaKey(bits int) func() (crypto.Signer, error) {
	return func() (crypto.Signer, error) { return rsa.GenerateKey(rand.Reader, bits) }
}

func ecKey(curve elliptic.Curve) func() (crypto.Signer, error) {
	return func() (crypto.Signer, error) { return ecdsa.GenerateKey(curve, rand.Reader) }
}

func keyTypeNames() string {
	names := make([]string, len(keyTypes))
	for i, k := range keyTypes {
		names[i] = k.name
	}
	return strings.Join(names, ", ")
}

type certNewCmd struct {
	cn, org, ou string
	keyType     string
	days        int
	ca          bool
	issuer      *keyPairFlags
	out         string
	json        bool
}

func newCertNewCmd(fs *flag.FlagSet) *certNewCmd {
	c := new(certNewCmd)
	fs.StringVar(&c.cn, "cn", "", "subject common name `NAME` (required)")
	fs.StringVar(&c.org, "org", "", "subject organization `NAME` (O)")
	fs.StringVar(&c.ou, "ou", "", "subject organizational unit `NAME` (OU)")
	fs.StringVar(&c.keyType, "key-type", "rsa2048", "key `TYPE`: "+keyTypeNames())
	fs.IntVar(&c.days, "days", 3650, "validity period in `DAYS`")
	fs.BoolVar(&c.ca, "ca", false, "make a CA certificate (basic constraints CA:TRUE)")
	c.issuer = addKeyPairFlags(fs, "ca-", "issuing CA")
	outputFlag(fs, &c.out, "CN.pem, lowercased")
	jsonFlag(fs, &c.json)
	return c
}

// maxDays bounds --days, far below where time.Duration overflows.
const maxDays = 100 * 366

func (c *certNewCmd) run(e *env, _ []string) error {
	if c.cn == "" {
		return usageError("missing --cn")
	}
	if c.days < 1 || c.days > maxDays {
		return usageError(fmt.Sprintf("--days must be between 1 and %d", maxDays))
	}
	var generate func() (crypto.Signer, error)
	for _, k := range keyTypes {
		if k.name == strings.ToLower(c.keyType) {
			generate = k.generate
		}
	}
	if generate == nil {
		return usageError(fmt.Sprintf("unknown --key-type %q (use %s)", c.keyType, keyTypeNames()))
	}
	out := c.out
	if out == "" {
		out = fileNameFor(c.cn) + ".pem"
	}
	if err := checkJSONOutput(c.json, out); err != nil {
		return err
	}
	var parent *x509.Certificate
	var parentKey crypto.Signer
	if c.issuer.set() {
		var err error
		if parent, parentKey, err = c.issuer.load(); err != nil {
			return err
		}
		if !parent.IsCA {
			return fmt.Errorf("%s is not a CA certificate (make one with --ca)", c.issuer.certPath)
		}
	}

	key, err := generate()
	if err != nil {
		return err
	}
	tmpl, err := c.template(key.Public(), time.Now(), parent == nil)
	if err != nil {
		return err
	}
	if parent == nil {
		parent, parentKey = tmpl, key
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, parent, key.Public(), parentKey)
	if err != nil {
		return err
	}
	pkcs8, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return err
	}
	data := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
	data = append(data, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: pkcs8})...)
	if err := e.writeOutput(out, data, 0o600, c.issuer.certPath, c.issuer.keyPath); err != nil {
		return err
	}

	fingerprint := sha1.Sum(der)
	switch {
	case c.json:
		return e.printJSON(struct {
			Output       string    `json:"output"`
			SerialNumber string    `json:"serial_number"`
			NotBefore    time.Time `json:"not_before"`
			NotAfter     time.Time `json:"not_after"`
			SHA1         hexBytes  `json:"sha1"`
		}{out, serialHex(tmpl.SerialNumber), tmpl.NotBefore.UTC(), tmpl.NotAfter.UTC(), fingerprint[:]})
	case out != "-":
		printTable(e.stdout, [][2]string{
			{"File", out},
			{"SHA-1 Fingerprint", hex.EncodeToString(fingerprint[:])},
		})
	}
	return nil
}

// template returns the template of the certificate to make for pub.
func (c *certNewCmd) template(pub crypto.PublicKey, now time.Time, selfSigned bool) (*x509.Certificate, error) {
	serial := make([]byte, 16)
	if _, err := io.ReadFull(rand.Reader, serial); err != nil {
		return nil, err
	}
	serial[0] |= 0x80 // always 128 bits
	subject, err := c.subject()
	if err != nil {
		return nil, err
	}
	keyID, err := subjectKeyID(pub)
	if err != nil {
		return nil, err
	}
	usage := x509.KeyUsageDigitalSignature
	if _, isRSA := pub.(*rsa.PublicKey); isRSA {
		usage |= x509.KeyUsageKeyEncipherment
	}
	if c.ca || selfSigned {
		usage |= x509.KeyUsageCertSign | x509.KeyUsageCRLSign
	}
	t := &x509.Certificate{
		SerialNumber:          new(big.Int).SetBytes(serial),
		RawSubject:            subject,
		NotBefore:             now.Add(-time.Hour).Truncate(time.Second),
		NotAfter:              now.AddDate(0, 0, c.days).Truncate(time.Second),
		KeyUsage:              usage,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
		BasicConstraintsValid: c.ca,
		IsCA:                  c.ca,
		SubjectKeyId:          keyID,
	}
	if host := strings.ToLower(c.cn); isHostname(host) {
		t.DNSNames = []string{host}
	}
	return t, nil
}

var (
	oidCommonName       = asn1.ObjectIdentifier{2, 5, 4, 3}
	oidOrganizationUnit = asn1.ObjectIdentifier{2, 5, 4, 11}
	oidOrganization     = asn1.ObjectIdentifier{2, 5, 4, 10}
)

// subject returns the DER subject name: CN, then OU and O if given, in
// that order (pkix.Name would put CN last).
func (c *certNewCmd) subject() ([]byte, error) {
	name := pkix.RDNSequence{{{Type: oidCommonName, Value: c.cn}}}
	if c.ou != "" {
		name = append(name, pkix.RelativeDistinguishedNameSET{{Type: oidOrganizationUnit, Value: c.ou}})
	}
	if c.org != "" {
		name = append(name, pkix.RelativeDistinguishedNameSET{{Type: oidOrganization, Value: c.org}})
	}
	return asn1.Marshal(name)
}

// subjectKeyID returns the SHA-1 hash of the public key bits (RFC 5280,
// 4.2.1.2, method 1).
func subjectKeyID(pub crypto.PublicKey) ([]byte, error) {
	spki, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		return nil, err
	}
	var info struct {
		Algorithm pkix.AlgorithmIdentifier
		PublicKey asn1.BitString
	}
	if _, err := asn1.Unmarshal(spki, &info); err != nil {
		return nil, err
	}
	sum := sha1.Sum(info.PublicKey.Bytes)
	return sum[:], nil
}

// isHostname reports whether s is a DNS host name: dot-separated labels of
// letters, digits and inner hyphens.
func isHostname(s string) bool {
	if len(s) > 253 {
		return false
	}
	for label := range strings.SplitSeq(s, ".") {
		if label == "" || len(label) > 63 || label[0] == '-' || label[len(label)-1] == '-' {
			return false
		}
		for _, r := range label {
			if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-') {
				return false
			}
		}
	}
	return true
}

// fileNameFor turns a common name into a file name: lowercased, with
// characters other than letters, digits, '-', '_' and inner dots replaced
// by '_'.
func fileNameFor(cn string) string {
	b := []byte(strings.ToLower(cn))
	for i, r := range b {
		ok := r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r == '-' || r == '_' || r == '.' && i > 0
		if !ok {
			b[i] = '_'
		}
	}
	return string(b)
}

var certHash = &command{
	name:     "hash",
	synopsis: "[--hash ALG] [--base64] [--json] CERT...",
	summary:  "print certificate hashes as phones and CUCM use them",
	help: `
Print hashes of each certificate's DER encoding: MD5 (the certHash of a
short configuration file), SHA-1 (the certificate hash of an ITL record),
SHA-256 and SHA-512. A PEM file with a certificate and a key is fine: the
first certificate is used. "-" reads standard input.

Without --hash, prints all four, one per line ("MD5:    <hex>"); with
--hash, just that value. For several files, each file's hashes follow a
"FILE:" line, or with --hash each value is followed by the file name, as
md5sum prints. Hex is lowercase; --base64 prints standard base64 instead
(also in JSON). With --json, prints one object per file, one per line:
{"file", "md5", "sha1", "sha256", "sha512"}.`,
	examples: []string{
		"ucsec cert hash device.pem",
		"ucsec cert hash --hash md5 --base64 device.pem",
	},
	args:  someArgs,
	setup: func(fs *flag.FlagSet) action { return newCertHashCmd(fs).run },
}

type certHashCmd struct {
	hash      string
	useBase64 bool
	json      bool
}

func newCertHashCmd(fs *flag.FlagSet) *certHashCmd {
	c := new(certHashCmd)
	fs.StringVar(&c.hash, "hash", "", "print only the `ALG` hash: md5, sha1, sha256 or sha512")
	fs.BoolVar(&c.useBase64, "base64", false, "print base64 instead of hex")
	jsonFlag(fs, &c.json)
	return c
}

func (c *certHashCmd) run(e *env, args []string) error {
	selected := hashes
	if c.hash != "" {
		h, err := parseHash(c.hash, "md5", "sha1", "sha256", "sha512")
		if err != nil {
			return err
		}
		selected = slices.DeleteFunc(slices.Clone(hashes), func(x hashAlg) bool { return x.hash != h })
	}
	encode := hex.EncodeToString
	if c.useBase64 {
		encode = base64.StdEncoding.EncodeToString
	}
	for i, name := range args {
		data, err := e.readInput(name)
		if err != nil {
			return err
		}
		cert, err := pemutil.ParseCertificate(data)
		if err != nil {
			return &fileError{name, err}
		}
		result := map[string]string{"file": name} // encoding/json sorts the keys
		rows := make([][2]string, len(selected))
		for j, x := range selected {
			h := x.hash.New()
			h.Write(cert.Raw)
			result[x.name] = encode(h.Sum(nil))
			rows[j] = [2]string{strings.ToUpper(x.name), result[x.name]}
		}
		switch {
		case c.json:
			if err := e.printJSON(result); err != nil {
				return err
			}
		case len(selected) == 1 && len(args) == 1:
			fmt.Fprintln(e.stdout, rows[0][1])
		case len(selected) == 1:
			fmt.Fprintf(e.stdout, "%s  %s\n", rows[0][1], name)
		default:
			if len(args) > 1 {
				if i > 0 {
					fmt.Fprintln(e.stdout)
				}
				fmt.Fprintf(e.stdout, "%s:\n", name)
			}
			for _, r := range rows {
				fmt.Fprintf(e.stdout, "%-8s%s\n", r[0]+":", r[1])
			}
		}
	}
	return nil
}
