package main

import (
	"bytes"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/ucsec/ucsec/srtpkeys"
)

// The RFC 3711 B.3 master key and salt, and the session keys derived from
// them; the SRTCP keys are those of the layout of RFC 3711 erratum 3712,
// which libsrtp uses.
const (
	b3Key  = "E1F97A0D3E018BE0D64FA32C06DE4139"
	b3Salt = "0EC675AD498AFEEBB6960B3AABE6"

	b3Plain = "srtp   key   c61e7a93744f39ee10734afe3ff7a087\n" +
		"srtp   salt  30cbbc08863d8c85d49db34a9ae1\n" +
		"srtp   auth  cebe321f6ff7716b6fd4ab49af256a156d38baa4\n" +
		"srtcp  key   4c1aa45a81f73d61c800bbb00fbb1eaa\n" +
		"srtcp  salt  9581c7ad87b3e530bf3e4454a8b3\n" +
		"srtcp  auth  8d54534feb49ae8e7993a6bd0b844fc323a93dfd\n"
	b3JSON = `{"srtp":{"key":"c61e7a93744f39ee10734afe3ff7a087","salt":"30cbbc08863d8c85d49db34a9ae1","auth":"cebe321f6ff7716b6fd4ab49af256a156d38baa4"},` +
		`"srtcp":{"key":"4c1aa45a81f73d61c800bbb00fbb1eaa","salt":"9581c7ad87b3e530bf3e4454a8b3","auth":"8d54534feb49ae8e7993a6bd0b844fc323a93dfd"}}` + "\n"
)

// deriveArgs returns the arguments of "srtp derive" for the B.3 master
// key and salt.
func deriveArgs(args ...string) []string {
	return append([]string{"srtp", "derive", "--suite", "AES_CM_128_HMAC_SHA1_80", "--key", b3Key, "--salt", b3Salt}, args...)
}

// deriveReport is what "srtp derive --json" prints.
type deriveReport struct {
	SRTP, SRTCP struct {
		Key, Salt, Auth string
	}
}

// deriveJSON runs "srtp derive --json" with args and decodes its output.
func deriveJSON(t *testing.T, args ...string) deriveReport {
	t.Helper()
	r := mustRun(t, exitOK, append(args, "--json")...)
	assert.Empty(t, r.stderr)
	var d deriveReport
	dec := json.NewDecoder(strings.NewReader(r.stdout))
	dec.DisallowUnknownFields()
	require.NoError(t, dec.Decode(&d), r.stdout)
	return d
}

func TestSRTPDeriveB3(t *testing.T) {
	r := mustRun(t, exitOK, deriveArgs()...)
	assert.Equal(t, b3Plain, r.stdout)
	assert.Empty(t, r.stderr)

	d := deriveJSON(t, deriveArgs()...)
	assert.Equal(t, "c61e7a93744f39ee10734afe3ff7a087", d.SRTP.Key)
	assert.Equal(t, "30cbbc08863d8c85d49db34a9ae1", d.SRTP.Salt)
	assert.Equal(t, "cebe321f6ff7716b6fd4ab49af256a156d38baa4", d.SRTP.Auth)
	assert.Equal(t, "4c1aa45a81f73d61c800bbb00fbb1eaa", d.SRTCP.Key)
	assert.Equal(t, "9581c7ad87b3e530bf3e4454a8b3", d.SRTCP.Salt)
	assert.Equal(t, "8d54534feb49ae8e7993a6bd0b844fc323a93dfd", d.SRTCP.Auth)
	// The exact form: field order, lowercase hex, one line.
	assert.Equal(t, b3JSON, mustRun(t, exitOK, deriveArgs("--json")...).stdout)

	// The suite name in any case, lowercase hex, flags in any order and
	// with "=": the same keys.
	r = mustRun(t, exitOK, "srtp", "derive", "--salt="+strings.ToLower(b3Salt), "-key", strings.ToLower(b3Key), "--suite", "aes_cm_128_hmac_sha1_80")
	assert.Equal(t, b3Plain, r.stdout)

	// Without a key derivation rate the index does not matter, even
	// beyond the last SRTCP index.
	for _, index := range []string{"0", "65536", "0xffffffff", "281474976710655"} {
		r := mustRun(t, exitOK, deriveArgs("--index", index)...)
		assert.Equal(t, b3Plain, r.stdout, "--index %s", index)
	}
}

func TestSRTPDeriveKDR(t *testing.T) {
	// With rate 2^16, index 65536 is the first packet of the second set
	// of keys (r = 1). The SRTCP keys were recomputed with an independent
	// AES-CM model (label at salt byte 7, r 48 bits).
	want := deriveReport{}
	want.SRTP.Key = "53870b4b8e2af0c6f0cc8b1544c34138"
	want.SRTP.Salt = "c6da1bbcdc3f429cd82f2593eb60"
	want.SRTP.Auth = "c70d7f14e755380e6ff4ed24f4f611aad19685ce"
	want.SRTCP.Key = "d389b3909f083c1e0dc82b96b04adc0a"
	want.SRTCP.Salt = "1e14d3edad101319241139c0c7de"
	want.SRTCP.Auth = "bfc65e588bf9ffa03d23d4294bab96d93e826740"
	for _, args := range [][]string{
		{"--kdr", "65536", "--index", "65536"},
		{"--kdr", "2^16", "--index", "0x10000"},
		{"--kdr", "65536", "--index", "131071"}, // last packet of the set
	} {
		assert.Equal(t, want, deriveJSON(t, deriveArgs(args...)...), "%q", args)
	}
	r := mustRun(t, exitOK, deriveArgs("--kdr", "65536", "--index", "65536")...)
	assert.Contains(t, r.stdout, "srtp   key   53870b4b8e2af0c6f0cc8b1544c34138\n")

	// The packet before is still under the first set: the B.3 keys.
	r = mustRun(t, exitOK, deriveArgs("--kdr", "65536", "--index", "65535")...)
	assert.Equal(t, b3Plain, r.stdout)
	// --kdr 0 is no rate.
	r = mustRun(t, exitOK, deriveArgs("--kdr", "0", "--index", "65536")...)
	assert.Equal(t, b3Plain, r.stdout)

	// --srtcp-index sets the SRTCP index on its own: SRTP at r = 1,
	// SRTCP at r = 0.
	d := deriveJSON(t, deriveArgs("--kdr", "65536", "--index", "65536", "--srtcp-index", "0")...)
	assert.Equal(t, want.SRTP, d.SRTP)
	assert.Equal(t, "4c1aa45a81f73d61c800bbb00fbb1eaa", d.SRTCP.Key)

	// With a rate, an SRTP index beyond the last SRTCP index needs
	// --srtcp-index.
	r = ucsec(t, "", deriveArgs("--kdr", "65536", "--index", "2147483648")...)
	r.check(t, exitError, "", "--index 2147483648 is above 2^31-1, the last SRTCP index; give --srtcp-index")
	assert.Empty(t, r.stdout)
	d = deriveJSON(t, deriveArgs("--kdr", "65536", "--index", "2147483648", "--srtcp-index", "65536")...)
	assert.Equal(t, want.SRTCP, d.SRTCP)
	assert.NotEqual(t, want.SRTP, d.SRTP)
	mustRun(t, exitOK, deriveArgs("--kdr", "65536", "--index", "2147483647")...)
}

func TestSRTPDeriveAEAD(t *testing.T) {
	args := []string{"srtp", "derive", "--suite", "AEAD_AES_128_GCM", "--key", b3Key, "--salt", "000102030405060708090a0b"}
	r := mustRun(t, exitOK, args...)
	lines := strings.Split(strings.TrimSuffix(r.stdout, "\n"), "\n")
	require.Len(t, lines, 4, r.stdout)
	assert.NotContains(t, r.stdout, "auth")
	for _, l := range lines {
		f := strings.Fields(l)
		require.Len(t, f, 3, l)
		n := map[string]int{"key": 32, "salt": 24}[f[1]]
		assert.Len(t, f[2], n, l)
	}
	d := deriveJSON(t, args...)
	assert.Empty(t, d.SRTP.Auth)
	assert.Empty(t, d.SRTCP.Auth)
	assert.Len(t, d.SRTP.Salt, 24)
	assert.Contains(t, mustRun(t, exitOK, append(args, "--json")...).stdout, `"auth":""`)

	// The AES-256 vector of RFC 6188 §7.2.
	d = deriveJSON(t, "srtp", "derive", "--suite", "AES_256_CM_HMAC_SHA1_80",
		"--key", "f0f04914b513f2763a1b1fa130f10e2998f6f6e43e4309d1e622a0e332b9f1b6", "--salt", "3b04803de51ee7c96423ab5b78d2")
	assert.Equal(t, "5ba1064e30ec51613cad926c5a28ef731ec7fb397f70a960653caf06554cd8c4", d.SRTP.Key)
	assert.Equal(t, "fa31791685ca444a9e07c6c64e93", d.SRTP.Salt)
	assert.Equal(t, "fd9c32d39ed5fbb5a9dc96b30818454d1313dc05", d.SRTP.Auth)
}

func TestSRTPDeriveErrors(t *testing.T) {
	for _, tt := range []struct {
		name string
		args []string
		want string
	}{
		{"bad suite", []string{"srtp", "derive", "--suite", "AES_CM_128_HMAC_SHA1_81", "--key", b3Key, "--salt", b3Salt}, `unknown --suite "AES_CM_128_HMAC_SHA1_81" (use AES_CM_128_HMAC_SHA1_80,`},
		{"F8 suite", []string{"srtp", "derive", "--suite", "F8_128_HMAC_SHA1_80", "--key", b3Key, "--salt", b3Salt}, `unknown --suite "F8_128_HMAC_SHA1_80"`},
		{"missing suite", []string{"srtp", "derive", "--key", b3Key, "--salt", b3Salt}, "missing --suite"},
		{"missing key", []string{"srtp", "derive", "--suite", "AES_CM_128_HMAC_SHA1_80", "--salt", b3Salt}, "missing --key"},
		{"missing salt", []string{"srtp", "derive", "--suite", "AES_CM_128_HMAC_SHA1_80", "--key", b3Key}, "missing --salt"},
		{"bad key hex", deriveArgs("--key", "E1F97A0D3E018BE0D64FA32C06DE413G"), "--key is not hex"},
		{"odd key hex", deriveArgs("--key", b3Key[1:]), "--key is not hex"},
		{"bad salt hex", deriveArgs("--salt", "0x"+b3Salt), "--salt is not hex"},
		{"short key", deriveArgs("--key", b3Key[2:]), "--key has 15 bytes; AES_CM_128_HMAC_SHA1_80 needs 16 (32 hex digits)"},
		{"key for AES-256", []string{"srtp", "derive", "--suite", "AES_256_CM_HMAC_SHA1_80", "--key", b3Key, "--salt", b3Salt}, "--key has 16 bytes; AES_256_CM_HMAC_SHA1_80 needs 32"},
		{"long salt", deriveArgs("--salt", b3Salt+"00"), "--salt has 15 bytes; AES_CM_128_HMAC_SHA1_80 needs 14"},
		{"AEAD salt", []string{"srtp", "derive", "--suite", "AEAD_AES_128_GCM", "--key", b3Key, "--salt", b3Salt}, "--salt has 14 bytes; AEAD_AES_128_GCM needs 12"},
		{"kdr 3", deriveArgs("--kdr", "3"), `invalid --kdr "3" (want 0 or a power of two up to 2^24`},
		{"kdr 2^25", deriveArgs("--kdr", "33554432"), `invalid --kdr "33554432"`},
		{"kdr exponent 25", deriveArgs("--kdr", "2^25"), `invalid --kdr "2^25"`},
		{"kdr negative", deriveArgs("--kdr", "-1"), `invalid --kdr "-1"`},
		{"kdr text", deriveArgs("--kdr", "KDR=16"), `invalid --kdr "KDR=16"`},
		{"index negative", deriveArgs("--index", "-1"), `invalid --index "-1" (want 0 to 2^48-1`},
		{"index 2^48", deriveArgs("--index", "281474976710656"), `invalid --index "281474976710656"`},
		{"index hex", deriveArgs("--index", "0xg"), `invalid --index "0xg"`},
		{"srtcp index 2^31", deriveArgs("--srtcp-index", "2147483648"), `invalid --srtcp-index "2147483648" (want 0 to 2^31-1`},
		{"argument", deriveArgs("extra"), `unexpected argument "extra"`},
		{"unknown flag", deriveArgs("--inline", "x"), "flag provided but not defined: -inline"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			r := ucsec(t, "", tt.args...)
			r.check(t, exitError, "", tt.want)
			assert.Empty(t, r.stdout)
			assert.Equal(t, 1, strings.Count(r.stderr, "\n"), r.stderr)
			assert.NotContains(t, r.stderr, "srtpkeys:")
			assert.Contains(t, r.stderr, "see 'ucsec srtp derive -h'")
		})
	}
}

// The attribute of the brief: lifetime 2^20, MKI 1 in 32 bytes.
const (
	mkiAttribute = "a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:PS1uQCVeeCFCanVmcjkpPywjNWhcYD0mXXtxaVBR|2^20|1:32"
	mkiKey       = "3d2d6e40255e7821426a75667239293f"
	mkiSalt      = "2c2335685c603d265d7b71695051"
)

// parseJSON runs "srtp sdes parse --json" with args and decodes each line.
func parseJSON(t *testing.T, stdin string, args ...string) []cryptoReport {
	t.Helper()
	r := ucsec(t, stdin, append([]string{"srtp", "sdes", "parse", "--json"}, args...)...)
	require.Equal(t, exitOK, r.code, r.stderr)
	assert.Empty(t, r.stderr)
	var out []cryptoReport
	dec := json.NewDecoder(strings.NewReader(r.stdout))
	dec.DisallowUnknownFields()
	for dec.More() {
		var c cryptoReport
		require.NoError(t, dec.Decode(&c), r.stdout)
		out = append(out, c)
	}
	assert.Equal(t, len(out), strings.Count(r.stdout, "\n"), "one object per line")
	return out
}

func TestSDESParse(t *testing.T) {
	r := mustRun(t, exitOK, "srtp", "sdes", "parse", mkiAttribute)
	assert.Empty(t, r.stderr)
	assert.Equal(t, ""+
		"Tag:              1\n"+
		"Suite:            AES_CM_128_HMAC_SHA1_80\n"+
		"Key:              "+mkiKey+"\n"+
		"Salt:             "+mkiSalt+"\n"+
		"Inline:           PS1uQCVeeCFCanVmcjkpPywjNWhcYD0mXXtxaVBR\n"+
		"Lifetime:         2^20 (1048576 packets)\n"+
		"MKI:              1:32 ("+strings.Repeat("00", 31)+"01)\n"+
		"Session Params:   (none)\n", r.stdout)

	// JSON, with the flag after the argument.
	r = mustRun(t, exitOK, "srtp", "sdes", "parse", mkiAttribute, "--json")
	assert.Equal(t, `{"tag":1,"suite":"AES_CM_128_HMAC_SHA1_80","keys":[{"key":"`+mkiKey+`","salt":"`+mkiSalt+`",`+
		`"inline":"PS1uQCVeeCFCanVmcjkpPywjNWhcYD0mXXtxaVBR","lifetime":1048576,"mki":"`+strings.Repeat("00", 31)+`01","mki_value":"1","mki_length":32}],`+
		`"params":{"kdr":0,"unencrypted_srtp":false,"unencrypted_srtcp":false,"unauthenticated_srtp":false,"fec_order":"","fec_keys":[],"wsh":0,"extensions":[]}}`+"\n", r.stdout)
	c := parseJSON(t, "", mkiAttribute)
	require.Len(t, c, 1)
	require.Len(t, c[0].Keys, 1)
	k := c[0].Keys[0]
	assert.Equal(t, 1, c[0].Tag)
	assert.Equal(t, "AES_CM_128_HMAC_SHA1_80", c[0].Suite)
	assert.Equal(t, mkiKey, hex.EncodeToString(k.Key))
	assert.Equal(t, mkiSalt, hex.EncodeToString(k.Salt))
	assert.Equal(t, uint64(1<<20), k.Lifetime)
	assert.Equal(t, "1", k.MKIValue)
	assert.Equal(t, 32, k.MKILength)
	assert.Equal(t, append(make([]byte, 31), 1), []byte(k.MKI))

	// The same attribute without "a=", without "a=crypto:", with a CRLF,
	// and unpadded base64 with a decimal lifetime.
	for _, line := range []string{
		strings.TrimPrefix(mkiAttribute, "a="),
		strings.TrimPrefix(mkiAttribute, "a=crypto:"),
		mkiAttribute + "\r\n",
		"a=crypto:1 aes_cm_128_hmac_sha1_80 INLINE:PS1uQCVeeCFCanVmcjkpPywjNWhcYD0mXXtxaVBR|1048576|1:32",
	} {
		got := parseJSON(t, "", line)
		require.Len(t, got, 1, line)
		assert.Equal(t, c, got, line)
	}
}

func TestSDESParseParams(t *testing.T) {
	// Two keys told apart by MKI, session parameters and an extension.
	line := "a=crypto:7 AES_256_CM_HMAC_SHA1_32 inline:" + b64(46, 1) + "|2^31|1:4;inline:" + b64(46, 2) + "|1000|2:4" +
		" KDR=16 UNENCRYPTED_SRTCP FEC_ORDER=SRTP_FEC FEC_KEY=inline:" + b64(46, 3) + " WSH=128 -x-vendor=1"
	c := parseJSON(t, "", line)
	require.Len(t, c, 1)
	assert.Equal(t, 7, c[0].Tag)
	assert.Equal(t, "AES_256_CM_HMAC_SHA1_32", c[0].Suite)
	require.Len(t, c[0].Keys, 2)
	assert.Equal(t, uint64(1<<31), c[0].Keys[0].Lifetime)
	assert.Equal(t, uint64(1000), c[0].Keys[1].Lifetime)
	assert.Equal(t, "00000002", hex.EncodeToString(c[0].Keys[1].MKI))
	assert.Equal(t, strings.Repeat("02", 32), hex.EncodeToString(c[0].Keys[1].Key))
	p := c[0].Params
	assert.Equal(t, uint64(1<<16), p.KDR)
	assert.True(t, p.UnencryptedSRTCP)
	assert.False(t, p.UnencryptedSRTP)
	assert.Equal(t, "SRTP_FEC", p.FECOrder)
	require.Len(t, p.FECKeys, 1)
	assert.Equal(t, strings.Repeat("03", 14), hex.EncodeToString(p.FECKeys[0].Salt))
	assert.Equal(t, uint64(128), p.WSH)
	assert.Equal(t, []string{"-x-vendor=1"}, p.Extensions)

	r := mustRun(t, exitOK, "srtp", "sdes", "parse", line)
	for _, want := range []string{
		"Key 1:            " + strings.Repeat("01", 32) + "\n",
		"Lifetime 1:       2^31 (2147483648 packets)\n",
		"MKI 2:            2:4 (00000002)\n",
		"Lifetime 2:       1000 packets\n",
		"Session Params:   KDR=16 (rate 65536) UNENCRYPTED_SRTCP FEC_ORDER=SRTP_FEC FEC_KEY WSH=128 -x-vendor=1\n",
		"FEC Key:          " + strings.Repeat("03", 32) + "\n",
		"FEC MKI:          (none)\n",
	} {
		assert.Contains(t, r.stdout, want)
	}
}

// b64 returns the base64 of n bytes of value b.
func b64(n int, b byte) string {
	return base64.StdEncoding.EncodeToString(bytes.Repeat([]byte{b}, n))
}

func TestSDESParseStdin(t *testing.T) {
	// A media section from an SDP: the crypto lines are parsed, the rest
	// skipped.
	sdp := "m=audio 49170 RTP/SAVP 0\r\n" +
		"c=IN IP4 192.0.2.1\r\n" +
		"a=rtpmap:0 PCMU/8000\r\n" +
		mkiAttribute + "\r\n" +
		"\r\n" +
		"a=crypto:2 AES_CM_128_HMAC_SHA1_32 inline:PS1uQCVeeCFCanVmcjkpPywjNWhcYD0mXXtxaVBR\r\n"
	c := parseJSON(t, sdp, "-")
	require.Len(t, c, 2)
	assert.Equal(t, 1, c[0].Tag)
	assert.Equal(t, "AES_CM_128_HMAC_SHA1_32", c[1].Suite)
	assert.Empty(t, c[1].Keys[0].MKIValue)
	assert.Zero(t, c[1].Keys[0].Lifetime)

	// The text form separates attributes with a blank line.
	r := ucsec(t, sdp, "srtp", "sdes", "parse", "-")
	require.Equal(t, exitOK, r.code, r.stderr)
	assert.Equal(t, 1, strings.Count(r.stdout, "\n\n"))
	assert.Contains(t, r.stdout, "Tag:              2\n")
	assert.Contains(t, r.stdout, "MKI:              (none)\n")

	// Several arguments.
	c = parseJSON(t, "", mkiAttribute, "2 AES_CM_128_HMAC_SHA1_32 inline:PS1uQCVeeCFCanVmcjkpPywjNWhcYD0mXXtxaVBR")
	require.Len(t, c, 2)
}

func TestSDESParseErrors(t *testing.T) {
	for _, tt := range []struct {
		name  string
		stdin string
		args  []string
		want  string
	}{
		{"short key", "", []string{"a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:PS1uQCVeeCFC"}, "malformed crypto attribute at offset 42: AES_CM_128_HMAC_SHA1_80 needs 30 bytes of key and salt, the key has 9"},
		{"unknown suite", "", []string{"a=crypto:1 F8_128_HMAC_SHA1_80 inline:PS1uQCVeeCFCanVmcjkpPywjNWhcYD0mXXtxaVBR"}, `unknown crypto suite "F8_128_HMAC_SHA1_80"`},
		{"no key", "", []string{"a=crypto:1 AES_CM_128_HMAC_SHA1_80"}, "missing key parameters"},
		{"leading zero tag", "", []string{"a=crypto:01 AES_CM_128_HMAC_SHA1_80 inline:PS1uQCVeeCFCanVmcjkpPywjNWhcYD0mXXtxaVBR"}, "tag is not 1 to 9 digits"},
		{"unknown parameter", "", []string{mkiAttribute + " FOO=1"}, `unknown session parameter (only -prefixed`},
		{"MKI too big", "", []string{"a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:PS1uQCVeeCFCanVmcjkpPywjNWhcYD0mXXtxaVBR|256:1"}, "MKI value does not fit in 1 bytes"},
		{"second of two", "", []string{mkiAttribute, "a=crypto:2 AES_CM_128_HMAC_SHA1_80 inline:x"}, "argument 2: srtpkeys: malformed crypto attribute"},
		{"stdin line", "m=audio 1 RTP/SAVP 0\n" + mkiAttribute + "\na=crypto:2 X inline:x\n", []string{"-"}, "stdin line 3: srtpkeys: malformed crypto attribute"},
		{"no attribute", "", []string{"a=rtpmap:0 PCMU/8000"}, "argument 1 holds no a=crypto attribute"},
		{"empty stdin", "", []string{"-"}, "stdin holds no a=crypto attribute"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			for _, json := range []bool{false, true} {
				args := append([]string{"srtp", "sdes", "parse"}, tt.args...)
				if json {
					args = append(args, "--json")
				}
				r := ucsec(t, tt.stdin, args...)
				r.check(t, exitError, "", tt.want)
				assert.Empty(t, r.stdout, "nothing printed for a malformed attribute")
				assert.Equal(t, 1, strings.Count(r.stderr, "\n"), r.stderr)
				assert.NotContains(t, r.stderr, "PS1uQCVe", "key in the error")
			}
		})
	}
	r := ucsec(t, "", "srtp", "sdes", "parse")
	r.check(t, exitError, "", "missing a=crypto attribute; see 'ucsec srtp sdes parse -h'")
}

// offerLines runs "srtp sdes offer" with args and returns the lines.
func offerLines(t *testing.T, args ...string) []string {
	t.Helper()
	r := mustRun(t, exitOK, append([]string{"srtp", "sdes", "offer"}, args...)...)
	assert.Empty(t, r.stderr)
	return strings.Split(strings.TrimSuffix(r.stdout, "\n"), "\n")
}

func TestSDESOffer(t *testing.T) {
	// By default, the suites pion runs, strongest first.
	lines := offerLines(t)
	suites := srtpkeys.PionSuites()
	require.Len(t, lines, len(suites))
	seen := map[string]bool{}
	for i, line := range lines {
		require.True(t, strings.HasPrefix(line, "a=crypto:"), line)
		c, err := srtpkeys.ParseCrypto(line)
		require.NoError(t, err, line)
		assert.Equal(t, i+1, c.Tag)
		assert.Equal(t, suites[i], c.Suite)
		require.Len(t, c.Keys, 1)
		assert.Zero(t, c.Keys[0].Lifetime)
		assert.Nil(t, c.Keys[0].MKI)
		assert.Equal(t, srtpkeys.SessionParams{}, c.Params)
		ks := string(c.Keys[0].KeySalt())
		assert.False(t, seen[ks], "key repeated")
		seen[ks] = true
		// The line is what sdes parse takes.
		mustRun(t, exitOK, "srtp", "sdes", "parse", line)
	}

	// Each run makes fresh keys.
	again := offerLines(t)
	require.Len(t, again, len(lines))
	for i := range lines {
		assert.NotEqual(t, lines[i], again[i])
	}

	// --suite, repeated, in the order given, names in any case.
	lines = offerLines(t, "--suite", "aes_cm_128_hmac_sha1_32", "--suite", "AES_192_CM_HMAC_SHA1_80", "--suite", "AES_CM_256_HMAC_SHA1_80")
	require.Len(t, lines, 3)
	want := []srtpkeys.Suite{srtpkeys.AES128CM_SHA1_32, srtpkeys.AES192CM_SHA1_80, srtpkeys.AES256CM_SHA1_80}
	var keys [][]byte
	for i, line := range lines {
		c, err := srtpkeys.ParseCrypto(line)
		require.NoError(t, err)
		assert.Equal(t, want[i], c.Suite)
		assert.Equal(t, i+1, c.Tag)
		for _, k := range keys {
			assert.NotEqual(t, k[:16], c.Keys[0].Key()[:16])
		}
		keys = append(keys, c.Keys[0].Key())
	}
}

func TestSDESOfferJSON(t *testing.T) {
	r := mustRun(t, exitOK, "srtp", "sdes", "offer", "--json", "--suite", "AEAD_AES_256_GCM", "--suite", "AES_CM_128_HMAC_SHA1_80")
	dec := json.NewDecoder(strings.NewReader(r.stdout))
	dec.DisallowUnknownFields()
	var got []attributeReport
	for dec.More() {
		var a attributeReport
		require.NoError(t, dec.Decode(&a))
		got = append(got, a)
	}
	require.Len(t, got, 2)
	assert.Equal(t, 2, strings.Count(r.stdout, "\n"))
	for i, a := range got {
		c, err := srtpkeys.ParseCrypto(a.Attribute)
		require.NoError(t, err)
		assert.Equal(t, i+1, a.Tag)
		assert.Equal(t, c.Suite.String(), a.Suite)
		assert.Equal(t, c.Keys[0].Key(), []byte(a.Key))
		assert.Equal(t, c.Keys[0].Salt(), []byte(a.Salt))
	}
	assert.Len(t, got[0].Key, 32)
	assert.Len(t, got[0].Salt, 12)
	assert.Equal(t, "AES_CM_128_HMAC_SHA1_80", got[1].Suite)
}

func TestSDESOfferErrors(t *testing.T) {
	for _, tt := range []struct {
		args []string
		want string
	}{
		{[]string{"--suite", "nosuch"}, `unknown --suite "nosuch"`},
		{[]string{"--suite", "AES_CM_128_HMAC_SHA1_80", "--suite", "aes_cm_128_hmac_sha1_80"}, "--suite AES_CM_128_HMAC_SHA1_80 given twice"},
		{[]string{"extra"}, `unexpected argument "extra"`},
	} {
		r := ucsec(t, "", append([]string{"srtp", "sdes", "offer"}, tt.args...)...)
		r.check(t, exitError, "", tt.want)
		assert.Empty(t, r.stdout)
		assert.Equal(t, 1, strings.Count(r.stderr, "\n"), r.stderr)
	}
}

func TestSDESAnswer(t *testing.T) {
	// An offer made by the library, answered by the command: the offer
	// accepts the answer, and the keys differ.
	o, err := srtpkeys.NewOffer(nil, srtpkeys.AES128CM_SHA1_32, srtpkeys.AES128CM_SHA1_80)
	require.NoError(t, err)
	offered, err := o.Attributes()
	require.NoError(t, err)
	args := append([]string{"srtp", "sdes", "answer"}, offered...)
	r := mustRun(t, exitOK, args...)
	assert.Empty(t, r.stderr)
	line := strings.TrimSuffix(r.stdout, "\n")
	require.NotContains(t, line, "\n")
	s, err := o.Accept(line)
	require.NoError(t, err, line)
	assert.Equal(t, 1, s.Tag)
	assert.Equal(t, srtpkeys.AES128CM_SHA1_32, s.Suite)
	assert.False(t, s.Local.Equal(s.Remote))

	// --suite limits what is accepted: the offer's second attribute.
	r = mustRun(t, exitOK, append(args, "--suite", "AES_CM_128_HMAC_SHA1_80", "--json")...)
	var a attributeReport
	require.NoError(t, json.Unmarshal([]byte(r.stdout), &a))
	assert.Equal(t, 2, a.Tag)
	assert.Equal(t, "AES_CM_128_HMAC_SHA1_80", a.Suite)
	s, err = o.Accept(a.Attribute)
	require.NoError(t, err)
	assert.Equal(t, a.Key, hexBytes(s.Remote.Key()))
	assert.Equal(t, a.Salt, hexBytes(s.Remote.Salt()))

	// The output of sdes offer, on standard input, with other SDP lines.
	offer := mustRun(t, exitOK, "srtp", "sdes", "offer", "--suite", "AES_256_CM_HMAC_SHA1_80", "--suite", "AEAD_AES_128_GCM").stdout
	r = ucsec(t, "m=audio 4000 RTP/SAVP 0\na=rtpmap:0 PCMU/8000\n"+offer, "srtp", "sdes", "answer", "-")
	require.Equal(t, exitOK, r.code, r.stderr)
	c, err := srtpkeys.ParseCrypto(r.stdout)
	require.NoError(t, err)
	assert.Equal(t, 1, c.Tag)
	assert.Equal(t, srtpkeys.AES256CM_SHA1_80, c.Suite)

	// Unknown suites are skipped.
	r = mustRun(t, exitOK, "srtp", "sdes", "answer", "a=crypto:2 F8_128_HMAC_SHA1_80 inline:PS1uQCVeeCFCanVmcjkpPywjNWhcYD0mXXtxaVBR", mkiAttribute[:len(mkiAttribute)-len("|2^20|1:32")])
	assert.True(t, strings.HasPrefix(r.stdout, "a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:"), r.stdout)
	assert.NotContains(t, r.stdout, "PS1uQCVe", "the offer's key echoed")

	// Unprotected and KDR attributes only when allowed; the answer
	// repeats UNENCRYPTED_SRTCP.
	unenc := "a=crypto:3 AES_CM_128_HMAC_SHA1_80 inline:PS1uQCVeeCFCanVmcjkpPywjNWhcYD0mXXtxaVBR UNENCRYPTED_SRTCP"
	kdr := "a=crypto:4 AES_CM_128_HMAC_SHA1_80 inline:PS1uQCVeeCFCanVmcjkpPywjNWhcYD0mXXtxaVBR KDR=10"
	mustRun(t, exitInvalid, "srtp", "sdes", "answer", unenc, kdr)
	r = mustRun(t, exitOK, "srtp", "sdes", "answer", unenc, kdr, "--allow-unprotected")
	assert.True(t, strings.HasPrefix(r.stdout, "a=crypto:3 "), r.stdout)
	assert.True(t, strings.HasSuffix(r.stdout, " UNENCRYPTED_SRTCP\n"), r.stdout)
	r = mustRun(t, exitOK, "srtp", "sdes", "answer", unenc, kdr, "--allow-kdr")
	assert.True(t, strings.HasPrefix(r.stdout, "a=crypto:4 "), r.stdout)
	assert.NotContains(t, r.stdout, "KDR")
}

func TestSDESAnswerErrors(t *testing.T) {
	gcm := "a=crypto:1 AEAD_AES_128_GCM inline:" + b64(28, 0)
	for _, tt := range []struct {
		name  string
		stdin string
		args  []string
		code  int
		want  string
	}{
		{"nothing acceptable", "", []string{gcm, "--suite", "AES_CM_128_HMAC_SHA1_80"}, exitInvalid, "no acceptable crypto attribute: none of the 1 offered attributes is acceptable"},
		{"AES-192 by default", "", []string{"a=crypto:1 AES_192_CM_HMAC_SHA1_80 inline:" + b64(38, 1)}, exitInvalid, "no acceptable crypto attribute"},
		{"only unknown suites", "", []string{"a=crypto:1 AEAD_AES_128_GCM_8 inline:" + b64(28, 1)}, exitInvalid, "no acceptable crypto attribute"},
		{"malformed", "", []string{gcm, "a=crypto:2 AES_CM_128_HMAC_SHA1_80 inline:AAAA"}, exitError, "argument 2: srtpkeys: malformed crypto attribute at offset"},
		{"malformed alone", "", []string{"a=crypto:x AES_CM_128_HMAC_SHA1_80 inline:AAAA"}, exitError, `malformed crypto attribute at offset 9: tag is not`},
		{"same tag twice", "", []string{gcm, gcm}, exitError, "tag 1 appears twice in the offer"},
		{"bad suite flag", "", []string{gcm, "--suite", "nosuch"}, exitError, `unknown --suite "nosuch"`},
		{"no arguments", "", nil, exitError, "missing a=crypto attribute"},
		{"empty stdin", "v=0\n", []string{"-"}, exitError, "stdin holds no a=crypto attribute"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			r := ucsec(t, tt.stdin, append([]string{"srtp", "sdes", "answer"}, tt.args...)...)
			r.check(t, tt.code, "", tt.want)
			assert.Empty(t, r.stdout)
			assert.Equal(t, 1, strings.Count(r.stderr, "\n"), r.stderr)
		})
	}
}

func TestSRTPHelp(t *testing.T) {
	// TestHelp covers the help of every command; here, the group's
	// listing and the flags.
	r := mustRun(t, exitOK, "srtp", "-h")
	for _, want := range []string{"Usage: ucsec srtp <command>", "  derive ", "  sdes parse ", "  sdes offer ", "  sdes answer "} {
		assert.Contains(t, r.stdout, want)
	}
	r = mustRun(t, exitOK, "help", "srtp", "sdes")
	assert.Contains(t, r.stdout, "Usage: ucsec srtp sdes <command>")
	assert.Contains(t, r.stdout, "  parse ")
	assert.Contains(t, mustRun(t, exitOK, "-h").stdout, "  srtp ")

	r = mustRun(t, exitOK, "srtp", "derive", "-h")
	for _, want := range []string{"Usage: ucsec srtp derive", "--suite NAME", "--key HEX", "--salt HEX", "--index N", "--srtcp-index N", "--kdr RATE", "--json", "Erratum 3712", "needs --srtcp-index", "ps"} {
		assert.Contains(t, r.stdout, want)
	}
	r = mustRun(t, exitOK, "srtp", "sdes", "parse", "--help")
	for _, want := range []string{"Usage: ucsec srtp sdes parse", "--json", "prints the keys", `"mki_length"`} {
		assert.Contains(t, r.stdout, want)
	}
	r = mustRun(t, exitOK, "srtp", "sdes", "offer", "-h")
	assert.Contains(t, r.stdout, "--suite NAME")
	r = mustRun(t, exitOK, "srtp", "sdes", "answer", "-h")
	for _, want := range []string{"--suite NAME", "--allow-unprotected", "--allow-kdr", "status 1"} {
		assert.Contains(t, r.stdout, want)
	}

	// Unknown commands name the whole path.
	r = ucsec(t, "", "srtp", "sdes", "nosuch")
	r.check(t, exitError, "", `unknown command "srtp sdes nosuch"`)
	r = ucsec(t, "", "srtp", "sdes")
	assert.Equal(t, exitError, r.code)
	assert.Contains(t, r.stderr, "Usage: ucsec srtp sdes")

	// The examples work (those that read a file from standard input get
	// the output of sdes offer).
	offer := mustRun(t, exitOK, "srtp", "sdes", "offer").stdout
	srtpGroup.walk("", func(_ string, c *command) {
		for _, ex := range c.examples {
			ex = strings.TrimSuffix(ex, " < offer.sdp")
			args := shellWords(t, strings.TrimPrefix(ex, "ucsec "))
			r := ucsec(t, offer, args...)
			assert.Equal(t, exitOK, r.code, "%s: %s", ex, r.stderr)
		}
	})
}

// FuzzSDESParse checks that any attribute gives exit status 0 or 2 from
// sdes parse and 0, 1 or 2 from sdes answer, without a panic, and at most
// one line on standard error.
func FuzzSDESParse(f *testing.F) {
	f.Add(mkiAttribute)
	f.Add("a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:PS1uQCVeeCFCanVmcjkpPywjNWhcYD0mXXtxaVBR|2^31|1:1;inline:PS1uQCVeeCFCanVmcjkpPywjNWhcYD0mXXtxaVBR|2^31|2:1 KDR=1 FEC_KEY=inline:PS1uQCVeeCFCanVmcjkpPywjNWhcYD0mXXtxaVBR WSH=64 -a")
	f.Add("m=audio 0 RTP/SAVP 0\na=crypto:1 AEAD_AES_128_GCM inline:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA\n")
	f.Add("")
	f.Fuzz(func(t *testing.T, line string) {
		for _, args := range [][]string{
			{"srtp", "sdes", "parse", "-"},
			{"srtp", "sdes", "parse", "--json", "-"},
			{"srtp", "sdes", "answer", "-"},
		} {
			r := ucsec(t, line, args...)
			if r.code != exitOK && r.code != exitError && (r.code != exitInvalid || args[2] != "answer") {
				t.Fatalf("%q: exit status %d", args, r.code)
			}
			if strings.Count(r.stderr, "\n") > 1 {
				t.Fatalf("%q: stderr %q is more than one line", args, r.stderr)
			}
		}
	})
}
