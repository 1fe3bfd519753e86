package digest

import (
	"errors"
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestParseChallenges(t *testing.T) {
	// Several challenges in one header, other schemes skipped, commas and
	// escapes inside quotes, any case, quoted tokens, unknown parameters
	// kept.
	h := `Basic realm="x", Bearer abc.def==, DIGEST REALM="a, nonce=\"b\"", nonce = "n1", ALGORITHM="sha-256", qop="auth, auth-int", stale=TRUE, ext=1, ` +
		`Digest realm="b", nonce="n2", x-q="\\q"`
	chs, err := ParseChallenges(h)
	require.NoError(t, err)
	require.Len(t, chs, 2)
	assert.Equal(t, &Challenge{Realm: `a, nonce="b"`, Nonce: "n1", Algorithm: SHA256, QOP: []string{"auth", "auth-int"},
		Stale: true, Other: []Param{{Name: "ext", Value: "1"}}}, chs[0])
	assert.Equal(t, &Challenge{Realm: "b", Nonce: "n2", Other: []Param{{Name: "x-q", Value: `\q`, Quoted: true}}}, chs[1])

	// String output parses back to the same challenge.
	for _, ch := range chs {
		again, err := ParseChallenges(ch.String())
		require.NoError(t, err)
		assert.Equal(t, []*Challenge{ch}, again)
	}
	assert.Equal(t, `Digest realm="a, nonce=\"b\"", nonce="n1", stale=true, algorithm=SHA-256, qop="auth,auth-int", ext=1`, chs[0].String())

	none, err := ParseChallenges(`Basic realm="x"`)
	require.NoError(t, err)
	assert.Empty(t, none)
}

func TestParseErrors(t *testing.T) {
	for _, h := range []string{
		`Digest realm="a", realm="b", nonce="n"`,      // duplicate
		`Digest realm="a", REALM="b", nonce="n"`,      // duplicate, other case
		`Digest realm="a`,                             // unterminated
		`Digest realm="a\`,                            // trailing backslash
		"Digest realm=\"a\nb\", nonce=\"n\"",          // control character
		`Digest realm="a" nonce="n"`,                  // missing comma
		`Digest realm=, nonce="n"`,                    // no value
		`Digest nonce="n"`,                            // no realm
		`Digest realm="r"`,                            // no nonce
		`realm="r", nonce="n"`,                        // no scheme
		`Digest realm="r", nonce="n", @`,              // bad character
		`Digest realm="r", nonce="n", a=b c`,          // junk after a value
		"Digest " + strings.Repeat("a=b, ", 40) + "x", // too many parameters
		strings.Repeat("x", MaxHeaderLength+1),
		strings.Repeat("Digest realm=\"r\", nonce=\"n\", ", 17),
	} {
		_, err := ParseChallenges(h)
		require.Error(t, err, "%q", h)
		assert.ErrorIs(t, err, ErrMalformed, "%q", h)
		var se *SyntaxError
		assert.True(t, errors.As(err, &se))
	}
}

func TestParseCredentials(t *testing.T) {
	h := `digest Username="alice", realm="r", nonce="n", uri="sip:a", response="ABC", algorithm="MD5", ` +
		`cnonce="c", qop="auth", nc=0000000a, opaque="o", userhash=false, foo="bar"`
	c, err := ParseCredentials(h)
	require.NoError(t, err)
	assert.Equal(t, &Credentials{Username: "alice", Realm: "r", Nonce: "n", URI: "sip:a", Response: "ABC",
		Algorithm: MD5, CNonce: "c", QOP: "auth", NC: 10, Opaque: "o", Other: []Param{{Name: "foo", Value: "bar", Quoted: true}}}, c)
	assert.Equal(t, `Digest username="alice", realm="r", nonce="n", uri="sip:a", response="ABC", algorithm=MD5, cnonce="c", opaque="o", qop=auth, nc=0000000a, foo="bar"`, c.String())
	again, err := ParseCredentials(c.String())
	require.NoError(t, err)
	assert.Equal(t, c, again)

	base := `Digest username="u", realm="r", nonce="n", uri="sip:a", response="00"`
	for _, h := range []string{
		`Digest realm="r", nonce="n", uri="sip:a", response="00"`,
		base + `, qop=auth`,
		base + `, qop=auth, nc=00000001`,
		base + `, nc=00000001, cnonce="c"`,
		base + `, qop="auth,auth-int", nc=00000001, cnonce="c"`,
		base + `, qop=auth, nc=1, cnonce="c"`,
		base + `, qop=auth, nc=00000000, cnonce="c"`,
		base + `, qop=auth, nc=0000000g, cnonce="c"`,
		base + `, ` + base,
		`Basic dXNlcjpwYXNz`,
	} {
		_, err := ParseCredentials(h)
		assert.ErrorIs(t, err, ErrMalformed, "%q", h)
	}
}

// TestStringNoInjection: values holding line breaks cannot break out of
// their header.
func TestStringNoInjection(t *testing.T) {
	ch := &Challenge{Realm: "a\r\nVia: evil", Nonce: "n\x00"}
	s := ch.String()
	assert.NotContains(t, s, "\r")
	assert.NotContains(t, s, "\n")
	assert.NotContains(t, s, "\x00")
	_, err := ParseChallenges(s)
	require.NoError(t, err)

	cr := &Credentials{Username: "u\"x", Realm: "r", Nonce: "n", URI: "sip:a", Response: "00", QOP: "auth", NC: 1, CNonce: "c"}
	again, err := ParseCredentials(cr.String())
	require.NoError(t, err)
	assert.Equal(t, "u\"x", again.Username)

	// A token value that is not a token is written quoted, so it cannot
	// add parameters; the parser then refuses it.
	cr.QOP = "auth, nc=99999999"
	assert.Contains(t, cr.String(), `qop="auth, nc=99999999"`)
	_, err = ParseCredentials(cr.String())
	assert.ErrorIs(t, err, ErrMalformed)
}

func TestAlgorithmNames(t *testing.T) {
	assert.Equal(t, SHA512_256Sess, ParseAlgorithm("sha-512-256-SESS"))
	assert.Equal(t, Algorithm("AKAv1-MD5"), ParseAlgorithm("AKAv1-MD5"))
	assert.False(t, ParseAlgorithm("AKAv1-MD5").Supported())
	assert.True(t, Algorithm("").Supported())
	assert.Equal(t, "", HA1("AKAv1-MD5", "u", "r", "p"))
	assert.Equal(t, "", UserHash("AKAv1-MD5", "u", "r"))
}

// TestOtherParamNames: a parameter name that is not a token cannot add
// anything to a header.
func TestOtherParamNames(t *testing.T) {
	ch := &Challenge{Realm: "r", Nonce: "n", Other: []Param{{Name: "x\r\nVia: evil", Value: "1"}, {Name: "a=b, response", Value: "2"}, {Name: "ok", Value: "3"}}}
	s := ch.String()
	assert.Equal(t, `Digest realm="r", nonce="n", ok=3`, s)
}

// TestQuotedControlCharacters puts each forbidden byte at every position
// of a long quoted string: the word-at-a-time scan must never skip one.
func TestQuotedControlCharacters(t *testing.T) {
	for _, bad := range []byte{0, 1, 0x0a, 0x0d, 0x1f, 0x7f} {
		for pos := 0; pos < 24; pos++ {
			v := []byte(strings.Repeat("a", 24))
			v[pos] = bad
			_, err := ParseCredentials(`Digest username="` + string(v) + `", realm="r", nonce="n", uri="u", response="00"`)
			assert.ErrorIs(t, err, ErrMalformed, "byte %#x at %d", bad, pos)
		}
	}
	for pos := 0; pos < 24; pos++ {
		v := []byte(strings.Repeat("a", 24))
		v[pos] = 0x80 // obs-text is allowed
		c, err := ParseCredentials(`Digest username="` + string(v) + `", realm="r", nonce="n", uri="u", response="00"`)
		require.NoError(t, err)
		assert.Equal(t, string(v), c.Username)
		v[pos] = '\t'
		_, err = ParseCredentials(`Digest username="` + string(v) + `", realm="r", nonce="n", uri="u", response="00"`)
		require.NoError(t, err)
	}
}

// TestCanonicalCredentials checks which headers the fast path reads:
// what Credentials.String writes, and the same with other spacing, case,
// escapes or parameters left to the general parser, which reads them all
// alike.
func TestCanonicalCredentials(t *testing.T) {
	const canon = `Digest username="alice", realm="test.local", nonce="abc", uri="sip:test.local", response="0123456789abcdef0123456789abcdef", algorithm=MD5, cnonce="0a4f113b", qop=auth, nc=00000001`
	want, err := ParseCredentials(canon)
	require.NoError(t, err)
	var c Credentials
	require.True(t, parseCanonicalCredentials(&c, canon))
	assert.Equal(t, *want, c)
	assert.True(t, parseCanonicalCredentials(&c, want.String()), "String's form: %s", want.String())

	for _, h := range []string{
		strings.Replace(canon, ", realm", ",\trealm", 1),    // a tab
		strings.Replace(canon, ", realm", " , realm", 1),    // space before the comma
		strings.Replace(canon, "Digest ", "Digest  ", 1),    // two spaces
		strings.Replace(canon, "username=", "UserName=", 1), // case
		strings.Replace(canon, `"alice"`, `"al\ice"`, 1),    // an escape
		canon + ", ",           // a trailing comma
		canon + ` , other="x"`, // an unknown parameter
	} {
		var c Credentials
		assert.False(t, parseCanonicalCredentials(&c, h), h)
		got, err := ParseCredentials(h)
		require.NoError(t, err, h)
		got.Other = nil
		assert.Equal(t, want.Username, got.Username, h)
		assert.Equal(t, want.Nonce, got.Nonce, h)
	}
	for _, h := range []string{
		strings.Replace(canon, ", nc=00000001", "", 1), // qop without nc
		strings.Replace(canon, "nc=00000001", "nc=00000000", 1),
		strings.Replace(canon, `username="alice", `, "", 1),
		strings.Replace(canon, "qop=auth", "qop=auth, qop=auth", 1),
	} {
		var c Credentials
		assert.False(t, parseCanonicalCredentials(&c, h), h)
		_, err := ParseCredentials(h)
		assert.ErrorIs(t, err, ErrMalformed, h)
	}
}

// TestSkipPlainQuoted checks skipPlainQuoted against a byte-by-byte scan
// on random strings of the bytes that matter: plain text, tabs, quotes,
// backslashes, control characters, DEL and bytes above 0x7F.
func TestSkipPlainQuoted(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	alphabet := []byte("aZ9 ~\t\"\\\x00\x1f\x7f\x80\xff=,")
	for range 50000 {
		b := make([]byte, r.IntN(40))
		for i := range b {
			if r.IntN(4) == 0 {
				b[i] = alphabet[r.IntN(len(alphabet))]
			} else {
				b[i] = 'a' + byte(r.IntN(26))
			}
		}
		s := string(b)
		start := 0
		if len(s) > 0 {
			start = r.IntN(len(s) + 1)
		}
		want := start
		for want < len(s) && charClass[s[want]]&classPlainQD != 0 {
			want++
		}
		if got := skipPlainQuoted(s, start); got != want {
			t.Fatalf("skipPlainQuoted(%q, %d) = %d, want %d", s, start, got, want)
		}
	}
}
