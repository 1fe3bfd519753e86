package main

import (
	"errors"
	"net/netip"
	"slices"
	"testing"
)

// FuzzParseSDP: parseSDP reads SDP bodies from the network; it must not
// panic, must fail only with errSDP, and what it reads must survive being
// written and read again.
func FuzzParseSDP(f *testing.F) {
	f.Add((&sdpMedia{Addr: netip.MustParseAddrPort("127.0.0.1:4000"), Profile: profileSRTP,
		Crypto: []string{"a=crypto:1 AEAD_AES_256_GCM inline:Zm9vYmFyYmF6cXV4Zm9vYmFyYmF6cXV4Zm9vYmFyYmF6cXV4"}}).marshal(1))
	f.Add((&sdpMedia{Addr: netip.MustParseAddrPort("127.0.0.1:4002"), Profile: profileRTP}).marshal(2))
	f.Add([]byte("v=0\nc=IN IP4 10.0.0.1\nm=video 5 RTP/AVP 96\nm=audio 6 RTP/AVP 0\nc=IN IP4 127.0.0.2\n"))
	f.Fuzz(func(t *testing.T, body []byte) {
		m, err := parseSDP(body)
		if err != nil {
			if !errors.Is(err, errSDP) {
				t.Fatalf("error %v does not wrap errSDP", err)
			}
			return
		}
		again, err := parseSDP(m.marshal(1))
		if err != nil {
			t.Fatalf("%+v does not read back: %v", m, err)
		}
		if again.Addr != m.Addr || again.Profile != m.Profile || !slices.Equal(again.Crypto, m.Crypto) {
			t.Fatalf("read back %+v, want %+v", again, m)
		}
	})
}
