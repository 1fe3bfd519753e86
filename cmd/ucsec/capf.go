package main

import (
	"context"
	"crypto/rand"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"flag"
	"fmt"
	"io"
	"math/big"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/ucsec/ucsec/capf"
)

var capfGroup = &group{
	name:     "capf",
	summary:  "run a CAPF server that issues phone certificates (LSCs), schedule its operations, enroll as a phone",
	commands: []*command{capfServe, capfSchedule, capfList, capfCancel, capfEnroll},
}

// The schedule, list and cancel commands reach a running server through
// its admin socket, open the store file themselves, or use the PostgreSQL
// database; see admin.go and capf_admin.go.

var capfSchedule = &command{
	name:     "schedule",
	synopsis: "--store DIR|URL --device NAME --op OP --auth MODE [--string DIGITS|--generate-string] [--key SPEC] [--by TIME] [flags]",
	summary:  "schedule a certificate operation for a device",
	help: `
Schedule a certificate operation for a device, as CUCM's phone page does
("Certificate Operation"), replacing any operation pending for it. The
device carries it out the next time it connects to the CAPF server.

--op is install (issue an LSC; "upgrade" is accepted), fetch (the device
sends its certificate; "troubleshoot" is accepted) or delete (the device
deletes its LSC). --auth is how the device proves who it is: string (the
4 to 10 digits of --string, which the user types on the phone), null (no
proof at all: labs and trusted networks only), lsc or mic (the device's
existing certificate; either mode accepts an LSC or a MIC). After too
many wrong strings the operation fails and must be scheduled again.
--generate-string picks a random 6-digit string and prints it.

--key is the key pair an install asks for: rsa1024, rsa2048 (the
default), rsa3072, rsa4096, ec256, ec384 or ec521. --by is the deadline
("Operation Completes By"): an RFC 3339 time, or a duration from now such
as 72h.

With a server running on a --store directory the request goes through
its admin socket; without one, to the store file directly (created if
needed). With a PostgreSQL --store (see 'ucsec capf serve -h') it goes to
the database, from any host, and every CAPF server that uses the database
carries it out. The operation is stored when the command returns.`,
	examples: []string{
		"ucsec capf schedule --store /var/lib/capf --device SEP001122334455 --op install --auth string --generate-string --key ec256 --by 72h",
		"ucsec capf schedule --store /var/lib/capf --device SEP001122334455 --op fetch --auth lsc",
		"ucsec capf schedule --store 'postgres://capf@db.example/uc?sslmode=verify-full' --device SEP001122334455 --op install --auth null",
	},
	args:  noArgs,
	setup: func(fs *flag.FlagSet) action { return newCapfScheduleCmd(fs).run },
}

type capfScheduleCmd struct {
	store, device      string
	op, auth, key, by  string
	authString         string
	generateAuthString bool
}

func newCapfScheduleCmd(fs *flag.FlagSet) *capfScheduleCmd {
	c := new(capfScheduleCmd)
	storeFlag(fs, &c.store)
	fs.StringVar(&c.device, "device", "", "device `NAME`, such as SEP001122334455 (required)")
	fs.StringVar(&c.op, "op", "", "operation `OP`: install, fetch or delete (required)")
	fs.StringVar(&c.auth, "auth", "", "authentication `MODE`: string, null, lsc or mic (required)")
	fs.StringVar(&c.authString, "string", "", "authentication string, 4 to 10 `DIGITS`, for --auth string")
	fs.BoolVar(&c.generateAuthString, "generate-string", false, "generate a random 6-digit authentication string and print it")
	fs.StringVar(&c.key, "key", "rsa2048", "key `SPEC` an install asks for: rsa1024, rsa2048, rsa3072, rsa4096, ec256, ec384, ec521")
	fs.StringVar(&c.by, "by", "", "deadline `TIME`, RFC 3339 or a duration from now such as 72h")
	return c
}

func (c *capfScheduleCmd) run(e *env, _ []string) error {
	store, err := parseStoreFlag(c.store)
	if err != nil {
		return err
	}
	switch {
	case c.device == "":
		return usageError("missing --device")
	case c.op == "":
		return usageError("missing --op (install, fetch or delete)")
	case c.auth == "":
		return usageError("missing --auth (string, null, lsc or mic)")
	}
	op, err := capf.ParseOperation(strings.ToLower(c.op))
	if err != nil || op == capf.OpNone {
		return usageError(fmt.Sprintf("unknown --op %q (use install, fetch or delete; 'ucsec capf cancel' removes an operation)", c.op))
	}
	auth, err := capf.ParseAuthMode(strings.ToLower(c.auth))
	if err != nil {
		return usageError(fmt.Sprintf("unknown --auth %q (use string, null, lsc or mic)", c.auth))
	}
	key, err := capf.ParseKeySpec(strings.ToLower(c.key))
	if err != nil {
		return usageError(fmt.Sprintf("unknown --key %q (use rsa1024, rsa2048, rsa3072, rsa4096, ec256, ec384 or ec521)", c.key))
	}
	sch := capf.Schedule{Operation: op, Auth: auth, Key: key, AuthString: c.authString}
	switch {
	case auth != capf.AuthString && (c.authString != "" || c.generateAuthString):
		return usageError("--string and --generate-string go with --auth string")
	case auth == capf.AuthString && c.authString != "" && c.generateAuthString:
		return usageError("--string and --generate-string exclude each other")
	case auth == capf.AuthString && c.authString == "" && !c.generateAuthString:
		return usageError("--auth string needs --string DIGITS or --generate-string")
	case c.generateAuthString:
		if sch.AuthString, err = randomAuthString(); err != nil {
			return err
		}
	}
	now := time.Now()
	if c.by != "" {
		if sch.Deadline, err = parseDeadline(c.by, now); err != nil {
			return err
		}
	}
	if err := sch.Check(); err != nil {
		return usageError(err.Error())
	}
	req := &adminRequest{Op: "schedule", Device: c.device, Schedule: newScheduleRequest(&sch)}
	if _, err := capfAdmin.call(context.Background(), store, req, true); err != nil {
		return err
	}
	what := fmt.Sprintf("%s: %s scheduled, authentication %s", c.device, op, auth)
	if op == capf.OpInstall {
		what += ", key " + key.String()
	}
	if !sch.Deadline.IsZero() {
		what += ", by " + sch.Deadline.UTC().Format(time.RFC3339)
	}
	fmt.Fprintln(e.stdout, what)
	if c.generateAuthString {
		fmt.Fprintf(e.stdout, "Authentication string: %s\n", sch.AuthString)
	}
	return nil
}

// randomAuthString returns 6 random digits, as CUCM's Generate String.
func randomAuthString() (string, error) {
	n, err := rand.Int(rand.Reader, big.NewInt(1e6))
	if err != nil {
		return "", err
	}
	return fmt.Sprintf("%06d", n), nil
}

// parseDeadline parses --by: an RFC 3339 time, or a duration after now.
func parseDeadline(s string, now time.Time) (time.Time, error) {
	if t, err := time.Parse(time.RFC3339, s); err == nil {
		if !t.After(now) {
			return time.Time{}, usageError(fmt.Sprintf("--by %s has passed", s))
		}
		return t, nil
	}
	d, err := time.ParseDuration(s)
	if err != nil || d <= 0 {
		return time.Time{}, usageError(fmt.Sprintf("--by %q is neither an RFC 3339 time nor a positive duration", s))
	}
	return now.Add(d).Truncate(time.Second), nil
}

var capfCancel = &command{
	name:     "cancel",
	synopsis: "--store DIR|URL --device NAME",
	summary:  "cancel a device's pending operation",
	help: `
Cancel the operation pending for a device. Its last result becomes
"Operation Cancelled". Cancelling a device with nothing pending does
nothing; a device the store does not know is an error (exit status 2).
--store is reached as 'ucsec capf schedule -h' says.`,
	examples: []string{"ucsec capf cancel --store /var/lib/capf --device SEP001122334455"},
	args:     noArgs,
	setup: func(fs *flag.FlagSet) action {
		var store, device string
		storeFlag(fs, &store)
		fs.StringVar(&device, "device", "", "device `NAME` (required)")
		return func(e *env, _ []string) error {
			loc, err := parseStoreFlag(store)
			if err != nil {
				return err
			}
			if device == "" {
				return usageError("missing --device")
			}
			resp, err := capfAdmin.call(context.Background(), loc, &adminRequest{Op: "cancel", Device: device}, false)
			if err != nil {
				return err
			}
			if resp.Cancelled == "" {
				fmt.Fprintf(e.stdout, "%s: no operation pending\n", device)
			} else {
				fmt.Fprintf(e.stdout, "%s: %s cancelled\n", device, resp.Cancelled)
			}
			return nil
		}
	},
}

var capfList = &command{
	name:     "list",
	synopsis: "--store DIR|URL [--device NAME] [--issued] [--json]",
	summary:  "list devices with their pending operations and results, or the issued certificates",
	help: `
List the devices of the store, as CUCM's phone page shows them: the
status ("Operation Pending", "Upgrade Success", "Upgrade Failed: Invalid
Authentication String" …), the pending operation (its authentication
string shows as "set", never itself), the last result and when, the
serial number and end of validity of the LSC the device holds, and when
the device last connected. Times are UTC.

--issued lists the certificates the server issued instead, oldest first:
serial number, device, when, and end of validity. Each is recorded before
it is sent, so the list is complete even if a device never confirmed.

--device limits either list to one device. --json prints one object per
device or certificate. --store is reached as 'ucsec capf schedule -h'
says: with PostgreSQL, the list holds what every CAPF server of the
database did.`,
	examples: []string{
		"ucsec capf list --store /var/lib/capf",
		"ucsec capf list --store /var/lib/capf --issued --device SEP001122334455 --json",
		"ucsec capf list --store 'postgres://capf@db.example/uc?sslmode=verify-full'",
	},
	args:  noArgs,
	setup: func(fs *flag.FlagSet) action { return newCapfListCmd(fs).run },
}

type capfListCmd struct {
	store, device string
	issued, json  bool
}

func newCapfListCmd(fs *flag.FlagSet) *capfListCmd {
	c := new(capfListCmd)
	storeFlag(fs, &c.store)
	fs.StringVar(&c.device, "device", "", "only the device `NAME`")
	fs.BoolVar(&c.issued, "issued", false, "list the issued certificates")
	jsonFlag(fs, &c.json)
	return c
}

func (c *capfListCmd) run(e *env, _ []string) error {
	store, err := parseStoreFlag(c.store)
	if err != nil {
		return err
	}
	req := &adminRequest{Op: "list", Device: c.device}
	if c.issued {
		req.Op = "issued"
	}
	resp, err := capfAdmin.call(context.Background(), store, req, false)
	if err != nil {
		return err
	}
	if c.json {
		for _, d := range resp.Devices {
			if err := e.printJSON(d); err != nil {
				return err
			}
		}
		for _, i := range resp.Issued {
			if err := e.printJSON(i); err != nil {
				return err
			}
		}
		return nil
	}
	tw := tabwriter.NewWriter(e.stdout, 0, 0, 2, ' ', 0)
	if c.issued {
		fmt.Fprintln(tw, "SERIAL\tDEVICE\tISSUED\tNOT AFTER")
		for _, i := range resp.Issued {
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", i.Serial, printable(i.Device), listTime(i.Issued), listTime(i.NotAfter))
		}
	} else {
		fmt.Fprintln(tw, "DEVICE\tSTATUS\tPENDING\tLAST RESULT\tSERIAL\tLSC NOT AFTER\tLAST SEEN")
		for _, d := range resp.Devices {
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", printable(d.Device), d.Status, d.Pending.text(),
				d.Last.text(), dash(d.Serial), listTime(d.NotAfter), listTime(d.LastSeen))
		}
	}
	return tw.Flush()
}

// text returns the pending operation as the list shows it.
func (p *pendingReport) text() string {
	if p == nil {
		return "-"
	}
	s := p.Operation + " auth " + p.Auth
	if p.AuthString != "" {
		s += " (set)"
	}
	if p.Operation == capf.OpInstall.String() {
		s += " key " + p.Key
	}
	if p.Deadline != nil {
		s += " by " + listTime(p.Deadline)
	}
	if p.Failures > 0 {
		s += fmt.Sprintf(" (%d failed)", p.Failures)
	}
	return s
}

// text returns the last result as the list shows it.
func (l *lastReport) text() string {
	if l == nil {
		return "-"
	}
	return l.Status + " " + listTime(l.Time)
}

func listTime(t *time.Time) string {
	if t == nil {
		return "-"
	}
	return t.UTC().Format(time.RFC3339)
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

var capfEnroll = &command{
	name:     "enroll",
	synopsis: "--server HOST:PORT --device NAME --ca FILE [--string DIGITS | --cert FILE --key FILE [--mic]] [--current FILE] [-o FILE] [--key-out FILE] [flags]",
	summary:  "connect to a CAPF server as a phone and carry out its scheduled operation",
	help: `
Play a phone against a CAPF server, for labs and tests: connect to
--server over TLS, trusting the CAPF certificate in --ca (PEM
certificates, or one DER), authenticate as --device, and carry out
whatever the server scheduled for it. As a phone pins the CAPF record of
its trust list, the server must present a certificate of --ca itself: one
that --ca issued (every LSC) is refused, and no host name is checked. The
issued LSC must be signed by the CAPF certificate the server presented.

Authenticate with --string, the authentication string, or with an
existing certificate and its key (--cert, --key: the LSC, or with --mic a
manufacturing certificate); neither is the null-string mode.

For an install the client makes the key the server asks for and writes
the issued LSC to -o (default: the device name, lowercased, with
-lsc.pem) and the new private key, PKCS#8 PEM, to --key-out, mode 0600;
without --key-out, or with the same file, both go to -o, mode 0600. For a
fetch or delete, --current is the certificate the phone holds: the one it
sends, or reports deleted (the file is left in place).

Prints the outcome. Exit status 1 if the server refused (wrong
authentication string, untrusted certificate, unknown device, no
certificate to fetch …), 2 for other errors.`,
	examples: []string{
		"ucsec capf enroll --server capf.example.com:3804 --device SEP001122334455 --ca capf.pem --string 123456 -o lsc.pem",
		"ucsec capf enroll --server 127.0.0.1:3804 --device SEP001122334455 --ca capf.pem --cert mic.pem --key mic.pem --mic -o lsc.pem --key-out lsc.key",
	},
	args:  noArgs,
	setup: func(fs *flag.FlagSet) action { return newCapfEnrollCmd(fs).run },
}

type capfEnrollCmd struct {
	server, device, ca string
	authString         string
	auth               *keyPairFlags
	mic                bool
	current            string
	out, keyOut        string
	timeout            time.Duration
	json               bool
}

func newCapfEnrollCmd(fs *flag.FlagSet) *capfEnrollCmd {
	c := new(capfEnrollCmd)
	fs.StringVar(&c.server, "server", "", "CAPF server `HOST:PORT` (port 3804 if left out) (required)")
	fs.StringVar(&c.device, "device", "", "device `NAME`, such as SEP001122334455 (required)")
	fs.StringVar(&c.ca, "ca", "", "trust the CAPF certificates in `FILE`, pinned (PEM, or one DER) (required)")
	fs.StringVar(&c.authString, "string", "", "authentication string `DIGITS`")
	c.auth = addKeyPairFlags(fs, "", "existing (LSC or MIC)")
	fs.BoolVar(&c.mic, "mic", false, "--cert is a manufacturing certificate (MIC), not an LSC")
	fs.StringVar(&c.current, "current", "", "the certificate `FILE` the phone holds, for fetch and delete")
	outputFlag(fs, &c.out, "DEVICE-lsc.pem, lowercased")
	fs.StringVar(&c.keyOut, "key-out", "", "write the new private key to `FILE` (default: with the certificate)")
	fs.DurationVar(&c.timeout, "timeout", capf.DefaultClientTimeout, "bound on connecting and on each message, `DUR`")
	jsonFlag(fs, &c.json)
	return c
}

// enrollReport is what "capf enroll" prints.
type enrollReport struct {
	Device      string     `json:"device"`
	Session     uint32     `json:"session"`
	Operation   string     `json:"operation"`
	Reason      uint8      `json:"reason"`
	Result      string     `json:"result"`
	Serial      string     `json:"serial,omitempty"`
	NotAfter    *time.Time `json:"not_after,omitempty"`
	Certificate string     `json:"certificate_file,omitempty"`
	Key         string     `json:"key_file,omitempty"`
	Deleted     bool       `json:"deleted,omitempty"`
	Error       string     `json:"error,omitempty"`
}

func (c *capfEnrollCmd) run(e *env, _ []string) error {
	switch {
	case c.server == "":
		return usageError("missing --server")
	case c.device == "":
		return usageError("missing --device")
	case c.ca == "":
		return usageError("missing --ca (the CAPF certificate)")
	case c.authString != "" && c.auth.set():
		return usageError("--string and --cert/--key exclude each other")
	case c.mic && !c.auth.set():
		return usageError("--mic needs --cert and --key")
	case c.timeout <= 0:
		return usageError("--timeout must be positive")
	}
	out := c.out
	if out == "" {
		out = fileNameFor(c.device) + "-lsc.pem"
	}
	keyOut := c.keyOut
	if keyOut == "" || sameFile(keyOut, out) {
		keyOut = out
	}
	if out == "-" && keyOut == "-" {
		return usageError("-o - needs --key-out FILE: the private key does not go to standard output")
	}
	if err := checkJSONOutput(c.json, out); err != nil {
		return err
	}
	pins, err := loadCertificates(c.ca)
	if err != nil {
		return err
	}
	cl := &capf.Client{
		Device:           c.device,
		CAPFCertificates: pins,
		AuthString:       c.authString,
		MIC:              c.mic,
		Timeout:          c.timeout,
	}
	if c.auth.set() {
		if cl.Certificate, cl.Key, err = c.auth.load(); err != nil {
			return err
		}
	}
	if cl.Current, err = loadOptionalCertificate(c.current); err != nil {
		return err
	}

	ctx, cancel := context.WithTimeout(context.Background(), 10*c.timeout)
	defer cancel()
	outcome, sessionErr := cl.Enroll(ctx, c.server)
	if outcome == nil {
		return sessionErr
	}
	r := &enrollReport{Device: c.device, Session: outcome.Session, Operation: outcome.Operation.String(), Reason: outcome.Reason, Deleted: outcome.Deleted}
	switch {
	case sessionErr != nil:
		r.Result = "failed"
		r.Error = message(sessionErr)
	case outcome.Operation == capf.OpNone:
		r.Result = "nothing scheduled"
	case outcome.Operation == capf.OpInstall:
		r.Result = "certificate installed"
	case outcome.Operation == capf.OpFetch:
		r.Result = "certificate sent"
	case outcome.Operation == capf.OpDelete && outcome.Deleted:
		r.Result = "certificate deleted"
	default:
		r.Result = "done"
	}
	// A certificate the client accepted is kept even if the session then
	// failed: the server recorded it as issued.
	if cert := outcome.Certificate; cert != nil {
		r.Serial = capf.SerialHex(cert.SerialNumber)
		r.NotAfter = jsonTime(cert.NotAfter)
		if err := c.write(e, out, keyOut, outcome); err != nil {
			return err
		}
		if out != "-" {
			r.Certificate = out
		}
		r.Key = keyOut
	}

	w := e.stdout
	if out == "-" {
		w = e.stderr
	}
	if c.json {
		if err := e.printJSON(r); err != nil {
			return err
		}
	} else {
		printEnrollReport(w, r)
	}
	switch {
	case sessionErr == nil:
		return nil
	case errors.Is(sessionErr, capf.ErrRefused):
		if !c.json {
			fmt.Fprintf(e.stderr, "ucsec: %s: %s\n", c.device, r.Error)
		}
		return statusError(exitInvalid)
	}
	return sessionErr
}

// write writes the issued certificate to out and its private key to
// keyOut, or both to out.
func (c *capfEnrollCmd) write(e *env, out, keyOut string, o *capf.Outcome) error {
	certPEM := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: o.Certificate.Raw})
	pkcs8, err := x509.MarshalPKCS8PrivateKey(o.Key)
	if err != nil {
		return fmt.Errorf("the new private key: %w", err)
	}
	keyPEM := pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: pkcs8})
	inputs := []string{c.ca}
	if c.mic {
		inputs = append(inputs, c.auth.certPath, c.auth.keyPath)
	}
	if keyOut == out {
		return e.writeOutput(out, append(certPEM, keyPEM...), 0o600, inputs...)
	}
	// The key first: a certificate without its key is of no use.
	if err := e.writeOutput(keyOut, keyPEM, 0o600, append(inputs, out)...); err != nil {
		return err
	}
	return e.writeOutput(out, certPEM, 0o644, append(inputs, keyOut)...)
}

func printEnrollReport(w io.Writer, r *enrollReport) {
	rows := [][2]string{
		{"Device", printable(r.Device)},
		{"Operation", r.Operation},
		{"Result", r.Result},
		{"End Session Reason", fmt.Sprint(r.Reason)},
	}
	if r.Serial != "" {
		rows = append(rows, [2]string{"Serial Number", r.Serial}, [2]string{"Not After", listTime(r.NotAfter)})
	}
	if r.Certificate != "" {
		rows = append(rows, [2]string{"Certificate", r.Certificate})
	}
	if r.Key != "" {
		rows = append(rows, [2]string{"Private Key", r.Key})
	}
	printTable(w, rows)
}
