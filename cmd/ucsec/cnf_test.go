package main

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/ucsec/ucsec/cnfenc"
	"github.com/ucsec/ucsec/internal/testkeys"
	"github.com/ucsec/ucsec/sgn"
)

// encSGN is the certutils encrypted configuration: plainXML encrypted to
// devicePEM and signed by tftpPEM.
var encSGN = filepath.Join(vectors, "enc", "SEP001122334455.cnf.xml.enc.sgn")

// encryptArgs returns the arguments of "cnf encrypt" to device.pem, signed
// by tftp.pem.
func encryptArgs(hash string, args ...string) []string {
	return append([]string{"cnf", "encrypt", "--phone-cert", devicePEM, "--cert", tftpPEM, "--key", tftpPEM, "--hash", hash}, args...)
}

// decryptArgs returns the arguments of "cnf decrypt" with tftp.pem as the
// signer and device.pem as the phone key.
func decryptArgs(args ...string) []string {
	return append([]string{"cnf", "decrypt", "--cert", tftpPEM, "--phone-key", devicePEM}, args...)
}

// parseEncrypted parses the encrypted file name.
func parseEncrypted(t *testing.T, name string) *cnfenc.File {
	t.Helper()
	f, err := cnfenc.Parse(mustRead(t, name))
	require.NoError(t, err)
	return f
}

func TestCnfRoundTrip(t *testing.T) {
	for _, hash := range []string{"sha1", "sha512"} {
		t.Run(hash, func(t *testing.T) {
			dir := t.TempDir()
			in := copyFile(t, plainXML, dir)
			enc := in + ".enc.sgn"
			r := mustRun(t, exitOK, encryptArgs(hash, in)...)
			assert.Empty(t, r.stdout)
			assert.Empty(t, r.stderr)
			fi, err := os.Stat(enc)
			require.NoError(t, err)
			assert.Equal(t, os.FileMode(0o644), fi.Mode().Perm())
			_, err = os.Stat(filepath.Join(dir, "SEP001122334455.cnf.xml.sgn"))
			assert.True(t, os.IsNotExist(err), "short configuration written without --short")

			f := parseEncrypted(t, enc)
			assert.Equal(t, "SEP001122334455.cnf.xml.enc.sgn", f.Filename)
			assert.Equal(t, strings.ToUpper(hash), hashLabel(f.Hash))
			assert.Equal(t, sgn.Version{2, 0}, f.Version)
			assert.NotContains(t, string(mustRead(t, enc)), "phoneLabel", "plaintext in the encrypted file")

			// The encrypted file is a signed file, as sgn verify sees it.
			mustRun(t, exitOK, "sgn", "verify", "--cert", tftpPEM, enc)

			// The default output is the name without .enc.sgn, mode 0600.
			require.NoError(t, os.Remove(in))
			r = mustRun(t, exitOK, decryptArgs(enc)...)
			assert.Empty(t, r.stdout)
			assert.Empty(t, r.stderr)
			assert.Equal(t, mustRead(t, plainXML), mustRead(t, in))
			fi, err = os.Stat(in)
			require.NoError(t, err)
			assert.Equal(t, os.FileMode(0o600), fi.Mode().Perm())

			out := filepath.Join(dir, "decrypted.xml")
			mustRun(t, exitOK, decryptArgs("-o", out, enc)...)
			assert.Equal(t, mustRead(t, plainXML), mustRead(t, out))
		})
	}
}

func TestCnfEncryptFreshKeys(t *testing.T) {
	r1 := mustRun(t, exitOK, encryptArgs("sha1", "-o", "-", plainXML)...)
	r2 := mustRun(t, exitOK, encryptArgs("sha1", "-o", "-", plainXML)...)
	f1, err := cnfenc.Parse([]byte(r1.stdout))
	require.NoError(t, err)
	f2, err := cnfenc.Parse([]byte(r2.stdout))
	require.NoError(t, err)
	assert.NotEqual(t, f1.IV, f2.IV)
	assert.NotEqual(t, f1.WrappedKey, f2.WrappedKey)
	assert.NotEqual(t, f1.Ciphertext, f2.Ciphertext)
}

func TestCnfEncryptShort(t *testing.T) {
	dir := t.TempDir()
	in := copyFile(t, plainXML, dir)
	r := mustRun(t, exitOK, encryptArgs("sha512", "--short", "--json", in)...)

	lines := strings.Split(strings.TrimSuffix(r.stdout, "\n"), "\n")
	require.Len(t, lines, 2, r.stdout)
	var got [2]writtenFile
	for i, line := range lines {
		require.NoError(t, json.Unmarshal([]byte(line), &got[i]))
	}
	enc, short := in+".enc.sgn", filepath.Join(dir, "SEP001122334455.cnf.xml.sgn")
	assert.Equal(t, writtenFile{enc, "SEP001122334455.cnf.xml.enc.sgn", len(mustRead(t, enc))}, got[0])
	assert.Equal(t, writtenFile{short, "SEP001122334455.cnf.xml.sgn", len(mustRead(t, short))}, got[1])

	// The short configuration is signed by the TFTP certificate for its
	// name, and names the phone certificate by hash.
	tftp, _ := testkeys.Load(t, "tftp")
	device, _ := testkeys.Load(t, "device")
	sast, _ := testkeys.Load(t, "sast")
	sf, err := sgn.Parse(mustRead(t, short))
	require.NoError(t, err)
	require.NoError(t, sf.CheckSignatureFrom(tftp))
	assert.Equal(t, cnfenc.ShortName("SEP001122334455"), sf.Filename)
	assert.Equal(t, "SHA512", hashLabel(sf.Hash))
	info, err := cnfenc.ParseShortConfig(sf.Payload)
	require.NoError(t, err)
	assert.False(t, info.FullConfig)
	assert.True(t, info.EncrConfig)
	assert.True(t, info.CertHashMatches(device))
	assert.False(t, info.CertHashMatches(sast))
	assert.Contains(t, string(sf.Payload), "<capfList><capf><phonePort>3804</phonePort></capf></capfList>")
	assert.NotContains(t, string(sf.Payload), "phoneLabel")

	mustRun(t, exitOK, "sgn", "verify", "--cert", tftpPEM, short)
	mustRun(t, exitOK, decryptArgs("-o", filepath.Join(dir, "out"), enc)...)
	assert.Equal(t, mustRead(t, plainXML), mustRead(t, filepath.Join(dir, "out")))
}

func TestCnfEncryptNames(t *testing.T) {
	dir := t.TempDir()
	in := filepath.Join(dir, "phone.xml")
	require.NoError(t, os.WriteFile(in, mustRead(t, plainXML), 0o644))

	// --device names the output, next to the input, and the header.
	mustRun(t, exitOK, encryptArgs("sha1", "--device", "SEP0A0B0C0D0E0F", "--short", in)...)
	f := parseEncrypted(t, filepath.Join(dir, "SEP0A0B0C0D0E0F.cnf.xml.enc.sgn"))
	assert.Equal(t, "SEP0A0B0C0D0E0F.cnf.xml.enc.sgn", f.Filename)
	sf, err := sgn.Parse(mustRead(t, filepath.Join(dir, "SEP0A0B0C0D0E0F.cnf.xml.sgn")))
	require.NoError(t, err)
	assert.Equal(t, "SEP0A0B0C0D0E0F.cnf.xml.sgn", sf.Filename)

	// Without --device, the header stores the output's base name.
	out := filepath.Join(dir, "other.enc.sgn")
	mustRun(t, exitOK, encryptArgs("sha1", "-o", out, copyFile(t, plainXML, dir))...)
	assert.Equal(t, "other.enc.sgn", parseEncrypted(t, out).Filename)

	// With --device, the device name gives it whatever -o says.
	mustRun(t, exitOK, encryptArgs("sha1", "--device", "SEP0A0B0C0D0E0F", "-o", out, in)...)
	assert.Equal(t, "SEP0A0B0C0D0E0F.cnf.xml.enc.sgn", parseEncrypted(t, out).Filename)

	// To standard output, the device name from the input's name.
	r := mustRun(t, exitOK, encryptArgs("sha1", "-o", "-", plainXML)...)
	g, err := cnfenc.Parse([]byte(r.stdout))
	require.NoError(t, err)
	assert.Equal(t, "SEP001122334455.cnf.xml.enc.sgn", g.Filename)
}

func TestCnfStdio(t *testing.T) {
	plain := string(mustRead(t, plainXML))
	r := ucsec(t, plain, encryptArgs("sha1", "--device", "SEP001122334455", "-")...)
	require.Equal(t, exitOK, r.code, r.stderr)
	r = ucsec(t, r.stdout, decryptArgs("-")...)
	require.Equal(t, exitOK, r.code, r.stderr)
	assert.Equal(t, plain, r.stdout)
}

func TestCnfDecryptVector(t *testing.T) {
	r := mustRun(t, exitOK, decryptArgs("-o", "-", encSGN)...)
	assert.Equal(t, string(mustRead(t, plainXML)), r.stdout)

	dir := t.TempDir()
	in := copyFile(t, encSGN, dir)
	mustRun(t, exitOK, decryptArgs(in)...)
	assert.Equal(t, mustRead(t, plainXML), mustRead(t, filepath.Join(dir, "SEP001122334455.cnf.xml")))
}

func TestCnfDecryptNotValid(t *testing.T) {
	dir := t.TempDir()
	in := copyFile(t, encSGN, dir)
	out := filepath.Join(dir, "out")
	tampered := filepath.Join(dir, "tampered.enc.sgn")
	b := mustRead(t, encSGN)
	b[len(b)-1] ^= 0x01 // ciphertext
	require.NoError(t, os.WriteFile(tampered, b, 0o644))
	for _, tt := range []struct {
		name   string
		args   []string
		stderr string
	}{
		{"wrong signer", []string{"cnf", "decrypt", "--cert", sastPEM, "--phone-key", devicePEM, "-o", out, in}, "certificate is not the signer named in the file"},
		{"wrong phone key", []string{"cnf", "decrypt", "--cert", tftpPEM, "--phone-key", sastPEM, "-o", out, in}, "decryption failed"},
		{"tampered", decryptArgs("-o", out, tampered), "tampered.enc.sgn: sgn: signature verification failed"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			r := ucsec(t, "", tt.args...)
			r.check(t, exitInvalid, "", tt.stderr)
			assert.Equal(t, 1, strings.Count(r.stderr, "\n"), r.stderr)
			_, err := os.Stat(out)
			assert.True(t, os.IsNotExist(err), "output written")
		})
	}
	// The message points to the phone key.
	r := ucsec(t, "", "cnf", "decrypt", "--cert", tftpPEM, "--phone-key", sastPEM, "-o", out, in)
	assert.Contains(t, r.stderr, sastPEM)
}

func TestCnfErrors(t *testing.T) {
	dir := t.TempDir()
	in := copyFile(t, plainXML, dir)
	enc := copyFile(t, encSGN, dir)
	other := filepath.Join(dir, "phone.xml")
	require.NoError(t, os.WriteFile(other, mustRead(t, plainXML), 0o644))
	badXML := filepath.Join(dir, "bad.xml")
	require.NoError(t, os.WriteFile(badXML, []byte("<device><authName>x</device>"), 0o644))
	for _, tt := range []struct {
		name  string
		stdin string
		args  []string
		want  string
	}{
		{"encrypt missing hash", "", []string{"cnf", "encrypt", "--phone-cert", devicePEM, "--cert", tftpPEM, "--key", tftpPEM, in}, "ucsec: missing --hash (sha1 or sha512)"},
		{"encrypt unknown hash", "", encryptArgs("md5", in), `unknown --hash "md5"`},
		{"encrypt missing phone cert", "", []string{"cnf", "encrypt", "--cert", tftpPEM, "--key", tftpPEM, "--hash", "sha1", in}, "missing --phone-cert"},
		{"encrypt missing cert", "", []string{"cnf", "encrypt", "--phone-cert", devicePEM, "--key", tftpPEM, "--hash", "sha1", in}, "missing --cert"},
		{"encrypt missing key", "", []string{"cnf", "encrypt", "--phone-cert", devicePEM, "--cert", tftpPEM, "--hash", "sha1", in}, "missing --key"},
		{"encrypt missing input", "", encryptArgs("sha1"), "missing input file"},
		{"encrypt no device name", "", encryptArgs("sha1", other), "missing --device: cannot tell the device name from " + other},
		{"encrypt stdin without device", "x", encryptArgs("sha1", "-"), "missing --device, needed to encrypt standard input"},
		{"encrypt short to stdout", "", encryptArgs("sha1", "--short", "-o", "-", in), "--short needs an output file"},
		{"encrypt short over output", "", encryptArgs("sha1", "--short", "-o", filepath.Join(dir, "SEP001122334455.cnf.xml.sgn"), in), "-o names the short configuration"},
		{"encrypt json to stdout", "", encryptArgs("sha1", "--json", "-o", "-", in), "--json cannot be used"},
		{"encrypt input as output", "", encryptArgs("sha1", "-o", in, in), "refusing to write the output over input file"},
		{"encrypt key mismatch", "", []string{"cnf", "encrypt", "--phone-cert", devicePEM, "--cert", tftpPEM, "--key", sastPEM, "--hash", "sha1", in}, "does not match"},
		{"encrypt EC phone", "", []string{"cnf", "encrypt", "--phone-cert", ecPEM, "--cert", tftpPEM, "--key", tftpPEM, "--hash", "sha1", in}, "tftp-ec-p384.pem: cnfenc: unsupported phone key"},
		{"encrypt bad device name", "", encryptArgs("sha1", "--device", "SEP 1", in), `device name "SEP 1"`},
		{"encrypt short of bad XML", "", encryptArgs("sha1", "--short", "--device", "SEP1", badXML), "bad.xml: cnfenc: unusable configuration file"},
		{"decrypt missing cert", "", []string{"cnf", "decrypt", "--phone-key", devicePEM, enc}, "missing --cert"},
		{"decrypt missing phone key", "", []string{"cnf", "decrypt", "--cert", tftpPEM, enc}, "missing --phone-key"},
		{"decrypt EC phone key", "", []string{"cnf", "decrypt", "--cert", tftpPEM, "--phone-key", ecPEM, enc}, "not RSA"},
		{"decrypt signed file", "", decryptArgs(sha1SGN), "not an encrypted file"},
		{"decrypt plain file", "", decryptArgs(in), "sgn: malformed signed file"},
		{"decrypt missing file", "", decryptArgs(filepath.Join(dir, "nosuch")), "nosuch: no such file"},
		{"decrypt input as output", "", decryptArgs("-o", enc, enc), "refusing"},
		{"parse plain file", "", []string{"cnf", "parse", in}, "sgn: malformed signed file"},
		{"parse two files", "", []string{"cnf", "parse", enc, enc}, "unexpected argument"},
		{"exclude-digest missing -o", "", []string{"cnf", "exclude-digest", in}, "missing -o"},
		{"exclude-digest bad XML", "", []string{"cnf", "exclude-digest", "-o", "-", badXML}, "bad.xml: cnfenc: unusable configuration file"},
		{"exclude-digest input as output", "", []string{"cnf", "exclude-digest", "-o", in, in}, "refusing"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			r := ucsec(t, tt.stdin, tt.args...)
			r.check(t, exitError, "", tt.want)
			assert.Equal(t, 1, strings.Count(r.stderr, "\n"), r.stderr)
		})
	}
	assert.Equal(t, mustRead(t, plainXML), mustRead(t, in), "input changed")
	assert.Equal(t, mustRead(t, encSGN), mustRead(t, enc), "input changed")
	entries, err := os.ReadDir(dir)
	require.NoError(t, err)
	assert.Len(t, entries, 4, "files left in the directory: %v", entries)
}

func TestCnfParse(t *testing.T) {
	r := mustRun(t, exitOK, "cnf", "parse", encSGN)
	for _, want := range []string{
		"Version:          2.0\n",
		"Header Length:    764 bytes\n",
		"Signer Name:      CN=Asterisk,O=Asterisk,OU=Asterisk\n",
		"Hash Algorithm:   SHA1\n",
		"Filename:         SEP001122334455.cnf.xml.enc.sgn\n",
		"Timestamp:        2026-11-25 18:52:35 UTC\n",
		"Ciphertext:       272 bytes\n",
		"IV:               16 bytes\n",
		"Pad Count:        3 byte(s)\n",
		"Key Size:         2048 bits\n",
		"Key Algorithm:    AES-128 (1)\n",
		"Wrapped Key:      256 bytes\n",
		"Digest Algorithm: SHA1\n",
		"Plaintext Digest: f040b8333938497ce2592b263985cb5053befc26\n",
	} {
		assert.Contains(t, r.stdout, want)
	}
	assert.NotContains(t, r.stdout, "Element 0x")

	r = mustRun(t, exitOK, "cnf", "parse", "--json", encSGN)
	var got cnfReport
	require.NoError(t, json.Unmarshal([]byte(r.stdout), &got), r.stdout)
	assert.Equal(t, encSGN, got.File)
	assert.Equal(t, "2.0", got.Version)
	assert.Equal(t, "SEP001122334455.cnf.xml.enc.sgn", got.Filename)
	assert.Equal(t, 272, got.CiphertextLength)
	assert.Equal(t, 16, got.IVLength)
	assert.Equal(t, 3, got.PadCount)
	assert.Equal(t, 2048, got.KeyBits)
	assert.Equal(t, uint8(cnfenc.KeyAES128), got.KeyAlgorithm)
	assert.Equal(t, 256, got.WrappedKeyLength)
	assert.Equal(t, "SHA1", got.DigestAlgorithm)
	assert.Equal(t, "f040b8333938497ce2592b263985cb5053befc26", hex.EncodeToString(got.Digest))
	assert.Empty(t, got.Extra)
	var raw map[string]any
	require.NoError(t, json.Unmarshal([]byte(r.stdout), &raw))
	assert.Equal(t, "f040b8333938497ce2592b263985cb5053befc26", raw["digest"])
	assert.Equal(t, []any{}, raw["extra"])
}

func TestCnfExcludeDigest(t *testing.T) {
	const config = `<?xml version="1.0" encoding="UTF-8"?>
<device>
  <fullConfig>true</fullConfig>
  <sipLines>
    <line button="1">
      <featureLabel>1001</featureLabel>
      <authName>1001</authName>
      <authPassword>s3cret &amp; more</authPassword>
      <name>1001</name>
    </line>
  </sipLines>
  <!-- authName in a comment stays -->
</device>
`
	want := strings.Replace(config, "<authName>1001</authName>", "", 1)
	want = strings.Replace(want, "<authPassword>s3cret &amp; more</authPassword>", "", 1)

	dir := t.TempDir()
	in := filepath.Join(dir, "SEP001122334455.cnf.xml")
	require.NoError(t, os.WriteFile(in, []byte(config), 0o644))
	out := filepath.Join(dir, "out.xml")
	r := mustRun(t, exitOK, "cnf", "exclude-digest", in, "-o", out)
	assert.Equal(t, "ucsec: removed 2 digest credential elements\n", r.stderr)
	assert.Empty(t, r.stdout)
	assert.Equal(t, want, string(mustRead(t, out)))
	assert.Equal(t, config, string(mustRead(t, in)), "input changed")

	// Standard input to standard output; nothing to remove is not an error.
	r = ucsec(t, config, "cnf", "exclude-digest", "-")
	require.Equal(t, exitOK, r.code, r.stderr)
	assert.Equal(t, want, r.stdout)
	r = ucsec(t, want, "cnf", "exclude-digest", "-")
	require.Equal(t, exitOK, r.code, r.stderr)
	assert.Equal(t, want, r.stdout)
	assert.Equal(t, "ucsec: removed 0 digest credential elements\n", r.stderr)
	r = mustRun(t, exitOK, "cnf", "exclude-digest", "-o", "-", plainXML)
	assert.Equal(t, string(mustRead(t, plainXML)), r.stdout)

	// Namespaces and prefixes do not hide credentials.
	const namespaced = `<device xmlns="urn:x"><authName>1001</authName><y:line xmlns:y="urn:y"><y:authPassword>p</y:authPassword></y:line></device>`
	r = ucsec(t, namespaced, "cnf", "exclude-digest", "-")
	require.Equal(t, exitOK, r.code, r.stderr)
	assert.Equal(t, `<device xmlns="urn:x"><y:line xmlns:y="urn:y"></y:line></device>`, r.stdout)
	assert.Equal(t, "ucsec: removed 2 digest credential elements\n", r.stderr)
}

func TestCnfHelp(t *testing.T) {
	// TestHelp covers the help of every command; here, the flags.
	r := mustRun(t, exitOK, "cnf", "encrypt", "-h")
	for _, want := range []string{"--phone-cert FILE", "--cert FILE", "--key FILE", "--hash ALG", "--device NAME", "--short", "-o FILE", "--json"} {
		assert.Contains(t, r.stdout, want)
	}
	r = mustRun(t, exitOK, "cnf", "decrypt", "-h")
	for _, want := range []string{"--cert FILE", "--phone-key FILE", "-o FILE", "--cert is required"} {
		assert.Contains(t, r.stdout, want)
	}
}

// FuzzCnfParse checks that parsing any input as an encrypted file, or as
// a configuration to remove digest credentials from, exits with 0 or 2,
// without a panic. (Decrypting loads an RSA key every run, which makes
// fuzzing through the command slow; package cnfenc fuzzes Parse itself.)
func FuzzCnfParse(f *testing.F) {
	f.Add(mustRead(f, encSGN))
	f.Add(mustRead(f, sha1SGN))
	f.Add(mustRead(f, plainXML))
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, data []byte) {
		for _, args := range [][]string{{"cnf", "parse", "-"}, {"cnf", "parse", "--json", "-"}, {"cnf", "exclude-digest", "-"}} {
			var stdout, stderr bytes.Buffer
			code := run(args, bytes.NewReader(data), &stdout, &stderr)
			if code != exitOK && code != exitError {
				t.Fatalf("%s: exit status %d", strings.Join(args, " "), code)
			}
			if strings.Count(stderr.String(), "\n") > 1 {
				t.Fatalf("%s: stderr %q is more than one line", strings.Join(args, " "), stderr.String())
			}
		}
	})
}
