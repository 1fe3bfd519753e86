package main

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"path/filepath"
	"strings"

	"github.com/ucsec/ucsec/cnfenc"
	"github.com/ucsec/ucsec/sgn"
)

var cnfGroup = &group{
	name:     "cnf",
	summary:  "encrypt, decrypt and parse phone configurations (.enc.sgn); strip digest credentials",
	commands: []*command{cnfEncrypt, cnfDecrypt, cnfParse, cnfExcludeDigest},
}

var cnfEncrypt = &command{
	name:     "encrypt",
	synopsis: "--phone-cert FILE --cert FILE --key FILE --hash ALG [flags] FILE",
	summary:  "encrypt a phone's configuration file to its certificate and sign it",
	help: `
Encrypt a phone's configuration file to the phone's certificate
(--phone-cert, its LSC or MIC, which must be RSA) and sign the result with
the key of a TFTP (or CCM+TFTP) certificate, as CUCM's TFTP Encrypted
Config does: AES-128-CBC under a fresh random key and IV, the key wrapped
to the phone's RSA key. The signing certificate must be RSA.

The device name is --device, or the base name of FILE without .cnf.xml
(SEP001122334455.cnf.xml is device SEP001122334455); one of the two is
required. The output is FILE.enc.sgn, or with --device
DEVICE.cnf.xml.enc.sgn in FILE's directory. The header stores the name the
phone will ask for: the base name of the output file, or
DEVICE.cnf.xml.enc.sgn with --device or when writing to standard output.

--short also writes the short signed configuration that tells the phone to
fetch the encrypted one, DEVICE.cnf.xml.sgn in the output's directory:
FILE's ipAddressMode, loadInformation, capfAuthMode and capfList elements,
the certHash of --phone-cert and encrConfig true. FILE must then be a
<device> configuration. Serve it in place of the signed full
configuration.

--hash is required, for the signature and the plaintext digest: sha1 is
what CUCM writes by default, sha512 what it writes in SHA-512 mode; sha256
is defined by the format but no known phone accepts it.

"-" as FILE encrypts standard input (--device is then required) and writes
to standard output unless -o is given. With --json, prints {"output",
"filename", "bytes"} for each file written, one per line.`,
	examples: []string{
		"ucsec cnf encrypt --phone-cert SEP001122334455.pem --cert tftp.pem --key tftp.pem --hash sha1 --short SEP001122334455.cnf.xml",
		"ucsec cnf encrypt --phone-cert lsc.der --cert tftp.pem --key tftp.key --hash sha512 --device SEP001122334455 phone.xml",
	},
	args:  oneArg,
	setup: func(fs *flag.FlagSet) action { return newCnfEncryptCmd(fs).run },
}

type cnfEncryptCmd struct {
	signer    *keyPairFlags
	phoneCert string
	hash      string
	device    string
	short     bool
	out       string
	json      bool
}

func newCnfEncryptCmd(fs *flag.FlagSet) *cnfEncryptCmd {
	c := &cnfEncryptCmd{signer: addKeyPairFlags(fs, "", "signer (TFTP)")}
	fs.StringVar(&c.phoneCert, "phone-cert", "", "phone certificate `FILE` (LSC or MIC) to encrypt to, PEM or DER (required)")
	signingHashFlag(fs, &c.hash)
	fs.StringVar(&c.device, "device", "", "device `NAME`, such as SEP001122334455 (default: FILE's base name without .cnf.xml)")
	fs.BoolVar(&c.short, "short", false, "also write the short signed configuration DEVICE.cnf.xml.sgn")
	outputFlag(fs, &c.out, "FILE.enc.sgn")
	jsonFlag(fs, &c.json)
	return c
}

func (c *cnfEncryptCmd) run(e *env, args []string) error {
	in := args[0]
	hash, err := signingHash(c.hash)
	if err != nil {
		return err
	}
	if c.phoneCert == "" {
		return usageError("missing --phone-cert")
	}
	device := c.device
	if device == "" {
		var ok bool
		switch device, ok = deviceName(in); {
		case in == "-":
			return usageError("missing --device, needed to encrypt standard input")
		case !ok:
			return usageError(fmt.Sprintf("missing --device: cannot tell the device name from %s (want SEP<MAC>.cnf.xml)", in))
		}
	}
	out := c.out
	switch {
	case out != "":
	case in == "-":
		out = "-"
	case c.device != "":
		out = filepath.Join(filepath.Dir(in), cnfenc.EncryptedName(device))
	default:
		out = in + ".enc.sgn"
	}
	if err := checkJSONOutput(c.json, out); err != nil {
		return err
	}
	opts := cnfenc.EncryptOptions{Hash: hash, DeviceName: device}
	filename := cnfenc.EncryptedName(device)
	if c.device == "" && out != "-" {
		opts = cnfenc.EncryptOptions{Hash: hash, Filename: filepath.Base(out)}
		filename = opts.Filename
	}
	var shortOut string
	if c.short {
		if out == "-" {
			return usageError("--short needs an output file: the short configuration is written next to it")
		}
		shortOut = filepath.Join(filepath.Dir(out), cnfenc.ShortName(device))
		if sameFile(shortOut, out) {
			return usageError(fmt.Sprintf("-o names the short configuration %s", shortOut))
		}
	}
	cert, key, err := c.signer.load()
	if err != nil {
		return err
	}
	phone, err := loadCertificate(c.phoneCert)
	if err != nil {
		return err
	}
	config, err := e.readInput(in)
	if err != nil {
		return err
	}

	// Make everything before writing anything.
	var short []byte
	if c.short {
		plain, err := cnfenc.ShortConfig(config, phone)
		if err != nil {
			return &fileError{in, err}
		}
		short, err = sgn.Sign(rand.Reader, plain, cert, key, sgn.SignOptions{
			Filename: cnfenc.ShortName(device),
			Hash:     hash,
		})
		if err != nil {
			return err
		}
	}
	encrypted, err := cnfenc.Encrypt(rand.Reader, config, phone, cert, key, opts)
	switch {
	case errors.Is(err, cnfenc.ErrUnsupportedKey):
		return &fileError{c.phoneCert, err}
	case err != nil:
		return err
	}

	inputs := []string{in, c.phoneCert, c.signer.certPath, c.signer.keyPath}
	written := []writtenFile{{out, filename, len(encrypted)}}
	if err := e.writeOutput(out, encrypted, 0o644, inputs...); err != nil {
		return err
	}
	if c.short {
		if err := e.writeOutput(shortOut, short, 0o644, inputs...); err != nil {
			return err
		}
		written = append(written, writtenFile{shortOut, cnfenc.ShortName(device), len(short)})
	}
	if c.json {
		for _, w := range written {
			if err := e.printJSON(w); err != nil {
				return err
			}
		}
	}
	return nil
}

// writtenFile is what "cnf encrypt --json" prints for each file it
// writes, the object "sgn sign --json" prints.
type writtenFile struct {
	Output   string `json:"output"`
	Filename string `json:"filename"`
	Bytes    int    `json:"bytes"`
}

// deviceName returns the device name that the configuration file path
// is named for: its base name without ".cnf.xml".
func deviceName(path string) (string, bool) {
	if path == "-" {
		return "", false
	}
	device, ok := strings.CutSuffix(filepath.Base(path), ".cnf.xml")
	return device, ok && device != ""
}

var cnfDecrypt = &command{
	name:     "decrypt",
	synopsis: "--cert FILE --phone-key FILE [-o FILE] FILE.enc.sgn",
	summary:  "verify and decrypt an encrypted configuration file",
	help: `
Decrypt an encrypted configuration file as the phone it was encrypted to
does: check that the --cert certificate signed it, unwrap its AES key with
--phone-key, the private key of the phone certificate (RSA), decrypt it
and check the plaintext against the digest its signer signed. Writes
FILE.enc.sgn without .enc.sgn (a name without .enc.sgn gets ".decrypted"
appended) with mode 0600: it holds what the encryption protects.

--cert is required: nothing is decrypted before the signature has been
verified, so that what is written is what the signer encrypted, and the
file names its signer but does not carry its certificate. As with "ucsec
sgn verify", --cert is the certificate you trust; its validity period and
chain are not checked.

Exits 1 if the signature is not valid or was made by another signer, or if
the file does not decrypt with --phone-key (another phone's key, or a file
altered after signing); 2 if a file cannot be read or is malformed. Nothing
is written then. "-" as FILE.enc.sgn reads standard input and writes to
standard output unless -o is given.`,
	examples: []string{
		"ucsec cnf decrypt --cert tftp.pem --phone-key SEP001122334455.pem SEP001122334455.cnf.xml.enc.sgn",
		"ucsec cnf decrypt --cert tftp.pem --phone-key phone.key -o - SEP001122334455.cnf.xml.enc.sgn",
	},
	args:  oneArg,
	setup: func(fs *flag.FlagSet) action { return newCnfDecryptCmd(fs).run },
}

type cnfDecryptCmd struct {
	cert         string
	phoneKey     string
	phoneKeyFlag *keyFlag
	out          string
}

func newCnfDecryptCmd(fs *flag.FlagSet) *cnfDecryptCmd {
	c := new(cnfDecryptCmd)
	fs.StringVar(&c.cert, "cert", "", "trusted signer (TFTP) certificate `FILE`, PEM or DER (required)")
	c.phoneKeyFlag = addKeyFlag(fs, "phone-key", "phone private key `FILE`, PEM or DER, RSA, or a pkcs11: URI of a key in a token (PIN from its pin-source or $UCSEC_PKCS11_PIN) (required)", &c.phoneKey)
	outputFlag(fs, &c.out, "FILE.enc.sgn without .enc.sgn")
	return c
}

func (c *cnfDecryptCmd) run(e *env, args []string) error {
	in := args[0]
	switch {
	case c.cert == "":
		return usageError("missing --cert (the signature is verified before decrypting)")
	case c.phoneKey == "":
		return usageError("missing --phone-key")
	}
	out := c.out
	if out == "" {
		out = "-"
		if in != "-" {
			out = decryptedName(in)
		}
	}
	cert, err := loadCertificate(c.cert)
	if err != nil {
		return err
	}
	key, err := c.phoneKeyFlag.decrypter()
	if err != nil {
		return err
	}
	f, err := parseInput(e, in, cnfenc.Parse)
	if err != nil {
		return err
	}
	plaintext, err := f.Decrypt(cert, key)
	switch {
	case errors.Is(err, cnfenc.ErrDecryption):
		return &fileError{in, fmt.Errorf("%w (was it encrypted to the key in %s?)", err, c.phoneKeyFlag.display())}
	case err != nil:
		return &fileError{in, err}
	}
	return e.writeOutput(out, plaintext, 0o600, in, c.cert, c.phoneKey)
}

// decryptedName returns the conventional name of a decrypted file: name
// without .enc.sgn, otherwise name with ".decrypted" appended.
func decryptedName(name string) string {
	if s, ok := strings.CutSuffix(name, ".enc.sgn"); ok && filepath.Base(name) != ".enc.sgn" {
		return s
	}
	return name + ".decrypted"
}

var cnfParse = &command{
	name:     "parse",
	synopsis: "[--json] FILE.enc.sgn",
	summary:  "print the header of an encrypted configuration file",
	help: `
Print the header of an encrypted configuration file: the signed-file
header as "ucsec sgn parse" prints it, then the encryption elements: IV
size, pad count, key size in bits, key algorithm, wrapped key size, and
the hash and digest of the plaintext. This checks the layout but verifies
nothing: "ucsec sgn verify --cert" checks the signature, "ucsec cnf
decrypt" the signature and the decryption.

With --json, prints one object with the header fields of "ucsec sgn parse
--json", "ciphertext_length", "iv_length", "pad_count", "key_bits",
"key_algorithm" (the number), "wrapped_key_length", "digest_algorithm",
"digest" (hex) and "extra", the header elements ucsec does not know.`,
	examples: []string{
		"ucsec cnf parse SEP001122334455.cnf.xml.enc.sgn",
		"ucsec cnf parse --json SEP001122334455.cnf.xml.enc.sgn",
	},
	args:  oneArg,
	setup: func(fs *flag.FlagSet) action { return newCnfParseCmd(fs).run },
}

type cnfParseCmd struct{ json bool }

func newCnfParseCmd(fs *flag.FlagSet) *cnfParseCmd {
	c := new(cnfParseCmd)
	jsonFlag(fs, &c.json)
	return c
}

func (c *cnfParseCmd) run(e *env, args []string) error {
	f, err := parseInput(e, args[0], cnfenc.Parse)
	if err != nil {
		return err
	}
	r := newCnfReport(args[0], f)
	if c.json {
		return e.printJSON(r)
	}
	printTable(e.stdout, r.rows())
	return nil
}

// cnfReport is the JSON form of an encrypted file's header; "cnf parse"
// prints its text form too.
type cnfReport struct {
	headerReport
	CiphertextLength int            `json:"ciphertext_length"`
	IVLength         int            `json:"iv_length"`
	PadCount         int            `json:"pad_count"`
	KeyBits          int            `json:"key_bits"`
	KeyAlgorithm     uint8          `json:"key_algorithm"`
	WrappedKeyLength int            `json:"wrapped_key_length"`
	DigestAlgorithm  string         `json:"digest_algorithm"`
	Digest           hexBytes       `json:"digest"`
	Extra            []extraElement `json:"extra"`
}

// Tags of the header elements that cnfenc.File holds in its own fields.
const (
	tagEncryptionInfo = 0x10
	tagDigestHash     = 0x1A
	tagDigest         = 0x1B
)

func newCnfReport(name string, f *cnfenc.File) *cnfReport {
	r := &cnfReport{
		headerReport:     newHeaderReport(name, &f.Header),
		CiphertextLength: len(f.Ciphertext),
		IVLength:         len(f.IV),
		PadCount:         f.PadCount,
		KeyBits:          f.KeyBits,
		KeyAlgorithm:     f.KeyAlgorithm,
		WrappedKeyLength: len(f.WrappedKey),
		DigestAlgorithm:  hashLabel(f.DigestHash),
		Digest:           f.PlaintextDigest,
		Extra:            []extraElement{},
	}
	for _, x := range f.Extra {
		switch x.Tag {
		case tagEncryptionInfo, tagDigestHash, tagDigest:
		default:
			r.Extra = append(r.Extra, extraElement{x.Tag, x.Value})
		}
	}
	return r
}

// rows returns the rows "cnf parse" prints.
func (r *cnfReport) rows() [][2]string {
	keyAlg := fmt.Sprintf("unknown (%d)", r.KeyAlgorithm)
	if r.KeyAlgorithm == cnfenc.KeyAES128 {
		keyAlg = fmt.Sprintf("AES-128 (%d)", r.KeyAlgorithm)
	}
	wrapped := fmt.Sprintf("%d bytes", r.WrappedKeyLength)
	if r.WrappedKeyLength == 0 {
		wrapped = "(none: manual key)"
	}
	rows := append(r.headerReport.rows(), [][2]string{
		{"Ciphertext", fmt.Sprintf("%d bytes", r.CiphertextLength)},
		{"IV", fmt.Sprintf("%d bytes", r.IVLength)},
		{"Pad Count", fmt.Sprintf("%d byte(s)", r.PadCount)},
		{"Key Size", fmt.Sprintf("%d bits", r.KeyBits)},
		{"Key Algorithm", keyAlg},
		{"Wrapped Key", wrapped},
		{"Digest Algorithm", r.DigestAlgorithm},
		{"Plaintext Digest", hex.EncodeToString(r.Digest)},
	}...)
	for _, x := range r.Extra {
		rows = append(rows, elementRow(x.Tag, x.Value))
	}
	return rows
}

var cnfExcludeDigest = &command{
	name:     "exclude-digest",
	synopsis: "-o FILE FILE",
	summary:  "remove the SIP digest credentials from a configuration file",
	help: `
Remove the SIP digest credentials from a phone configuration file, as
CUCM's "Exclude Digest Credentials in Configuration File" leaves them out:
every authName and authPassword element, at any depth and in any XML
namespace (with or without a prefix), is removed from its '<' to its
closing '>'. Everything else is kept byte for byte, including the white
space around the removed elements. FILE must be well-formed XML. Prints
how many elements were removed on standard error.

-o is required unless FILE is "-", which reads standard input and writes
to standard output by default. Sign or encrypt the result afterwards.`,
	examples: []string{
		"ucsec cnf exclude-digest -o SEP001122334455.cnf.xml full/SEP001122334455.cnf.xml",
		"ucsec cnf exclude-digest - < SEP001122334455.cnf.xml > stripped.cnf.xml",
	},
	args:  oneArg,
	setup: func(fs *flag.FlagSet) action { return newCnfExcludeDigestCmd(fs).run },
}

type cnfExcludeDigestCmd struct{ out string }

func newCnfExcludeDigestCmd(fs *flag.FlagSet) *cnfExcludeDigestCmd {
	c := new(cnfExcludeDigestCmd)
	outputFlag(fs, &c.out, "standard output for standard input")
	return c
}

func (c *cnfExcludeDigestCmd) run(e *env, args []string) error {
	in := args[0]
	out := c.out
	if out == "" {
		if in != "-" {
			return usageError("missing -o")
		}
		out = "-"
	}
	config, err := e.readInput(in)
	if err != nil {
		return err
	}
	stripped, n, err := cnfenc.ExcludeDigestCredentials(config)
	if err != nil {
		return &fileError{in, err}
	}
	if err := e.writeOutput(out, stripped, 0o644, in); err != nil {
		return err
	}
	noun := "elements"
	if n == 1 {
		noun = "element"
	}
	fmt.Fprintf(e.stderr, "ucsec: removed %d digest credential %s\n", n, noun)
	return nil
}
