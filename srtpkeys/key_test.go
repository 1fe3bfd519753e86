package srtpkeys

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// assertRedacted prints v every way a program might and checks that none of
// the secrets (hex or raw fragments) show up.
func assertRedacted(t *testing.T, v any, secrets ...string) {
	t.Helper()
	var outs []string
	for _, verb := range []string{"%v", "%+v", "%#v", "%s", "%x", "%X", "%q", "%d"} {
		outs = append(outs, fmt.Sprintf(verb, v))
	}
	// Nested in a struct, exported and unexported, and behind a pointer.
	outs = append(outs,
		fmt.Sprintf("%+v", struct{ K any }{v}),
		fmt.Sprintf("%+v", struct{ k any }{v}),
		fmt.Sprintf("%v", []any{v}))
	j, err := json.Marshal(struct{ K any }{v})
	require.NoError(t, err)
	outs = append(outs, string(j))
	var logged bytes.Buffer
	slog.New(slog.NewTextHandler(&logged, nil)).Info("key", "k", v)
	outs = append(outs, logged.String())
	for _, o := range outs {
		for _, s := range secrets {
			require.NotContains(t, strings.ToLower(o), strings.ToLower(s))
		}
	}
}

func TestMasterKeyRedacted(t *testing.T) {
	k := mustKey(t, AES128CM_SHA1_80, "E1F97A0D3E018BE0D64FA32C06DE4139", "0EC675AD498AFEEBB6960B3AABE6")
	k.MKI = []byte{1}
	k.Lifetime = 1 << 31
	assertRedacted(t, k, "e1f97a0d", "0ec675ad", "\xe1\xf9\x7a\x0d", "4Fl6DT4B", "225 249 122 13") // hex, raw, base64, decimal
	assertRedacted(t, CallKeys{AtoB: k, BtoA: k}, "e1f97a0d")
	assert.Equal(t, "AES_CM_128_HMAC_SHA1_80 key [redacted] lifetime 2^31 MKI 1:1", k.String())
	assert.Equal(t, "srtpkeys.MasterKey(none)", MasterKey{}.String())
}

func TestMasterKey(t *testing.T) {
	key := unhex(t, "E1F97A0D3E018BE0D64FA32C06DE4139")
	salt := unhex(t, "0EC675AD498AFEEBB6960B3AABE6")
	k, err := NewMasterKey(AES128CM_SHA1_80, key, salt)
	require.NoError(t, err)
	key[0] ^= 0xff // the key holds its own copy
	assert.Equal(t, unhex(t, "E1F97A0D3E018BE0D64FA32C06DE4139"), k.Key())
	assert.Equal(t, salt, k.Salt())
	assert.Equal(t, append(k.Key(), salt...), k.KeySalt())
	k.Key()[0] = 0 // and hands out copies
	assert.Equal(t, byte(0xe1), k.Key()[0])

	k2, err := ParseKeySalt(AES128CM_SHA1_80, k.KeySalt())
	require.NoError(t, err)
	assert.True(t, k.Equal(k2))
	assert.True(t, MasterKey{}.Equal(MasterKey{}))
	assert.False(t, k.Equal(MasterKey{}))

	for _, s := range Suites() {
		_, err := NewMasterKey(s, make([]byte, s.KeyLen()+1), make([]byte, s.SaltLen()))
		assert.ErrorIs(t, err, ErrKey, "%s", s)
		_, err = NewMasterKey(s, make([]byte, s.KeyLen()), make([]byte, s.SaltLen()-1))
		assert.ErrorIs(t, err, ErrKey, "%s", s)
		_, err = ParseKeySalt(s, make([]byte, s.KeyLen()))
		assert.ErrorIs(t, err, ErrKey, "%s", s)
	}
	_, err = NewMasterKey(0, key, salt)
	assert.ErrorIs(t, err, ErrUnknownSuite)
	_, err = GenerateMasterKey(nil, 99)
	assert.ErrorIs(t, err, ErrUnknownSuite)
}

func TestGenerateMasterKey(t *testing.T) {
	for _, s := range Suites() {
		k, err := GenerateMasterKey(nil, s)
		require.NoError(t, err)
		assert.Len(t, k.Key(), s.KeyLen())
		assert.Len(t, k.Salt(), s.SaltLen())
		assert.Equal(t, s, k.Suite)
	}
	_, err := GenerateMasterKey(strings.NewReader("short"), AES128CM_SHA1_80)
	assert.ErrorIs(t, err, ErrRandom)
	_, err = GenerateMasterKey(bytes.NewReader(make([]byte, 64)), AES128CM_SHA1_80)
	assert.ErrorIs(t, err, ErrRandom, "all-zero output is a broken source")
}

// repeatReader returns the same bytes on every Read: a broken source.
type repeatReader struct{ b []byte }

func (r repeatReader) Read(p []byte) (int, error) {
	for i := range p {
		p[i] = r.b[i%len(r.b)]
	}
	return len(p), nil
}

func TestGenerateCallKeys(t *testing.T) {
	seen := map[string]bool{}
	for _, s := range Suites() {
		for range 50 {
			c, err := GenerateCallKeys(nil, s)
			require.NoError(t, err)
			assert.False(t, c.AtoB.Equal(c.BtoA))
			for _, k := range []MasterKey{c.AtoB, c.BtoA} {
				require.False(t, seen[string(k.KeySalt())], "a key came twice")
				seen[string(k.KeySalt())] = true
			}
			as, ar := c.A()
			bs, br := c.B()
			assert.True(t, as.Equal(br) && bs.Equal(ar))
		}
	}
	_, err := GenerateCallKeys(repeatReader{[]byte("0123456789abcdefghijklmnopqrstuvwxyz0123456789abc")}, AES128CM_SHA1_80)
	assert.ErrorIs(t, err, ErrRandom)
	_, err = GenerateCallKeys(io.LimitReader(repeatReader{[]byte{1, 2, 3}}, 31), AES128CM_SHA1_80)
	assert.ErrorIs(t, err, ErrRandom)
}

func TestSuites(t *testing.T) {
	want := []struct {
		name                                string
		key, salt, authKey, rtpTag, rtcpTag int
		profile                             uint16
		pion                                bool
	}{
		{"AES_CM_128_HMAC_SHA1_80", 16, 14, 20, 10, 10, 1, true},
		{"AES_CM_128_HMAC_SHA1_32", 16, 14, 20, 4, 10, 2, true},
		{"AES_192_CM_HMAC_SHA1_80", 24, 14, 20, 10, 10, 0, false},
		{"AES_192_CM_HMAC_SHA1_32", 24, 14, 20, 4, 10, 0, false},
		{"AES_256_CM_HMAC_SHA1_80", 32, 14, 20, 10, 10, 3, true},
		{"AES_256_CM_HMAC_SHA1_32", 32, 14, 20, 4, 10, 4, true},
		{"AEAD_AES_128_GCM", 16, 12, 0, 16, 16, 7, true},
		{"AEAD_AES_256_GCM", 32, 12, 0, 16, 16, 8, true},
	}
	require.Len(t, Suites(), len(want))
	for i, s := range Suites() {
		w := want[i]
		assert.Equal(t, w.name, s.String())
		assert.Equal(t, []int{w.key, w.salt, w.authKey, w.rtpTag, w.rtcpTag},
			[]int{s.KeyLen(), s.SaltLen(), s.AuthKeyLen(), s.AuthTagLen(), s.RTCPAuthTagLen()}, w.name)
		p, ok := s.DTLSProfile()
		assert.Equal(t, w.profile, p)
		assert.Equal(t, w.profile != 0, ok)
		assert.Equal(t, w.pion, s.PionRuns())
		assert.Equal(t, w.key != 0 && w.authKey == 0, s.AEAD())

		got, err := ParseSuite(strings.ToLower(w.name))
		require.NoError(t, err)
		assert.Equal(t, s, got)
		pp, err := s.PionProfile()
		if w.pion {
			require.NoError(t, err)
			assert.Equal(t, w.profile, uint16(pp))
			// pion agrees on every length.
			kl, _ := pp.KeyLen()
			sl, _ := pp.SaltLen()
			assert.Equal(t, []int{w.key, w.salt}, []int{kl, sl})
			if !s.AEAD() {
				tl, _ := pp.AuthTagRTPLen()
				rl, _ := pp.AuthTagRTCPLen()
				al, _ := pp.AuthKeyLen()
				assert.Equal(t, []int{w.rtpTag, w.rtcpTag, w.authKey}, []int{tl, rl, al})
			} else {
				tl, _ := pp.AEADAuthTagLen()
				assert.Equal(t, w.rtpTag, tl)
			}
			back, err := SuiteForProfile(uint16(pp))
			require.NoError(t, err)
			assert.Equal(t, s, back)
		} else {
			assert.ErrorIs(t, err, ErrPionUnsupported)
			assert.Contains(t, err.Error(), "pion/srtp cannot run suite "+w.name)
		}
	}
	for alias, s := range map[string]Suite{
		"AES_CM_256_HMAC_SHA1_80": AES256CM_SHA1_80, "AES_CM_256_HMAC_SHA1_32": AES256CM_SHA1_32,
		"aes_cm_192_hmac_sha1_80": AES192CM_SHA1_80, "AES_CM_192_HMAC_SHA1_32": AES192CM_SHA1_32,
	} {
		got, err := ParseSuite(alias)
		require.NoError(t, err)
		assert.Equal(t, s, got)
	}
	for _, bad := range []string{"", "F8_128_HMAC_SHA1_80", "AEAD_AES_128_GCM_8", "SRTP_AES128_CM_HMAC_SHA1_80", "AES_CM_128_HMAC_SHA1_80 "} {
		_, err := ParseSuite(bad)
		assert.ErrorIs(t, err, ErrUnknownSuite, bad)
		var se *SuiteError
		assert.ErrorAs(t, err, &se)
	}
	for _, p := range []uint16{0, 5, 6, 9, 0xffff} {
		_, err := SuiteForProfile(p)
		assert.ErrorIs(t, err, ErrUnknownSuite)
	}
	var zero Suite
	assert.Equal(t, "Suite(0)", zero.String())
	assert.Equal(t, "Suite(200)", Suite(200).String())
	assert.False(t, zero.Valid() || zero.AEAD() || zero.PionRuns())
	assert.Zero(t, Suite(200).KeyLen())
	_, err := zero.PionProfile()
	assert.ErrorIs(t, err, ErrUnknownSuite)
}
