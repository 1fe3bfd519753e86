package srtpkeys

import (
	"encoding/base64"
	"encoding/hex"
	"errors"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// Key‖salt values from the examples of RFC 4568; each decodes to 30 bytes.
const (
	rfcKey1 = "PS1uQCVeeCFCanVmcjkpPywjNWhcYD0mXXtxaVBR"
	rfcKey2 = "WVNfX19zZW1jdGwgKCkgewkyMjA7fQp9CnVubGVz"
	rfcKey3 = "YUJDZGVmZ2hpSktMbW9QUXJzVHVWd3l6MTIzNDU2"
	rfcKey4 = "d0RmdmcmVCspeEc3QGZiNWpVLFJhQX1cfHAwJSoj"
)

func TestParseCryptoRFC4568(t *testing.T) {
	for _, c := range []struct {
		line     string
		tag      int
		lifetime uint64
		mki      []byte
		params   SessionParams
		canon    string // MarshalText, when it differs from the input value
	}{
		{line: "a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:" + rfcKey1 + "|2^20|1:32", tag: 1, lifetime: 1 << 20,
			mki: append(make([]byte, 31), 1)},
		{line: "a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:" + rfcKey2 + "|2^20|1:4 FEC_ORDER=FEC_SRTP", tag: 1,
			lifetime: 1 << 20, mki: []byte{0, 0, 0, 1}, params: SessionParams{FECOrder: FECSRTP}},
		{line: "a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:" + rfcKey1 + "|2^20|1:4", tag: 1, lifetime: 1 << 20, mki: []byte{0, 0, 0, 1}},
		{line: "crypto:7 AES_CM_128_HMAC_SHA1_80 inline:" + rfcKey3 + "|1066:4", tag: 7, mki: []byte{0, 0, 0x04, 0x2a}},
		{line: "1 AES_CM_128_HMAC_SHA1_32 inline:" + rfcKey4 + "|2^20|1:32", tag: 1, lifetime: 1 << 20, mki: append(make([]byte, 31), 1)},
		// Microsoft Teams / Lync.
		{line: "a=crypto:2 AES_CM_128_HMAC_SHA1_80 inline:" + rfcKey1 + "|2^31|1:1", tag: 2, lifetime: 1 << 31, mki: []byte{1}},
		// AudioCodes: a lone lifetime.
		{line: "a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:" + rfcKey1 + "|2^31", tag: 1, lifetime: 1 << 31},
		// A decimal lifetime.
		{line: "a=crypto:3 AES_CM_128_HMAC_SHA1_80 inline:" + rfcKey1 + "|21|3:4", tag: 3, lifetime: 21, mki: []byte{0, 0, 0, 3}},
		// Every session parameter.
		{line: "a=crypto:9 AES_CM_128_HMAC_SHA1_80 inline:" + rfcKey1 + " KDR=23 UNENCRYPTED_SRTP UNENCRYPTED_SRTCP UNAUTHENTICATED_SRTP FEC_ORDER=SRTP_FEC FEC_KEY=inline:" + rfcKey2 + "|2^20|2:4 WSH=60 -X-vendor=1",
			tag: 9, params: SessionParams{KDR: 1 << 23, UnencryptedSRTP: true, UnencryptedSRTCP: true, UnauthenticatedSRTP: true,
				FECOrder: SRTPFEC, WSH: 60, Extensions: []string{"-X-vendor=1"}}},
		// Lenient input, canonical output.
		{line: "a=crypto:1\t aes_cm_128_hmac_sha1_80  INLINE:" + rfcKey1 + "  KDR=1\r\n", tag: 1, params: SessionParams{KDR: 2},
			canon: "1 AES_CM_128_HMAC_SHA1_80 inline:" + rfcKey1 + " KDR=1"},
		{line: "a=crypto:0 AES_CM_128_HMAC_SHA1_80 inline:" + rfcKey1 + "|2^20|0001:2", tag: 0, lifetime: 1 << 20, mki: []byte{0, 1},
			canon: "0 AES_CM_128_HMAC_SHA1_80 inline:" + rfcKey1 + "|2^20|1:2"},
	} {
		t.Run(c.line, func(t *testing.T) {
			cr, err := ParseCrypto(c.line)
			require.NoError(t, err)
			assert.Equal(t, c.tag, cr.Tag)
			require.Len(t, cr.Keys, 1)
			k := cr.Keys[0]
			assert.Equal(t, c.lifetime, k.Lifetime)
			assert.Equal(t, c.mki, k.MKI)
			assert.Equal(t, cr.Suite, k.Suite)
			if c.params.FECKey == nil {
				c.params.FECKey = cr.Params.FECKey
			}
			assert.Equal(t, c.params, cr.Params)
			b, err := cr.Value()
			require.NoError(t, err)
			want := c.canon
			if want == "" {
				want = strings.TrimPrefix(strings.TrimPrefix(c.line, "a="), "crypto:")
			}
			assert.Equal(t, want, string(b))
			attr, err := cr.Attribute()
			require.NoError(t, err)
			assert.Equal(t, "a=crypto:"+want, attr)
			assert.NotContains(t, cr.String(), rfcKey1[:10])
			assert.NotContains(t, cr.String(), rfcKey2[:10])
		})
	}
}

func TestParseCryptoKeys(t *testing.T) {
	// Several keys with MKIs (the RFC's F8 example, with a suite we know).
	line := "a=crypto:2 AES_CM_128_HMAC_SHA1_80 inline:MTIzNDU2Nzg5QUJDREUwMTIzNDU2Nzg5QUJjZGVm|2^20|1:4;inline:QUJjZGVmMTIzNDU2Nzg5QUJDREUwMTIzNDU2Nzg5|2^20|2:4 FEC_ORDER=FEC_SRTP"
	c, err := ParseCrypto(line)
	require.NoError(t, err)
	require.Len(t, c.Keys, 2)
	assert.Equal(t, []byte{0, 0, 0, 2}, c.Keys[1].MKI)
	assert.Equal(t, "123456789ABCDE0123456789ABcdef", string(c.Keys[0].KeySalt()))

	// The F8 suite itself is unknown: a syntax error that is also a suite error.
	_, err = ParseCrypto(strings.Replace(line, "AES_CM_128_HMAC_SHA1_80", "F8_128_HMAC_SHA1_80", 1))
	assert.ErrorIs(t, err, ErrMalformed)
	assert.ErrorIs(t, err, ErrUnknownSuite)
	var se *SuiteError
	require.ErrorAs(t, err, &se)
	assert.Equal(t, "F8_128_HMAC_SHA1_80", se.Name)

	// Key lengths per suite, with and without base64 padding.
	for _, s := range Suites() {
		k, err := GenerateMasterKey(nil, s)
		require.NoError(t, err)
		padded := base64.StdEncoding.EncodeToString(k.KeySalt())
		for _, enc := range []string{padded, strings.TrimRight(padded, "=")} {
			c, err := ParseCrypto("1 " + s.String() + " inline:" + enc)
			require.NoError(t, err, "%s %s", s, enc)
			assert.True(t, c.Keys[0].Equal(k))
			out, err := c.Value()
			require.NoError(t, err)
			assert.Equal(t, "1 "+s.String()+" inline:"+padded, string(out))
		}
		// The misspelling is accepted and the RFC spelling written.
		if strings.HasPrefix(s.String(), "AES_256_CM") || strings.HasPrefix(s.String(), "AES_192_CM") {
			alias := "AES_CM_" + s.String()[4:7] + s.String()[10:]
			c, err := ParseCrypto("1 " + alias + " inline:" + padded)
			require.NoError(t, err, alias)
			assert.Equal(t, s, c.Suite)
		}
	}
}

func TestParseCryptoErrors(t *testing.T) {
	long := "1 AES_CM_128_HMAC_SHA1_80 inline:" + rfcKey1 + strings.Repeat(" -x", MaxCryptoLen)
	var many []string
	for i := 1; i <= MaxKeys+1; i++ {
		many = append(many, "inline:"+rfcKey1+"|"+string(rune('0'+i%10))+string(rune('0'+i/10))+":2")
	}
	for _, c := range []struct{ line, msg string }{
		{"", "missing tag"},
		{"a=crypto:", "missing tag"},
		{"01 AES_CM_128_HMAC_SHA1_80 inline:" + rfcKey1, "leading zeros"},
		{"1234567890 AES_CM_128_HMAC_SHA1_80 inline:" + rfcKey1, "1 to 9 digits"},
		{"x AES_CM_128_HMAC_SHA1_80 inline:" + rfcKey1, "tag"},
		{"1", "missing crypto suite"},
		{"1 AES_CM_128_HMAC_SHA1_80", "missing key"},
		{"1 AES_CM_128_HMAC_SHA1_80 uri:http://x", "inline:"},
		{"1 AES_CM_128_HMAC_SHA1_80 inline:" + rfcKey1[:36], "30 bytes"},
		{"1 AES_CM_256_HMAC_SHA1_80 inline:" + rfcKey1, "46 bytes"},
		{"1 AES_CM_128_HMAC_SHA1_80 inline:" + rfcKey1 + "x", "base64"},
		{"1 AES_CM_128_HMAC_SHA1_80 inline:" + rfcKey1 + "|", "lifetime"},
		{"1 AES_CM_128_HMAC_SHA1_80 inline:" + rfcKey1 + "|2^49", "lifetime"},
		{"1 AES_CM_128_HMAC_SHA1_80 inline:" + rfcKey1 + "|0", "lifetime"},
		{"1 AES_CM_128_HMAC_SHA1_80 inline:" + rfcKey1 + "|281474976710657", "lifetime"},
		{"1 AES_CM_128_HMAC_SHA1_80 inline:" + rfcKey1 + "|1:0", "MKI length"},
		{"1 AES_CM_128_HMAC_SHA1_80 inline:" + rfcKey1 + "|1:129", "MKI length"},
		{"1 AES_CM_128_HMAC_SHA1_80 inline:" + rfcKey1 + "|256:1", "does not fit"},
		{"1 AES_CM_128_HMAC_SHA1_80 inline:" + rfcKey1 + "|" + strings.Repeat("9", 25) + ":8", "does not fit"},
		{"1 AES_CM_128_HMAC_SHA1_80 inline:" + rfcKey1 + "|-1:4", "decimal"},
		{"1 AES_CM_128_HMAC_SHA1_80 inline:" + rfcKey1 + "|2^20|1:4|x", "three"},
		{"1 AES_CM_128_HMAC_SHA1_80 inline:" + rfcKey1 + "|1:4|2^20", "lifetime"},
		{"1 AES_CM_128_HMAC_SHA1_80 inline:" + rfcKey1 + ";inline:" + rfcKey2, "no MKI"},
		{"1 AES_CM_128_HMAC_SHA1_80 inline:" + rfcKey1 + "|2:18;inline:" + rfcKey2 + "|21|3:4", "different lengths"},
		{"1 AES_CM_128_HMAC_SHA1_80 inline:" + rfcKey1 + "|1:4;inline:" + rfcKey2 + "|1:4", "same MKI"},
		{"1 AES_CM_128_HMAC_SHA1_80 " + strings.Join(many, ";"), "more than 16 keys"},
		{"1 AES_CM_128_HMAC_SHA1_80 inline:" + rfcKey1 + " KDR=25", "KDR"},
		{"1 AES_CM_128_HMAC_SHA1_80 inline:" + rfcKey1 + " KDR=01", "KDR"},
		{"1 AES_CM_128_HMAC_SHA1_80 inline:" + rfcKey1 + " KDR=0", "KDR is not 1 to 24"},
		{"1 AEAD_AES_128_GCM inline:" + rfcKey3[:36] + "AA== UNAUTHENTICATED_SRTP", "AEAD"},
		{"1 AES_CM_128_HMAC_SHA1_80 inline:" + rfcKey1 + " WSH=2147483649", "WSH"},
		{"1 AES_CM_128_HMAC_SHA1_80 inline:" + rfcKey1[:20] + "\r\n" + rfcKey1[20:], "base64"},
		{"1 AEſ_CM_128_HMAC_SHA1_80 inline:" + rfcKey1, "not a suite name"},
		{"1 inline:" + rfcKey1, "not a suite name"},
		{"1 AES_CM_128_HMAC_SHA1_80 inline:" + rfcKey1 + " KDR=1 KDR=2", "repeats"},
		{"1 AES_CM_128_HMAC_SHA1_80 inline:" + rfcKey1 + " UNENCRYPTED_SRTP UNENCRYPTED_SRTP", "repeats"},
		{"1 AES_CM_128_HMAC_SHA1_80 inline:" + rfcKey1 + " UNENCRYPTED_SRTP=1", "no value"},
		{"1 AES_CM_128_HMAC_SHA1_80 inline:" + rfcKey1 + " FEC_ORDER=X", "FEC_ORDER"},
		{"1 AES_CM_128_HMAC_SHA1_80 inline:" + rfcKey1 + " FEC_KEY=inline:abc", "30 bytes"},
		{"1 AES_CM_128_HMAC_SHA1_80 inline:" + rfcKey1 + " WSH=0", "WSH"},
		{"1 AES_CM_128_HMAC_SHA1_80 inline:" + rfcKey1 + " WSH=x", "WSH"},
		{"1 AES_CM_128_HMAC_SHA1_80 inline:" + rfcKey1 + " kdr=1", "unknown session parameter"},
		{"1 AES_CM_128_HMAC_SHA1_80 inline:" + rfcKey1 + " FOO", "unknown session parameter"},
		{"1 AES_CM_128_HMAC_SHA1_80 inline:" + rfcKey1 + " -", "unknown session parameter"},
		{"1 AES_CM_128_HMAC_SHA1_80 inline:" + rfcKey1 + " -\x01", "visible ASCII"},
		{long, "longer than"},
	} {
		t.Run(c.msg, func(t *testing.T) {
			_, err := ParseCrypto(c.line)
			require.Error(t, err, c.line)
			assert.ErrorIs(t, err, ErrMalformed)
			var se *SyntaxError
			require.ErrorAs(t, err, &se)
			assert.Contains(t, err.Error(), c.msg)
			assert.True(t, strings.HasPrefix(err.Error(), "srtpkeys: "))
			// An error never quotes key bytes.
			assert.NotContains(t, err.Error(), rfcKey1[:12])
		})
	}
}

func TestCryptoMarshalErrors(t *testing.T) {
	k, err := GenerateMasterKey(nil, AES128CM_SHA1_80)
	require.NoError(t, err)
	k256, err := GenerateMasterKey(nil, AES256CM_SHA1_80)
	require.NoError(t, err)
	for name, c := range map[string]Crypto{
		"no keys":       {Tag: 1, Suite: AES128CM_SHA1_80},
		"bad tag":       {Tag: -1, Suite: AES128CM_SHA1_80, Keys: []MasterKey{k}},
		"big tag":       {Tag: MaxTag + 1, Suite: AES128CM_SHA1_80, Keys: []MasterKey{k}},
		"no suite":      {Tag: 1, Keys: []MasterKey{k}},
		"suite differs": {Tag: 1, Suite: AES128CM_SHA1_80, Keys: []MasterKey{k256}},
		"zero key":      {Tag: 1, Suite: AES128CM_SHA1_80, Keys: []MasterKey{{Suite: AES128CM_SHA1_80}}},
		"two no MKI":    {Tag: 1, Suite: AES128CM_SHA1_80, Keys: []MasterKey{k, k}},
		"bad KDR":       {Tag: 1, Suite: AES128CM_SHA1_80, Keys: []MasterKey{k}, Params: SessionParams{KDR: 3}},
		"bad FEC":       {Tag: 1, Suite: AES128CM_SHA1_80, Keys: []MasterKey{k}, Params: SessionParams{FECOrder: "x"}},
		"bad FEC key":   {Tag: 1, Suite: AES128CM_SHA1_80, Keys: []MasterKey{k}, Params: SessionParams{FECKey: []MasterKey{k256}}},
		"bad ext":       {Tag: 1, Suite: AES128CM_SHA1_80, Keys: []MasterKey{k}, Params: SessionParams{Extensions: []string{"x"}}},
		"ext space":     {Tag: 1, Suite: AES128CM_SHA1_80, Keys: []MasterKey{k}, Params: SessionParams{Extensions: []string{"-a b"}}},
		"big lifetime":  {Tag: 1, Suite: AES128CM_SHA1_80, Keys: []MasterKey{{Suite: k.Suite, Lifetime: MaxLifetimeSRTP + 1, m: k.m}}},
		"empty MKI":     {Tag: 1, Suite: AES128CM_SHA1_80, Keys: []MasterKey{{Suite: k.Suite, MKI: []byte{}, m: k.m}}},
	} {
		_, err := c.Value()
		assert.Error(t, err, name)
		_, err2 := c.Attribute()
		assert.Error(t, err2, name)
		assert.True(t, errors.Is(err, ErrKey) || errors.Is(err, ErrMalformed) || errors.Is(err, ErrUnknownSuite) || errors.Is(err, ErrIndex), "%s: %v", name, err)
	}
}

func TestOfferAnswer(t *testing.T) {
	offer, err := NewOffer(nil, AES256CM_SHA1_80, AES128CM_SHA1_80)
	require.NoError(t, err)
	attrs, err := offer.Attributes()
	require.NoError(t, err)
	require.Len(t, attrs, 2)
	assert.True(t, strings.HasPrefix(attrs[0], "a=crypto:1 AES_256_CM_HMAC_SHA1_80 inline:"))
	assert.True(t, strings.HasPrefix(attrs[1], "a=crypto:2 AES_CM_128_HMAC_SHA1_80 inline:"))
	assert.False(t, offer.Crypto[0].Keys[0].Equal(offer.Crypto[1].Keys[0]))

	// The answerer accepts only AES-128: it picks tag 2 and echoes it.
	ans, bob, err := Answer(append([]string{"a=crypto:7 F8_128_HMAC_SHA1_80 inline:" + rfcKey1}, attrs...),
		&AnswerOptions{Suites: []Suite{AES128CM_SHA1_80}})
	require.NoError(t, err)
	assert.Equal(t, 2, ans.Tag)
	assert.Equal(t, AES128CM_SHA1_80, bob.Suite)
	line, err := ans.Attribute()
	require.NoError(t, err)
	alice, err := offer.Accept(line)
	require.NoError(t, err)
	assert.True(t, alice.Local.Equal(bob.Remote))
	assert.True(t, alice.Remote.Equal(bob.Local))
	assert.False(t, alice.Local.Equal(alice.Remote))

	// Media flows both ways through pion.
	for _, pair := range [][2]*Session{{alice, bob}, {bob, alice}} {
		send, err := pair[0].SendContext()
		require.NoError(t, err)
		recv, err := pair[1].ReceiveContext()
		require.NoError(t, err)
		pkt, err := send.EncryptRTP(nil, unhex(t, plainRTP), nil)
		require.NoError(t, err)
		plain, err := recv.DecryptRTP(nil, pkt, nil)
		require.NoError(t, err)
		assert.Equal(t, plainRTP, hex.EncodeToString(plain))
	}

	// Wrong answers.
	for name, a := range map[string]string{
		"unknown tag":   strings.Replace(line, "crypto:2 ", "crypto:3 ", 1),
		"suite changed": "a=crypto:2 AES_CM_128_HMAC_SHA1_32 inline:" + rfcKey1,
		"unencrypted":   line + " UNENCRYPTED_SRTP",
		"malformed":     "a=crypto:2 AES_CM_128_HMAC_SHA1_80",
	} {
		_, err := offer.Accept(a)
		assert.Error(t, err, name)
	}
}

func TestAnswerPolicy(t *testing.T) {
	aes := "a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:" + rfcKey1
	for name, c := range map[string]struct {
		offered []string
		opts    *AnswerOptions
		tag     int
		err     error
	}{
		"first acceptable":       {[]string{aes, "a=crypto:2 AEAD_AES_128_GCM inline:" + base64.StdEncoding.EncodeToString(make([]byte, 28))}, nil, 1, nil},
		"unknown suites skipped": {[]string{"a=crypto:1 AEAD_AES_128_GCM_8 inline:xyz", strings.Replace(aes, ":1 ", ":2 ", 1)}, nil, 2, nil},
		"unencrypted skipped":    {[]string{aes + " UNENCRYPTED_SRTP"}, nil, 0, ErrNoCommonSuite},
		"unencrypted allowed":    {[]string{aes + " UNENCRYPTED_SRTP"}, &AnswerOptions{AllowUnprotected: true}, 1, nil},
		"KDR skipped":            {[]string{aes + " KDR=4", strings.Replace(aes, ":1 ", ":2 ", 1)}, nil, 2, nil},
		"KDR allowed":            {[]string{aes + " KDR=4"}, &AnswerOptions{AllowKDR: true}, 1, nil},
		"AES-192 not by default": {[]string{"a=crypto:1 AES_192_CM_HMAC_SHA1_80 inline:" + base64.StdEncoding.EncodeToString(make([]byte, 38))}, nil, 0, ErrNoCommonSuite},
		"duplicate tags":         {[]string{aes, aes}, nil, 0, ErrMalformed},
		"malformed":              {[]string{"a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:"}, nil, 0, ErrMalformed},
		"empty":                  {nil, nil, 0, ErrNoCommonSuite},
	} {
		t.Run(name, func(t *testing.T) {
			ans, s, err := Answer(c.offered, c.opts)
			if c.err != nil {
				assert.ErrorIs(t, err, c.err)
				return
			}
			require.NoError(t, err)
			assert.Equal(t, c.tag, ans.Tag)
			assert.Equal(t, c.tag, s.Tag)
			assert.Equal(t, ans.Params.UnencryptedSRTP, s.RemoteParams.UnencryptedSRTP)
			assert.Zero(t, ans.Params.KDR, "the answer never asks for a KDR")
		})
	}
}

func TestNewOfferErrors(t *testing.T) {
	twice, err := NewOffer(nil, AES128CM_SHA1_80, AES128CM_SHA1_80)
	require.NoError(t, err)
	assert.False(t, twice.Crypto[0].Keys[0].Equal(twice.Crypto[1].Keys[0]))
	assert.Equal(t, 2, twice.Crypto[1].Tag)
	_, err = NewOffer(nil, 0)
	assert.ErrorIs(t, err, ErrUnknownSuite)
	_, err = NewOffer(strings.NewReader("x"), AES128CM_SHA1_80)
	assert.ErrorIs(t, err, ErrRandom)
	o, err := NewOffer(nil)
	require.NoError(t, err)
	assert.Len(t, o.Crypto, len(PionSuites()))
}

func TestParseCryptoOffsets(t *testing.T) {
	for line, off := range map[string]int{
		"01 AES_CM_128_HMAC_SHA1_80 inline:" + rfcKey1:                   0,
		"a=crypto:01 AES_CM_128_HMAC_SHA1_80 inline:" + rfcKey1:          9,
		" \ta=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:" + rfcKey1 + "|0": 85,
		"crypto:1 AES_CM_128_HMAC_SHA1_80 inline:" + rfcKey1 + " FOO":    81,
	} {
		_, err := ParseCrypto(line)
		var se *SyntaxError
		require.ErrorAs(t, err, &se, line)
		assert.Equal(t, off, se.Offset, line)
	}
	c, err := ParseCrypto("  a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:" + rfcKey1 + "\r\n")
	require.NoError(t, err)
	assert.Equal(t, 1, c.Tag)
}

func TestCryptoRedacted(t *testing.T) {
	c, err := ParseCrypto("a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:" + rfcKey1 + "|2^20|1:4 FEC_KEY=inline:" + rfcKey2 + "|2^20|2:4")
	require.NoError(t, err)
	assertRedacted(t, c, rfcKey1[:16], rfcKey2[:16])
	o, err := NewOffer(nil, AES128CM_SHA1_80)
	require.NoError(t, err)
	attrs, err := o.Attributes()
	require.NoError(t, err)
	key := strings.TrimPrefix(attrs[0], "a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:")
	assertRedacted(t, o, key[:16])
	assertRedacted(t, *o, key[:16])
	v, err := c.Value()
	require.NoError(t, err)
	assert.Contains(t, v, rfcKey1, "Value is the real line")
}

func TestAcceptRefusesReflectedKeys(t *testing.T) {
	offer, err := NewOffer(nil, AES128CM_SHA1_80, AES128CM_SHA1_32)
	require.NoError(t, err)
	attrs, err := offer.Attributes()
	require.NoError(t, err)
	// A B2BUA (or an attacker) copies the offer back as the answer.
	_, err = offer.Accept(attrs[0])
	assert.ErrorIs(t, err, ErrNoCommonSuite)
	assert.ErrorContains(t, err, "reuses a key")
	// Another offered attribute's key under the right tag and suite.
	other := offer.Crypto[1].Keys[0]
	k, err := ParseKeySalt(AES128CM_SHA1_80, other.KeySalt())
	require.NoError(t, err)
	reflected := Crypto{Tag: 1, Suite: AES128CM_SHA1_80, Keys: []MasterKey{k}}
	line, err := reflected.Attribute()
	require.NoError(t, err)
	_, err = offer.Accept(line)
	assert.ErrorIs(t, err, ErrNoCommonSuite)
	// Only the salt reused is refused too.
	fresh, err := GenerateMasterKey(nil, AES128CM_SHA1_80)
	require.NoError(t, err)
	mixed, err := NewMasterKey(AES128CM_SHA1_80, fresh.Key(), offer.Crypto[0].Keys[0].Salt())
	require.NoError(t, err)
	reflected.Keys = []MasterKey{mixed}
	line, err = reflected.Attribute()
	require.NoError(t, err)
	_, err = offer.Accept(line)
	assert.ErrorIs(t, err, ErrNoCommonSuite)
}

func TestAnswerSkipsUnusableLines(t *testing.T) {
	good := "a=crypto:5 AES_CM_128_HMAC_SHA1_80 inline:" + rfcKey2
	for name, bad := range map[string]string{
		"unknown parameter": "a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:" + rfcKey1 + " NEW_PARAM=1",
		"MKI too long":      "a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:" + rfcKey1 + "|1:200",
		"short key":         "a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:" + rfcKey1[:20],
		"unknown suite":     "a=crypto:1 F8_128_HMAC_SHA1_80 inline:" + rfcKey1,
	} {
		ans, s, err := Answer([]string{bad, good}, nil)
		require.NoError(t, err, name)
		assert.Equal(t, 5, ans.Tag, name)
		assert.Equal(t, 5, s.Tag, name)
		_, _, err = Answer([]string{bad}, nil)
		assert.ErrorIs(t, err, ErrNoCommonSuite, name)
		assert.ErrorContains(t, err, "offered attribute 1 of 1", name)
	}
	// Duplicate tags count even when one line is unusable.
	_, _, err := Answer([]string{"a=crypto:5 F8_128_HMAC_SHA1_80 inline:" + rfcKey1, good}, nil)
	assert.ErrorIs(t, err, ErrMalformed)
}

// TestAnswerDuplicateTagSpacing: the duplicate-tag check reads the tag as
// ParseCrypto does, white space after "crypto:" included, so spacing
// cannot slip a second attribute with one tag past it.
func TestAnswerDuplicateTagSpacing(t *testing.T) {
	first := "a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:" + rfcKey1
	for _, second := range []string{
		"a=crypto: 1 AES_CM_128_HMAC_SHA1_80 inline:" + rfcKey2,
		"a=crypto:\t1 AES_CM_128_HMAC_SHA1_80 inline:" + rfcKey2,
		"a=crypto: \t 1 AES_CM_128_HMAC_SHA1_32 inline:" + rfcKey2,
		"crypto: 1 AES_CM_128_HMAC_SHA1_80 inline:" + rfcKey2,
		" 1 AES_CM_128_HMAC_SHA1_80 inline:" + rfcKey2,
		"a=crypto: 1 F8_128_HMAC_SHA1_80 inline:" + rfcKey2, // unusable, but tagged
	} {
		c, parseErr := ParseCrypto(second)
		if parseErr == nil {
			assert.Equal(t, 1, c.Tag, "%q", second)
		}
		for _, offer := range [][]string{{first, second}, {second, first}} {
			_, _, err := Answer(offer, nil)
			require.ErrorIs(t, err, ErrMalformed, "%q", offer)
			assert.ErrorContains(t, err, "tag 1 appears twice", "%q", offer)
		}
	}
}

func TestSessionSharesNothing(t *testing.T) {
	offer, err := NewOffer(nil, AES128CM_SHA1_80)
	require.NoError(t, err)
	offer.Crypto[0].Keys[0].MKI = []byte{1}
	ans := "a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:" + rfcKey1 + "|1:1 -x"
	s, err := offer.Accept(ans)
	require.NoError(t, err)
	offer.Crypto[0].Keys[0].MKI[0] = 9
	assert.Equal(t, []byte{1}, s.Local.MKI)
}
