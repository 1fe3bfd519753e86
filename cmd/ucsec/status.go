package main

import (
	"bytes"
	"encoding"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"reflect"
	"strings"
	"text/tabwriter"

	"github.com/ucsec/ucsec/secstatus"
)

// maxStatusInput is the largest call description "status" reads.
const maxStatusInput = 1 << 20

// statusExample is the call description the help shows, and
// statusExampleOutput what "ucsec status" prints for it (the tests check
// both).
const (
	statusExample = `{
  "options": {"mixed_mode": true},
  "call": {
    "devices": [
      {"name": "SEP001122334455", "mode": "encrypted", "audio_srtp": true},
      {"name": "SEP665544332211", "mode": "authenticated", "display": "lock-only"}
    ],
    "trunks": [],
    "resources": []
  }
}`
	statusExampleOutput = `call is Authenticated: "SEP665544332211": device security mode is authenticated (no media encryption)
  SEP001122334455  shield  call is Authenticated: "SEP665544332211": device security mode is authenticated (no media encryption)
  SEP665544332211  none    device security mode is authenticated (no media encryption)`
)

var statusCommand = &command{
	name:     "status",
	synopsis: "[--json] [FILE|-]",
	summary:  "show the security level of a call or conference and the icon each phone shows",
	help: `
Evaluate the security status of a call or a conference as CUCM does (the
least secure part sets the level: Unknown, NotAuthenticated, Authenticated
or Encrypted) and show the icon each device shows for it: the lock, the
shield, or none. FILE, or standard input if it is "-" or absent, holds a
description of the call in JSON, such as:

` + indentText(statusExample, "  ") + `

for which it prints:

` + indentText(statusExampleOutput, "  ") + `

The document is one object: "options", which may be left out, and exactly
one of "call" and "conference":

  options     cluster settings, all false when absent:
                mixed_mode            cluster security mode is mixed; without
                                      it every device is NotAuthenticated
                override_bfcp         the service parameter "Override BFCP
                                      Application Encryption Status …":
                                      secure audio shows the lock whatever
                                      the video is
                secure_moh            release 14 and later: unicast music on
                                      hold is SRTP where it can be
                legacy_sip_trunks     early releases: any SIP trunk in the
                                      path makes the call nonsecure
                honour_remote_status  the status a trunk peer sends in
                                      Call-Info lowers the trunk leg
  call        "devices" (at least one), "trunks", "resources", and
              "hairpin": transferred back into the cluster across a SIP trunk
  conference  "bridge": {"secure", "software"}; "participants" (devices,
              at least one); "trunks"; "chained" (conferences linked into
              it); "packet_capture", "announcement", "adding",
              "joined_unknown"

A device is {"name"; "mode": "non-secure" (when absent), "authenticated" or
"encrypted"; "display": "shield-and-lock" (when absent) or "lock-only";
"audio_srtp", "video", "video_srtp": what was negotiated on its leg;
"untrusted", "no_sis2", "legacy_firmware", "gateway"}. A trunk is {"name",
"tls", "srtp", "secure_when_srtp_only"; "remote_status": "Unknown",
"NotAuthenticated", "Authenticated" or "Encrypted"}. A resource is {"kind":
"moh", "transcoder" or "mtp"; "multicast"}. Other fields are true or false,
false when absent. Unknown fields, unknown names, a second JSON value and
input over 1 MiB are errors.

Prints the level of the call or conference and the part that set it,
then, per device, its name, the icon it shows and why. A device shows the
icon of the whole call, not of its own leg; a gateway shows none. With
--json, prints {"level", "media", "reason", "devices": [{"name", "leg",
"icon", "reason"}]}: media holds what the icon decision saw, leg the level
of the device's own leg.

The rules, row by row, are in the documentation of package secstatus
(go doc github.com/ucsec/ucsec/secstatus).

Exits 0 whatever the level (this is a report), 2 if the input cannot be
read or does not describe a call.`,
	examples: []string{
		"ucsec status call.json",
		"ucsec status --json - < conference.json",
		`echo '{"options":{"mixed_mode":true},"call":{"devices":[{"name":"SEP001122334455","mode":"encrypted","audio_srtp":true},{"name":"SEP665544332211","mode":"encrypted","audio_srtp":true}]}}' | ucsec status`,
	},
	args:  argCount{0, 1, ""},
	setup: func(fs *flag.FlagSet) action { return newStatusCmd(fs).run },
}

type statusCmd struct {
	json bool
}

func newStatusCmd(fs *flag.FlagSet) *statusCmd {
	c := new(statusCmd)
	jsonFlag(fs, &c.json)
	return c
}

// statusInput is the document "status" reads.
type statusInput struct {
	Options    statusOptions         `json:"options"`
	Call       *secstatus.Call       `json:"call"`
	Conference *secstatus.Conference `json:"conference"`
}

// statusOptions is the JSON form of secstatus.Options, which has no JSON
// names. It has the same fields (a test checks).
type statusOptions struct {
	MixedMode          bool `json:"mixed_mode"`
	OverrideBFCP       bool `json:"override_bfcp"`
	SecureMOH          bool `json:"secure_moh"`
	LegacySIPTrunks    bool `json:"legacy_sip_trunks"`
	HonourRemoteStatus bool `json:"honour_remote_status"`
}

func (o *statusOptions) options() *secstatus.Options {
	return &secstatus.Options{
		MixedMode:          o.MixedMode,
		OverrideBFCP:       o.OverrideBFCP,
		SecureMOH:          o.SecureMOH,
		LegacySIPTrunks:    o.LegacySIPTrunks,
		HonourRemoteStatus: o.HonourRemoteStatus,
	}
}

func (c *statusCmd) run(e *env, args []string) error {
	name := "-"
	if len(args) > 0 {
		name = args[0]
	}
	data, err := e.readInputMax(name, maxStatusInput)
	if err != nil {
		return err
	}
	in, err := parseStatusInput(data)
	if err != nil {
		return &fileError{name, err}
	}
	opts := in.Options.options()
	what := "call"
	var res *secstatus.Result
	if in.Call != nil {
		res, err = secstatus.Evaluate(in.Call, opts)
	} else {
		what = "conference"
		res, err = in.Conference.Evaluate(opts)
	}
	if err != nil {
		return &fileError{name, err}
	}
	if c.json {
		return e.printJSON(res)
	}
	fmt.Fprintf(e.stdout, "%s is %s: %s\n", what, res.Level, printable(res.Reason))
	tw := tabwriter.NewWriter(e.stdout, 0, 0, 2, ' ', 0)
	for _, d := range res.Devices {
		name := printable(d.Name)
		if name == "" {
			name = "(unnamed)"
		}
		fmt.Fprintf(tw, "  %s\t%s\t%s\n", name, d.Icon, printable(d.Reason))
	}
	return tw.Flush()
}

// parseStatusInput decodes the document of "status" strictly: one JSON
// object, no unknown fields, exactly one of call and conference.
func parseStatusInput(data []byte) (*statusInput, error) {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	in := new(statusInput)
	if err := dec.Decode(in); err != nil {
		return nil, jsonError(data, err)
	}
	end := dec.InputOffset()
	if rest := bytes.TrimLeft(data[end:], " \t\r\n"); len(rest) > 0 {
		return nil, fmt.Errorf("%s: more after the JSON object", position(data, int64(len(data)-len(rest))))
	}
	switch {
	case in.Call != nil && in.Conference != nil:
		return nil, errors.New(`give "call" or "conference", not both`)
	case in.Call == nil && in.Conference == nil:
		return nil, errors.New(`no "call" or "conference" object`)
	}
	return in, nil
}

// jsonError rewrites an error of encoding/json decoding data into one
// that names the place and the problem in the words of the help, without
// Go's type names.
func jsonError(data []byte, err error) error {
	if se, ok := errors.AsType[*json.SyntaxError](err); ok {
		// The offending byte is the last one read.
		return fmt.Errorf("%s: %s", position(data, se.Offset-1), se)
	}
	if te, ok := errors.AsType[*json.UnmarshalTypeError](err); ok {
		field := te.Field
		if field == "" {
			field = "the document"
		}
		got, _, _ := strings.Cut(te.Value, " ") // "number 1.5"
		return fmt.Errorf("%s: %s: want %s, not %s", position(data, valueStart(data, te.Offset)), field, jsonKind(te.Type), withArticle(got))
	}
	switch {
	case errors.Is(err, io.EOF):
		return errors.New("empty input; want a JSON object")
	case errors.Is(err, io.ErrUnexpectedEOF):
		return errors.New("unexpected end of the JSON input")
	}
	if s, ok := strings.CutPrefix(err.Error(), "json: "); ok {
		return errors.New(s) // unknown field "x"
	}
	return err // from an UnmarshalText method: names the value
}

// position returns "line L, column C" of byte offset off of data; columns
// count bytes from 1.
func position(data []byte, off int64) string {
	off = min(max(off, 0), int64(len(data)))
	before := data[:off]
	line := bytes.Count(before, []byte("\n")) + 1
	col := len(before) - bytes.LastIndexByte(before, '\n')
	return fmt.Sprintf("line %d, column %d", line, col)
}

// valueStart returns the offset of the start of the JSON value that an
// UnmarshalTypeError reports at off: the decoder has read a scalar value
// whole, and only the opening bracket of an array or object.
func valueStart(data []byte, off int64) int64 {
	i := min(off, int64(len(data))) - 1
	if i < 0 {
		return 0
	}
	switch data[i] {
	case '[', '{':
		return i
	case '"':
		// Back to the opening quote: one not escaped by an odd number
		// of backslashes.
		for j := i - 1; j >= 0; j-- {
			if data[j] != '"' {
				continue
			}
			k := j
			for k > 0 && data[k-1] == '\\' {
				k--
			}
			if (j-k)%2 == 0 {
				return j
			}
		}
		return i
	}
	// A number, true, false or null.
	for i > 0 && strings.IndexByte("0123456789+-.eEaflnrstu", data[i-1]) >= 0 {
		i--
	}
	return i
}

var textUnmarshaler = reflect.TypeFor[encoding.TextUnmarshaler]()

// jsonKind describes the JSON values that decode into t.
func jsonKind(t reflect.Type) string {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if reflect.PointerTo(t).Implements(textUnmarshaler) {
		return "a string"
	}
	switch t.Kind() {
	case reflect.Bool:
		return "true or false"
	case reflect.String:
		return "a string"
	case reflect.Struct, reflect.Map:
		return "an object"
	case reflect.Slice, reflect.Array:
		return "an array"
	}
	return "a number"
}

// withArticle returns the JSON kind word of an UnmarshalTypeError with
// its article: "an array", "a number".
func withArticle(kind string) string {
	switch kind {
	case "array", "object":
		return "an " + kind
	case "bool":
		return "true or false"
	}
	return "a " + kind
}

// indentText returns s with prefix before each line.
func indentText(s, prefix string) string {
	return prefix + strings.ReplaceAll(s, "\n", "\n"+prefix)
}
