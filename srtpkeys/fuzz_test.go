package srtpkeys

import (
	"bytes"
	"encoding/base64"
	"strings"
	"testing"
)

// FuzzParseCrypto checks that ParseCrypto never panics, that whatever it
// accepts survives MarshalText → ParseCrypto unchanged, with String never
// showing a key, and that Answer's duplicate check reads the same tag.
func FuzzParseCrypto(f *testing.F) {
	for _, s := range []string{
		"a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:" + rfcKey1 + "|2^20|1:32",
		"a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:" + rfcKey2 + "|2^20|1:4 FEC_ORDER=FEC_SRTP",
		"a=crypto:2 F8_128_HMAC_SHA1_80 inline:MTIzNDU2Nzg5QUJDREUwMTIzNDU2Nzg5QUJjZGVm|2^20|1:4;inline:QUJjZGVmMTIzNDU2Nzg5QUJDREUwMTIzNDU2Nzg5|2^20|2:4 FEC_ORDER=FEC_SRTP",
		"a=crypto:2 AES_CM_128_HMAC_SHA1_80 inline:MTIzNDU2Nzg5QUJDREUwMTIzNDU2Nzg5QUJjZGVm|2^20|1:4;inline:QUJjZGVmMTIzNDU2Nzg5QUJDREUwMTIzNDU2Nzg5|2^20|2:4",
		"crypto:7 AES_CM_128_HMAC_SHA1_80 inline:" + rfcKey3 + "|1066:4",
		"1 AES_CM_128_HMAC_SHA1_32 inline:" + rfcKey4 + "|2^31|1:1 KDR=23 UNENCRYPTED_SRTP UNENCRYPTED_SRTCP UNAUTHENTICATED_SRTP FEC_ORDER=SRTP_FEC FEC_KEY=inline:" + rfcKey2 + "|2^20|2:4 WSH=60 -X=1",
		"a=crypto:1\t aes_cm_128_hmac_sha1_80  INLINE:" + rfcKey1 + "  KDR=1\r\n",
		"1 AES_CM_256_HMAC_SHA1_80 inline:" + strings.Repeat("QUJD", 15) + "QUI",
		"1 AEAD_AES_256_GCM inline:" + strings.Repeat("QUJD", 15),
		"1 AES_CM_128_HMAC_SHA1_80 inline:" + rfcKey1 + "|123456789012345678901234567890:16",
		"a=crypto: 1 AES_CM_128_HMAC_SHA1_80 inline:" + rfcKey1,
		"a=crypto:\t2 AES_CM_128_HMAC_SHA1_32 inline:" + rfcKey2 + "\r\n",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		c, err := ParseCrypto(s)
		if err != nil {
			return
		}
		if tag, ok := leadingTag(s); !ok || tag != c.Tag {
			t.Fatalf("ParseCrypto read tag %d, the duplicate check %d (%v) in %q", c.Tag, tag, ok, s)
		}
		out, err := c.Value()
		if err != nil {
			t.Fatalf("parsed %q but cannot write it back: %v", s, err)
		}
		c2, err := ParseCrypto(string(out))
		if err != nil {
			t.Fatalf("cannot parse our own output %q: %v", out, err)
		}
		out2, err := c2.Value()
		if err != nil || string(out2) != string(out) {
			t.Fatalf("round trip changed %q into %q (%v)", out, out2, err)
		}
		if c2.Tag != c.Tag || c2.Suite != c.Suite || len(c2.Keys) != len(c.Keys) {
			t.Fatalf("round trip changed the attribute: %q", out)
		}
		for i := range c.Keys {
			if !c.Keys[i].Equal(c2.Keys[i]) || c.Keys[i].Lifetime != c2.Keys[i].Lifetime || string(c.Keys[i].MKI) != string(c2.Keys[i].MKI) {
				t.Fatalf("round trip changed key %d of %q", i, out)
			}
		}
		str := c.String()
		for _, k := range append(c.Keys, c.Params.FECKey...) {
			if strings.Contains(str, base64.StdEncoding.EncodeToString(k.KeySalt())) {
				t.Fatalf("String shows a key: %q", str)
			}
		}
	})
}

// FuzzParseCryptoErrors checks that no error message repeats the text after
// an inline: (key material) of the input.
func FuzzParseCryptoErrors(f *testing.F) {
	for _, s := range []string{
		"1 inline:" + rfcKey2,
		"1 AES_CM_128_HMAC_SHA1_80 inline:" + rfcKey1 + " inline:" + rfcKey2 + "|1:4",
		"1 AES_CM_128_HMAC_SHA1_80 inline:" + rfcKey1 + "|" + rfcKey2,
		"1 AES_CM_128_HMAC_SHA1_80 inline:" + rfcKey1 + "|2^20|" + rfcKey2,
		rfcKey2 + " AES_CM_128_HMAC_SHA1_80 inline:" + rfcKey1,
		"1 AES_CM_128_HMAC_SHA1_80 inline:" + rfcKey1 + " fec_key=inline:" + rfcKey2,
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		_, err := ParseCrypto(s)
		if err == nil {
			return
		}
		msg := err.Error()
		// A quoted unknown suite name has an "_", which base64 lacks: it
		// is the peer's suite field, never key material, even when it
		// happens to share text with a key.
		if _, rest, ok := strings.Cut(msg, `unknown crypto suite "`); ok {
			if end := strings.IndexByte(rest, '"'); end >= 0 {
				msg = strings.Replace(msg, rest[:end], "", 1)
			}
		}
		lower := []byte(s) // ASCII-lowered, so offsets match s
		for i, c := range lower {
			if c >= 'A' && c <= 'Z' {
				lower[i] = c + 'a' - 'A'
			}
		}
		for i := bytes.Index(lower, []byte("inline:")); i >= 0; {
			rest := s[i+len("inline:"):]
			end := strings.IndexFunc(rest, func(r rune) bool {
				return !(r >= 'A' && r <= 'Z' || r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r == '+' || r == '/')
			})
			if end < 0 {
				end = len(rest)
			}
			if end >= 12 && strings.Contains(msg, rest[:end]) {
				t.Fatalf("error %q repeats key text %q", msg, rest[:end])
			}
			next := bytes.Index(lower[i+1:], []byte("inline:"))
			if next < 0 {
				break
			}
			i += 1 + next
		}
	})
}
