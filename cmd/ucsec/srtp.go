package main

import (
	"encoding/base64"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"math/big"
	"math/bits"
	"strconv"
	"strings"

	"github.com/ucsec/ucsec/srtpkeys"
)

var srtpGroup = &group{
	name:     "srtp",
	summary:  "derive SRTP session keys; parse, offer and answer SDES a=crypto attributes",
	commands: []*command{srtpDerive},
	groups:   []*group{sdesGroup},
}

var sdesGroup = &group{
	name:     "sdes",
	summary:  "parse, offer and answer SDES a=crypto attributes (RFC 4568)",
	commands: []*command{sdesParse, sdesOffer, sdesAnswer},
}

// suiteNames lists the SDES suite names, for help and error messages.
func suiteNames() string {
	var names []string
	for _, s := range srtpkeys.Suites() {
		names = append(names, s.String())
	}
	return strings.Join(names, ", ")
}

// parseSuiteFlag parses a --suite value.
func parseSuiteFlag(name string) (srtpkeys.Suite, error) {
	s, err := srtpkeys.ParseSuite(name)
	if err != nil {
		return 0, usageError(fmt.Sprintf("unknown --suite %q (use %s)", name, suiteNames()))
	}
	return s, nil
}

// suiteFlag defines the --suite flag of the sdes commands, which may be
// repeated.
func suiteFlag(fs *flag.FlagSet, p *listFlag, usage string) {
	fs.Var(p, "suite", "crypto suite `NAME`, such as AES_CM_128_HMAC_SHA1_80, "+usage)
}

// parseSuites parses the values of suiteFlag; none gives nil.
func parseSuites(names []string) ([]srtpkeys.Suite, error) {
	var suites []srtpkeys.Suite
	for _, name := range names {
		s, err := parseSuiteFlag(name)
		if err != nil {
			return nil, err
		}
		for _, prev := range suites {
			if prev == s {
				return nil, usageError(fmt.Sprintf("--suite %s given twice", s))
			}
		}
		suites = append(suites, s)
	}
	return suites, nil
}

var srtpDerive = &command{
	name:     "derive",
	synopsis: "--suite NAME --key HEX --salt HEX [--index N] [--kdr RATE] [flags]",
	summary:  "derive the SRTP and SRTCP session keys from a master key and salt",
	help: `
Derive the SRTP and SRTCP session keys from a master key and salt as RFC
3711 §4.3 says (with RFC 6188 for AES-192 and AES-256, RFC 7714 for the
AEAD suites): the session encryption key, the session salt and the session
authentication key. --suite is an SDES suite name, in any case; it fixes
the lengths of --key (16, 24 or 32 bytes) and --salt (14 bytes, 12 for the
AEAD suites), both in hex.

--kdr is the key derivation rate itself, 0 or a power of two up to 2^24,
in decimal or written 2^n (SDES "KDR=n" is the rate 2^n). Without it, or
with 0, the session keys are derived once and the indexes do not matter;
with it, they change every RATE packets and --index picks the packet: the
SRTP packet index ROC*65536+SEQ, 0 to 2^48-1. The SRTCP keys are derived at
--srtcp-index, 0 to 2^31-1, which defaults to --index; with --kdr, an
--index above 2^31-1 therefore needs --srtcp-index. Indexes are decimal, or
hex with 0x.

The SRTCP keys follow RFC 3711 Erratum 3712, as libsrtp, pion and ffmpeg
do: the label sits at byte 7 of the salt, as for SRTP. Older NIST and
OpenSSL SRTCP vectors follow the original RFC text and give other keys.

Prints one line per key, "srtp key HEX", "srtp salt HEX", "srtp auth HEX",
then the same for srtcp; the AEAD suites have no authentication key, so no
auth lines. With --json, prints {"srtp":{"key","salt","auth"},"srtcp":
{"key","salt","auth"}}, in lowercase hex, with auth "" for AEAD.

The master key shows in ps and in the shell history: use this for test
keys and for keys of calls already made.`,
	examples: []string{
		"ucsec srtp derive --suite AES_CM_128_HMAC_SHA1_80 --key E1F97A0D3E018BE0D64FA32C06DE4139 --salt 0EC675AD498AFEEBB6960B3AABE6",
		"ucsec srtp derive --suite AES_CM_128_HMAC_SHA1_80 --key E1F97A0D3E018BE0D64FA32C06DE4139 --salt 0EC675AD498AFEEBB6960B3AABE6 --kdr 2^16 --index 0x10000 --json",
	},
	args:  noArgs,
	setup: func(fs *flag.FlagSet) action { return newSRTPDeriveCmd(fs).run },
}

type srtpDeriveCmd struct {
	suite      string
	key        string
	salt       string
	index      string
	srtcpIndex string
	kdr        string
	json       bool
}

func newSRTPDeriveCmd(fs *flag.FlagSet) *srtpDeriveCmd {
	c := new(srtpDeriveCmd)
	fs.StringVar(&c.suite, "suite", "", "crypto suite `NAME`: "+suiteNames()+" (required)")
	fs.StringVar(&c.key, "key", "", "master key in `HEX` (required)")
	fs.StringVar(&c.salt, "salt", "", "master salt in `HEX` (required)")
	fs.StringVar(&c.index, "index", "0", "SRTP packet index `N`, ROC*65536+SEQ, decimal or 0x hex")
	fs.StringVar(&c.srtcpIndex, "srtcp-index", "", "SRTCP packet index `N`, decimal or 0x hex (default: --index)")
	fs.StringVar(&c.kdr, "kdr", "0", "key derivation `RATE`: 0 (derive once) or a power of two up to 2^24, such as 65536 or 2^16")
	jsonFlag(fs, &c.json)
	return c
}

func (c *srtpDeriveCmd) run(e *env, _ []string) error {
	switch {
	case c.suite == "":
		return usageError("missing --suite")
	case c.key == "":
		return usageError("missing --key")
	case c.salt == "":
		return usageError("missing --salt")
	}
	suite, err := parseSuiteFlag(c.suite)
	if err != nil {
		return err
	}
	key, err := hexFlag("key", c.key, suite.KeyLen(), suite)
	if err != nil {
		return err
	}
	salt, err := hexFlag("salt", c.salt, suite.SaltLen(), suite)
	if err != nil {
		return err
	}
	kdr, err := parseKDR(c.kdr)
	if err != nil {
		return err
	}
	index, err := parseIndex("index", c.index, srtpkeys.MaxIndexSRTP, "2^48-1")
	if err != nil {
		return err
	}
	var srtcpIndex uint64
	switch {
	case c.srtcpIndex != "":
		if srtcpIndex, err = parseIndex("srtcp-index", c.srtcpIndex, srtpkeys.MaxIndexSRTCP, "2^31-1"); err != nil {
			return err
		}
	case index > srtpkeys.MaxIndexSRTCP && kdr == 0:
		// Without a rate, every index gives the same keys.
	case index > srtpkeys.MaxIndexSRTCP:
		return usageError(fmt.Sprintf("--index %d is above 2^31-1, the last SRTCP index; give --srtcp-index for the SRTCP keys", index))
	default:
		srtcpIndex = index
	}

	k, err := srtpkeys.NewMasterKey(suite, key, salt)
	clear(key)
	clear(salt)
	if err != nil {
		return err
	}
	d, err := srtpkeys.NewDeriver(k, kdr)
	if err != nil {
		return err
	}
	rtp, err := d.SRTP(index)
	if err != nil {
		return err
	}
	rtcp, err := d.SRTCP(uint32(srtcpIndex))
	if err != nil {
		return err
	}
	if c.json {
		return e.printJSON(struct {
			SRTP  sessionKeysReport `json:"srtp"`
			SRTCP sessionKeysReport `json:"srtcp"`
		}{newSessionKeysReport(&rtp), newSessionKeysReport(&rtcp)})
	}
	for _, s := range []struct {
		name string
		keys *srtpkeys.SessionKeys
	}{{"srtp", &rtp}, {"srtcp", &rtcp}} {
		fmt.Fprintf(e.stdout, "%-5s  key   %x\n", s.name, s.keys.Key())
		fmt.Fprintf(e.stdout, "%-5s  salt  %x\n", s.name, s.keys.Salt())
		if auth := s.keys.Auth(); len(auth) > 0 {
			fmt.Fprintf(e.stdout, "%-5s  auth  %x\n", s.name, auth)
		}
	}
	return nil
}

// sessionKeysReport is the JSON form of session keys.
type sessionKeysReport struct {
	Key  hexBytes `json:"key"`
	Salt hexBytes `json:"salt"`
	Auth hexBytes `json:"auth"` // "" for AEAD
}

func newSessionKeysReport(s *srtpkeys.SessionKeys) sessionKeysReport {
	return sessionKeysReport{Key: s.Key(), Salt: s.Salt(), Auth: s.Auth()}
}

// hexFlag decodes the hex value of flag name, which must be n bytes long
// for suite.
func hexFlag(name, value string, n int, suite srtpkeys.Suite) ([]byte, error) {
	b, err := hex.DecodeString(value)
	if err != nil {
		return nil, usageError(fmt.Sprintf("--%s is not hex", name))
	}
	if len(b) != n {
		return nil, usageError(fmt.Sprintf("--%s has %d bytes; %s needs %d (%d hex digits)", name, len(b), suite, n, 2*n))
	}
	return b, nil
}

// parseIndex parses the packet index of flag name: decimal, or hex after
// 0x, at most maxIndex (written maxText).
func parseIndex(name, s string, maxIndex uint64, maxText string) (uint64, error) {
	digits, base := s, 10
	if len(s) > 2 && (s[:2] == "0x" || s[:2] == "0X") {
		digits, base = s[2:], 16
	}
	n, err := strconv.ParseUint(digits, base, 64)
	if err != nil || n > maxIndex {
		return 0, usageError(fmt.Sprintf("invalid --%s %q (want 0 to %s, in decimal or as 0x hex)", name, s, maxText))
	}
	return n, nil
}

// parseKDR parses the --kdr flag: the rate in decimal, or 2^n.
func parseKDR(s string) (uint64, error) {
	bad := usageError(fmt.Sprintf("invalid --kdr %q (want 0 or a power of two up to 2^24, such as 65536 or 2^16)", s))
	if exp, ok := strings.CutPrefix(s, "2^"); ok {
		n, err := strconv.Atoi(exp)
		if err != nil {
			return 0, bad
		}
		rate, err := srtpkeys.KDRFromExponent(n)
		if err != nil {
			return 0, bad
		}
		return rate, nil
	}
	rate, err := strconv.ParseUint(s, 10, 64)
	if err != nil || srtpkeys.CheckKDR(rate) != nil {
		return 0, bad
	}
	return rate, nil
}

// cryptoInput is one a=crypto attribute from the command line.
type cryptoInput struct {
	where string // "argument 2", "stdin line 3"
	line  string
}

// cryptoInputs returns the a=crypto attributes of the arguments: each
// argument is one or more lines, and "-" is standard input. Lines of other
// SDP attributes and types ("a=rtpmap:…", "m=audio …") and blank lines are
// skipped, so a whole media section can be given; any other line is an
// attribute, with or without "a=crypto:".
func (e *env) cryptoInputs(args []string) ([]cryptoInput, error) {
	var out []cryptoInput
	for i, arg := range args {
		text, what := arg, fmt.Sprintf("argument %d", i+1)
		if arg == "-" {
			data, err := e.readInput("-")
			if err != nil {
				return nil, err
			}
			text, what = string(data), "stdin"
		}
		n := len(out)
		lineNo := 0
		for line := range strings.Lines(text) {
			lineNo++
			line = strings.TrimSpace(line)
			if line == "" || (isSDPLine(line) && !hasPrefixFold(line, "a=crypto:")) {
				continue
			}
			where := what
			if arg == "-" || strings.Contains(strings.TrimSpace(text), "\n") {
				where = fmt.Sprintf("%s line %d", what, lineNo)
			}
			out = append(out, cryptoInput{where, line})
		}
		if len(out) == n {
			return nil, fmt.Errorf("%s holds no a=crypto attribute", what)
		}
	}
	return out, nil
}

// isSDPLine reports whether line is an SDP line, a letter and "=".
func isSDPLine(line string) bool {
	return len(line) >= 2 && line[1] == '=' && ('a' <= line[0] && line[0] <= 'z' || 'A' <= line[0] && line[0] <= 'Z')
}

func hasPrefixFold(s, prefix string) bool {
	return len(s) >= len(prefix) && strings.EqualFold(s[:len(prefix)], prefix)
}

// inputError is an error in one of several inputs: it names the input.
func inputError(in cryptoInput, several bool, err error) error {
	if !several {
		return err
	}
	return fmt.Errorf("%s: %w", in.where, err)
}

// attributeArgs are the positional arguments of the sdes commands that
// read attributes.
var attributeArgs = argCount{1, -1, "a=crypto attribute"}

var sdesParse = &command{
	name:     "parse",
	synopsis: "[--json] LINE...",
	summary:  "show the tag, suite, keys and parameters of a=crypto attributes",
	help: `
Parse SDES crypto attributes (RFC 4568, RFC 6188, RFC 7714) and show their
parts: the tag, the suite, each key with its salt in hex and as the base64
the line carries, its lifetime and MKI, and the session parameters. This
is an inspection tool: it prints the keys.

Each LINE is an attribute, "a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:…",
with or without "a=crypto:" (quote it: it holds spaces). A LINE may hold
several lines, and "-" reads them from standard input, which keeps the keys
out of ps; other SDP lines ("m=audio …", "a=rtpmap:…") are skipped there,
so a whole media section can be pasted.

Parsing is lenient where peers differ from RFC 4568 and harmless (suite
names in any case, AES_CM_256_… for AES_256_CM_…, base64 without padding,
decimal lifetimes), strict where a mistake would change the keys. A
malformed attribute exits with status 2, naming the offset of the fault
in bytes from the start of the attribute as given; nothing is printed
then.

With --json, prints one object per attribute: {"tag", "suite", "keys":
[{"key", "salt", "inline", "lifetime", "mki", "mki_value", "mki_length"}],
"params": {"kdr", "unencrypted_srtp", "unencrypted_srtcp",
"unauthenticated_srtp", "fec_order", "fec_keys", "wsh", "extensions"}}.
key, salt and mki are hex; inline is base64 of key and salt; lifetime is a
packet count and kdr the rate itself, 0 when absent; mki_value is the MKI
in decimal as SDES writes it, "" without an MKI.`,
	examples: []string{
		`ucsec srtp sdes parse 'a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:PS1uQCVeeCFCanVmcjkpPywjNWhcYD0mXXtxaVBR|2^20|1:32'`,
		`ucsec srtp sdes parse --json - < offer.sdp`,
	},
	args:  attributeArgs,
	setup: func(fs *flag.FlagSet) action { return newSDESParseCmd(fs).run },
}

type sdesParseCmd struct {
	json bool
}

func newSDESParseCmd(fs *flag.FlagSet) *sdesParseCmd {
	c := new(sdesParseCmd)
	jsonFlag(fs, &c.json)
	return c
}

func (c *sdesParseCmd) run(e *env, args []string) error {
	inputs, err := e.cryptoInputs(args)
	if err != nil {
		return err
	}
	var parsed []*srtpkeys.Crypto
	for _, in := range inputs {
		cr, err := srtpkeys.ParseCrypto(in.line)
		if err != nil {
			return inputError(in, len(inputs) > 1, err)
		}
		parsed = append(parsed, cr)
	}
	for i, cr := range parsed {
		r := newCryptoReport(cr)
		if c.json {
			if err := e.printJSON(r); err != nil {
				return err
			}
			continue
		}
		if i > 0 {
			fmt.Fprintln(e.stdout)
		}
		printTable(e.stdout, r.rows())
	}
	return nil
}

// cryptoReport is what "srtp sdes parse" shows of an attribute.
type cryptoReport struct {
	Tag    int          `json:"tag"`
	Suite  string       `json:"suite"`
	Keys   []keyReport  `json:"keys"`
	Params paramsReport `json:"params"`
}

// keyReport is one inline key of an attribute.
type keyReport struct {
	Key       hexBytes `json:"key"`
	Salt      hexBytes `json:"salt"`
	Inline    string   `json:"inline"`     // base64 of key and salt
	Lifetime  uint64   `json:"lifetime"`   // packets; 0 when not given
	MKI       hexBytes `json:"mki"`        // "" for none
	MKIValue  string   `json:"mki_value"`  // in decimal; "" for none
	MKILength int      `json:"mki_length"` // in bytes; 0 for none
}

// paramsReport holds the session parameters of an attribute.
type paramsReport struct {
	KDR                 uint64      `json:"kdr"` // the rate, 2^n for KDR=n; 0 when absent
	UnencryptedSRTP     bool        `json:"unencrypted_srtp"`
	UnencryptedSRTCP    bool        `json:"unencrypted_srtcp"`
	UnauthenticatedSRTP bool        `json:"unauthenticated_srtp"`
	FECOrder            string      `json:"fec_order"`
	FECKeys             []keyReport `json:"fec_keys"`
	WSH                 uint64      `json:"wsh"`
	Extensions          []string    `json:"extensions"`
}

func newCryptoReport(c *srtpkeys.Crypto) *cryptoReport {
	p := &c.Params
	return &cryptoReport{
		Tag:   c.Tag,
		Suite: c.Suite.String(),
		Keys:  newKeyReports(c.Keys),
		Params: paramsReport{
			KDR:                 p.KDR,
			UnencryptedSRTP:     p.UnencryptedSRTP,
			UnencryptedSRTCP:    p.UnencryptedSRTCP,
			UnauthenticatedSRTP: p.UnauthenticatedSRTP,
			FECOrder:            p.FECOrder,
			FECKeys:             newKeyReports(p.FECKey),
			WSH:                 p.WSH,
			Extensions:          append([]string{}, p.Extensions...),
		},
	}
}

func newKeyReports(keys []srtpkeys.MasterKey) []keyReport {
	out := make([]keyReport, 0, len(keys))
	for _, k := range keys {
		r := keyReport{
			Key:      k.Key(),
			Salt:     k.Salt(),
			Inline:   base64.StdEncoding.EncodeToString(k.KeySalt()),
			Lifetime: k.Lifetime,
			MKI:      hexBytes(k.MKI),
		}
		if k.MKI != nil {
			r.MKIValue = new(big.Int).SetBytes(k.MKI).String()
			r.MKILength = len(k.MKI)
		}
		out = append(out, r)
	}
	return out
}

// rows returns the table "srtp sdes parse" prints.
func (r *cryptoReport) rows() [][2]string {
	rows := [][2]string{
		{"Tag", strconv.Itoa(r.Tag)},
		{"Suite", r.Suite},
	}
	rows = appendKeyRows(rows, "", r.Keys)
	p := &r.Params
	var params []string
	if p.KDR != 0 {
		params = append(params, fmt.Sprintf("KDR=%d (rate %d)", bits.TrailingZeros64(p.KDR), p.KDR))
	}
	for _, f := range []struct {
		set  bool
		name string
	}{{p.UnencryptedSRTP, "UNENCRYPTED_SRTP"}, {p.UnencryptedSRTCP, "UNENCRYPTED_SRTCP"}, {p.UnauthenticatedSRTP, "UNAUTHENTICATED_SRTP"}} {
		if f.set {
			params = append(params, f.name)
		}
	}
	if p.FECOrder != "" {
		params = append(params, "FEC_ORDER="+p.FECOrder)
	}
	if len(p.FECKeys) > 0 {
		params = append(params, "FEC_KEY")
	}
	if p.WSH != 0 {
		params = append(params, "WSH="+strconv.FormatUint(p.WSH, 10))
	}
	for _, x := range p.Extensions {
		params = append(params, printable(x))
	}
	if len(params) == 0 {
		params = []string{"(none)"}
	}
	rows = append(rows, [2]string{"Session Params", strings.Join(params, " ")})
	return appendKeyRows(rows, "FEC ", p.FECKeys)
}

// appendKeyRows appends the rows of keys, their labels starting with
// prefix and numbered if there are several.
func appendKeyRows(rows [][2]string, prefix string, keys []keyReport) [][2]string {
	for i, k := range keys {
		n := ""
		if len(keys) > 1 {
			n = " " + strconv.Itoa(i+1)
		}
		lifetime, mki := "(none)", "(none)"
		if k.Lifetime != 0 {
			lifetime = lifetimeText(k.Lifetime)
		}
		if k.MKI != nil {
			mki = fmt.Sprintf("%s:%d (%x)", k.MKIValue, k.MKILength, []byte(k.MKI))
		}
		rows = append(rows,
			[2]string{prefix + "Key" + n, hex.EncodeToString(k.Key)},
			[2]string{prefix + "Salt" + n, hex.EncodeToString(k.Salt)},
			[2]string{prefix + "Inline" + n, k.Inline},
			[2]string{prefix + "Lifetime" + n, lifetime},
			[2]string{prefix + "MKI" + n, mki},
		)
	}
	return rows
}

// lifetimeText writes a key lifetime: "2^20 (1048576 packets)" for a power
// of two, "1000 packets" otherwise.
func lifetimeText(v uint64) string {
	if v&(v-1) == 0 {
		return fmt.Sprintf("2^%d (%d packets)", bits.TrailingZeros64(v), v)
	}
	return fmt.Sprintf("%d packets", v)
}

var sdesOffer = &command{
	name:     "offer",
	synopsis: "[--suite NAME...] [--json]",
	summary:  "make an SDES offer: one a=crypto attribute with a fresh key per suite",
	help: `
Make the a=crypto attributes of an SDES offer (RFC 4568) and print them,
one "a=crypto:" line per suite, ready for the media section of an SDP
offer: tags 1, 2, … in the order of --suite, which is the order of
preference, each with a fresh random master key and salt of its own, in
the minimal form every SDES peer parses (tag, suite, key; no lifetime, MKI
or session parameters).

--suite may be repeated; without it, the suites pion/srtp runs are
offered, strongest first: AEAD_AES_256_GCM, AEAD_AES_128_GCM,
AES_256_CM_HMAC_SHA1_80, AES_CM_128_HMAC_SHA1_80, AES_256_CM_HMAC_SHA1_32,
AES_CM_128_HMAC_SHA1_32. The lines hold the keys: whoever sees them can
decrypt the call.

With --json, prints one object per attribute: {"tag", "suite",
"attribute", "key", "salt"}, with the line as "attribute" and the master
key and salt in hex.`,
	examples: []string{
		"ucsec srtp sdes offer --suite AES_CM_128_HMAC_SHA1_80 --suite AES_CM_128_HMAC_SHA1_32",
		"ucsec srtp sdes offer --json",
	},
	args:  noArgs,
	setup: func(fs *flag.FlagSet) action { return newSDESOfferCmd(fs).run },
}

type sdesOfferCmd struct {
	suites listFlag
	json   bool
}

func newSDESOfferCmd(fs *flag.FlagSet) *sdesOfferCmd {
	c := new(sdesOfferCmd)
	suiteFlag(fs, &c.suites, "to offer, most preferred first (may be repeated; default: those pion/srtp runs)")
	jsonFlag(fs, &c.json)
	return c
}

func (c *sdesOfferCmd) run(e *env, _ []string) error {
	suites, err := parseSuites(c.suites)
	if err != nil {
		return err
	}
	o, err := srtpkeys.NewOffer(nil, suites...)
	if err != nil {
		return err
	}
	for i := range o.Crypto {
		if err := e.printAttribute(&o.Crypto[i], c.json); err != nil {
			return err
		}
	}
	return nil
}

// attributeReport is the JSON form of an attribute that this end made.
type attributeReport struct {
	Tag       int      `json:"tag"`
	Suite     string   `json:"suite"`
	Attribute string   `json:"attribute"`
	Key       hexBytes `json:"key"`
	Salt      hexBytes `json:"salt"`
}

// printAttribute prints the a=crypto line of c, or its attributeReport
// with asJSON.
func (e *env) printAttribute(c *srtpkeys.Crypto, asJSON bool) error {
	line, err := c.Attribute()
	if err != nil {
		return err
	}
	if !asJSON {
		_, err = fmt.Fprintln(e.stdout, line)
		return err
	}
	return e.printJSON(&attributeReport{
		Tag:       c.Tag,
		Suite:     c.Suite.String(),
		Attribute: line,
		Key:       c.Keys[0].Key(),
		Salt:      c.Keys[0].Salt(),
	})
}

var sdesAnswer = &command{
	name:     "answer",
	synopsis: "[--suite NAME...] [flags] LINE...",
	summary:  "answer an SDES offer: pick an offered attribute and key it",
	help: `
Answer the a=crypto attributes of one media section of an SDES offer (RFC
4568 §7.1.2) and print the answer's a=crypto line: the first offered
attribute (the offerer's preference) whose suite this end accepts, its tag
echoed, with a fresh random master key and salt for what this end sends.
The answer repeats the offer's UNENCRYPTED_SRTP, UNENCRYPTED_SRTCP and
UNAUTHENTICATED_SRTP parameters, as RFC 4568 requires, and no others.

Each LINE is an attribute, with or without "a=crypto:"; "-" reads them from
standard input, where other SDP lines are skipped (give only one media
section). Attributes with an unknown suite are skipped; a malformed one,
or two with one tag, reject the offer. --suite, which may be repeated,
lists the suites this end accepts (default: those pion/srtp runs; see
"ucsec srtp sdes offer -h"). Attributes that switch off encryption or
authentication are skipped unless --allow-unprotected is given, and those
with a key derivation rate (KDR=n), which pion/srtp cannot run, unless
--allow-kdr is.

Exits with status 1 if no offered attribute is acceptable, 2 if the offer
is malformed. With --json, prints {"tag", "suite", "attribute", "key",
"salt"}: the tag and suite chosen, the answer line, and its master key and
salt in hex.`,
	examples: []string{
		`ucsec srtp sdes answer 'a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:PS1uQCVeeCFCanVmcjkpPywjNWhcYD0mXXtxaVBR'`,
		`ucsec srtp sdes answer --suite AES_CM_128_HMAC_SHA1_80 --json - < offer.sdp`,
	},
	args:  attributeArgs,
	setup: func(fs *flag.FlagSet) action { return newSDESAnswerCmd(fs).run },
}

type sdesAnswerCmd struct {
	suites           listFlag
	allowUnprotected bool
	allowKDR         bool
	json             bool
}

func newSDESAnswerCmd(fs *flag.FlagSet) *sdesAnswerCmd {
	c := new(sdesAnswerCmd)
	suiteFlag(fs, &c.suites, "to accept (may be repeated; default: those pion/srtp runs)")
	fs.BoolVar(&c.allowUnprotected, "allow-unprotected", false, "accept attributes with UNENCRYPTED_SRTP, UNENCRYPTED_SRTCP or UNAUTHENTICATED_SRTP")
	fs.BoolVar(&c.allowKDR, "allow-kdr", false, "accept attributes with a key derivation rate (KDR=n)")
	jsonFlag(fs, &c.json)
	return c
}

func (c *sdesAnswerCmd) run(e *env, args []string) error {
	suites, err := parseSuites(c.suites)
	if err != nil {
		return err
	}
	inputs, err := e.cryptoInputs(args)
	if err != nil {
		return err
	}
	lines := make([]string, len(inputs))
	for i, in := range inputs {
		// Answer rejects the offer for a malformed attribute, without
		// saying which: check them first. It skips unknown suites.
		if _, err := srtpkeys.ParseCrypto(in.line); err != nil && !errors.Is(err, srtpkeys.ErrUnknownSuite) {
			return inputError(in, len(inputs) > 1, err)
		}
		lines[i] = in.line
	}
	ans, _, err := srtpkeys.Answer(lines, &srtpkeys.AnswerOptions{
		Suites:           suites,
		AllowUnprotected: c.allowUnprotected,
		AllowKDR:         c.allowKDR,
	})
	if err != nil {
		return err
	}
	return e.printAttribute(ans, c.json)
}
