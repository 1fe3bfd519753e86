package secstatus

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// callInfoVectors are Call-Info header values as CUCM releases sent them
// in published SIP traces, and as Cisco's SIP line messaging guide spells
// them, each value exactly as written there, plus edge cases.
var callInfoVectors = []struct {
	name    string
	value   string
	want    Level
	present bool
}{
	{"CUCM 12.5 line response", `<urn:x-cisco-remotecc:callinfo>; security= NotAuthenticated; orientation= to; gci= 1-17041; isVoip; call-instance= 1`, NotAuthenticated, true},
	{"CUCM 11.5 INVITE to phone", `<urn:x-cisco-remotecc:callinfo>; security= Unknown; orientation= from; gci= 1-2029; isVoip; call-instance= 1`, Unknown, true},
	{"CUCM 9.1 trunk INVITE, list with a non-Cisco entry", `<urn:x-cisco-remotecc:callinfo>; security= NotAuthenticated; gci= 1-4270982, <sip:10.0.2.52:5060>;method="NOTIFY;Event=telephone-event;Duration=500"`, NotAuthenticated, true},
	{"trunk message without security", `<urn:x-cisco-remotecc:callinfo>;x-cisco-video-traffic-class=DESKTOP`, Unknown, true},
	{"SIP Line Messaging Guide, bare URI and upper-case X (accepted)", `urn:X-cisco-remotecc:callinfo; security= Authenticated`, Authenticated, true},
	{"case-insensitive name", `<urn:x-cisco-remotecc:callinfo>; seCuRity=Encrypted`, Encrypted, true},
	{"unknown token", `<urn:x-cisco-remotecc:callinfo>; security= Bogus`, Unknown, true},
}

func TestParseCallInfoVectors(t *testing.T) {
	for _, v := range callInfoVectors {
		t.Run(v.name, func(t *testing.T) {
			ci, present, err := ParseCallInfo(v.value)
			require.NoError(t, err)
			assert.Equal(t, v.present, present)
			assert.Equal(t, v.want, ci.Security)
		})
	}
	// The last row: the header is absent.
	ci, present, err := ParseCallInfo()
	require.NoError(t, err)
	assert.False(t, present)
	assert.Equal(t, CallInfo{}, ci)
	assert.Equal(t, Unknown, ci.Security)
}

func TestParseCallInfoFields(t *testing.T) {
	for _, tc := range []struct {
		value string
		want  CallInfo
	}{
		{callInfoVectors[0].value, CallInfo{Security: NotAuthenticated, Orientation: "to", GCI: "1-17041", CallInstance: 1, Params: []Param{{Name: "isVoip"}}}},
		{callInfoVectors[2].value, CallInfo{Security: NotAuthenticated, GCI: "1-4270982"}},
		{callInfoVectors[3].value, CallInfo{Params: []Param{{Name: "x-cisco-video-traffic-class", Value: "DESKTOP"}}}},
		{
			`<urn:x-cisco-remotecc:callinfo>; security= Encrypted; orientation= to; gci= 1-17041; isVoip; call-instance= 1`,
			CallInfo{Security: Encrypted, Orientation: "to", GCI: "1-17041", CallInstance: 1, Params: []Param{{Name: "isVoip"}}},
		},
		{
			`<urn:x-cisco-remotecc:callinfo>; security= Authenticated; orientation= from; ui-state= ringout; priority= emergency; call-instance= 65535; gci= 2-9`,
			CallInfo{Security: Authenticated, Orientation: "from", UIState: "ringout", Priority: "emergency", CallInstance: 65535, GCI: "2-9"},
		},
		// Unknown parameters and flags are kept in order, names and values
		// as sent; a value after "=" with nothing is a flag.
		{
			`<urn:x-cisco-remotecc:callinfo>;Zeta=1;isVoip;x-cisco-video-traffic-class=DESKTOP;alpha=;isVoip;k=v.é`,
			CallInfo{Params: []Param{{"Zeta", "1"}, {"isVoip", ""}, {"x-cisco-video-traffic-class", "DESKTOP"}, {"alpha", ""}, {"isVoip", ""}, {"k", "v.é"}}},
		},
		// Values that are not known tokens are kept as sent; a
		// call-instance that is not 1 to 65535 is ignored.
		{
			`<urn:x-cisco-remotecc:callinfo>; orientation= Sideways; ui-state= held; priority= normal; call-instance= abc`,
			CallInfo{Orientation: "Sideways", UIState: "held", Priority: "normal"},
		},
		{`<urn:x-cisco-remotecc:callinfo>; call-instance= 0`, CallInfo{}},
		{`<urn:x-cisco-remotecc:callinfo>; call-instance= 65536`, CallInfo{}},
		{`<urn:x-cisco-remotecc:callinfo>; call-instance= 99999999999999999999999`, CallInfo{}},
		{`<urn:x-cisco-remotecc:callinfo>; call-instance= -1`, CallInfo{}},
		{`<urn:x-cisco-remotecc:callinfo>; call-instance= 007`, CallInfo{CallInstance: 7}},
		// security empty, as a flag, or an unknown token: Unknown.
		{`<urn:x-cisco-remotecc:callinfo>; security=`, CallInfo{}},
		{`<urn:x-cisco-remotecc:callinfo>; security`, CallInfo{}},
		{`<urn:x-cisco-remotecc:callinfo>; security= Encrypted2`, CallInfo{}},
		{`<urn:x-cisco-remotecc:callinfo>; security= NotAuth`, CallInfo{}},
		// Empty parameters and list elements are skipped.
		{`,, <urn:x-cisco-remotecc:callinfo>;; security= Encrypted ;, ,`, CallInfo{Security: Encrypted}},
		{`<urn:x-cisco-remotecc:callinfo>`, CallInfo{}},
	} {
		ci, present, err := ParseCallInfo(tc.value)
		require.NoError(t, err, tc.value)
		assert.True(t, present, tc.value)
		assert.Equal(t, tc.want, ci, tc.value)
	}
}

func TestParseCallInfoSpacing(t *testing.T) {
	want := CallInfo{Security: Encrypted, Orientation: "to", GCI: "1-17041", CallInstance: 1, Params: []Param{{Name: "isVoip"}}}
	for _, h := range []string{
		// CUCM
		`<urn:x-cisco-remotecc:callinfo>; security= Encrypted; orientation= to; gci= 1-17041; isVoip; call-instance= 1`,
		// other producers
		`<urn:x-cisco-remotecc:callinfo>;security=Encrypted;orientation=to;gci=1-17041;isVoip;call-instance=1`,
		// blanks (spaces and tabs) everywhere they may be
		" \t<urn:x-cisco-remotecc:callinfo> \t; \tsecurity \t= \tEncrypted \t;orientation =to ;\tgci\t=\t1-17041\t;\tisVoip ; call-instance = 1 \t",
		"<urn:x-cisco-remotecc:callinfo>\t;security\t=Encrypted;orientation= to ;gci=1-17041;isVoip\t;call-instance=\t1",
	} {
		ci, present, err := ParseCallInfo(h)
		require.NoError(t, err, "%q", h)
		assert.True(t, present)
		assert.Equal(t, want, ci, "%q", h)
	}
}

func TestParseCallInfoCase(t *testing.T) {
	want := CallInfo{Security: Encrypted, Orientation: "to", UIState: "connected", Priority: "urgent", GCI: "1-5", CallInstance: 2}
	for _, h := range []string{
		`<URN:X-CISCO-REMOTECC:CALLINFO>; SECURITY= ENCRYPTED; ORIENTATION= TO; UI-STATE= CONNECTED; PRIORITY= URGENT; GCI= 1-5; CALL-INSTANCE= 2`,
		`<urn:X-cisco-remotecc:CallInfo>; Security= encrypted; Orientation= To; Ui-State= Connected; Priority= Urgent; Gci= 1-5; Call-Instance= 2`,
		`<uRn:x-CiScO-rEmOtEcC:cAlLiNfO>;sEcUrItY=eNcRyPtEd;oRiEnTaTiOn=tO;uI-sTaTe=cOnNeCtEd;pRiOrItY=uRgEnT;gCi=1-5;cAlL-iNsTaNcE=2`,
	} {
		ci, present, err := ParseCallInfo(h)
		require.NoError(t, err, h)
		assert.True(t, present)
		assert.Equal(t, want, ci, h)
	}
	for _, tc := range []struct {
		token string
		want  Level
	}{
		{"unknown", Unknown}, {"NOTAUTHENTICATED", NotAuthenticated}, {"notauthenticated", NotAuthenticated},
		{"AUTHENTICATED", Authenticated}, {"aUtHeNtIcAtEd", Authenticated}, {"encrypted", Encrypted},
	} {
		ci, _, err := ParseCallInfo("<urn:x-cisco-remotecc:callinfo>; security= " + tc.token)
		require.NoError(t, err)
		assert.Equal(t, tc.want, ci.Security, tc.token)
	}
	// Parameter names keep their case in Params.
	ci, _, err := ParseCallInfo(`<urn:x-cisco-remotecc:callinfo>; IsVoIP; X-Cisco-Video-Traffic-Class= Desktop`)
	require.NoError(t, err)
	assert.Equal(t, []Param{{"IsVoIP", ""}, {"X-Cisco-Video-Traffic-Class", "Desktop"}}, ci.Params)
}

func TestParseCallInfoList(t *testing.T) {
	for _, tc := range []struct {
		name    string
		values  []string
		want    Level
		present bool
	}{
		{"non-Cisco entry first, quoted ; and ,", []string{`<sip:10.0.2.52:5060>;method="NOTIFY;Event=telephone-event;Duration=500", <urn:x-cisco-remotecc:callinfo>; security= Encrypted`}, Encrypted, true},
		{"quoted callinfo text inside another entry is not an entry", []string{`<http://example.com/a>;purpose=info;x="<urn:x-cisco-remotecc:callinfo>; security= Encrypted, <urn:x-cisco-remotecc:callinfo>;security=Encrypted"`}, Unknown, false},
		{"escaped quote inside a quoted string", []string{`<http://a>;x="a\"b, <urn:x-cisco-remotecc:callinfo>;security=Encrypted", <urn:x-cisco-remotecc:callinfo>; security= Authenticated`}, Authenticated, true},
		{"comma inside angle brackets", []string{`<sip:a,b@example.com>;p=1, <urn:x-cisco-remotecc:callinfo>; security= Authenticated`}, Authenticated, true},
		{"RFC 3261 example entries", []string{`<http://wwww.example.com/alice/photo.jpg> ;purpose=icon, <http://www.example.com/alice/> ;purpose=info`}, Unknown, false},
		{"second header line", []string{`<http://www.example.com/alice/> ;purpose=info`, `<urn:x-cisco-remotecc:callinfo>; security= Encrypted`}, Encrypted, true},
		{"empty header lines", []string{"", " ", `<urn:x-cisco-remotecc:callinfo>; security= Authenticated`, ""}, Authenticated, true},
		{"no header line", nil, Unknown, false},
		{"empty header", []string{""}, Unknown, false},
		{"bare non-Cisco URI", []string{`urn:foo;bar="x,y", urn:x-cisco-remotecc:callinfo;security=Encrypted`}, Encrypted, true},
		// Other remotecc features are skipped, whatever their parameters.
		{"hold", []string{`<urn:x-cisco-remotecc:hold>; reason= conference`}, Unknown, false},
		{"features around callinfo", []string{`<urn:x-cisco-remotecc:barge>; security= Encrypted, <urn:x-cisco-remotecc:callinfo>; security= NotAuthenticated, <urn:x-cisco-remotecc:cbarge>; security= Encrypted`}, NotAuthenticated, true},
		{"resume and a look-alike URI in other lines", []string{`<urn:x-cisco-remotecc:resume>`, `<urn:x-cisco-remotecc:callinfo-x>; security= Encrypted`, `<urn:x-cisco-remotecc:callinfo>; security= Authenticated`}, Authenticated, true},
		{"prefix alone", []string{`<urn:x-cisco-remotecc:>; security= Encrypted, <urn:x-cisco-remotecc>;security=Encrypted`}, Unknown, false},
		{"angle brackets after a display name", []string{`"a, b" <sip:a,<urn:x-cisco-remotecc:callinfo>;security=Encrypted>;x=1, <urn:x-cisco-remotecc:callinfo>; security= Authenticated`}, Authenticated, true},
		{"callinfo inside another entry's angle brackets", []string{`"x" <sip:a, <urn:x-cisco-remotecc:callinfo>; security= Encrypted`}, Unknown, false},
		{"URI with blanks inside brackets is another URI", []string{`< urn:x-cisco-remotecc:callinfo >; security= Encrypted`}, Unknown, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ci, present, err := ParseCallInfo(tc.values...)
			require.NoError(t, err)
			assert.Equal(t, tc.present, present)
			assert.Equal(t, tc.want, ci.Security)
		})
	}
}

func TestParseCallInfoErrors(t *testing.T) {
	long := strings.Repeat("x", MaxCallInfoLength)
	for _, tc := range []struct {
		values []string
		offset int
		msg    string
	}{
		{[]string{`<sip:a>;x="abc`}, 10, "unterminated quoted string"},
		{[]string{`<sip:a>;x="abc\"`}, 10, "unterminated quoted string"},
		{[]string{`<sip:a>;x="abc\`}, 10, "unterminated quoted string"},
		{[]string{`<urn:x-cisco-remotecc:callinfo; security= Encrypted`}, 0, "unterminated '<'"},
		{[]string{`<sip:a>, <sip:b`}, 9, "unterminated '<'"},
		{[]string{`<sip:a>;x=<y`}, 10, "unterminated '<'"},
		{[]string{"<urn:x-cisco-remotecc:callinfo>; security= Encrypted\r\nX-Injected: 1"}, 52, "control character 0x0d"},
		{[]string{"<urn:x-cisco-remotecc:callinfo>; security= Encrypted\n"}, 52, "control character 0x0a"},
		{[]string{"<urn:x-cisco-remotecc:callinfo>;isVoip\x00"}, 38, "control character 0x00"},
		{[]string{"<urn:x-cisco-remotecc:callinfo>;x=\x7f"}, 34, "control character 0x7f"},
		{[]string{"<sip:a\nb>"}, 6, "control character 0x0a"},
		{[]string{"<sip:a>;x=\"a\rb\""}, 12, "control character 0x0d"},
		{[]string{"<sip:a>;x=\"a\\\rb\""}, 13, "control character 0x0d"},
		{[]string{"<sip:a>;x=1\r\n"}, 11, "control character 0x0d"},
		{[]string{"\x01"}, 0, "control character 0x01"},
		{[]string{long + "x"}, MaxCallInfoLength, "header longer than 8192 bytes"},
		{[]string{long[:4095], long[:4096]}, MaxCallInfoLength, "header longer than 8192 bytes"},
		{make([]string, MaxCallInfoLength/2+2), MaxCallInfoLength, "header longer than 8192 bytes"},
		// The callinfo entry is read strictly.
		{[]string{`<urn:x-cisco-remotecc:callinfo>; security= Encrypted; SECURITY= Encrypted`}, 54, "duplicate parameter security"},
		{[]string{`<urn:x-cisco-remotecc:callinfo>; gci= 1-2; gci= 1-3`}, 43, "duplicate parameter gci"},
		{[]string{`<urn:x-cisco-remotecc:callinfo>; call-instance= x; Call-Instance= 2`}, 51, "duplicate parameter call-instance"},
		{[]string{`<urn:x-cisco-remotecc:callinfo>; security= "Encrypted"`}, 43, "quoted string in a callinfo entry"},
		{[]string{`<urn:x-cisco-remotecc:callinfo>; x= "a;b"; security= Encrypted`}, 36, "quoted string in a callinfo entry"},
		{[]string{`<urn:x-cisco-remotecc:callinfo>; security= Encrypted junk`}, 53, `unexpected character 'j'`},
		{[]string{`<urn:x-cisco-remotecc:callinfo>; security= Not Authenticated`}, 47, `unexpected character 'A'`},
		{[]string{`<urn:x-cisco-remotecc:callinfo>; x= a=b`}, 37, `unexpected character '='`},
		{[]string{`<urn:x-cisco-remotecc:callinfo>; x= <sip:a>`}, 36, `unexpected character '<'`},
		{[]string{`<urn:x-cisco-remotecc:callinfo>; x= a>`}, 37, `unexpected character '>'`},
		{[]string{`<urn:x-cisco-remotecc:callinfo>; x= a\b`}, 37, `unexpected character '\\'`},
		{[]string{`<urn:x-cisco-remotecc:callinfo>; @x`}, 33, `unexpected character '@'`},
		{[]string{`<urn:x-cisco-remotecc:callinfo>; = Encrypted`}, 33, `unexpected character '='`},
		{[]string{"<urn:x-cisco-remotecc:callinfo>; \xc3\xa9=1"}, 33, `unexpected byte 0xc3`},
		{[]string{`<urn:x-cisco-remotecc:callinfo>security= Encrypted`}, 31, `unexpected character 's'`},
		{[]string{`urn:x-cisco-remotecc:callinfo security= Encrypted`}, 30, `unexpected character 's'`},
		{[]string{`<urn:x-cisco-remotecc:callinfo>; ` + strings.Repeat("n", 65)}, 33, "parameter name longer than 64 bytes"},
		{[]string{`<urn:x-cisco-remotecc:callinfo>; x= ` + strings.Repeat("v", 129)}, 36, "parameter value longer than 128 bytes"},
		{[]string{`<urn:x-cisco-remotecc:callinfo>` + strings.Repeat(";f", 33)}, 31 + 32*2 + 1, "more than 32 parameters"},
		// A second callinfo entry, in the same line or another one; the
		// offset counts the lines joined with ", ".
		{[]string{`<urn:x-cisco-remotecc:callinfo>; security= Encrypted, <urn:x-cisco-remotecc:callinfo>; security= NotAuthenticated`}, 54, "more than one callinfo entry"},
		{[]string{`<urn:x-cisco-remotecc:callinfo>; security= NotAuthenticated`, `<sip:a>`, ` URN:x-cisco-remotecc:callinfo`}, 59 + 2 + 7 + 2 + 1, "more than one callinfo entry"},
		{[]string{`<sip:a>`, `<sip:b>;x="`}, 7 + 2 + 10, "unterminated quoted string"},
	} {
		_, present, err := ParseCallInfo(tc.values...)
		name := fmt.Sprintf("%.100q", tc.values)
		require.Error(t, err, name)
		assert.False(t, present)
		assert.ErrorIs(t, err, ErrMalformed, name)
		var se *SyntaxError
		require.True(t, errors.As(err, &se), name)
		assert.Equal(t, tc.offset, se.Offset, name)
		assert.Equal(t, tc.msg, se.Msg, name)
	}

	// Exactly the limit is read.
	_, present, err := ParseCallInfo(long[:4095], long[:4095])
	require.NoError(t, err)
	assert.False(t, present)
	ci, _, err := ParseCallInfo(`<urn:x-cisco-remotecc:callinfo>` + strings.Repeat(";f", 30) + "; x=" + strings.Repeat("v", 128) + ";" + strings.Repeat("n", 64))
	require.NoError(t, err)
	assert.Len(t, ci.Params, 32)
}

func TestSyntaxError(t *testing.T) {
	_, _, err := ParseCallInfo(`<urn:x-cisco-remotecc:callinfo; security= Encrypted`)
	assert.EqualError(t, err, "secstatus: malformed Call-Info header at offset 0: unterminated '<'")
	assert.Equal(t, ErrMalformed, errors.Unwrap(err))
}

func TestCallInfoString(t *testing.T) {
	ci := CallInfo{Security: Encrypted, Orientation: "to", GCI: "1-17041", CallInstance: 1, Params: []Param{{Name: "isVoip"}}}
	const want = `<urn:x-cisco-remotecc:callinfo>; security= Encrypted; orientation= to; gci= 1-17041; call-instance= 1; isVoip`
	assert.Equal(t, want, ci.String())
	b, err := ci.MarshalText()
	require.NoError(t, err)
	assert.Equal(t, want, string(b))

	all := CallInfo{Security: Authenticated, Orientation: "from", UIState: "busy", CallInstance: 3, Priority: "urgent", GCI: "2-7",
		Params: []Param{{"isVoip", ""}, {"x-cisco-video-traffic-class", "DESKTOP"}}}
	assert.Equal(t, `<urn:x-cisco-remotecc:callinfo>; security= Authenticated; orientation= from; ui-state= busy; priority= urgent; gci= 2-7; call-instance= 3; isVoip; x-cisco-video-traffic-class= DESKTOP`, all.String())

	// The zero CallInfo: CUCM writes security= Unknown too.
	assert.Equal(t, `<urn:x-cisco-remotecc:callinfo>; security= Unknown`, CallInfo{}.String())
	assert.Equal(t, "<urn:x-cisco-remotecc:callinfo>; security= Unknown", fmt.Sprint(CallInfo{}))
}

// TestCallInfoRoundTrip checks that whatever ParseCallInfo returns, String
// writes so that it parses back to the same value.
func TestCallInfoRoundTrip(t *testing.T) {
	inputs := []string{
		`<urn:x-cisco-remotecc:callinfo>; security= Authenticated; orientation= FROM; ui-state= Held; priority= EMERGENCY; call-instance= 0042; gci= 1-2; isVoip; a=; b=é; Security2=x`,
		`urn:x-cisco-remotecc:callinfo;gci=;orientation=;call-instance=;priority=`,
		`<urn:x-cisco-remotecc:callinfo>` + strings.Repeat("; "+strings.Repeat("n", 64)+"= "+strings.Repeat("v", 128), 32) +
			"; orientation= " + strings.Repeat("o", 128) + "; ui-state= " + strings.Repeat("u", 128) + "; priority= " + strings.Repeat("p", 128) +
			"; gci= " + strings.Repeat("g", 128) + "; security= NotAuthenticated; call-instance= 65535",
	}
	for _, v := range callInfoVectors {
		inputs = append(inputs, v.value)
	}
	for _, h := range inputs {
		ci, present, err := ParseCallInfo(h)
		require.NoError(t, err, h)
		require.True(t, present, h)
		s := ci.String()
		assert.LessOrEqual(t, len(s), MaxCallInfoLength)
		b, err := ci.MarshalText()
		require.NoError(t, err, h)
		assert.Equal(t, s, string(b))
		again, present, err := ParseCallInfo(s)
		require.NoError(t, err, s)
		assert.True(t, present)
		assert.Equal(t, ci, again, s)
	}
}

// TestCallInfoInjection checks that the formatter never writes what could
// end the header line, add a parameter or an entry, or change the
// security a reader sees.
func TestCallInfoInjection(t *testing.T) {
	bad := []string{
		"Encrypted\r\nX-Injected: 1", "a\nb", "a\rb", "a\x00b", "a\x7f",
		"a; security= Encrypted", "a;security=Encrypted", "a, <urn:x-cisco-remotecc:callinfo>; security= Encrypted",
		"a=b", "<urn:x-cisco-remotecc:callinfo>", "a>", `"a;b"`, `a\`, "a b", "a\tb", " a", "a ",
		strings.Repeat("v", 129),
	}
	base := CallInfo{Security: NotAuthenticated}
	var cases []CallInfo
	for _, v := range bad {
		for _, set := range []func(*CallInfo){
			func(ci *CallInfo) { ci.Orientation = v },
			func(ci *CallInfo) { ci.UIState = v },
			func(ci *CallInfo) { ci.Priority = v },
			func(ci *CallInfo) { ci.GCI = v },
			func(ci *CallInfo) { ci.Params = []Param{{Name: "x", Value: v}} },
			func(ci *CallInfo) { ci.Params = []Param{{Name: v}} },
			func(ci *CallInfo) { ci.Params = []Param{{Name: v, Value: "1"}} },
		} {
			ci := base
			set(&ci)
			cases = append(cases, ci)
		}
	}
	// Names of fields, in any case, as Params: a second security would
	// be read differently by different readers.
	for _, n := range []string{"security", "SECURITY", "orientation", "ui-state", "call-instance", "priority", "gci", "GCI", "", strings.Repeat("n", 65)} {
		cases = append(cases, CallInfo{Security: NotAuthenticated, Params: []Param{{Name: n, Value: "Encrypted"}}})
	}
	cases = append(cases,
		CallInfo{Security: NotAuthenticated, CallInstance: -1},
		CallInfo{Security: NotAuthenticated, CallInstance: 65536},
		CallInfo{Security: NotAuthenticated, Params: make([]Param, 33)},
	)
	for i := range cases[len(cases)-1].Params {
		cases[len(cases)-1].Params[i] = Param{Name: fmt.Sprint("p", i)}
	}

	for _, ci := range cases {
		name := fmt.Sprintf("%+q", ci)
		_, err := ci.MarshalText()
		require.Error(t, err, name)
		assert.ErrorIs(t, err, ErrInvalid, name)
		assert.NotContains(t, err.Error(), "\n", name)
		assert.NotContains(t, err.Error(), "\r", name)

		s := ci.String()
		assert.NotContains(t, s, "\r", name)
		assert.NotContains(t, s, "\n", name)
		again, present, err := ParseCallInfo(s)
		require.NoError(t, err, "%s: %q", name, s)
		assert.True(t, present)
		assert.Equal(t, NotAuthenticated, again.Security, s)
		assert.LessOrEqual(t, len(again.Params), 32)
		for _, p := range again.Params {
			assert.NotEqual(t, "security", strings.ToLower(p.Name), s)
		}
	}

	// A Security that is not a level is refused, and String writes
	// Unknown, never more.
	_, err := CallInfo{Security: Level(4)}.MarshalText()
	assert.ErrorIs(t, err, ErrInvalid)
	assert.Equal(t, `<urn:x-cisco-remotecc:callinfo>; security= Unknown`, CallInfo{Security: Level(200)}.String())

	// What is valid is kept when String leaves out the rest.
	ci := CallInfo{Security: Encrypted, Orientation: "to\r\n", GCI: "1-2", Params: []Param{{"a", "1"}, {"b\r\nX: y", ""}, {"c", "x;security=Unknown"}, {"d", ""}}}
	assert.Equal(t, `<urn:x-cisco-remotecc:callinfo>; security= Encrypted; gci= 1-2; a= 1; d`, ci.String())
}

func TestCallInfoText(t *testing.T) {
	type msg struct {
		CallInfo CallInfo `json:"callInfo"`
	}
	in := msg{CallInfo{Security: Encrypted, Orientation: "to", CallInstance: 1, Params: []Param{{"isVoip", ""}}}}
	b, err := json.Marshal(in)
	require.NoError(t, err)
	assert.Equal(t, `{"callInfo":"\u003curn:x-cisco-remotecc:callinfo\u003e; security= Encrypted; orientation= to; call-instance= 1; isVoip"}`, string(b))
	var out msg
	require.NoError(t, json.Unmarshal(b, &out))
	assert.Equal(t, in, out)

	var ci CallInfo
	err = ci.UnmarshalText([]byte(`<sip:a>;x=1`))
	assert.ErrorIs(t, err, ErrMalformed)
	assert.EqualError(t, err, "secstatus: malformed Call-Info header at offset 0: no <urn:x-cisco-remotecc:callinfo> entry")
	err = ci.UnmarshalText([]byte(`<urn:x-cisco-remotecc:callinfo>; security= "Encrypted"`))
	assert.ErrorIs(t, err, ErrMalformed)
	assert.Equal(t, CallInfo{}, ci)
	_, err = json.Marshal(msg{CallInfo{Orientation: "\n"}})
	assert.ErrorIs(t, err, ErrInvalid)
}

func ExampleParseCallInfo() {
	// The values of every Call-Info header line of a message.
	ci, present, err := ParseCallInfo(
		`<urn:x-cisco-remotecc:callinfo>; security= Encrypted; orientation= to; gci= 1-17041; isVoip; call-instance= 1`,
	)
	if err != nil {
		// Unreadable: treat the call as Unknown (nonsecure).
		fmt.Println(err)
		return
	}
	fmt.Println(present, ci.Security, LevelIcon(ci.Security, ShieldAndLock))
	fmt.Println(ci.Orientation, ci.GCI, ci.CallInstance, ci.Params)
	// Output:
	// true Encrypted lock
	// to 1-17041 1 [{isVoip }]
}

func ExampleCallInfo_String() {
	ci := CallInfo{Security: Authenticated, Orientation: "from", CallInstance: 2, Params: []Param{{Name: "isVoip"}}}
	fmt.Println("Call-Info: " + ci.String())
	// Output:
	// Call-Info: <urn:x-cisco-remotecc:callinfo>; security= Authenticated; orientation= from; call-instance= 2; isVoip
}

// BenchmarkParseCallInfo measures a CUCM line header and a trunk header
// with a non-Cisco entry.
func BenchmarkParseCallInfo(b *testing.B) {
	for _, bc := range []struct{ name, value string }{
		{"line", callInfoVectors[0].value},
		{"trunk-list", callInfoVectors[2].value},
	} {
		b.Run(bc.name, func(b *testing.B) {
			b.ReportAllocs()
			b.SetBytes(int64(len(bc.value)))
			for b.Loop() {
				ci, _, err := ParseCallInfo(bc.value)
				if err != nil || ci.Security != NotAuthenticated {
					b.Fatal(ci, err)
				}
			}
		})
	}
	ci, _, _ := ParseCallInfo(callInfoVectors[0].value)
	b.Run("String", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			_ = ci.String()
		}
	})
}
