package srtpkeys

import (
	"encoding/hex"
	"errors"
	"slices"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func unhex(t testing.TB, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(strings.ReplaceAll(s, " ", ""))
	require.NoError(t, err)
	return b
}

func mustKey(t testing.TB, suite Suite, key, salt string) MasterKey {
	t.Helper()
	k, err := NewMasterKey(suite, unhex(t, key), unhex(t, salt))
	require.NoError(t, err)
	return k
}

type kdfVector struct {
	name                        string
	suite                       Suite
	key, salt                   string
	kdr                         uint64
	index                       uint64
	rtcp                        bool
	wantKey, wantSalt, wantAuth string
}

// kdfVectors are key-derivation vectors from RFC 3711 appendix B.3 (SRTCP
// in the layout of erratum 3712), RFC 6188 §7.2 and §7.4, the NIST ACVP
// and CAVS SRTP KDF tests (as OpenSSL's evpkdf_srtp.txt and libsrtp issue
// 454 give them), libsrtp's srtp_driver and one computed here.
var kdfVectors = []kdfVector{
	{
		name: "RFC 3711 B.3", suite: AES128CM_SHA1_80,
		key: "E1F97A0D3E018BE0D64FA32C06DE4139", salt: "0EC675AD498AFEEBB6960B3AABE6",
		wantKey: "C61E7A93744F39EE10734AFE3FF7A087", wantSalt: "30CBBC08863D8C85D49DB34A9AE1",
		wantAuth: "CEBE321F6FF7716B6FD4AB49AF256A156D38BAA4",
	},
	{
		// SRTCP for the B.3 master with the label at salt byte 7 (RFC 3711
		// Erratum 3712), the layout libsrtp's SRTCP packet vector needs.
		name: "RFC 3711 B.3 SRTCP (erratum layout)", suite: AES128CM_SHA1_80, rtcp: true,
		key: "E1F97A0D3E018BE0D64FA32C06DE4139", salt: "0EC675AD498AFEEBB6960B3AABE6",
		wantKey: "4c1aa45a81f73d61c800bbb00fbb1eaa", wantSalt: "9581c7ad87b3e530bf3e4454a8b3",
		wantAuth: "8d54534feb49ae8e7993a6bd0b844fc323a93dfd",
	},
	{
		name: "RFC 6188 7.2 AES-256", suite: AES256CM_SHA1_80,
		key: "f0f04914b513f2763a1b1fa130f10e2998f6f6e43e4309d1e622a0e332b9f1b6", salt: "3b04803de51ee7c96423ab5b78d2",
		wantKey: "5ba1064e30ec51613cad926c5a28ef731ec7fb397f70a960653caf06554cd8c4", wantSalt: "fa31791685ca444a9e07c6c64e93",
		wantAuth: "fd9c32d39ed5fbb5a9dc96b30818454d1313dc05",
	},
	{
		name: "RFC 6188 7.4 AES-192", suite: AES192CM_SHA1_80,
		key: "73edc66c4fa15776fb57f9505c17136550ffda71f3e8e5f1", salt: "c8522f3acd4ce86d5add78edbb11",
		wantKey: "31874736a8f1143870c26e4857d8a5b2c4a354407faadabb", wantSalt: "2372b82d639b6d8503a47adc0a6c",
		wantAuth: "355b10973cd95b9eacf4061c7e1a7151e7cfbfcb",
	},
	{
		name: "NIST KDR 1", suite: AES128CM_SHA1_80, kdr: 1, index: 0x08284B49F520,
		key: "8C307F105F79D5D2C26B1A933AE22CD5", salt: "563B4C15458D977B68080242CEE1",
		wantKey: "A920DF50EAA111D03FBE9B203121C07D", wantSalt: "9E2BC99C86037F2AD98D72927428",
		wantAuth: "A337DC070C0DAFA942F1E3A27ACD3C9917CE4B4D",
	},
	{
		name: "NIST KDR 2", suite: AES128CM_SHA1_80, kdr: 2, index: 0x3D6FECDCE1BE,
		key: "127A535F66D5D43135E5DB87F04AF2DB", salt: "82D0D04DC693E29E0FE7FECBF041",
		wantKey: "A2F4D858CCDF585D9C5CA787C5A3031F", wantSalt: "AA6DE94B3BCB5108EFD350AD6936",
		wantAuth: "C140C97CAC05B2ED338AD353014A90012F37B45C",
	},
	{
		name: "NIST KDR 8", suite: AES128CM_SHA1_80, kdr: 8, index: 0xF4EE616415B9,
		key: "CF08F8159FCF18DA8108A3FE3B707C2B", salt: "4AF8352708E0A164C6645A63E5BB",
		wantKey: "B46322B06F6E4B189F27744EAD8C5173", wantSalt: "18EA8EA36A90617224FBFBCB849A",
		wantAuth: "F9F246054B3D4AA2520CE2612192749AA6970BB0",
	},
	{
		name: "NIST CAVS legacy (libsrtp#454) SRTP", suite: AES128CM_SHA1_80,
		key: "c4809f6d369888728e26adb532129890", salt: "0e23006c6c044f5662400e9d1bd6",
		wantKey: "dc382192ab65108a86b259b61b3af46f", wantSalt: "f1c035c00b5a54a61692c016276c",
		wantAuth: "b83937fb321792ee87b788193be5a4e3bd326ee4",
	},
	{
		name: "libsrtp GCM-128 SRTP (12-byte salt zero-padded)", suite: AEADAES128GCM,
		key: "000102030405060708090a0b0c0d0e0f", salt: "a0a1a2a3a4a5a6a7a8a9aaab",
		wantKey: "077c6143cb221bc355ff23d5f984a16e", wantSalt: "9af3e95364ebac9c99c5a7c4",
	},
	{
		name: "libsrtp GCM-128 SRTCP", suite: AEADAES128GCM, rtcp: true,
		key: "000102030405060708090a0b0c0d0e0f", salt: "a0a1a2a3a4a5a6a7a8a9aaab",
		wantKey: "615dcd9042600666f6fd4d9e4fe4519f", wantSalt: "fcca937b9112a500dac72269",
	},
	{
		// No outside oracle: computed once with the erratum layout and
		// kept to catch regressions in the r = index DIV kdr path.
		name: "B.3 master, KDR 2^16, index 2^16 (self-computed)", suite: AES128CM_SHA1_80, kdr: 1 << 16, index: 1 << 16,
		key: "E1F97A0D3E018BE0D64FA32C06DE4139", salt: "0EC675AD498AFEEBB6960B3AABE6",
		wantKey: "53870b4b8e2af0c6f0cc8b1544c34138",
	},
}

func TestDeriverVectors(t *testing.T) {
	for _, v := range kdfVectors {
		t.Run(v.name, func(t *testing.T) {
			d, err := NewDeriver(mustKey(t, v.suite, v.key, v.salt), v.kdr)
			require.NoError(t, err)
			var s SessionKeys
			if v.rtcp {
				s, err = d.SRTCP(uint32(v.index))
			} else {
				s, err = d.SRTP(v.index)
			}
			require.NoError(t, err)
			assert.Equal(t, strings.ToLower(v.wantKey), hex.EncodeToString(s.Key()), "key")
			if v.wantSalt != "" {
				assert.Equal(t, strings.ToLower(v.wantSalt), hex.EncodeToString(s.Salt()), "salt")
			}
			if v.wantAuth != "" {
				assert.Equal(t, strings.ToLower(v.wantAuth), hex.EncodeToString(s.Auth()), "auth")
			}
			if v.suite.AEAD() {
				assert.Empty(t, s.Auth())
			}
			assert.Equal(t, v.suite, s.Suite())
		})
	}
}

// TestDeriverInto derives every vector into one SessionKeys, reused
// across suites (longest keys first, so that leftovers would show), and
// checks the bytes and that an index out of range leaves dst alone.
func TestDeriverInto(t *testing.T) {
	var dst SessionKeys
	vs := slices.Clone(kdfVectors)
	slices.SortStableFunc(vs, func(a, b kdfVector) int { return b.suite.KeyLen() - a.suite.KeyLen() })
	for _, v := range vs {
		d, err := NewDeriver(mustKey(t, v.suite, v.key, v.salt), v.kdr)
		require.NoError(t, err)
		if v.rtcp {
			err = d.SRTCPInto(&dst, uint32(v.index))
		} else {
			err = d.SRTPInto(&dst, v.index)
		}
		require.NoError(t, err, v.name)
		var want SessionKeys
		if v.rtcp {
			want, _ = d.SRTCP(uint32(v.index))
		} else {
			want, _ = d.SRTP(v.index)
		}
		assert.Equal(t, v.suite, dst.Suite(), v.name)
		assert.Equal(t, *want.m, *dst.m, v.name) // every byte, the unused ones zero
		assert.Equal(t, strings.ToLower(v.wantKey), hex.EncodeToString(dst.Key()), v.name)
	}
	before := *dst.m
	d, err := NewDeriver(mustKey(t, AES128CM_SHA1_80, "E1F97A0D3E018BE0D64FA32C06DE4139", "0EC675AD498AFEEBB6960B3AABE6"), 0)
	require.NoError(t, err)
	assert.ErrorIs(t, d.SRTPInto(&dst, MaxIndexSRTP+1), ErrIndex)
	assert.ErrorIs(t, d.SRTCPInto(&dst, MaxIndexSRTCP+1), ErrIndex)
	assert.Equal(t, before, *dst.m)
	allocs := testing.AllocsPerRun(100, func() { _ = d.SRTPInto(&dst, 0) })
	assert.Zero(t, allocs, "allocations per SRTPInto with a used dst")
}

func TestDeriverKDR(t *testing.T) {
	k := mustKey(t, AES128CM_SHA1_80, "E1F97A0D3E018BE0D64FA32C06DE4139", "0EC675AD498AFEEBB6960B3AABE6")
	d, err := NewDeriver(k, 1<<16)
	require.NoError(t, err)
	// Keys change exactly when index DIV kdr changes.
	a, _ := d.SRTP(0)
	b, _ := d.SRTP(0xffff)
	c, _ := d.SRTP(0x10000)
	assert.Equal(t, a.Key(), b.Key())
	assert.NotEqual(t, a.Key(), c.Key())
	// KDR 0 derives once: any index gives the index-0 keys.
	d0, err := NewDeriver(k, 0)
	require.NoError(t, err)
	z, _ := d0.SRTP(MaxIndexSRTP)
	assert.Equal(t, a.Key(), z.Key())

	for _, bad := range []uint64{3, 6, 1 << 25, 1<<24 + 1} {
		_, err := NewDeriver(k, bad)
		assert.ErrorIs(t, err, ErrIndex, "kdr %d", bad)
	}
	_, err = d.SRTP(MaxIndexSRTP + 1)
	assert.ErrorIs(t, err, ErrIndex)
	_, err = d.SRTCP(MaxIndexSRTCP + 1)
	assert.ErrorIs(t, err, ErrIndex)
	_, err = NewDeriver(MasterKey{}, 0)
	assert.ErrorIs(t, err, ErrUnknownSuite)
	_, err = NewDeriver(MasterKey{Suite: AES128CM_SHA1_80}, 0)
	assert.ErrorIs(t, err, ErrKey)
	for n := 0; n <= 24; n++ {
		r, err := KDRFromExponent(n)
		require.NoError(t, err)
		require.NoError(t, CheckKDR(r))
	}
	_, err = KDRFromExponent(25)
	assert.True(t, errors.Is(err, ErrIndex))
}

func TestSessionKeysRedacted(t *testing.T) {
	d, err := NewDeriver(mustKey(t, AES128CM_SHA1_80, "E1F97A0D3E018BE0D64FA32C06DE4139", "0EC675AD498AFEEBB6960B3AABE6"), 0)
	require.NoError(t, err)
	s, _ := d.SRTP(0)
	assertRedacted(t, s, "c61e7a93", "C61E7A93", "30cbbc08", "cebe321f", "198 30 122 147", "48 203 188")
}
