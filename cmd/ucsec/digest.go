package main

import (
	"cmp"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/ucsec/ucsec/digest"
)

var digestGroup = &group{
	name:     "digest",
	summary:  "answer SIP Digest challenges and check captured responses",
	commands: []*command{digestRespond, digestVerify},
}

var digestRespond = &command{
	name:     "respond",
	synopsis: "--challenge HEADER --method METHOD --uri URI --user NAME (--password PW | --password-file FILE) [flags]",
	summary:  "compute the Authorization header that answers a Digest challenge",
	help: `
Compute the Authorization (or Proxy-Authorization) header value that
answers a SIP Digest challenge, as a phone or trunk would, and print it on
one line. --challenge is the WWW-Authenticate or Proxy-Authenticate value
of a 401 or 407, with or without its header name, pasted from a trace; it
may hold several challenges, one header per line, and --challenge may be
given more than once. The strongest supported algorithm offered is used
(SHA-512-256, then SHA-256, then MD5, each with or without -sess) unless
--algorithm names one. --uri is the Request-URI exactly as sent. With
userhash=true, the username sent is the hash of --user and the realm.

When the challenge offers qop, auth is used unless --qop says auth-int or
only auth-int is offered; auth-int also covers the message body, --body
(empty by default), which auth ignores. The client nonce is random unless
--cnonce gives one, and the nonce count is 1 unless --nc says otherwise:
fix both to reproduce a captured response. A challenge without qop gets an
RFC 2069 response, without cnonce and nc (--cnonce and --nc are ignored,
--qop is an error).

A password given with --password shows in ps and in the shell history:
--password-file reads it from the first line of FILE instead, or of
standard input if FILE is "-". With --json, prints {"authorization",
"username", "realm", "nonce", "uri", "response", "algorithm", "qop", "nc",
"cnonce", "opaque", "userhash"}, the header value and its fields.`,
	examples: []string{
		`ucsec digest respond --challenge 'Digest realm="test.local", nonce="dcd98b7102dd2f0e8b11d0f600bfb0c093", qop="auth"' --method REGISTER --uri sip:127.0.0.1:5070 --user alice --password-file -`,
		`ucsec digest respond --challenge 'WWW-Authenticate: Digest realm="test.local", nonce="dcd98b7102dd2f0e8b11d0f600bfb0c093", opaque="op4que", algorithm=MD5, qop="auth"' --method REGISTER --uri sip:127.0.0.1:5070 --user alice --password s3cret --cnonce 6b8b4567 --nc 1`,
	},
	args:  noArgs,
	setup: func(fs *flag.FlagSet) action { return newDigestRespondCmd(fs).run },
}

type digestRespondCmd struct {
	challenges listFlag
	method     string
	uri        string
	user       string
	password   passwordFlags
	algorithm  string
	qop        string
	cnonce     string
	nc         string
	body       string
	json       bool
}

func newDigestRespondCmd(fs *flag.FlagSet) *digestRespondCmd {
	c := new(digestRespondCmd)
	fs.Var(&c.challenges, "challenge", "WWW-Authenticate or Proxy-Authenticate `HEADER` value, with or without the header name (required; may be repeated)")
	fs.StringVar(&c.method, "method", "", "request `METHOD`, such as REGISTER or INVITE (required)")
	fs.StringVar(&c.uri, "uri", "", "Request-`URI`, exactly as sent (required)")
	fs.StringVar(&c.user, "user", "", "user `NAME` (required)")
	c.password.add(fs)
	fs.StringVar(&c.algorithm, "algorithm", "", "answer the challenge with algorithm `ALG`: MD5, SHA-256, SHA-512-256 or a -sess form (default: the strongest offered)")
	fs.StringVar(&c.qop, "qop", "", "`QOP` to answer with: auth or auth-int (default: auth if offered)")
	fs.StringVar(&c.cnonce, "cnonce", "", "client nonce `CNONCE` (default: random)")
	fs.StringVar(&c.nc, "nc", "1", "nonce count `N`, in decimal or as 8 hex digits such as 0000000a")
	bodyFlag(fs, &c.body)
	jsonFlag(fs, &c.json)
	return c
}

func (c *digestRespondCmd) run(e *env, _ []string) error {
	switch {
	case len(c.challenges) == 0:
		return usageError("missing --challenge")
	case c.method == "":
		return usageError("missing --method")
	case c.uri == "":
		return usageError("missing --uri")
	case c.user == "":
		return usageError("missing --user")
	}
	if err := checkMethod(c.method); err != nil {
		return err
	}
	for _, f := range []struct{ name, value string }{{"uri", c.uri}, {"user", c.user}, {"cnonce", c.cnonce}} {
		if err := checkHeaderText(f.name, f.value); err != nil {
			return err
		}
	}
	if strings.ContainsAny(c.cnonce, `"\`) {
		return usageError("--cnonce cannot hold '\"' or '\\'")
	}
	var alg digest.Algorithm
	if c.algorithm != "" {
		if alg = digest.ParseAlgorithm(c.algorithm); !alg.Supported() {
			return usageError(fmt.Sprintf("unknown --algorithm %q (use MD5, SHA-256, SHA-512-256 or their -sess forms)", c.algorithm))
		}
	}
	switch c.qop {
	case "", "auth", "auth-int":
	default:
		return usageError(fmt.Sprintf("unknown --qop %q (use auth or auth-int)", c.qop))
	}
	nc, err := parseNC(c.nc)
	if err != nil {
		return err
	}
	if err := c.password.check(false, "", c.body); err != nil {
		return err
	}

	var chs []*digest.Challenge
	for _, text := range c.challenges {
		values, err := headerValues("challenge", text, "WWW-Authenticate", "Proxy-Authenticate")
		if err != nil {
			return err
		}
		for _, v := range values {
			parsed, err := digest.ParseChallenges(v)
			if err != nil {
				return fmt.Errorf("--challenge: %s", message(err))
			}
			chs = append(chs, parsed...)
		}
	}
	if len(chs) == 0 {
		return errors.New("--challenge holds no Digest challenge")
	}
	ch, qop, err := chooseChallenge(chs, alg, c.qop)
	if err != nil {
		return err
	}

	password, err := c.password.read(e)
	if err != nil {
		return err
	}
	body, err := readBody(e, c.body)
	if err != nil {
		return err
	}
	opts := digest.RespondOptions{Username: c.user, Password: password, Method: c.method, URI: c.uri, Body: body, QOP: qop}
	if qop != "" {
		opts.NC = nc
		if opts.CNonce = c.cnonce; opts.CNonce == "" {
			b := make([]byte, 12)
			if _, err := rand.Read(b); err != nil {
				return fmt.Errorf("making a cnonce: %w", err)
			}
			opts.CNonce = hex.EncodeToString(b)
		}
	}
	cr, err := digest.Respond(ch, opts)
	if err != nil {
		return err
	}
	header := cr.String()
	if c.json {
		return e.printJSON(struct {
			Authorization string `json:"authorization"`
			credentialsReport
		}{header, newCredentialsReport(cr)})
	}
	_, err = fmt.Fprintln(e.stdout, header)
	return err
}

// chooseChallenge returns the challenge to answer among chs and the qop to
// answer it with: the strongest supported algorithm (the first of equals),
// or alg if set, whose challenge offers a usable qop. qop is the --qop
// flag: "" picks auth if offered, then auth-int, or none for an RFC 2069
// challenge.
func chooseChallenge(chs []*digest.Challenge, alg digest.Algorithm, qop string) (*digest.Challenge, string, error) {
	var best *digest.Challenge
	var bestQOP string
	supported, algFound := false, false
	for _, ch := range chs {
		a := cmp.Or(ch.Algorithm, digest.MD5)
		if !a.Supported() {
			continue
		}
		supported = true
		if alg != "" && a != alg {
			continue
		}
		algFound = true
		q, ok := challengeQOP(ch, qop)
		if ok && (best == nil || a.Strength() > best.Algorithm.Strength()) {
			best, bestQOP = ch, q
		}
	}
	offered := describeChallenges(chs)
	switch {
	case best != nil:
		return best, bestQOP, nil
	case !supported:
		return nil, "", fmt.Errorf("--challenge offers no supported algorithm (offered: %s)", offered)
	case !algFound:
		return nil, "", usageError(fmt.Sprintf("no challenge offers --algorithm %s (offered: %s)", alg, offered))
	case qop != "":
		return nil, "", usageError(fmt.Sprintf("no challenge offers --qop %s (offered: %s)", qop, offered))
	}
	return nil, "", fmt.Errorf("--challenge offers no usable qop (offered: %s)", offered)
}

// challengeQOP returns the qop to answer ch with, given the --qop flag
// want, and whether ch can be answered at all.
func challengeQOP(ch *digest.Challenge, want string) (string, bool) {
	switch {
	case len(ch.QOP) == 0:
		// RFC 2069; a -sess algorithm needs a cnonce, so qop.
		return "", want == "" && !ch.Algorithm.Sess()
	case want != "":
		return want, slices.Contains(ch.QOP, want)
	case slices.Contains(ch.QOP, "auth"):
		return "auth", true
	case slices.Contains(ch.QOP, "auth-int"):
		return "auth-int", true
	}
	return "", false
}

// describeChallenges lists the algorithm and qop of each challenge, for
// error messages: "MD5 with qop auth, SHA-256 without qop".
func describeChallenges(chs []*digest.Challenge) string {
	var parts []string
	for _, ch := range chs {
		s := printable(string(cmp.Or(ch.Algorithm, digest.MD5)))
		if len(ch.QOP) == 0 {
			s += " without qop"
		} else {
			s += " with qop " + printable(strings.Join(ch.QOP, ","))
		}
		parts = append(parts, s)
	}
	return strings.Join(parts, ", ")
}

var digestVerify = &command{
	name:     "verify",
	synopsis: "--authorization HEADER --method METHOD (--password PW | --password-file FILE | --ha1 HEX) [flags]",
	summary:  "check the response of a captured Authorization header",
	help: `
Check the response of a captured Authorization (or Proxy-Authorization)
header value, with or without its header name, against the user's
password or the HA1 a server stores: H(user ":" realm ":" password) in hex
for the header's hash algorithm (also for the -sess forms). The user name,
realm, nonce, uri, cnonce and nc are those of the header. The response
also covers the request method, which the header does not hold, and with
qop=auth-int the message body, --body (empty by default).

This checks the response only, that is that the client knew the password:
not that the nonce was issued by the server and is still fresh, that the
nonce count was not used before (a replay), that the uri is the
Request-URI or that opaque is the server's. A server checks all of these
(package digest's Server.Verify does).

With userhash=true the header holds the hash of the user name and realm
instead of the user name, so --password also needs --user, the user name,
which must hash to it; --ha1 works without it. Without userhash, --user is
optional and must be the header's user name.

Prints "valid response for USER in REALM". Exits 1, printing "invalid
response", if the response does not match or --user is not the header's
user; 2 if the header is malformed or uses an unsupported algorithm.
--password-file reads the password from the first line of FILE, or of
standard input if FILE is "-". With --json, prints {"valid", "user",
"username", "realm", "nonce", "uri", "response", "algorithm", "qop", "nc",
"cnonce", "opaque", "userhash", "error"}.`,
	examples: []string{
		`ucsec digest verify --authorization 'Authorization: Digest username="alice", realm="test.local", nonce="dcd98b7102dd2f0e8b11d0f600bfb0c093", uri="sip:127.0.0.1:5070", response="cd98f89d1a9e2a523a6f2b32860d1dc6", algorithm=MD5, cnonce="6b8b4567", opaque="op4que", qop=auth, nc=00000001' --method REGISTER --password-file -`,
		`ucsec digest verify --authorization "$(cat authorization.txt)" --method INVITE --ha1 07848e838e1e831e7b0cf70146cc5447 --body sdp.txt --json`,
	},
	args:  noArgs,
	setup: func(fs *flag.FlagSet) action { return newDigestVerifyCmd(fs).run },
}

type digestVerifyCmd struct {
	authorization string
	method        string
	user          string
	password      passwordFlags
	ha1           string
	body          string
	json          bool
}

func newDigestVerifyCmd(fs *flag.FlagSet) *digestVerifyCmd {
	c := new(digestVerifyCmd)
	fs.StringVar(&c.authorization, "authorization", "", "Authorization or Proxy-Authorization `HEADER` value, with or without the header name (required)")
	fs.StringVar(&c.method, "method", "", "request `METHOD`, such as REGISTER or INVITE (required)")
	c.password.add(fs)
	fs.StringVar(&c.ha1, "ha1", "", "the user's HA1 in `HEX` for the header's realm and hash, instead of a password")
	fs.StringVar(&c.user, "user", "", "user `NAME`: required with --password if the header has userhash=true")
	bodyFlag(fs, &c.body)
	jsonFlag(fs, &c.json)
	return c
}

func (c *digestVerifyCmd) run(e *env, _ []string) error {
	switch {
	case c.authorization == "":
		return usageError("missing --authorization")
	case c.method == "":
		return usageError("missing --method")
	}
	if err := checkMethod(c.method); err != nil {
		return err
	}
	if err := c.password.check(true, c.ha1, c.body); err != nil {
		return err
	}
	values, err := headerValues("authorization", c.authorization, "Authorization", "Proxy-Authorization")
	if err != nil {
		return err
	}
	if len(values) != 1 {
		return fmt.Errorf("--authorization holds %d headers, want 1", len(values))
	}
	cr, err := digest.ParseCredentials(values[0])
	if err != nil {
		return fmt.Errorf("--authorization: %s", message(err))
	}
	alg := cmp.Or(cr.Algorithm, digest.MD5)
	switch {
	case !alg.Supported():
		return fmt.Errorf("--authorization: unsupported algorithm %q", printable(string(alg)))
	case cr.QOP != "" && cr.QOP != "auth" && cr.QOP != "auth-int":
		return fmt.Errorf("--authorization: unsupported qop %q", printable(cr.QOP))
	case cr.QOP == "" && alg.Sess():
		return fmt.Errorf("--authorization: algorithm %s without qop", alg)
	case cr.UserHash && c.user == "" && c.ha1 == "":
		return usageError("the header has userhash=true: --password needs --user, the user name it hashes (or use --ha1)")
	}
	var ha1 string
	if c.ha1 != "" {
		if ha1, err = parseHA1(c.ha1, alg); err != nil {
			return err
		}
	}
	body, err := readBody(e, c.body)
	if err != nil {
		return err
	}

	// The user the credentials are for, and why they are not valid for
	// --user.
	user := cmp.Or(c.user, cr.Username)
	var mismatch string
	switch {
	case cr.UserHash && c.user != "" && !strings.EqualFold(digest.UserHash(alg, c.user, cr.Realm), cr.Username):
		mismatch = fmt.Sprintf("the hashed username is not that of %s", printable(c.user))
	case !cr.UserHash && c.user != "" && c.user != cr.Username:
		mismatch = fmt.Sprintf("the header is for %s, not %s", printable(cr.Username), printable(c.user))
	}
	if ha1 == "" {
		password, err := c.password.read(e)
		if err != nil {
			return err
		}
		ha1 = digest.HA1(alg, user, cr.Realm, password)
	}
	valid := mismatch == "" && cr.ResponseMatches(c.method, body, ha1)

	var verr string
	if !valid {
		verr = "invalid response"
		if mismatch != "" {
			verr += ": " + mismatch
		}
	}
	switch {
	case c.json:
		r := &digestVerifyResult{Valid: valid, User: user, credentialsReport: newCredentialsReport(cr), Error: verr}
		if err := e.printJSON(r); err != nil {
			return err
		}
	case valid:
		fmt.Fprintf(e.stdout, "valid response for %s in %s\n", printable(user), printable(cr.Realm))
	default:
		fmt.Fprintf(e.stderr, "ucsec: %s for %s in %s\n", verr, printable(user), printable(cr.Realm))
	}
	if !valid {
		return statusError(exitInvalid)
	}
	return nil
}

// digestVerifyResult is what "digest verify --json" prints.
type digestVerifyResult struct {
	Valid bool   `json:"valid"`
	User  string `json:"user"` // --user, or the header's username
	credentialsReport
	Error string `json:"error,omitempty"`
}

// credentialsReport is the JSON form of Digest credentials.
type credentialsReport struct {
	Username  string `json:"username"` // as sent: the hash with userhash
	Realm     string `json:"realm"`
	Nonce     string `json:"nonce"`
	URI       string `json:"uri"`
	Response  string `json:"response"`
	Algorithm string `json:"algorithm"` // MD5 when absent
	QOP       string `json:"qop"`       // "" for an RFC 2069 response
	NC        uint32 `json:"nc"`        // 0 without qop
	CNonce    string `json:"cnonce"`
	Opaque    string `json:"opaque"`
	UserHash  bool   `json:"userhash"`
}

func newCredentialsReport(cr *digest.Credentials) credentialsReport {
	return credentialsReport{
		Username:  cr.Username,
		Realm:     cr.Realm,
		Nonce:     cr.Nonce,
		URI:       cr.URI,
		Response:  cr.Response,
		Algorithm: string(cmp.Or(cr.Algorithm, digest.MD5)),
		QOP:       cr.QOP,
		NC:        cr.NC,
		CNonce:    cr.CNonce,
		Opaque:    cr.Opaque,
		UserHash:  cr.UserHash,
	}
}

// passwordFlags are the flags that give a password: --password, or
// --password-file to keep it off the command line.
type passwordFlags struct {
	password string
	file     string
}

func (p *passwordFlags) add(fs *flag.FlagSet) {
	fs.StringVar(&p.password, "password", "", "the user's password `PW` (visible to other local users in ps)")
	fs.StringVar(&p.file, "password-file", "", "read the password from the first line of `FILE`, '-' for standard input")
}

// check reports a usage error unless exactly one of the flags, or of
// them and the --ha1 flag ha1 if the command has it (withHA1), gives the
// password. body is the --body flag, which cannot also read standard
// input.
func (p *passwordFlags) check(withHA1 bool, ha1, body string) error {
	n := 0
	for _, set := range []bool{p.password != "", p.file != "", ha1 != ""} {
		if set {
			n++
		}
	}
	what := "--password or --password-file"
	if withHA1 {
		what = "--password, --password-file or --ha1"
	}
	switch {
	case n == 0:
		return usageError("missing " + what)
	case n > 1:
		return usageError("give only one of " + what)
	case p.file == "-" && body == "-":
		return usageError("--password-file and --body cannot both read standard input")
	}
	return nil
}

// read returns the password: --password, or the first line of
// --password-file without its line ending.
func (p *passwordFlags) read(e *env) (string, error) {
	if p.file == "" {
		return p.password, nil
	}
	data, err := e.readInput(p.file)
	if err != nil {
		return "", err
	}
	line, _, _ := strings.Cut(string(data), "\n")
	line = strings.TrimSuffix(line, "\r")
	if line == "" {
		return "", &fileError{p.file, errors.New("no password on the first line")}
	}
	return line, nil
}

// headerValues splits the text of flag name into header values, one per
// line; a line that starts with white space continues the one before, as
// in a folded header. Each may start with one of the header names, which
// is removed (names match without regard to case).
func headerValues(name, text string, names ...string) ([]string, error) {
	var lines []string
	for line := range strings.Lines(text) {
		line = strings.TrimRight(line, "\r\n")
		if len(lines) > 0 && line != "" && (line[0] == ' ' || line[0] == '\t') {
			lines[len(lines)-1] += " " + strings.TrimSpace(line)
			continue
		}
		lines = append(lines, line)
	}
	var values []string
	for _, line := range lines {
		line = strings.TrimSpace(line)
		if line == "" {
			continue
		}
		if h, v, ok := cutHeaderName(line); ok {
			i := slices.IndexFunc(names, func(n string) bool { return strings.EqualFold(n, h) })
			if i < 0 {
				return nil, fmt.Errorf("--%s: unexpected header name %q (want %s)", name, printable(h), strings.Join(names, " or "))
			}
			line = strings.TrimSpace(v)
		}
		values = append(values, line)
	}
	if len(values) == 0 {
		return nil, usageError(fmt.Sprintf("empty --%s", name))
	}
	return values, nil
}

// cutHeaderName splits "Name: value" into the header name and value. A
// header value of these headers starts with a scheme, never with a token
// and a colon.
func cutHeaderName(line string) (name, value string, ok bool) {
	i := 0
	for i < len(line) && isTokenChar(line[i]) {
		i++
	}
	name = line[:i]
	rest := strings.TrimLeft(line[i:], " \t")
	if name == "" || !strings.HasPrefix(rest, ":") {
		return "", line, false
	}
	return name, rest[1:], true
}

// isTokenChar reports whether c may appear in a token (RFC 9110 §5.6.2).
func isTokenChar(c byte) bool {
	switch {
	case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9':
		return true
	}
	return strings.IndexByte("!#$%&'*+-.^_`|~", c) >= 0
}

// checkMethod reports a usage error unless method is a token, as SIP
// request methods are.
func checkMethod(method string) error {
	for i := 0; i < len(method); i++ {
		if !isTokenChar(method[i]) {
			return usageError(fmt.Sprintf("invalid --method %q", method))
		}
	}
	return nil
}

// checkHeaderText reports a usage error if the value of flag name holds a
// control character, which a header cannot carry.
func checkHeaderText(name, value string) error {
	if strings.ContainsFunc(value, func(r rune) bool { return r < 0x20 || r == 0x7f }) {
		return usageError(fmt.Sprintf("--%s holds a control character", name))
	}
	return nil
}

// parseNC parses the --nc flag: a decimal count, or 8 hex digits as the
// header writes it.
func parseNC(s string) (uint32, error) {
	base := 10
	if len(s) == 8 {
		base = 16
	}
	n, err := strconv.ParseUint(s, base, 32)
	if err != nil || n == 0 {
		return 0, usageError(fmt.Sprintf("invalid --nc %q (want a count from 1, in decimal or as 8 hex digits such as 0000000a)", s))
	}
	return uint32(n), nil
}

// parseHA1 checks the --ha1 flag against the header's algorithm and
// returns it in lowercase, as the response is computed over it.
func parseHA1(s string, alg digest.Algorithm) (string, error) {
	want := len(digest.HA1(alg, "", "", ""))
	if _, err := hex.DecodeString(s); err != nil || len(s) != want {
		return "", usageError(fmt.Sprintf("--ha1 must be %d hex digits for %s", want, alg))
	}
	return strings.ToLower(s), nil
}

// bodyFlag defines the --body flag of the digest commands.
func bodyFlag(fs *flag.FlagSet, p *string) {
	fs.StringVar(p, "body", "", "message body `FILE`, for qop=auth-int (default: empty)")
}

// readBody reads the --body file, or returns nil without one.
func readBody(e *env, name string) ([]byte, error) {
	if name == "" {
		return nil, nil
	}
	return e.readInput(name)
}
