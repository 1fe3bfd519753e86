package main

import (
	"cmp"
	"context"
	"crypto"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"math/big"
	"os"
	"os/signal"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/ucsec/ucsec/cnfenc"
	"github.com/ucsec/ucsec/ctl"
	"github.com/ucsec/ucsec/internal/netserve"
	"github.com/ucsec/ucsec/sgn"
	"github.com/ucsec/ucsec/srtpkeys"
)

// usageError is a mistake on the command line. It exits with status 2 and
// a pointer to the command's help.
type usageError string

func (e usageError) Error() string { return string(e) }

// statusError ends a command with an exit status, after the command has
// reported what went wrong itself.
type statusError int

func (e statusError) Error() string { return fmt.Sprintf("exit status %d", int(e)) }

// fileError is an error about one input or output file.
type fileError struct {
	name string
	err  error
}

func (e *fileError) Error() string { return displayName(e.name) + ": " + message(e.err) }
func (e *fileError) Unwrap() error { return e.err }

// message returns err's text as the user sees it, on one line. The
// library's prefixes stay: they say which package refused.
func message(err error) string {
	return strings.ReplaceAll(err.Error(), "\n", " ")
}

// detail returns the text of err without the file name a fileError adds,
// for JSON output that has a field for the file name.
func detail(err error) string {
	if fe, ok := errors.AsType[*fileError](err); ok {
		return message(fe.err)
	}
	return message(err)
}

// statusOf returns the exit status that err calls for.
func statusOf(err error) int {
	switch {
	case err == nil:
		return exitOK
	case errors.Is(err, sgn.ErrVerification), errors.Is(err, sgn.ErrWrongSigner),
		errors.Is(err, ctl.ErrUntrusted), errors.Is(err, ctl.ErrWrongFile), errors.Is(err, ctl.ErrPolicy),
		errors.Is(err, cnfenc.ErrDecryption), errors.Is(err, srtpkeys.ErrNoCommonSuite):
		return exitInvalid
	}
	if s, ok := errors.AsType[statusError](err); ok {
		return int(s)
	}
	return exitError
}

// exitStatus reports err on standard error, unless it is a statusError,
// and returns the exit status it calls for.
func (e *env) exitStatus(err error) int {
	if _, ok := errors.AsType[statusError](err); !ok && err != nil {
		fmt.Fprintf(e.stderr, "ucsec: %s\n", message(err))
	}
	return statusOf(err)
}

// serveContext returns the context a server runs under: cancelled by
// SIGINT or SIGTERM, after which the signals have their default effect
// again. key names the server for the tests, which replace serveContext
// to stop servers running in-process: the store directory of "capf
// serve", the certificate file of "tvs serve".
var serveContext = func(key string) (context.Context, context.CancelFunc) {
	return signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
}

// serverTLS is the TLS configuration of a server command (capf serve,
// tvs serve) that presents cert, the what certificate read from path. It
// refuses at once a certificate the server would refuse when it starts
// (see netserve.CheckKeyUsage), so that nothing is opened before.
func serverTLS(cert *x509.Certificate, key crypto.Signer, legacy bool, what, path string) (*tls.Config, error) {
	cfg := &tls.Config{Certificates: []tls.Certificate{{
		Certificate: [][]byte{cert.Raw},
		PrivateKey:  key,
		Leaf:        cert,
	}}}
	if _, err := netserve.CheckKeyUsage(cfg, legacy); err != nil {
		return nil, fmt.Errorf("%s: the %s certificate cannot serve TLS: %w", path, what, err)
	}
	return cfg, nil
}

// serverContext returns the context of a server (see serveContext) and
// its cancel function. When the first signal arrives it logs stopping,
// and a second signal kills the process.
func serverContext(key string, log *slog.Logger, stopping string) (context.Context, context.CancelFunc) {
	ctx, stop := serveContext(key)
	context.AfterFunc(ctx, func() {
		stop()
		log.Info(stopping)
	})
	return ctx, stop
}

// permuteArgs moves the flags in args in front of the positional arguments,
// so that flags may also follow them, and separates the two with "--" so
// that flag.FlagSet.Parse takes no positional argument for a flag. A flag
// that takes a value keeps the argument after it unless it is written
// -flag=value. "--" ends the flags; "-" alone is a positional argument.
func permuteArgs(fs *flag.FlagSet, args []string) []string {
	var flags, positional []string
	for i := 0; i < len(args); i++ {
		arg := args[i]
		if arg == "--" {
			positional = append(positional, args[i+1:]...)
			break
		}
		if len(arg) < 2 || arg[0] != '-' {
			positional = append(positional, arg)
			continue
		}
		flags = append(flags, arg)
		if takesValue(fs, arg) && i+1 < len(args) {
			i++
			flags = append(flags, args[i])
		}
	}
	return append(append(flags, "--"), positional...)
}

// takesValue reports whether arg is a flag of fs that takes its value from
// the next argument.
func takesValue(fs *flag.FlagSet, arg string) bool {
	name := strings.TrimPrefix(strings.TrimPrefix(arg, "-"), "-")
	if strings.Contains(name, "=") {
		return false
	}
	f := fs.Lookup(name)
	if f == nil {
		return false
	}
	b, ok := f.Value.(interface{ IsBoolFlag() bool })
	return !ok || !b.IsBoolFlag()
}

// Flags several commands share.

func outputFlag(fs *flag.FlagSet, p *string, def string) {
	fs.StringVar(p, "o", "", "write the output to `FILE`, '-' for standard output (default "+def+")")
}

func jsonFlag(fs *flag.FlagSet, p *bool) {
	fs.BoolVar(p, "json", false, "print JSON, one object per line")
}

// listFlag is a flag that may be given more than once; it collects the
// values in order.
type listFlag []string

func (l *listFlag) String() string     { return strings.Join(*l, " ") }
func (l *listFlag) Set(s string) error { *l = append(*l, s); return nil }

// checkJSONOutput rejects --json with -o -: both would go to standard
// output.
func checkJSONOutput(asJSON bool, out string) error {
	if asJSON && out == "-" {
		return usageError("--json cannot be used when the output goes to standard output")
	}
	return nil
}

// hashAlg is a hash algorithm a flag can name.
type hashAlg struct {
	name string // as flags spell it, such as "sha1"
	hash crypto.Hash
}

// hashes are the hash algorithms flags can name, in the order they are
// listed.
var hashes = []hashAlg{
	{"md5", crypto.MD5},
	{"sha1", crypto.SHA1},
	{"sha256", crypto.SHA256},
	{"sha512", crypto.SHA512},
}

// parseHash returns the hash that --hash names, which must be one of
// allowed.
// signingHashFlag defines the --hash flag of the commands that sign: it
// is required, because the choice matters (phones that only know SHA-1).
func signingHashFlag(fs *flag.FlagSet, p *string) {
	fs.StringVar(p, "hash", "", "hash `ALG`: sha1, sha512 or sha256 (required)")
}

// signingHash parses the value of signingHashFlag.
func signingHash(name string) (crypto.Hash, error) {
	if name == "" {
		return 0, usageError("missing --hash (sha1 or sha512)")
	}
	return parseHash(name, "sha1", "sha256", "sha512")
}

func parseHash(name string, allowed ...string) (crypto.Hash, error) {
	name = strings.ToLower(name)
	for _, h := range hashes {
		if h.name == name && slices.Contains(allowed, name) {
			return h.hash, nil
		}
	}
	return 0, usageError(fmt.Sprintf("unknown --hash %q (use %s)", name, strings.Join(allowed, ", ")))
}

// hashLabel returns the name of h as the tools print it, such as "SHA1".
func hashLabel(h crypto.Hash) string {
	for _, x := range hashes {
		if x.hash == h {
			return strings.ToUpper(x.name)
		}
	}
	return "unknown"
}

// displayName is how messages name the input file name.
func displayName(name string) string {
	if name == "-" {
		return "stdin"
	}
	return name
}

// readInput returns the contents of the input file name, or of standard
// input if name is "-". Its errors are *fileError values.
func (e *env) readInput(name string) ([]byte, error) {
	if name != "-" {
		return readFile(name)
	}
	data, err := io.ReadAll(e.stdin)
	if err != nil {
		return nil, &fileError{name, err}
	}
	return data, nil
}

// readInputMax is readInput for an input of at most limit bytes: a larger
// one is an error, before more than limit+1 bytes are read.
func (e *env) readInputMax(name string, limit int64) ([]byte, error) {
	r := e.stdin
	if name != "-" {
		f, err := os.Open(name)
		if err != nil {
			return nil, &fileError{name, withoutPath(err)}
		}
		defer f.Close()
		r = f
	}
	data, err := io.ReadAll(io.LimitReader(r, limit+1))
	switch {
	case err != nil:
		return nil, &fileError{name, withoutPath(err)}
	case int64(len(data)) > limit:
		return nil, &fileError{name, fmt.Errorf("larger than %s", sizeText(limit))}
	}
	return data, nil
}

// sizeText returns n bytes as "1 MiB", "64 KiB" or "100 bytes".
func sizeText(n int64) string {
	switch {
	case n >= 1<<20 && n%(1<<20) == 0:
		return fmt.Sprintf("%d MiB", n>>20)
	case n >= 1<<10 && n%(1<<10) == 0:
		return fmt.Sprintf("%d KiB", n>>10)
	}
	return fmt.Sprintf("%d bytes", n)
}

// parseInput reads the input file name (see readInput) and parses it with
// parse. Its errors are *fileError values.
func parseInput[T any](e *env, name string, parse func([]byte) (T, error)) (T, error) {
	data, err := e.readInput(name)
	if err != nil {
		var zero T
		return zero, err
	}
	v, err := parse(data)
	if err != nil {
		return v, &fileError{name, err}
	}
	return v, nil
}

// readFile returns the contents of the file name. Its errors are
// *fileError values.
func readFile(name string) ([]byte, error) {
	data, err := os.ReadFile(name)
	if err != nil {
		return nil, &fileError{name, withoutPath(err)}
	}
	return data, nil
}

// withoutPath returns the cause of an error from package os, without the
// path it names: a fileError names the file.
func withoutPath(err error) error {
	if pe, ok := errors.AsType[*fs.PathError](err); ok {
		return pe.Err
	}
	if le, ok := errors.AsType[*os.LinkError](err); ok {
		return le.Err
	}
	return err
}

// writeOutput writes data to the file path, or to standard output if path
// is "-". It refuses to write over any of inputs ("", "-" and keys in
// tokens are ignored).
// A file is replaced atomically: data goes to a temporary file in the same
// directory, with permissions perm, which is then renamed to path.
func (e *env) writeOutput(path string, data []byte, perm fs.FileMode, inputs ...string) error {
	if path == "-" {
		_, err := e.stdout.Write(data)
		return err
	}
	if path == "" {
		return usageError("empty output file name")
	}
	for _, in := range inputs {
		if in != "" && in != "-" && !isTokenRef(in) && sameFile(path, in) {
			return usageError(fmt.Sprintf("refusing to write the output over input file %s", in))
		}
	}
	if fi, err := os.Stat(path); err == nil && fi.IsDir() {
		return &fileError{path, errors.New("is a directory")}
	}
	if err := writeFileAtomic(path, data, perm); err != nil {
		return &fileError{path, withoutPath(err)}
	}
	return nil
}

// sameFile reports whether paths a and b name the same file, or would if
// it existed.
func sameFile(a, b string) bool {
	absA, errA := filepath.Abs(a)
	absB, errB := filepath.Abs(b)
	if errA == nil && errB == nil && absA == absB {
		return true
	}
	fa, errA := os.Stat(a)
	fb, errB := os.Stat(b)
	return errA == nil && errB == nil && os.SameFile(fa, fb)
}

func writeFileAtomic(path string, data []byte, perm fs.FileMode) (err error) {
	f, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".*.tmp")
	if err != nil {
		return err
	}
	defer func() {
		if err != nil {
			f.Close()
			os.Remove(f.Name())
		}
	}()
	if err = f.Chmod(perm); err != nil {
		return err
	}
	if _, err = f.Write(data); err != nil {
		return err
	}
	if err = f.Sync(); err != nil {
		return err
	}
	if err = f.Close(); err != nil {
		return err
	}
	return os.Rename(f.Name(), path)
}

// printJSON writes v to standard output as one line of JSON.
func (e *env) printJSON(v any) error {
	enc := json.NewEncoder(e.stdout)
	enc.SetEscapeHTML(false)
	return enc.Encode(v)
}

// hexBytes is a byte string that JSON shows in lowercase hex.
type hexBytes []byte

func (b hexBytes) MarshalText() ([]byte, error) {
	return []byte(hex.EncodeToString(b)), nil
}

func (b *hexBytes) UnmarshalText(text []byte) error {
	v, err := hex.DecodeString(string(text))
	*b = v
	return err
}

// serialHex returns a serial number in lowercase hex, an even number of
// digits.
func serialHex(n *big.Int) string {
	if n == nil || n.Sign() == 0 {
		return "00"
	}
	return hex.EncodeToString(n.Bytes())
}

// jsonTime returns t in UTC for JSON, or nil (null) if t is zero.
func jsonTime(t time.Time) *time.Time {
	if t.IsZero() {
		return nil
	}
	t = t.UTC()
	return &t
}

// timeText returns t as the parse commands print it, in UTC, or "(none)"
// if t is zero.
func timeText(t time.Time) string {
	if t.IsZero() {
		return "(none)"
	}
	return t.UTC().Format(time.DateTime) + " UTC"
}

// elementRow returns the table row of an element a parse command does not
// interpret: its size, and its value in hex if short.
func elementRow(tag uint8, value []byte) [2]string {
	v := fmt.Sprintf("%d byte(s)", len(value))
	if len(value) <= 16 {
		v += ": " + hex.EncodeToString(value)
	}
	return [2]string{fmt.Sprintf("Element 0x%02X", tag), v}
}

// printable returns s, from a file, with control characters and invalid
// UTF-8 escaped as in a Go string literal, so that printing it cannot
// drive the terminal.
func printable(s string) string {
	if utf8.ValidString(s) && strings.IndexFunc(s, func(r rune) bool { return !unicode.IsPrint(r) }) < 0 {
		return s
	}
	q := strconv.Quote(s)
	return q[1 : len(q)-1]
}

// printTable prints label/value rows with the values aligned, like:
//
//	Version:          1.0
//	Header Length:    424 bytes
func printTable(w io.Writer, rows [][2]string) {
	width := 18
	for _, r := range rows {
		width = max(width, len(r[0])+2)
	}
	for _, r := range rows {
		fmt.Fprintf(w, "%-*s%s\n", width, r[0]+":", r[1])
	}
}

// headerReport is the part of a parse report that signed files and trust
// lists share: the signed-file header. Its JSON fields are those of both
// reports; rows is its text form.
type headerReport struct {
	File          string     `json:"file"`
	Version       string     `json:"version"`
	HeaderLength  int        `json:"header_length"`
	SignerVersion *string    `json:"signer_version,omitempty"`
	SignerName    string     `json:"signer_name"`
	IssuerName    string     `json:"issuer_name"`
	SerialNumber  string     `json:"serial_number"`
	HashAlgorithm string     `json:"hash_algorithm"`
	Signature     hexBytes   `json:"signature"`
	Filename      string     `json:"filename"`
	Timestamp     *time.Time `json:"timestamp"`
	Padding       int        `json:"padding"`
}

// newHeaderReport describes h, the header of the file name.
func newHeaderReport(name string, h *sgn.Header) headerReport {
	r := headerReport{
		File:          name,
		Version:       h.Version.String(),
		HeaderLength:  h.HeaderLength,
		SignerName:    h.SignerName,
		IssuerName:    h.IssuerName,
		SerialNumber:  serialHex(h.SerialNumber),
		HashAlgorithm: hashLabel(h.Hash),
		Signature:     h.Signature,
		Filename:      h.Filename,
		Timestamp:     jsonTime(h.Timestamp),
		Padding:       h.Padding,
	}
	if h.SignerVersion != nil {
		v := h.SignerVersion.String()
		r.SignerVersion = &v
	}
	return r
}

// rows returns the header rows the parse commands print.
func (r *headerReport) rows() [][2]string {
	rows := [][2]string{
		{"Version", r.Version},
		{"Header Length", fmt.Sprintf("%d bytes", r.HeaderLength)},
	}
	if r.SignerVersion != nil {
		rows = append(rows, [2]string{"Signer Version", *r.SignerVersion})
	}
	var timestamp time.Time
	if r.Timestamp != nil {
		timestamp = *r.Timestamp
	}
	return append(rows, [][2]string{
		{"Signer Name", printable(r.SignerName)},
		{"Issuer Name", printable(r.IssuerName)},
		{"Serial Number", r.SerialNumber},
		{"Hash Algorithm", r.HashAlgorithm},
		{"Signature", fmt.Sprintf("%d bytes", len(r.Signature))},
		{"Filename", cmp.Or(printable(r.Filename), "(none)")},
		{"Timestamp", timeText(timestamp)},
		{"Padding", fmt.Sprintf("%d byte(s)", r.Padding)},
	}...)
}
