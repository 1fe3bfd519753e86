package main

import (
	"context"
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/ucsec/ucsec/ctl"
	"github.com/ucsec/ucsec/internal/pemutil"
	"github.com/ucsec/ucsec/itl"
	"github.com/ucsec/ucsec/tvs"
)

var tvsGroup = &group{
	name:     "tvs",
	summary:  "run a Trust Verification Service (TVS) that vouches for certificates phones do not hold, manage its entries, and ask one as a phone",
	commands: []*command{tvsServe, tvsList, tvsAdd, tvsRemove, tvsQuery},
}

var tvsQuery = &command{
	name:     "query",
	synopsis: "--server HOST[:PORT]... (--ca FILE | --itl FILE) [--device NAME] [--json] CERT",
	summary:  "ask a TVS whether it trusts a certificate, as a phone does",
	help: `
Ask a TVS about the certificate in CERT (PEM or DER; '-' reads standard
input), as a phone asks about a certificate its ITL does not hold. The
servers (--server, repeatable; port 2445 if left out) are tried in order
until one answers.

The server must present one of the certificates of --ca (PEM
certificates, or one DER) or of the TVS records of the ITL --itl, itself:
as a phone pins its TVS records, a certificate they issued is refused, and
no host name is checked. --device is the device name sent, CP-<model>-SEP<MAC>.

Prints the certificate's subject and SHA-256, the server that answered,
the status, and for a trusted certificate its roles and the TTL for which
a phone may keep the verdict. With --json, prints {"certificate",
"sha256", "server", "valid", "roles", "ttl"} (the TTL in seconds).

Exit status 0 if the TVS trusts the certificate, 1 if it does not, 2 if no
server answered or for other errors.`,
	examples: []string{
		"ucsec tvs query --server 127.0.0.1:2445 --ca tvs.crt capf.crt",
		"ucsec tvs query --server cucm-sub1 --server cucm-sub2 --itl ITLFile.tlv --device CP-8845-SEP001122334455 --json callmanager.pem",
	},
	args:  oneArg,
	setup: func(fs *flag.FlagSet) action { return newTVSQueryCmd(fs).run },
}

type tvsQueryCmd struct {
	servers listFlag
	ca, itl string
	device  string
	timeout time.Duration
	json    bool
}

func newTVSQueryCmd(fs *flag.FlagSet) *tvsQueryCmd {
	c := new(tvsQueryCmd)
	fs.Var(&c.servers, "server", "TVS server `HOST[:PORT]`, port 2445 if left out (repeatable, required)")
	fs.StringVar(&c.ca, "ca", "", "trust the TVS certificates in `FILE`, pinned (PEM, or one DER)")
	fs.StringVar(&c.itl, "itl", "", "trust the TVS records of the trust list `FILE`, as a phone does")
	fs.StringVar(&c.device, "device", tvs.DefaultDeviceName, "device `NAME` sent with the request")
	fs.DurationVar(&c.timeout, "timeout", tvs.DefaultTimeout, "bound on the exchange with each server, `DUR`")
	jsonFlag(fs, &c.json)
	return c
}

// tvsQueryReport is what "tvs query" prints.
type tvsQueryReport struct {
	Certificate string   `json:"certificate"`
	SHA256      hexBytes `json:"sha256"`
	Server      string   `json:"server"`
	Valid       bool     `json:"valid"`
	Roles       []string `json:"roles"`
	TTL         int64    `json:"ttl"`
}

func (c *tvsQueryCmd) run(e *env, args []string) error {
	switch {
	case len(c.servers) == 0:
		return usageError("missing --server")
	case c.ca == "" && c.itl == "":
		return usageError("missing --ca or --itl (the TVS certificate to trust)")
	case c.ca != "" && c.itl != "":
		return usageError("--ca and --itl exclude each other")
	case c.device == "":
		return usageError("empty --device")
	case c.timeout <= 0:
		return usageError("--timeout must be positive")
	}
	for _, s := range c.servers {
		if s == "" {
			return usageError("empty --server")
		}
	}
	var pins []*x509.Certificate
	var err error
	if c.ca != "" {
		pins, err = loadCertificates(c.ca)
	} else {
		pins, err = tvsRecords(c.itl)
	}
	if err != nil {
		return err
	}
	cert, err := parseInput(e, args[0], pemutil.ParseCertificate)
	if err != nil {
		return err
	}
	cl := &tvs.Client{
		Servers:         c.servers,
		TVSCertificates: pins,
		DeviceName:      c.device,
		Timeout:         c.timeout,
		CacheSize:       -1,
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Duration(len(c.servers)+1)*c.timeout)
	defer cancel()
	v, err := cl.Verify(ctx, cert)
	switch {
	case errors.Is(err, tvs.ErrInvalid):
		return err
	case err != nil:
		return noAnswerError(err)
	}
	sum := sha256.Sum256(cert.Raw)
	r := &tvsQueryReport{
		Certificate: cert.Subject.String(),
		SHA256:      sum[:],
		Server:      v.Server,
		Valid:       v.Valid,
		Roles:       []string{},
		TTL:         int64(v.TTL / time.Second),
	}
	for _, role := range v.Roles {
		r.Roles = append(r.Roles, role.ShortName())
	}
	if c.json {
		err = e.printJSON(r)
	} else {
		printTVSQueryReport(e.stdout, r)
	}
	switch {
	case err != nil:
		return err
	case !v.Valid:
		return statusError(exitInvalid)
	}
	return nil
}

func printTVSQueryReport(w io.Writer, r *tvsQueryReport) {
	status := "not trusted"
	if r.Valid {
		status = "valid"
	}
	rows := [][2]string{
		{"Certificate", printable(r.Certificate)},
		{"SHA-256", hex.EncodeToString(r.SHA256)},
		{"Server", r.Server},
		{"Status", status},
	}
	if r.Valid {
		ttl := time.Duration(r.TTL) * time.Second
		rows = append(rows,
			[2]string{"Roles", strings.Join(r.Roles, ", ")},
			[2]string{"TTL", fmt.Sprintf("%d seconds (%s)", r.TTL, ttl)})
	}
	printTable(w, rows)
}

// noAnswerError returns the error of a query no server answered: one
// line, each server's error without the package prefix.
func noAnswerError(err error) error {
	var msgs []string
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		for _, e := range j.Unwrap() {
			msgs = append(msgs, message(e))
		}
	} else {
		msgs = append(msgs, message(err))
	}
	return fmt.Errorf("no TVS server answered: %s", strings.Join(msgs, "; "))
}

// tvsRecords returns the certificates of the TVS records of the trust list
// in the file path.
func tvsRecords(path string) ([]*x509.Certificate, error) {
	data, err := readFile(path)
	if err != nil {
		return nil, err
	}
	f, err := itl.Parse(data)
	if err != nil {
		return nil, &fileError{path, err}
	}
	certs, err := f.Certificates(ctl.RoleTVS)
	if err != nil {
		return nil, &fileError{path, err}
	}
	if len(certs) == 0 {
		return nil, &fileError{path, errors.New("no TVS record with a certificate")}
	}
	return certs, nil
}
