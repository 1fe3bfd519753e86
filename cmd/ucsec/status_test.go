package main

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/ucsec/ucsec/secstatus"
)

// Devices of the status tests, as JSON.
const (
	encPhone  = `{"name": "SEP001122334455", "mode": "encrypted", "audio_srtp": true}`
	encPhone2 = `{"name": "SEP00AABBCCDDEE", "mode": "encrypted", "audio_srtp": true}`
	authPhone = `{"name": "SEP665544332211", "mode": "authenticated"}`
	lockOnly  = `{"name": "SEP665544332211", "mode": "authenticated", "display": "lock-only"}`
)

// callDoc returns a "status" document of a call with the devices, in a
// mixed-mode cluster, with more fields of the call after them.
func callDoc(devices []string, more ...string) string {
	return `{"options": {"mixed_mode": true}, "call": {"devices": [` + strings.Join(devices, ", ") + `]` + tail(more) + `}}`
}

// confDoc is callDoc for a conference on a bridge.
func confDoc(bridge string, participants []string, more ...string) string {
	return `{"options": {"mixed_mode": true}, "conference": {"bridge": ` + bridge + `, "participants": [` + strings.Join(participants, ", ") + `]` + tail(more) + `}}`
}

func tail(more []string) string {
	if len(more) == 0 {
		return ""
	}
	return ", " + strings.Join(more, ", ")
}

// statusReport is what "status --json" prints: secstatus.Result, whose
// Icon cannot be decoded into its own type.
type statusReport struct {
	Level string `json:"level"`
	Media struct {
		Authenticated bool `json:"authenticated"`
		AudioSecure   bool `json:"audio_secure"`
		Video         bool `json:"video"`
		VideoSecure   bool `json:"video_secure"`
	} `json:"media"`
	Reason  string `json:"reason"`
	Devices []struct {
		Name   string `json:"name"`
		Leg    string `json:"leg"`
		Icon   string `json:"icon"`
		Reason string `json:"reason"`
	} `json:"devices"`
}

// statusJSON runs "status --json" on doc from standard input and decodes
// its output strictly.
func statusJSON(t *testing.T, doc string) statusReport {
	t.Helper()
	r := ucsec(t, doc, "status", "--json")
	require.Equal(t, exitOK, r.code, "stderr: %s", r.stderr)
	assert.Empty(t, r.stderr)
	require.Equal(t, 1, strings.Count(r.stdout, "\n"), r.stdout)
	var rep statusReport
	dec := json.NewDecoder(strings.NewReader(r.stdout))
	dec.DisallowUnknownFields()
	require.NoError(t, dec.Decode(&rep), r.stdout)
	return rep
}

// icons returns the icon of each device of rep.
func (rep *statusReport) icons() []string {
	var icons []string
	for _, d := range rep.Devices {
		icons = append(icons, d.Icon)
	}
	return icons
}

// writeDoc writes doc to a file in a temporary directory and returns its
// path.
func writeDoc(t *testing.T, doc string) string {
	t.Helper()
	name := filepath.Join(t.TempDir(), "call.json")
	require.NoError(t, os.WriteFile(name, []byte(doc), 0o644))
	return name
}

func TestStatusEncryptedCall(t *testing.T) {
	doc := callDoc([]string{encPhone, encPhone2})
	r := mustRun(t, exitOK, "status", writeDoc(t, doc))
	assert.Equal(t, `call is Encrypted: "SEP001122334455": encrypted signalling and SRTP audio
  SEP001122334455  lock  encrypted signalling and SRTP audio
  SEP00AABBCCDDEE  lock  encrypted signalling and SRTP audio
`, r.stdout)
	assert.Empty(t, r.stderr)

	rep := statusJSON(t, doc)
	assert.Equal(t, "Encrypted", rep.Level)
	assert.True(t, rep.Media.Authenticated)
	assert.True(t, rep.Media.AudioSecure)
	assert.Equal(t, []string{"lock", "lock"}, rep.icons())
	for _, d := range rep.Devices {
		assert.Equal(t, "Encrypted", d.Leg)
	}
	assert.Equal(t, "SEP00AABBCCDDEE", rep.Devices[1].Name)
}

func TestStatusEncryptedAndAuthenticated(t *testing.T) {
	// The help's example: the encrypted phone shows the shield for the
	// authenticated call; the other shows nothing, being lock-only.
	r := mustRun(t, exitOK, "status", writeDoc(t, statusExample))
	assert.Equal(t, statusExampleOutput+"\n", r.stdout)

	rep := statusJSON(t, statusExample)
	assert.Equal(t, "Authenticated", rep.Level)
	assert.Contains(t, rep.Reason, "SEP665544332211")
	assert.Equal(t, []string{"shield", "none"}, rep.icons())
	assert.Equal(t, []string{"Encrypted", "Authenticated"}, []string{rep.Devices[0].Leg, rep.Devices[1].Leg})

	// On a phone that shows both, the authenticated one shows the shield
	// too.
	rep = statusJSON(t, callDoc([]string{encPhone, authPhone}))
	assert.Equal(t, []string{"shield", "shield"}, rep.icons())
}

func TestStatusTranscoder(t *testing.T) {
	doc := callDoc([]string{encPhone, encPhone2}, `"resources": [{"kind": "transcoder"}]`)
	r := mustRun(t, exitOK, "status", writeDoc(t, doc))
	assert.Equal(t, `call is Authenticated: a transcoder carries no SRTP
  SEP001122334455  shield  call is Authenticated: a transcoder carries no SRTP
  SEP00AABBCCDDEE  shield  call is Authenticated: a transcoder carries no SRTP
`, r.stdout)

	rep := statusJSON(t, doc)
	assert.Equal(t, "Authenticated", rep.Level)
	assert.False(t, rep.Media.AudioSecure)
	// Each device's own leg stays encrypted: only the call is lowered.
	assert.Equal(t, "Encrypted", rep.Devices[0].Leg)

	// Enum names in any case, as the library reads them.
	rep = statusJSON(t, callDoc([]string{encPhone, encPhone2}, `"resources": [{"kind": "MTP"}]`))
	assert.Equal(t, "Authenticated", rep.Level)
	assert.Equal(t, "an MTP carries no SRTP", rep.Reason)
}

func TestStatusConference(t *testing.T) {
	doc := confDoc(`{"secure": true}`, []string{encPhone, encPhone2, authPhone})
	r := mustRun(t, exitOK, "status", writeDoc(t, doc))
	assert.Equal(t, `conference is Authenticated: "SEP665544332211": device security mode is authenticated (no media encryption)
  SEP001122334455  shield  conference is Authenticated: "SEP665544332211": device security mode is authenticated (no media encryption)
  SEP00AABBCCDDEE  shield  conference is Authenticated: "SEP665544332211": device security mode is authenticated (no media encryption)
  SEP665544332211  shield  device security mode is authenticated (no media encryption)
`, r.stdout)

	rep := statusJSON(t, doc)
	assert.Equal(t, "Authenticated", rep.Level)
	assert.Equal(t, []string{"shield", "shield", "shield"}, rep.icons())

	// A nonsecure bridge: nothing, whatever the parties.
	rep = statusJSON(t, confDoc(`{"secure": false}`, []string{encPhone, encPhone2}))
	assert.Equal(t, "NotAuthenticated", rep.Level)
	assert.Equal(t, "nonsecure conference bridge", rep.Reason)
	assert.Equal(t, []string{"none", "none"}, rep.icons())

	// Every conference field is read: a chained conference that is
	// adding a party makes the status Unknown.
	rep = statusJSON(t, confDoc(`{"secure": true}`, []string{encPhone},
		`"chained": [{"bridge": {"secure": true}, "participants": [`+encPhone2+`], "adding": true}]`))
	assert.Equal(t, "Unknown", rep.Level)
	assert.Equal(t, []string{"none"}, rep.icons())
}

func TestStatusStdin(t *testing.T) {
	doc := callDoc([]string{encPhone, encPhone2})
	want := mustRun(t, exitOK, "status", writeDoc(t, doc)).stdout
	for _, args := range [][]string{{"status"}, {"status", "-"}, {"status", "--", "-"}} {
		r := ucsec(t, doc, args...)
		r.check(t, exitOK, want, "")
		assert.Equal(t, want, r.stdout, args)
	}
	// --json before or after the argument.
	name := writeDoc(t, doc)
	assert.Equal(t, mustRun(t, exitOK, "status", "--json", name).stdout, mustRun(t, exitOK, "status", name, "--json").stdout)
	assert.Equal(t, mustRun(t, exitOK, "status", "-json", name).stdout, ucsec(t, doc, "status", "-", "--json").stdout)
}

func TestStatusOptions(t *testing.T) {
	videoPhone := `{"name": "v", "mode": "encrypted", "audio_srtp": true, "video": true}`
	trunk := `"trunks": [{"name": "branch", "tls": true, "srtp": true, "remote_status": "NotAuthenticated"}]`
	for _, tt := range []struct {
		name    string
		options string // the "options" object
		call    string // the "call" object
		level   string
		icon    string // of the first device
	}{
		{"non-secure cluster", `{}`, `{"devices": [` + encPhone + `]}`, "NotAuthenticated", "none"},
		{"no options", ``, `{"devices": [` + encPhone + `]}`, "NotAuthenticated", "none"},
		{"mixed mode", `{"mixed_mode": true}`, `{"devices": [` + encPhone + `]}`, "Encrypted", "lock"},
		{"video without SRTP", `{"mixed_mode": true}`, `{"devices": [` + videoPhone + `]}`, "Encrypted", "shield"},
		{"override BFCP", `{"mixed_mode": true, "override_bfcp": true}`, `{"devices": [` + videoPhone + `]}`, "Encrypted", "lock"},
		{"music on hold", `{"mixed_mode": true}`, `{"devices": [` + encPhone + `], "resources": [{"kind": "moh"}]}`, "NotAuthenticated", "none"},
		{"secure music on hold", `{"mixed_mode": true, "secure_moh": true}`, `{"devices": [` + encPhone + `], "resources": [{"kind": "moh"}]}`, "Encrypted", "lock"},
		{"multicast music on hold", `{"mixed_mode": true, "secure_moh": true}`, `{"devices": [` + encPhone + `], "resources": [{"kind": "moh", "multicast": true}]}`, "NotAuthenticated", "none"},
		{"secure trunk", `{"mixed_mode": true}`, `{"devices": [` + encPhone + `], ` + trunk + `}`, "Encrypted", "lock"},
		{"legacy SIP trunks", `{"mixed_mode": true, "legacy_sip_trunks": true}`, `{"devices": [` + encPhone + `], ` + trunk + `}`, "NotAuthenticated", "none"},
		{"remote status honoured", `{"mixed_mode": true, "honour_remote_status": true}`, `{"devices": [` + encPhone + `], ` + trunk + `}`, "NotAuthenticated", "none"},
		{"hairpin", `{"mixed_mode": true}`, `{"devices": [` + encPhone + `], "hairpin": true}`, "NotAuthenticated", "none"},
		{"gateway", `{"mixed_mode": true}`, `{"devices": [{"name": "gw", "mode": "encrypted", "audio_srtp": true, "gateway": true}]}`, "Encrypted", "none"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			doc := `{"call": ` + tt.call + `}`
			if tt.options != "" {
				doc = `{"options": ` + tt.options + `, "call": ` + tt.call + `}`
			}
			rep := statusJSON(t, doc)
			assert.Equal(t, tt.level, rep.Level, rep.Reason)
			assert.Equal(t, tt.icon, rep.Devices[0].Icon, rep.Devices[0].Reason)
		})
	}
}

// TestStatusOptionsFields checks that the JSON form of the options has
// every field of secstatus.Options, by name and type.
func TestStatusOptionsFields(t *testing.T) {
	lib, cli := reflect.TypeFor[secstatus.Options](), reflect.TypeFor[statusOptions]()
	require.Equal(t, lib.NumField(), cli.NumField(), "secstatus.Options has a field \"status\" does not read")
	for i := range lib.NumField() {
		f, ok := cli.FieldByName(lib.Field(i).Name)
		if assert.True(t, ok, lib.Field(i).Name) {
			assert.Equal(t, lib.Field(i).Type, f.Type, f.Name)
		}
	}
	// Each one is copied.
	o := statusOptions{true, true, true, true, true}
	v := reflect.ValueOf(*o.options())
	for i := range v.NumField() {
		assert.True(t, v.Field(i).Bool(), lib.Field(i).Name)
	}
}

func TestStatusErrors(t *testing.T) {
	dev := `{"devices": [` + encPhone + `]}`
	for _, tt := range []struct {
		name  string
		stdin string
		want  string // the whole of stderr
	}{
		{"unknown field", `{"call": {"devices": [{"name": "a", "colour": "red"}]}}`, `ucsec: stdin: unknown field "colour"`},
		{"unknown option", `{"options": {"mixed": true}, "call": ` + dev + `}`, `ucsec: stdin: unknown field "mixed"`},
		{"unknown top-level field", `{"call": ` + dev + `, "calls": []}`, `ucsec: stdin: unknown field "calls"`},
		{"call and conference", `{"call": ` + dev + `, "conference": {"bridge": {}, "participants": [` + encPhone + `]}}`, `ucsec: stdin: give "call" or "conference", not both`},
		{"neither", `{"options": {"mixed_mode": true}}`, `ucsec: stdin: no "call" or "conference" object`},
		{"null call", `{"call": null}`, `ucsec: stdin: no "call" or "conference" object`},
		{"bad mode", `{"call": {"devices": [{"name": "a", "mode": "secure"}]}}`, `ucsec: stdin: secstatus: invalid call description: mode "secure" is not non-secure, authenticated or encrypted`},
		{"bad display", `{"call": {"devices": [{"display": "lock"}]}}`, `ucsec: stdin: secstatus: invalid call description: display "lock" is not shield-and-lock or lock-only`},
		{"bad kind", `{"call": {"devices": [{}], "resources": [{"kind": "conference"}]}}`, `ucsec: stdin: secstatus: invalid call description: resource "conference" is not moh, transcoder or mtp`},
		{"bad remote status", `{"call": {"devices": [{}], "trunks": [{"remote_status": "secure"}]}}`, `ucsec: stdin: secstatus: invalid call description: security level "secure" is not Unknown, NotAuthenticated, Authenticated or Encrypted`},
		{"mode as a number", `{"call": {"devices": [{"mode": 2}]}}`, `ucsec: stdin: line 1, column 32: call.devices.mode: want a string, not a number`},
		{"bool as a string", "{\"call\": {\n  \"devices\": [{\"audio_srtp\": \"y\\\"es\"}]}}", `ucsec: stdin: line 2, column 30: call.devices.audio_srtp: want true or false, not a string`},
		{"devices not an array", `{"call": {"devices": {}}}`, `ucsec: stdin: line 1, column 22: call.devices: want an array, not an object`},
		{"not an object", `[]`, `ucsec: stdin: line 1, column 1: the document: want an object, not an array`},
		{"empty devices", `{"options": {"mixed_mode": true}, "call": {"devices": []}}`, `ucsec: stdin: secstatus: invalid call description: a call needs at least one device`},
		{"no devices", `{"call": {}}`, `ucsec: stdin: secstatus: invalid call description: a call needs at least one device`},
		{"no participants", `{"conference": {"bridge": {"secure": true}}}`, `ucsec: stdin: secstatus: invalid call description: a conference needs participants`},
		{"syntax", "{\"call\": {\"devices\": [{},]}}", `ucsec: stdin: line 1, column 26: invalid character ']' looking for beginning of value`},
		{"truncated", `{"call": ` + dev, `ucsec: stdin: unexpected end of the JSON input`},
		{"empty", "", `ucsec: stdin: empty input; want a JSON object`},
		{"blank", " \n", `ucsec: stdin: empty input; want a JSON object`},
		{"two documents", `{"call": ` + dev + "}\n" + `{"call": ` + dev + "}", `ucsec: stdin: line 2, column 1: more after the JSON object`},
		{"trailing garbage", `{"call": ` + dev + "} x", fmt.Sprintf("ucsec: stdin: line 1, column %d: more after the JSON object", len(`{"call": `+dev+"} x"))},
		{"negative number", `{"call": {"devices": [{"video": -1.5e3}]}}`, `ucsec: stdin: line 1, column 33: call.devices.video: want true or false, not a number`},
		{"options not an object", `{"options": [true], "call": ` + dev + `}`, `ucsec: stdin: line 1, column 13: options: want an object, not an array`},
		{"oversized", `{"call": ` + dev + "}" + strings.Repeat(" ", maxStatusInput), `ucsec: stdin: larger than 1 MiB`},
	} {
		t.Run(tt.name, func(t *testing.T) {
			r := ucsec(t, tt.stdin, "status")
			r.check(t, exitError, "", tt.want)
			assert.Equal(t, tt.want+"\n", r.stderr)
			assert.Empty(t, r.stdout)
		})
	}

	// At the limit is fine.
	doc := `{"call": ` + dev + "}"
	ucsec(t, doc+strings.Repeat(" ", maxStatusInput-len(doc)), "status").check(t, exitOK, "call is NotAuthenticated", "")

	// Files, arguments; --json does not change how errors are reported.
	for _, tt := range []struct {
		args []string
		want string
	}{
		{[]string{"status", "nosuch.json"}, "ucsec: nosuch.json: no such file or directory"},
		{[]string{"status", "--json", t.TempDir()}, "is a directory"},
		{[]string{"status", writeDoc(t, "{}"), "--json"}, `call.json: no "call" or "conference" object`},
		{[]string{"status", "a.json", "b.json"}, `ucsec: unexpected argument "b.json"; see 'ucsec status -h'`},
		{[]string{"status", "--nosuch"}, "flag provided but not defined: -nosuch"},
	} {
		r := ucsec(t, "", tt.args...)
		r.check(t, exitError, "", tt.want)
		assert.Empty(t, r.stdout)
		assert.Equal(t, 1, strings.Count(r.stderr, "\n"), r.stderr)
	}
}

func TestStatusNames(t *testing.T) {
	// Names from the input cannot drive the terminal, and an unnamed
	// device is shown as such.
	doc := callDoc([]string{`{"name": "evil\u001b[2J\tx", "mode": "encrypted", "audio_srtp": true}`, `{"mode": "encrypted", "audio_srtp": true}`})
	r := mustRun(t, exitOK, "status", writeDoc(t, doc))
	assert.NotContains(t, r.stdout, "\x1b")
	assert.Contains(t, r.stdout, `  evil\x1b[2J\tx  lock`)
	assert.Contains(t, r.stdout, "  (unnamed)       lock")
}

func TestStatusHelp(t *testing.T) {
	r := mustRun(t, exitOK, "status", "-h")
	assert.True(t, strings.HasPrefix(r.stdout, "Usage: ucsec status [--json] [FILE|-]\n"), r.stdout)
	for _, want := range []string{"--json", indentText(statusExample, "  ")[:40], "mixed_mode", "override_bfcp", "secure_moh", "legacy_sip_trunks",
		"honour_remote_status", `"hairpin"`, `"chained"`, `"joined_unknown"`, `"remote_status"`, `"lock-only"`, `"transcoder"`, "1 MiB", "Exits 0 whatever the level"} {
		assert.Contains(t, r.stdout, want)
	}
	assert.Equal(t, r.stdout, mustRun(t, exitOK, "help", "status").stdout)

	// The top-level help lists the command.
	assert.Contains(t, mustRun(t, exitOK, "-h").stdout, "Commands:\n  status   show the security level")

	// The examples work: the file ones on the help's example, the echo one
	// as given.
	name := writeDoc(t, statusExample)
	for _, ex := range statusCommand.examples {
		var r result
		if doc, ok := strings.CutPrefix(ex, "echo '"); ok {
			doc, cmd, ok := strings.Cut(doc, "' | ucsec ")
			require.True(t, ok, ex)
			r = ucsec(t, doc, strings.Fields(cmd)...)
			assert.Contains(t, r.stdout, "call is Encrypted")
		} else {
			args := strings.Fields(strings.TrimPrefix(ex, "ucsec "))
			for i, a := range args {
				if strings.HasSuffix(a, ".json") {
					args[i] = name
				}
			}
			stdin := ""
			if args[len(args)-2] == "<" {
				args, stdin = args[:len(args)-2], statusExample
			}
			r = ucsec(t, stdin, args...)
		}
		assert.Equal(t, exitOK, r.code, "%s: %s", ex, r.stderr)
		assert.NotEmpty(t, r.stdout, ex)
	}
}
