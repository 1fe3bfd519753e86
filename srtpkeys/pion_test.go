package srtpkeys

import (
	"bytes"
	"crypto/aes"
	"crypto/cipher"
	"encoding/base64"
	"encoding/binary"
	"encoding/hex"
	"testing"

	"github.com/pion/srtp/v3"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

const (
	plainRTP  = "800f1234decafbadcafebabe" + "abababababababababababababababab"
	plainRTCP = "81c8000bcafebabe" + "abababababababababababababababab"
	b3Key     = "E1F97A0D3E018BE0D64FA32C06DE4139"
	b3Salt    = "0EC675AD498AFEEBB6960B3AABE6"
)

// libsrtpVectors are the full-packet vectors of libsrtp's srtp_driver
// (test/srtp_driver.c), checked through pion.
var libsrtpVectors = []struct {
	name      string
	suite     Suite
	key, salt string
	mki       string
	srtp      string
	srtcp     string
}{
	{
		name: "AES_CM_128_HMAC_SHA1_80", suite: AES128CM_SHA1_80, key: b3Key, salt: b3Salt,
		srtp:  "800f1234decafbadcafebabe4e55dc4ce79978d88ca4d215949d2402b78d6acc99ea179b8dbb",
		srtcp: "81c8000bcafebabe7128035be487b9bdbef89041f977a5a880000001993e08cd54d6c1230798",
	},
	{
		name: "AES_CM_128_HMAC_SHA1_80 with MKI", suite: AES128CM_SHA1_80, key: b3Key, salt: b3Salt, mki: "e1f97a0d",
		srtp:  "800f1234decafbadcafebabe4e55dc4ce79978d88ca4d215949d2402e1f97a0db78d6acc99ea179b8dbb",
		srtcp: "81c8000bcafebabe7128035be487b9bdbef89041f977a5a880000001e1f97a0d993e08cd54d6c1230798",
	},
	{
		name: "AES_256_CM_HMAC_SHA1_80", suite: AES256CM_SHA1_80,
		key: "f0f04914b513f2763a1b1fa130f10e2998f6f6e43e4309d1e622a0e332b9f1b6", salt: "3b04803de51ee7c96423ab5b78d2",
		srtp: "800f1234decafbadcafebabef1d9de17ff251ff1aa007774b0b4b40da08d9d9a5b3a55d8873b",
	},
	{
		name: "AEAD_AES_128_GCM", suite: AEADAES128GCM,
		key: "000102030405060708090a0b0c0d0e0f", salt: "a0a1a2a3a4a5a6a7a8a9aaab",
		srtp:  "800f1234decafbadcafebabec5002ede04cfdd2eb91159e0880aa06ed2976826f796b201df3131a127e8a392",
		srtcp: "81c8000bcafebabec98b8b5df0392a55852b6c21ac8e7025c52c6fbea2b3b446ea31123ba88ce61e80000001",
	},
}

func TestLibsrtpVectorsThroughPion(t *testing.T) {
	for _, v := range libsrtpVectors {
		t.Run(v.name, func(t *testing.T) {
			k := mustKey(t, v.suite, v.key, v.salt)
			if v.mki != "" {
				k.MKI = unhex(t, v.mki)
			}
			send, err := NewContext(k, nil)
			require.NoError(t, err)
			got, err := send.EncryptRTP(nil, unhex(t, plainRTP), nil)
			require.NoError(t, err)
			assert.Equal(t, v.srtp, hex.EncodeToString(got))

			recv, err := NewContext(k, nil)
			require.NoError(t, err)
			plain, err := recv.DecryptRTP(nil, unhex(t, v.srtp), nil)
			require.NoError(t, err)
			assert.Equal(t, plainRTP, hex.EncodeToString(plain))
			// Replay protection is on: the same packet again is refused.
			_, err = recv.DecryptRTP(nil, unhex(t, v.srtp), nil)
			assert.ErrorContains(t, err, "duplicated")

			if v.srtcp == "" {
				return
			}
			send.SetIndex(0xcafebabe, 0) // pion sends last index + 1; libsrtp starts at 1
			got, err = send.EncryptRTCP(nil, unhex(t, plainRTCP), nil)
			require.NoError(t, err)
			assert.Equal(t, v.srtcp, hex.EncodeToString(got))
			plain, err = recv.DecryptRTCP(nil, unhex(t, v.srtcp), nil)
			require.NoError(t, err)
			assert.Equal(t, plainRTCP, hex.EncodeToString(plain))
			_, err = recv.DecryptRTCP(nil, unhex(t, v.srtcp), nil)
			assert.ErrorContains(t, err, "duplicated")
		})
	}
}

// TestFFmpegVectors checks the SRTP vectors of ffmpeg's FATE tests: an
// independent implementation's packets, keyed from an SDES-style base64
// key‖salt.
func TestFFmpegVectors(t *testing.T) {
	ks, err := base64.StdEncoding.DecodeString("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmn")
	require.NoError(t, err)
	k80, err := ParseKeySalt(AES128CM_SHA1_80, ks)
	require.NoError(t, err)
	recv, err := NewContext(k80, nil)
	require.NoError(t, err)
	plain, err := recv.DecryptRTP(nil, unhex(t, "80e012341234567812345678626976cac5a1ac1bb4a01cd5492899"), nil)
	require.NoError(t, err)
	assert.Equal(t, "0102030405", hex.EncodeToString(plain[12:]))

	// Its RTCP vectors (index 3 and 4) are published as tags only, with
	// no plaintext in our notes, so they are not checked here.
}

// gcmSeal protects one RTP or RTCP packet with AES-GCM session keys as RFC
// 7714 §8–9 lays it out. pion takes only master keys, so this test-only
// sealer is how the session-key vectors of RFC 7714 and our derived GCM
// keys meet.
func gcmSeal(t *testing.T, key, salt, pkt []byte, rtcp bool, roc, index uint32, encrypt bool) []byte {
	t.Helper()
	block, err := aes.NewCipher(key)
	require.NoError(t, err)
	aead, err := cipher.NewGCM(block)
	require.NoError(t, err)
	iv := make([]byte, 12)
	copy(iv[2:6], pkt[4:8]) // RTP SSRC at 8, RTCP sender SSRC at 4
	if rtcp {
		binary.BigEndian.PutUint32(iv[8:], index)
	} else {
		copy(iv[2:6], pkt[8:12])
		binary.BigEndian.PutUint32(iv[6:10], roc)
		copy(iv[10:12], pkt[2:4])
	}
	for i := range iv {
		iv[i] ^= salt[i]
	}
	hdr := 12
	if rtcp {
		hdr = 8
	}
	if !rtcp && !encrypt {
		return append(bytes.Clone(pkt), aead.Seal(nil, iv, nil, pkt)...)
	}
	if rtcp {
		eIndex := make([]byte, 4)
		binary.BigEndian.PutUint32(eIndex, index)
		if encrypt {
			eIndex[0] |= 0x80
		}
		aad := append(bytes.Clone(pkt[:hdr]), eIndex...)
		var out []byte
		if encrypt {
			out = aead.Seal(bytes.Clone(pkt[:hdr]), iv, pkt[hdr:], aad)
		} else {
			aad = append(bytes.Clone(pkt), eIndex...)
			out = append(bytes.Clone(pkt), aead.Seal(nil, iv, nil, aad)...)
		}
		return append(out, eIndex...)
	}
	return aead.Seal(bytes.Clone(pkt[:hdr]), iv, pkt[hdr:], pkt[:hdr])
}

// TestGCMVectors covers RFC 7714 §16–17 at the session-key level and
// libsrtp's GCM packets from keys this package derives.
func TestGCMVectors(t *testing.T) {
	salt := unhex(t, "517569642070726f2071756f")
	rtp := append(unhex(t, "8040f17b8041f8d35501a0b2"), "Gallia est omnis divisa in partes tres"...)
	rtcp := unhex(t, "81c8000d4d617273"+"4e545031"+"4e545032"+"52545020"+"0000042a"+"0000e930"+"4c756e61"+"deadbeef"+"deadbeef"+"deadbeef"+"deadbeef"+"deadbeef")
	key128 := unhex(t, "000102030405060708090a0b0c0d0e0f")
	key256 := unhex(t, "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f")
	for _, c := range []struct {
		name                           string
		key                            []byte
		rtpTail, rtcp, rtpTag, rtcpTag string
	}{
		{"128", key128,
			"f24de3a3fb34de6cacba861c9d7e4bcabe633bd50d294e6f42a5f47a51c7d19b36de3adf8833899d7f27beb16a9152cf765ee4390cce",
			"81c8000d4d61727363e94885dcdab67ca727d7662f6b7e997ff5c0f76c06f32dc676a5f1730d6fda4ce09b4686303ded0bb9275bc84aa45896cf4d2fc5abf87245d9eade800005d4",
			"22493f82d2bce397e9d79e3b19aa4216", "841dd9683dd78ec92ae58790125f62b3"},
		{"256", key256,
			"32b1de78a822fe12ef9f78fa332e33aab18012389a58e2f3b50b2a0276ffae0f1ba63799b87b7aa3db36dfffd6b0f9bb7878d7a76c13",
			"81c8000d4d617273d50ae4d1f5ce5d304ba297e47d470c282c3ece5dbffe0a50a2eaa5c1110555be8415f658c61de0476f1b6fad1d1eb30c4446839f57ff6f6cb26ac3be800005d4",
			"a866d5910f887463067ceefec45215d4", "91db4afbfeee5a978fab4393ed2615fe"},
	} {
		t.Run("RFC 7714 AES-"+c.name, func(t *testing.T) {
			got := hex.EncodeToString(gcmSeal(t, c.key, salt, rtp, false, 0, 0, true))
			assert.Equal(t, "8040f17b8041f8d35501a0b2"+c.rtpTail, got)
			got = hex.EncodeToString(gcmSeal(t, c.key, salt, rtcp, true, 0, 0x5d4, true))
			assert.Equal(t, c.rtcp, got)
			got = hex.EncodeToString(gcmSeal(t, c.key, salt, rtp, false, 0, 0, false))
			assert.Equal(t, hex.EncodeToString(rtp)+c.rtpTag, got)
			got = hex.EncodeToString(gcmSeal(t, c.key, salt, rtcp, true, 0, 0x5d4, false))
			assert.Equal(t, hex.EncodeToString(rtcp)+c.rtcpTag+"000005d4", got)
		})
	}
	t.Run("libsrtp GCM-128 from derived keys", func(t *testing.T) {
		d, err := NewDeriver(mustKey(t, AEADAES128GCM, "000102030405060708090a0b0c0d0e0f", "a0a1a2a3a4a5a6a7a8a9aaab"), 0)
		require.NoError(t, err)
		s, _ := d.SRTP(0x1234)
		got := gcmSeal(t, s.Key(), s.Salt(), unhex(t, plainRTP), false, 0, 0, true)
		assert.Equal(t, libsrtpVectors[3].srtp, hex.EncodeToString(got))
		s, _ = d.SRTCP(1)
		got = gcmSeal(t, s.Key(), s.Salt(), unhex(t, plainRTCP), true, 0, 1, true)
		assert.Equal(t, libsrtpVectors[3].srtcp, hex.EncodeToString(got))
	})
}

func TestNewContextOptions(t *testing.T) {
	k := mustKey(t, AES128CM_SHA1_80, b3Key, b3Salt)
	recv, err := NewContext(k, nil, srtp.SRTPNoReplayProtection())
	require.NoError(t, err)
	pkt := unhex(t, libsrtpVectors[0].srtp)
	_, err = recv.DecryptRTP(nil, pkt, nil)
	require.NoError(t, err)
	_, err = recv.DecryptRTP(nil, pkt, nil)
	assert.NoError(t, err, "caller options override the package's")

	// A tampered packet fails authentication.
	recv, err = NewContext(k, &SessionParams{WSH: 1 << 40})
	require.NoError(t, err)
	bad := bytes.Clone(pkt)
	bad[20] ^= 1
	_, err = recv.DecryptRTP(nil, bad, nil)
	assert.ErrorIs(t, err, srtp.ErrFailedToVerifyAuthTag)

	// Unencrypted SRTP: the payload travels in clear, still authenticated.
	send, err := NewContext(k, &SessionParams{UnencryptedSRTP: true})
	require.NoError(t, err)
	out, err := send.EncryptRTP(nil, unhex(t, plainRTP), nil)
	require.NoError(t, err)
	assert.Equal(t, plainRTP, hex.EncodeToString(out[:len(out)-10]))
	// Unauthenticated SRTP: no tag.
	send, err = NewContext(k, &SessionParams{UnauthenticatedSRTP: true})
	require.NoError(t, err)
	out, err = send.EncryptRTP(nil, unhex(t, plainRTP), nil)
	require.NoError(t, err)
	assert.Len(t, out, len(plainRTP)/2)

	_, err = NewContext(k, &SessionParams{KDR: 1 << 16})
	assert.ErrorIs(t, err, ErrPionUnsupported)
	assert.ErrorContains(t, err, "key derivation rate 65536")
	_, err = NewContext(mustKey(t, AES192CM_SHA1_80, "73edc66c4fa15776fb57f9505c17136550ffda71f3e8e5f1", "c8522f3acd4ce86d5add78edbb11"), nil)
	assert.ErrorIs(t, err, ErrPionUnsupported)
	g := mustKey(t, AEADAES128GCM, "000102030405060708090a0b0c0d0e0f", "a0a1a2a3a4a5a6a7a8a9aaab")
	_, err = NewContext(g, &SessionParams{UnauthenticatedSRTP: true})
	assert.ErrorIs(t, err, ErrMalformed)
	_, err = NewContext(g, nil, srtp.SRTPAuthenticationTagLength(21))
	assert.ErrorIs(t, err, ErrContext, "pion's refusal is wrapped")
	_, err = NewContext(MasterKey{}, nil)
	assert.ErrorIs(t, err, ErrUnknownSuite)
	k.MKI = make([]byte, MaxMKILen+1)
	_, err = NewContext(k, nil)
	assert.ErrorIs(t, err, ErrKey)
}

func TestAddKey(t *testing.T) {
	a := mustKey(t, AES128CM_SHA1_80, b3Key, b3Salt)
	a.MKI = []byte{0, 1}
	b, err := GenerateMasterKey(nil, AES128CM_SHA1_80)
	require.NoError(t, err)
	b.MKI = []byte{0, 2}

	recv, err := NewContext(a, nil)
	require.NoError(t, err)
	require.NoError(t, AddKey(recv, b))
	sendB, err := NewContext(b, nil)
	require.NoError(t, err)
	pkt, err := sendB.EncryptRTP(nil, unhex(t, plainRTP), nil)
	require.NoError(t, err)
	plain, err := recv.DecryptRTP(nil, pkt, nil)
	require.NoError(t, err)
	assert.Equal(t, plainRTP, hex.EncodeToString(plain))

	b.MKI = nil
	assert.ErrorIs(t, AddKey(recv, b), ErrKey)
	b.MKI = []byte{0, 1}
	assert.ErrorIs(t, AddKey(recv, b), ErrContext, "an MKI already in use")
}
