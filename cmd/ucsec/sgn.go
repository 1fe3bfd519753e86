package main

import (
	"crypto/rand"
	"crypto/x509"
	"flag"
	"fmt"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/ucsec/ucsec/sgn"
)

var sgnGroup = &group{
	name:     "sgn",
	summary:  "sign, verify, parse and strip signed files (.sgn)",
	commands: []*command{sgnSign, sgnVerify, sgnParse, sgnStrip},
}

var sgnSign = &command{
	name:     "sign",
	synopsis: "--cert FILE --key FILE --hash ALG [flags] FILE",
	summary:  "sign a file for phones to download from TFTP",
	help: `
Sign FILE with the key of a TFTP (or CCM+TFTP) certificate and write the
signed file, FILE.sgn by default. The certificate must be RSA; phones
support keys of up to 2048 bits.

--hash is required: sha1 is what CUCM writes by default, sha512 what it
writes in SHA-512 mode; sha256 is defined by the format but no known phone
accepts it. The header stores the name the phone will ask for, the base
name of the output file unless --filename says otherwise; give --filename
for files served from a subdirectory of the TFTP root.

"-" as FILE signs standard input and writes to standard output unless -o
is given. With --json, prints {"output", "filename", "bytes"}.`,
	examples: []string{
		"ucsec sgn sign --cert tftp.pem --key tftp.pem --hash sha512 SEP001122334455.cnf.xml",
		"ucsec sgn sign --cert tftp.pem --key tftp.key --hash sha1 --filename Desktops/320x196x4/List.xml.sgn -o List.xml.sgn List.xml",
	},
	args:  oneArg,
	setup: func(fs *flag.FlagSet) action { return newSgnSignCmd(fs).run },
}

type sgnSignCmd struct {
	signer      *keyPairFlags
	hash        string
	filename    string
	version     string
	noTimestamp bool
	out         string
	json        bool
}

func newSgnSignCmd(fs *flag.FlagSet) *sgnSignCmd {
	c := &sgnSignCmd{signer: addKeyPairFlags(fs, "", "signer")}
	signingHashFlag(fs, &c.hash)
	fs.StringVar(&c.filename, "filename", "", "`NAME` stored in the header (default: base name of the output)")
	fs.StringVar(&c.version, "version", "1.0", "header `VERSION`, MAJOR.MINOR")
	fs.BoolVar(&c.noTimestamp, "no-timestamp", false, "leave the signing time out of the header")
	outputFlag(fs, &c.out, "FILE.sgn")
	jsonFlag(fs, &c.json)
	return c
}

func (c *sgnSignCmd) run(e *env, args []string) error {
	in := args[0]
	hash, err := signingHash(c.hash)
	if err != nil {
		return err
	}
	version, err := parseVersion(c.version)
	if err != nil {
		return err
	}
	out := c.out
	if out == "" {
		out = "-"
		if in != "-" {
			out = in + ".sgn"
		}
	}
	if err := checkJSONOutput(c.json, out); err != nil {
		return err
	}
	filename := c.filename
	switch {
	case filename != "":
	case out != "-":
		filename = filepath.Base(out)
	case in != "-":
		filename = filepath.Base(in) + ".sgn"
	default:
		return usageError("missing --filename, needed to sign standard input to standard output")
	}
	cert, key, err := c.signer.load()
	if err != nil {
		return err
	}
	payload, err := e.readInput(in)
	if err != nil {
		return err
	}
	signed, err := sgn.Sign(rand.Reader, payload, cert, key, sgn.SignOptions{
		Filename:      filename,
		Hash:          hash,
		Version:       version,
		OmitTimestamp: c.noTimestamp,
	})
	if err != nil {
		return err
	}
	if err := e.writeOutput(out, signed, 0o644, in, c.signer.certPath, c.signer.keyPath); err != nil {
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

// parseVersion parses a header version such as "1.0".
func parseVersion(s string) (sgn.Version, error) {
	major, minor, ok := strings.Cut(s, ".")
	x, err1 := strconv.ParseUint(major, 10, 8)
	y, err2 := strconv.ParseUint(minor, 10, 8)
	if !ok || err1 != nil || err2 != nil {
		return sgn.Version{}, usageError(fmt.Sprintf("invalid --version %q (want MAJOR.MINOR, such as 1.0)", s))
	}
	return sgn.Version{uint8(x), uint8(y)}, nil
}

var sgnVerify = &command{
	name:     "verify",
	synopsis: "--cert FILE [--json] FILE.sgn...",
	summary:  "check that signed files were signed by a certificate",
	help: `
Check that each FILE.sgn was signed with the key of the --cert certificate
and that its header names that certificate as the signer (serial number,
subject and issuer). The certificate's validity period and chain are not
checked: --cert is the certificate you trust, as a phone trusts the TFTP
certificate in its trust list.

Prints "FILE.sgn: valid signature by SIGNER" for each valid file. Exits 1
if any signature is not valid or was made by another signer, 2 if a file
cannot be read or is malformed (2 wins over 1). With --json, prints one
object per file, one per line: {"file", "valid", "signer", "error"};
errors then go there, not to standard error.`,
	examples: []string{
		"ucsec sgn verify --cert tftp.pem SEP001122334455.cnf.xml.sgn",
		"ucsec sgn verify *.sgn --cert tftp.pem --json",
	},
	args:  someArgs,
	setup: func(fs *flag.FlagSet) action { return newSgnVerifyCmd(fs).run },
}

type sgnVerifyCmd struct {
	cert string
	json bool
}

func newSgnVerifyCmd(fs *flag.FlagSet) *sgnVerifyCmd {
	c := new(sgnVerifyCmd)
	fs.StringVar(&c.cert, "cert", "", "trusted signer certificate `FILE`, PEM or DER (required)")
	jsonFlag(fs, &c.json)
	return c
}

func (c *sgnVerifyCmd) run(e *env, args []string) error {
	if c.cert == "" {
		return usageError("missing --cert")
	}
	cert, err := loadCertificate(c.cert)
	if err != nil {
		return err
	}
	status := exitOK
	for _, name := range args {
		f, err := verifySignedFile(e, name, cert)
		status = max(status, statusOf(err))
		switch {
		case c.json:
			r := verifyResult{File: name, Valid: err == nil}
			if err != nil {
				r.Error = detail(err)
			} else {
				r.Signer = f.SignerName
			}
			if err := e.printJSON(r); err != nil {
				return err
			}
		case err != nil:
			fmt.Fprintf(e.stderr, "ucsec: %s\n", message(err))
		default:
			fmt.Fprintf(e.stdout, "%s: valid signature by %s\n", displayName(name), printable(f.SignerName))
		}
	}
	return statusError(status)
}

type verifyResult struct {
	File   string `json:"file"`
	Valid  bool   `json:"valid"`
	Signer string `json:"signer,omitempty"`
	Error  string `json:"error,omitempty"`
}

// verifySignedFile reads and parses the signed file name and checks that
// cert signed it; with a nil cert, it only parses. Its errors are
// *fileError values.
func verifySignedFile(e *env, name string, cert *x509.Certificate) (*sgn.File, error) {
	f, err := parseSignedFile(e, name)
	if err != nil || cert == nil {
		return f, err
	}
	if err := f.CheckSignatureFrom(cert); err != nil {
		return nil, &fileError{name, err}
	}
	return f, nil
}

// parseSignedFile reads and parses the signed file name. Its errors are
// *fileError values.
func parseSignedFile(e *env, name string) (*sgn.File, error) {
	return parseInput(e, name, sgn.Parse)
}

var sgnParse = &command{
	name:     "parse",
	synopsis: "[--cert FILE] [--json] FILE.sgn",
	summary:  "print the header of a signed file",
	help: `
Print the header of a signed file. This verifies nothing unless --cert is
given: then the signature is checked as "ucsec sgn verify" does, a
Verification line is added, and the exit status is 1 if it is not valid.

With --json, prints one object with the same fields (byte strings in hex,
the timestamp in RFC 3339 or null) and, with --cert, "valid" and "error".`,
	examples: []string{
		"ucsec sgn parse SEP001122334455.cnf.xml.sgn",
		"ucsec sgn parse --cert tftp.pem --json SEP001122334455.cnf.xml.sgn",
	},
	args:  oneArg,
	setup: func(fs *flag.FlagSet) action { return newSgnParseCmd(fs).run },
}

type sgnParseCmd struct {
	cert string
	json bool
}

func newSgnParseCmd(fs *flag.FlagSet) *sgnParseCmd {
	c := new(sgnParseCmd)
	fs.StringVar(&c.cert, "cert", "", "also verify the signature with this signer certificate `FILE`")
	jsonFlag(fs, &c.json)
	return c
}

func (c *sgnParseCmd) run(e *env, args []string) error {
	cert, err := loadOptionalCertificate(c.cert)
	if err != nil {
		return err
	}
	name := args[0]
	f, err := parseSignedFile(e, name)
	if err != nil {
		return err
	}
	var verr error
	if cert != nil {
		verr = f.CheckSignatureFrom(cert)
	}
	if c.json {
		r := newSgnReport(name, f)
		if cert != nil {
			valid := verr == nil
			r.Valid = &valid
			if verr != nil {
				r.Error = message(verr)
			}
		}
		if err := e.printJSON(r); err != nil {
			return err
		}
		return statusError(statusOf(verr))
	}
	rows := newSgnReport(name, f).rows()
	if cert != nil {
		result := "valid"
		if verr != nil {
			result = "invalid"
		}
		rows = append(rows, [2]string{"Verification", result})
	}
	printTable(e.stdout, rows)
	if verr != nil {
		return &fileError{name, verr}
	}
	return nil
}

// rows returns the rows "ucsec sgn parse" prints.
func (r *sgnReport) rows() [][2]string {
	rows := append(r.headerReport.rows(), [2]string{"Payload", fmt.Sprintf("%d bytes", r.PayloadLength)})
	for _, x := range r.Extra {
		rows = append(rows, elementRow(x.Tag, x.Value))
	}
	return rows
}

// sgnReport is the JSON form of a signed file's header; "sgn parse" prints
// its text form too.
type sgnReport struct {
	headerReport
	PayloadLength int            `json:"payload_length"`
	Extra         []extraElement `json:"extra"`
	Valid         *bool          `json:"valid,omitempty"`
	Error         string         `json:"error,omitempty"`
}

type extraElement struct {
	Tag   uint8    `json:"tag"`
	Value hexBytes `json:"value"`
}

func newSgnReport(name string, f *sgn.File) *sgnReport {
	r := &sgnReport{
		headerReport:  newHeaderReport(name, &f.Header),
		PayloadLength: len(f.Payload),
		Extra:         []extraElement{},
	}
	for _, x := range f.Extra {
		r.Extra = append(r.Extra, extraElement{x.Tag, x.Value})
	}
	return r
}

var sgnStrip = &command{
	name:     "strip",
	synopsis: "[--cert FILE] [-o FILE] FILE.sgn",
	summary:  "write the original file inside a signed file",
	help: `
Write the file inside a signed file: FILE.sgn gives FILE (a name without
.sgn or .sha512 gets ".stripped" appended). This checks the header's layout
but verifies nothing, unless --cert is given: then a file whose signature
is not valid, or made by another signer, is not stripped (exit status 1).

"-" as FILE.sgn reads standard input and writes to standard output unless
-o is given.`,
	examples: []string{
		"ucsec sgn strip SEP001122334455.cnf.xml.sgn",
		"ucsec sgn strip --cert tftp.pem -o - SEP001122334455.cnf.xml.sgn",
	},
	args:  oneArg,
	setup: func(fs *flag.FlagSet) action { return newSgnStripCmd(fs).run },
}

type sgnStripCmd struct {
	cert string
	out  string
}

func newSgnStripCmd(fs *flag.FlagSet) *sgnStripCmd {
	c := new(sgnStripCmd)
	fs.StringVar(&c.cert, "cert", "", "strip only if signed by this signer certificate `FILE`")
	outputFlag(fs, &c.out, "FILE.sgn without .sgn")
	return c
}

func (c *sgnStripCmd) run(e *env, args []string) error {
	in := args[0]
	out := c.out
	if out == "" {
		out = "-"
		if in != "-" {
			out = sgn.StrippedName(in)
		}
	}
	cert, err := loadOptionalCertificate(c.cert)
	if err != nil {
		return err
	}
	f, err := verifySignedFile(e, in, cert)
	if err != nil {
		return err
	}
	return e.writeOutput(out, f.Payload, 0o644, in, c.cert)
}
