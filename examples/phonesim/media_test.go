package main

// Tests of the SDP that carries each call's media and keys.

import (
	"net/netip"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestCallSDP(t *testing.T) {
	m := sdpMedia{Addr: netip.MustParseAddrPort("127.0.0.1:40000"), Profile: profileSRTP,
		Crypto: []string{"a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:PS1uQCVeeCFCanVmcjkpPywjNWhcYD0mXXtxaVBR"}}
	got, err := parseSDP(m.marshal(42))
	require.NoError(t, err)
	assert.Equal(t, &m, got)

	for _, bad := range []string{"", "v=0\r\n", "v=0\r\nm=audio 1 RTP/AVP 0\r\n", "c=IN IP6 ::1\r\nm=audio 1 RTP/AVP 0\r\n",
		"c=IN IP4 127.0.0.1\r\nm=audio 70000 RTP/AVP 0\r\n"} {
		_, err := parseSDP([]byte(bad))
		assert.ErrorIs(t, err, errSDP, "%q", bad)
	}
	// Media-level c= wins; a video stream and later audio are ignored.
	got, err = parseSDP([]byte("v=0\nc=IN IP4 10.0.0.1\nm=video 5 RTP/AVP 96\na=crypto:9 x\nm=audio 6 RTP/AVP 0\nc=IN IP4 127.0.0.2\nm=audio 7 RTP/AVP 0\nc=IN IP4 127.0.0.3\n"))
	require.NoError(t, err)
	assert.Equal(t, "127.0.0.2:6", got.Addr.String())
	assert.Empty(t, got.Crypto)
	assert.False(t, got.secure())
}
