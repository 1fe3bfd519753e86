package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/ucsec/ucsec/digest"
)

// The V7 vector of the digest package's tests: the REGISTER that SIPp 3.6.1
// sent, answering this challenge from a loopback test server.
const (
	v7Challenge = `Digest realm="test.local", nonce="dcd98b7102dd2f0e8b11d0f600bfb0c093", opaque="op4que", algorithm=MD5, qop="auth"`
	v7URI       = "sip:127.0.0.1:5070"
	v7HA1       = "07848e838e1e831e7b0cf70146cc5447"
	// v7SIPp is the exact header SIPp sent for the first row.
	v7SIPp = `Authorization: Digest username="alice",realm="test.local",cnonce="6b8b4567",nc=00000001,qop=auth,uri="sip:127.0.0.1:5070",nonce="dcd98b7102dd2f0e8b11d0f600bfb0c093",response="cd98f89d1a9e2a523a6f2b32860d1dc6",algorithm=MD5,opaque="op4que"`
)

// respondArgs returns the arguments of "digest respond" for alice's
// REGISTER of V7, answering challenge.
func respondArgs(challenge string, args ...string) []string {
	return append([]string{"digest", "respond", "--challenge", challenge, "--method", "REGISTER", "--uri", v7URI, "--user", "alice"}, args...)
}

// verifyArgs returns the arguments of "digest verify" for a REGISTER with
// authorization.
func verifyArgs(authorization string, args ...string) []string {
	return append([]string{"digest", "verify", "--authorization", authorization, "--method", "REGISTER"}, args...)
}

// responseOf returns the response parameter of an Authorization header
// value.
func responseOf(t *testing.T, header string) string {
	t.Helper()
	cr, err := digest.ParseCredentials(header)
	require.NoError(t, err, header)
	return cr.Response
}

// respond runs "digest respond" with args, which must succeed, and returns
// the header value it printed, checked to be one line.
func respond(t *testing.T, stdin string, args ...string) string {
	t.Helper()
	r := ucsec(t, stdin, args...)
	require.Equal(t, exitOK, r.code, "stderr: %s", r.stderr)
	assert.Empty(t, r.stderr)
	header, ok := strings.CutSuffix(r.stdout, "\n")
	require.True(t, ok, "output %q does not end with a newline", r.stdout)
	require.NotContains(t, header, "\n")
	return header
}

func TestDigestRespondV7(t *testing.T) {
	header := respond(t, "", respondArgs(v7Challenge, "--password", "s3cret", "--cnonce", "6b8b4567", "--nc", "1")...)
	assert.Equal(t, `Digest username="alice", realm="test.local", nonce="dcd98b7102dd2f0e8b11d0f600bfb0c093", `+
		`uri="sip:127.0.0.1:5070", response="cd98f89d1a9e2a523a6f2b32860d1dc6", algorithm=MD5, cnonce="6b8b4567", `+
		`opaque="op4que", qop=auth, nc=00000001`, header)
	assert.Contains(t, header, `response="cd98f89d1a9e2a523a6f2b32860d1dc6"`)

	// It round-trips through digest verify.
	r := mustRun(t, exitOK, verifyArgs(header, "--password", "s3cret")...)
	assert.Equal(t, "valid response for alice in test.local\n", r.stdout)
	assert.Empty(t, r.stderr)
	mustRun(t, exitOK, verifyArgs(header, "--ha1", v7HA1)...)
	mustRun(t, exitOK, verifyArgs(header, "--ha1", strings.ToUpper(v7HA1))...)
	mustRun(t, exitOK, verifyArgs(header, "--password", "s3cret", "--user", "alice")...)
	mustRun(t, exitOK, verifyArgs("Authorization: "+header, "--password", "s3cret")...)

	for _, tt := range []struct {
		name string
		args []string
	}{
		{"wrong password", verifyArgs(header, "--password", "wrong")},
		{"wrong HA1", verifyArgs(header, "--ha1", strings.Repeat("0", 32))},
		{"wrong method", []string{"digest", "verify", "--authorization", header, "--method", "INVITE", "--password", "s3cret"}},
		{"other user", verifyArgs(header, "--password", "s3cret", "--user", "bob")},
	} {
		t.Run(tt.name, func(t *testing.T) {
			r := ucsec(t, "", tt.args...)
			r.check(t, exitInvalid, "", "invalid response")
			assert.Empty(t, r.stdout)
			assert.Equal(t, 1, strings.Count(r.stderr, "\n"), r.stderr)
		})
	}
	r = ucsec(t, "", verifyArgs(header, "--password", "wrong")...)
	assert.Equal(t, "ucsec: invalid response for alice in test.local\n", r.stderr)
	r = ucsec(t, "", verifyArgs(header, "--password", "s3cret", "--user", "bob")...)
	assert.Contains(t, r.stderr, "the header is for alice, not bob")
}

// TestDigestVerifySIPp checks the exact header SIPp sent (V7), pasted with
// its header name.
func TestDigestVerifySIPp(t *testing.T) {
	r := mustRun(t, exitOK, verifyArgs(v7SIPp, "--password", "s3cret")...)
	assert.Equal(t, "valid response for alice in test.local\n", r.stdout)
	mustRun(t, exitOK, verifyArgs(v7SIPp, "--ha1", v7HA1)...)
	mustRun(t, exitInvalid, verifyArgs(v7SIPp, "--password", "S3cret")...)

	// Header names in any case, Proxy-Authorization too, and a line end
	// as pasted from a trace.
	value := strings.TrimPrefix(v7SIPp, "Authorization: ")
	for _, h := range []string{value, "authorization:" + value, "Proxy-Authorization: " + value + "\r\n", "PROXY-AUTHORIZATION :  " + value} {
		mustRun(t, exitOK, verifyArgs(h, "--password", "s3cret")...)
	}
	// A folded header.
	folded := strings.Replace(v7SIPp, ",uri=", ",\r\n uri=", 1)
	mustRun(t, exitOK, verifyArgs(folded, "--password", "s3cret")...)
}

// TestDigestV7Rows computes every row of the V7 table and checks each
// against digest verify.
func TestDigestV7Rows(t *testing.T) {
	both := strings.Replace(v7Challenge, `qop="auth"`, `qop="auth,auth-int"`, 1)
	authInt := strings.Replace(v7Challenge, `qop="auth"`, `qop="auth-int"`, 1)
	noQOP := strings.Replace(v7Challenge, `, qop="auth"`, "", 1)
	for _, tt := range []struct {
		name      string
		challenge string
		args      []string
		qop       string
		response  string
	}{
		{"auth", v7Challenge, []string{"--cnonce", "6b8b4567", "--nc", "1"}, "auth", "cd98f89d1a9e2a523a6f2b32860d1dc6"},
		{"auth nc=2", v7Challenge, []string{"--cnonce", "327b23c6", "--nc", "2"}, "auth", "ae5bd3f6d6c5d7e0589df1957697d8dc"},
		{"auth nc as in the header", v7Challenge, []string{"--cnonce", "327b23c6", "--nc", "00000002"}, "auth", "ae5bd3f6d6c5d7e0589df1957697d8dc"},
		{"auth preferred to auth-int", both, []string{"--cnonce", "6b8b4567"}, "auth", "cd98f89d1a9e2a523a6f2b32860d1dc6"},
		{"auth-int", both, []string{"--qop", "auth-int", "--cnonce", "6b8b4567", "--nc", "1"}, "auth-int", "5d36111865febdf7a9c32b0e5b9fa977"},
		{"auth-int nc=2", both, []string{"--qop", "auth-int", "--cnonce", "327b23c6", "--nc", "2"}, "auth-int", "888290b5e31f8e42e195bc3695003b25"},
		{"only auth-int offered", authInt, []string{"--cnonce", "6b8b4567"}, "auth-int", "5d36111865febdf7a9c32b0e5b9fa977"},
		{"no qop", noQOP, nil, "", "dcfd5bb5143ef24933c08679a1bf28cc"},
		{"no qop ignores cnonce and nc", noQOP, []string{"--cnonce", "6b8b4567", "--nc", "7"}, "", "dcfd5bb5143ef24933c08679a1bf28cc"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			header := respond(t, "", respondArgs(tt.challenge, append([]string{"--password", "s3cret"}, tt.args...)...)...)
			cr, err := digest.ParseCredentials(header)
			require.NoError(t, err)
			assert.Equal(t, tt.response, cr.Response)
			assert.Equal(t, tt.qop, cr.QOP)
			if tt.qop == "" {
				assert.NotContains(t, header, "cnonce")
				assert.NotContains(t, header, "nc=")
			}
			mustRun(t, exitOK, verifyArgs(header, "--password", "s3cret")...)
			mustRun(t, exitInvalid, verifyArgs(header, "--password", "s3cret!")...)
		})
	}
}

func TestDigestRespondRandomCNonce(t *testing.T) {
	h1 := respond(t, "", respondArgs(v7Challenge, "--password", "s3cret")...)
	h2 := respond(t, "", respondArgs(v7Challenge, "--password", "s3cret")...)
	c1, err := digest.ParseCredentials(h1)
	require.NoError(t, err)
	c2, err := digest.ParseCredentials(h2)
	require.NoError(t, err)
	assert.NotEqual(t, c1.CNonce, c2.CNonce)
	assert.Regexp(t, regexp.MustCompile(`^[0-9a-f]{24}$`), c1.CNonce)
	assert.Equal(t, uint32(1), c1.NC)
	assert.Contains(t, h1, "nc=00000001")
	mustRun(t, exitOK, verifyArgs(h1, "--password", "s3cret")...)
	mustRun(t, exitOK, verifyArgs(h2, "--ha1", v7HA1)...)
}

func TestDigestAlgorithmChoice(t *testing.T) {
	md5 := v7Challenge
	sha256 := strings.Replace(v7Challenge, "algorithm=MD5", "algorithm=SHA-256", 1)
	sha512 := strings.Replace(v7Challenge, "algorithm=MD5", "algorithm=SHA-512-256", 1)
	unknown := strings.Replace(v7Challenge, "algorithm=MD5", "algorithm=AKAv1-MD5", 1)
	fixed := []string{"--password", "s3cret", "--cnonce", "6b8b4567", "--nc", "1"}
	const (
		md5Response    = "cd98f89d1a9e2a523a6f2b32860d1dc6"
		sha256Response = "55fa12c8e1b5e80a336a79cc2b10a1b089022b42a7c3b552426ae4660fe6ca5b" // V8
		sha512Response = "3da1b8c6c3a5d117b5c590aab2e3c3c861bff39a45f97c4aba39ebeb559e93fe" // V8
	)
	for _, tt := range []struct {
		name     string
		args     []string
		response string
	}{
		{"one value", respondArgs(md5+", "+sha512+", "+sha256, fixed...), sha512Response},
		{"one header per line", respondArgs("WWW-Authenticate: "+md5+"\r\nWWW-Authenticate: "+sha256+"\r\n", fixed...), sha256Response},
		{"repeated flag", append(respondArgs(unknown, fixed...), "--challenge", sha256, "--challenge", "Proxy-Authenticate: "+md5), sha256Response},
		{"other schemes skipped", respondArgs(`Basic realm="x", `+md5, fixed...), md5Response},
		{"unknown algorithm skipped", respondArgs(unknown+", "+md5, fixed...), md5Response},
		{"--algorithm", respondArgs(md5+", "+sha512+", "+sha256, append(fixed, "--algorithm", "sha-256")...), sha256Response},
		{"--algorithm MD5", respondArgs(sha512+", "+md5, append(fixed, "--algorithm", "MD5")...), md5Response},
		{"absent algorithm is MD5", respondArgs(strings.Replace(md5, "algorithm=MD5, ", "", 1), append(fixed, "--algorithm", "md5")...), md5Response},
	} {
		t.Run(tt.name, func(t *testing.T) {
			header := respond(t, "", tt.args...)
			assert.Equal(t, tt.response, responseOf(t, header))
			mustRun(t, exitOK, verifyArgs(header, "--password", "s3cret")...)
		})
	}

	// -sess: a hex HA1 stays H(user:realm:password).
	sess := strings.Replace(v7Challenge, "algorithm=MD5", "algorithm=MD5-sess", 1)
	header := respond(t, "", respondArgs(sess, fixed...)...)
	assert.Contains(t, header, "algorithm=MD5-sess")
	mustRun(t, exitOK, verifyArgs(header, "--ha1", v7HA1)...)
	mustRun(t, exitOK, verifyArgs(header, "--password", "s3cret")...)
	// -sess needs qop: a challenge without it cannot be answered.
	r := ucsec(t, "", respondArgs(strings.Replace(sess, `, qop="auth"`, "", 1), "--password", "s3cret")...)
	r.check(t, exitError, "", "no usable qop")
}

func TestDigestPasswordFile(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "password")
	require.NoError(t, os.WriteFile(file, []byte("s3cret\r\nsecond line\n"), 0o600))
	fixed := []string{"--cnonce", "6b8b4567", "--nc", "1"}
	for _, tt := range []struct {
		name, stdin string
		args        []string
	}{
		{"file", "", append(fixed, "--password-file", file)},
		{"stdin", "s3cret\n", append(fixed, "--password-file", "-")},
		{"stdin without newline", "s3cret", append(fixed, "--password-file", "-")},
	} {
		t.Run(tt.name, func(t *testing.T) {
			header := respond(t, tt.stdin, respondArgs(v7Challenge, tt.args...)...)
			assert.Equal(t, "cd98f89d1a9e2a523a6f2b32860d1dc6", responseOf(t, header))
			r := ucsec(t, tt.stdin, verifyArgs(header, tt.args[len(tt.args)-2:]...)...)
			r.check(t, exitOK, "valid response for alice", "")
		})
	}
	empty := filepath.Join(dir, "empty")
	require.NoError(t, os.WriteFile(empty, []byte("\nx\n"), 0o600))
	r := ucsec(t, "", respondArgs(v7Challenge, "--password-file", empty)...)
	r.check(t, exitError, "", "empty: no password on the first line")
	r = ucsec(t, "", respondArgs(v7Challenge, "--password-file", filepath.Join(dir, "nosuch"))...)
	r.check(t, exitError, "", "nosuch: no such file")
}

func TestDigestAuthIntBody(t *testing.T) {
	dir := t.TempDir()
	body := filepath.Join(dir, "sdp")
	require.NoError(t, os.WriteFile(body, []byte("v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\n"), 0o644))
	other := filepath.Join(dir, "other")
	require.NoError(t, os.WriteFile(other, []byte("v=0\r\n"), 0o644))
	both := strings.Replace(v7Challenge, `qop="auth"`, `qop="auth,auth-int"`, 1)

	header := respond(t, "", respondArgs(both, "--password", "s3cret", "--qop", "auth-int", "--body", body)...)
	assert.Contains(t, header, "qop=auth-int")
	mustRun(t, exitOK, verifyArgs(header, "--password", "s3cret", "--body", body)...)
	mustRun(t, exitInvalid, verifyArgs(header, "--password", "s3cret", "--body", other)...)
	mustRun(t, exitInvalid, verifyArgs(header, "--password", "s3cret")...)
	r := ucsec(t, "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\n", verifyArgs(header, "--password", "s3cret", "--body", "-")...)
	r.check(t, exitOK, "valid response", "")

	// qop=auth does not cover the body.
	header = respond(t, "", respondArgs(both, "--password", "s3cret", "--body", body)...)
	assert.Contains(t, header, "qop=auth,")
	mustRun(t, exitOK, verifyArgs(header, "--password", "s3cret", "--body", other)...)
}

func TestDigestUserHash(t *testing.T) {
	challenge := strings.Replace(v7Challenge, "algorithm=MD5", "algorithm=SHA-256, userhash=true", 1)
	header := respond(t, "", respondArgs(challenge, "--password", "s3cret")...)
	cr, err := digest.ParseCredentials(header)
	require.NoError(t, err)
	assert.True(t, cr.UserHash)
	assert.Equal(t, digest.UserHash(digest.SHA256, "alice", "test.local"), cr.Username)

	r := mustRun(t, exitOK, verifyArgs(header, "--password", "s3cret", "--user", "alice")...)
	assert.Equal(t, "valid response for alice in test.local\n", r.stdout)
	mustRun(t, exitOK, verifyArgs(header, "--ha1", digest.HA1(digest.SHA256, "alice", "test.local", "s3cret"))...)
	mustRun(t, exitInvalid, verifyArgs(header, "--password", "wrong", "--user", "alice")...)
	r = ucsec(t, "", verifyArgs(header, "--password", "s3cret", "--user", "bob")...)
	r.check(t, exitInvalid, "", "the hashed username is not that of bob")
	r = ucsec(t, "", verifyArgs(header, "--password", "s3cret")...)
	r.check(t, exitError, "", "userhash=true: --password needs --user")
}

func TestDigestJSON(t *testing.T) {
	r := mustRun(t, exitOK, respondArgs(v7Challenge, "--password", "s3cret", "--cnonce", "6b8b4567", "--json")...)
	var resp struct {
		Authorization string `json:"authorization"`
		credentialsReport
	}
	require.NoError(t, json.Unmarshal([]byte(r.stdout), &resp), r.stdout)
	assert.Equal(t, 1, strings.Count(r.stdout, "\n"))
	want := credentialsReport{
		Username: "alice", Realm: "test.local", Nonce: "dcd98b7102dd2f0e8b11d0f600bfb0c093", URI: v7URI,
		Response: "cd98f89d1a9e2a523a6f2b32860d1dc6", Algorithm: "MD5", QOP: "auth", NC: 1, CNonce: "6b8b4567", Opaque: "op4que",
	}
	assert.Equal(t, want, resp.credentialsReport)
	assert.Equal(t, respond(t, "", respondArgs(v7Challenge, "--password", "s3cret", "--cnonce", "6b8b4567")...), resp.Authorization)

	var got digestVerifyResult
	r = mustRun(t, exitOK, verifyArgs(v7SIPp, "--password", "s3cret", "--json")...)
	require.NoError(t, json.Unmarshal([]byte(r.stdout), &got), r.stdout)
	assert.Equal(t, digestVerifyResult{Valid: true, User: "alice", credentialsReport: want}, got)
	assert.Empty(t, r.stderr)

	r = mustRun(t, exitInvalid, verifyArgs(v7SIPp, "--password", "wrong", "--json")...)
	got = digestVerifyResult{}
	require.NoError(t, json.Unmarshal([]byte(r.stdout), &got), r.stdout)
	assert.Equal(t, digestVerifyResult{Valid: false, User: "alice", credentialsReport: want, Error: "invalid response"}, got)
	assert.Empty(t, r.stderr)

	// An RFC 2069 response: no qop, nc or cnonce; no algorithm means MD5.
	noQOP := strings.Replace(v7Challenge, `, algorithm=MD5, qop="auth"`, "", 1)
	header := respond(t, "", respondArgs(noQOP, "--password", "s3cret")...)
	assert.NotContains(t, header, "algorithm")
	r = mustRun(t, exitOK, verifyArgs(header, "--password", "s3cret", "--json")...)
	var raw map[string]any
	require.NoError(t, json.Unmarshal([]byte(r.stdout), &raw))
	assert.Equal(t, "MD5", raw["algorithm"])
	assert.Equal(t, "", raw["qop"])
	assert.Equal(t, float64(0), raw["nc"])
	assert.Equal(t, "dcfd5bb5143ef24933c08679a1bf28cc", raw["response"])
	assert.NotContains(t, raw, "error")
}

func TestDigestErrors(t *testing.T) {
	noQOP := strings.Replace(v7Challenge, `, qop="auth"`, "", 1)
	authOnly := v7Challenge
	for _, tt := range []struct {
		name  string
		stdin string
		args  []string
		want  string
	}{
		{"respond missing challenge", "", []string{"digest", "respond", "--method", "REGISTER", "--uri", v7URI, "--user", "alice", "--password", "x"}, "missing --challenge"},
		{"respond missing method", "", []string{"digest", "respond", "--challenge", v7Challenge, "--uri", v7URI, "--user", "alice", "--password", "x"}, "missing --method"},
		{"respond missing uri", "", []string{"digest", "respond", "--challenge", v7Challenge, "--method", "REGISTER", "--user", "alice", "--password", "x"}, "missing --uri"},
		{"respond missing user", "", []string{"digest", "respond", "--challenge", v7Challenge, "--method", "REGISTER", "--uri", v7URI, "--password", "x"}, "missing --user"},
		{"respond missing password", "", respondArgs(v7Challenge), "missing --password or --password-file"},
		{"respond two passwords", "", respondArgs(v7Challenge, "--password", "x", "--password-file", "-"), "give only one of --password or --password-file"},
		{"respond stdin twice", "", respondArgs(v7Challenge, "--password-file", "-", "--body", "-"), "cannot both read standard input"},
		{"respond argument", "", respondArgs(v7Challenge, "--password", "x", "extra"), `unexpected argument "extra"`},
		{"respond malformed challenge", "", respondArgs(`Digest realm="test.local`, "--password", "x"), "--challenge: digest: malformed header at offset 13: unterminated quoted string"},
		{"respond challenge without nonce", "", respondArgs(`Digest realm="test.local"`, "--password", "x"), "without realm or nonce"},
		{"respond no digest challenge", "", respondArgs(`Basic realm="x"`, "--password", "x"), "--challenge holds no Digest challenge"},
		{"respond empty challenge", "", respondArgs(" \r\n", "--password", "x"), "empty --challenge"},
		{"respond wrong header name", "", respondArgs("Authorization: "+v7Challenge, "--password", "x"), `unexpected header name "Authorization"`},
		{"respond unsupported algorithm", "", respondArgs(strings.Replace(v7Challenge, "MD5", "SHA-1", 1), "--password", "x"), "offers no supported algorithm (offered: SHA-1 with qop auth)"},
		{"respond unknown --algorithm", "", respondArgs(v7Challenge, "--password", "x", "--algorithm", "SHA-1"), `unknown --algorithm "SHA-1"`},
		{"respond --algorithm not offered", "", respondArgs(v7Challenge, "--password", "x", "--algorithm", "SHA-256"), "no challenge offers --algorithm SHA-256 (offered: MD5 with qop auth)"},
		{"respond --qop without qop", "", respondArgs(noQOP, "--password", "x", "--qop", "auth"), "no challenge offers --qop auth (offered: MD5 without qop)"},
		{"respond --qop not offered", "", respondArgs(authOnly, "--password", "x", "--qop", "auth-int"), "no challenge offers --qop auth-int"},
		{"respond unknown --qop", "", respondArgs(v7Challenge, "--password", "x", "--qop", "auth-conf"), `unknown --qop "auth-conf"`},
		{"respond --nc 0", "", respondArgs(v7Challenge, "--password", "x", "--nc", "0"), `invalid --nc "0"`},
		{"respond --nc not a number", "", respondArgs(v7Challenge, "--password", "x", "--nc", "x"), `invalid --nc "x"`},
		{"respond --nc too large", "", respondArgs(v7Challenge, "--password", "x", "--nc", "4294967296"), "invalid --nc"},
		{"respond bad method", "", []string{"digest", "respond", "--challenge", v7Challenge, "--method", "REG ISTER", "--uri", v7URI, "--user", "alice", "--password", "x"}, `invalid --method "REG ISTER"`},
		{"respond control character", "", respondArgs(v7Challenge, "--password", "x", "--cnonce", "a\nb"), "--cnonce holds a control character"},
		{"respond quote in cnonce", "", respondArgs(v7Challenge, "--password", "x", "--cnonce", `a"b`), "--cnonce cannot hold"},
		{"respond missing body", "", respondArgs(v7Challenge, "--password", "x", "--body", "nosuch.sdp"), "nosuch.sdp: no such file"},
		{"verify missing authorization", "", []string{"digest", "verify", "--method", "REGISTER", "--password", "x"}, "missing --authorization"},
		{"verify missing method", "", []string{"digest", "verify", "--authorization", v7SIPp, "--password", "x"}, "missing --method"},
		{"verify missing password", "", verifyArgs(v7SIPp), "missing --password, --password-file or --ha1"},
		{"verify password and HA1", "", verifyArgs(v7SIPp, "--password", "x", "--ha1", v7HA1), "give only one of --password, --password-file or --ha1"},
		{"verify stdin twice", "", verifyArgs(v7SIPp, "--password-file", "-", "--body", "-"), "cannot both read standard input"},
		{"verify short HA1", "", verifyArgs(v7SIPp, "--ha1", "0784"), "--ha1 must be 32 hex digits for MD5"},
		{"verify non-hex HA1", "", verifyArgs(v7SIPp, "--ha1", strings.Repeat("x", 32)), "--ha1 must be 32 hex digits"},
		{"verify MD5 HA1 for SHA-256", "", verifyArgs(strings.Replace(v7SIPp, "algorithm=MD5", "algorithm=SHA-256", 1), "--ha1", v7HA1), "--ha1 must be 64 hex digits for SHA-256"},
		{"verify malformed", "", verifyArgs(`Digest username="alice`, "--password", "x"), "--authorization: digest: malformed header at offset 16: unterminated quoted string"},
		{"verify missing response", "", verifyArgs(strings.Replace(v7SIPp, `response="cd98f89d1a9e2a523a6f2b32860d1dc6",`, "", 1), "--password", "x"), "without response"},
		{"verify nc without qop", "", verifyArgs(strings.Replace(v7SIPp, "qop=auth,", "", 1), "--password", "x"), "nc or cnonce without qop"},
		{"verify two credentials", "", verifyArgs(v7SIPp+", "+strings.TrimPrefix(v7SIPp, "Authorization: "), "--password", "x"), "more than one Digest credential"},
		{"verify two headers", "", verifyArgs(v7SIPp+"\n"+v7SIPp, "--password", "x"), "--authorization holds 2 headers, want 1"},
		{"verify no digest", "", verifyArgs(`Basic YWxpY2U6czNjcmV0`, "--password", "x"), "no Digest credentials"},
		{"verify challenge header", "", verifyArgs("WWW-Authenticate: "+v7Challenge, "--password", "x"), `unexpected header name "WWW-Authenticate"`},
		{"verify unsupported algorithm", "", verifyArgs(strings.Replace(v7SIPp, "algorithm=MD5", "algorithm=AKAv1-MD5", 1), "--password", "x"), `unsupported algorithm "AKAv1-MD5"`},
		{"verify unsupported qop", "", verifyArgs(strings.Replace(v7SIPp, "qop=auth", "qop=auth-conf", 1), "--password", "x"), `unsupported qop "auth-conf"`},
		{"verify -sess without qop", "", verifyArgs(`Digest username="alice", realm="r", nonce="n", uri="sip:x", response="00", algorithm=MD5-sess`, "--password", "x"), "algorithm MD5-sess without qop"},
		{"verify argument", "", verifyArgs(v7SIPp, "--password", "x", "extra"), `unexpected argument "extra"`},
		{"verify missing body", "", verifyArgs(v7SIPp, "--password", "x", "--body", "nosuch.sdp"), "nosuch.sdp: no such file"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			r := ucsec(t, tt.stdin, tt.args...)
			r.check(t, exitError, "", tt.want)
			assert.Empty(t, r.stdout)
			assert.Equal(t, 1, strings.Count(r.stderr, "\n"), r.stderr)
		})
	}
	// --json does not change how errors are reported.
	r := ucsec(t, "", verifyArgs(`Digest username="alice`, "--password", "x", "--json")...)
	r.check(t, exitError, "", "malformed header")
	assert.Empty(t, r.stdout)
}

func TestDigestHelp(t *testing.T) {
	// TestHelp covers the help of every command; here, the flags.
	r := mustRun(t, exitOK, "digest", "respond", "-h")
	for _, want := range []string{"--challenge HEADER", "--method METHOD", "--uri URI", "--user NAME", "--password PW",
		"--password-file FILE", "--algorithm ALG", "--qop QOP", "--cnonce CNONCE", "--nc N", "(default 1)", "--body FILE", "--json", "shows in ps"} {
		assert.Contains(t, r.stdout, want)
	}
	r = mustRun(t, exitOK, "digest", "verify", "-h")
	for _, want := range []string{"--authorization HEADER", "--method METHOD", "--password PW", "--password-file FILE",
		"--ha1 HEX", "--user NAME", "--body FILE", "--json", "checks the response only", "replay", "userhash=true"} {
		assert.Contains(t, r.stdout, want)
	}

	// The examples work (with the password on standard input).
	for _, c := range digestGroup.commands {
		for _, ex := range c.examples {
			if strings.Contains(ex, "$(") {
				continue
			}
			args := shellWords(t, strings.TrimPrefix(ex, "ucsec "))
			r := ucsec(t, "s3cret\n", args...)
			assert.Equal(t, exitOK, r.code, "%s: %s", ex, r.stderr)
		}
	}
}

// shellWords splits a command line of the help's examples into words:
// words separated by spaces, with single-quoted parts.
func shellWords(t *testing.T, s string) []string {
	t.Helper()
	var words []string
	var w strings.Builder
	inWord, quoted := false, false
	for _, r := range s {
		switch {
		case r == '\'':
			quoted, inWord = !quoted, true
		case r == ' ' && !quoted:
			if inWord {
				words = append(words, w.String())
				w.Reset()
			}
			inWord = false
		default:
			w.WriteRune(r)
			inWord = true
		}
	}
	require.False(t, quoted, "unbalanced quote in %q", s)
	if inWord {
		words = append(words, w.String())
	}
	return words
}

// FuzzDigestVerify checks that any header value gives exit status 0, 1 or
// 2, without a panic, and at most one line on standard error.
func FuzzDigestVerify(f *testing.F) {
	f.Add(v7SIPp, v7Challenge)
	f.Add(`Digest username="a", realm="b", nonce="c", uri="d", response="e", algorithm=SHA-256-sess, qop=auth-int, nc=00000001, cnonce="x", userhash=true`, `Digest realm="a", nonce="b", algorithm=MD5-sess`)
	f.Add("", "")
	f.Fuzz(func(t *testing.T, authorization, challenge string) {
		for _, args := range [][]string{
			{"digest", "verify", "--authorization", authorization, "--method", "REGISTER", "--password", "x", "--json"},
			{"digest", "verify", "--authorization", authorization, "--method", "REGISTER", "--ha1", v7HA1, "--user", "alice"},
			{"digest", "respond", "--challenge", challenge, "--method", "REGISTER", "--uri", v7URI, "--user", "alice", "--password", "x"},
		} {
			r := ucsec(t, "", args...)
			if r.code != exitOK && r.code != exitInvalid && r.code != exitError {
				t.Fatalf("%q: exit status %d", args, r.code)
			}
			if strings.Count(r.stderr, "\n") > 1 {
				t.Fatalf("%q: stderr %q is more than one line", args, r.stderr)
			}
		}
	})
}
