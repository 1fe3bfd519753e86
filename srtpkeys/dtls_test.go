package srtpkeys_test

// DTLS-SRTP (RFC 5764) between a pion/dtls v3 client and server over UDP
// on 127.0.0.1, each with a self-signed ECDSA certificate that the other
// end pins by its SHA-256 fingerprint (as SDP a=fingerprint does). After
// the handshake FromDTLS must give each end the other's keys, the same as
// pion/srtp's own ExtractSessionKeysFromDTLS, and media must flow both
// ways through SendContext and ReceiveContext.

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"math/big"
	"net"
	"testing"
	"time"

	"github.com/pion/dtls/v3"
	"github.com/pion/srtp/v3"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/ucsec/ucsec/srtpkeys"
)

// handshakeTimeout bounds one DTLS handshake on loopback.
const handshakeTimeout = 10 * time.Second

// dtlsSuites are the suites with a DTLS-SRTP profile that pion/dtls and
// pion/srtp run, with the profile numbers of RFC 5764 §4.1.2, RFC 7714
// §14.2 and (0x0003, 0x0004) pion and Chrome.
var dtlsSuites = []struct {
	suite   srtpkeys.Suite
	profile dtls.SRTPProtectionProfile
}{
	{srtpkeys.AES128CM_SHA1_80, dtls.SRTP_AES128_CM_HMAC_SHA1_80}, // 0x0001
	{srtpkeys.AES128CM_SHA1_32, dtls.SRTP_AES128_CM_HMAC_SHA1_32}, // 0x0002
	{srtpkeys.AES256CM_SHA1_80, dtls.SRTP_AES256_CM_SHA1_80},      // 0x0003
	{srtpkeys.AES256CM_SHA1_32, dtls.SRTP_AES256_CM_SHA1_32},      // 0x0004
	{srtpkeys.AEADAES128GCM, dtls.SRTP_AEAD_AES_128_GCM},          // 0x0007
	{srtpkeys.AEADAES256GCM, dtls.SRTP_AEAD_AES_256_GCM},          // 0x0008
}

func TestFromDTLS(t *testing.T) {
	for _, tc := range dtlsSuites {
		t.Run(tc.suite.String(), func(t *testing.T) {
			t.Parallel()
			start := time.Now()
			profiles, err := srtpkeys.DTLSProfiles(tc.suite)
			require.NoError(t, err)
			require.Equal(t, []dtls.SRTPProtectionProfile{tc.profile}, profiles)

			client, server := dtlsPair(t, profiles, profiles)
			cs, err := srtpkeys.FromDTLS(client, true, nil)
			require.NoError(t, err)
			ss, err := srtpkeys.FromDTLS(server, false, nil)
			require.NoError(t, err)

			for _, s := range []*srtpkeys.Session{cs, ss} {
				assert.Equal(t, tc.suite, s.Suite)
				assert.Equal(t, tc.suite, s.Local.Suite)
				assert.Equal(t, tc.suite, s.Remote.Suite)
				assert.False(t, s.Local.IsZero())
				assert.False(t, s.Remote.IsZero())
				assert.False(t, s.Local.Equal(s.Remote), "one key for both directions")
				assert.Nil(t, s.Local.MKI)
				assert.Nil(t, s.Remote.MKI)
				assert.Zero(t, s.Tag)
			}
			assert.True(t, cs.Local.Equal(ss.Remote), "client's send key is not the server's receive key")
			assert.True(t, cs.Remote.Equal(ss.Local), "client's receive key is not the server's send key")

			// pion/srtp's own extraction from the same connections agrees.
			for _, end := range []struct {
				conn     *dtls.Conn
				isClient bool
				s        *srtpkeys.Session
			}{{client, true, cs}, {server, false, ss}} {
				state, ok := end.conn.ConnectionState()
				require.True(t, ok)
				cfg := srtp.Config{Profile: srtp.ProtectionProfile(tc.profile)}
				require.NoError(t, cfg.ExtractSessionKeysFromDTLS(&state, end.isClient))
				assert.Equal(t, cfg.Keys.LocalMasterKey, end.s.Local.Key(), "local key, client %v", end.isClient)
				assert.Equal(t, cfg.Keys.LocalMasterSalt, end.s.Local.Salt(), "local salt, client %v", end.isClient)
				assert.Equal(t, cfg.Keys.RemoteMasterKey, end.s.Remote.Key(), "remote key, client %v", end.isClient)
				assert.Equal(t, cfg.Keys.RemoteMasterSalt, end.s.Remote.Salt(), "remote salt, client %v", end.isClient)
			}

			// Media both ways.
			rtpThrough(t, cs, ss, 0x11111111)
			rtpThrough(t, ss, cs, 0x22222222)
			t.Logf("%s: %v", tc.suite, time.Since(start).Round(time.Millisecond))
		})
	}
}

// rtpThrough protects RTP and SRTCP with from's send context and checks
// that to's receive context recovers it, and refuses a replay.
func rtpThrough(t *testing.T, from, to *srtpkeys.Session, ssrc uint32) {
	t.Helper()
	send, err := from.SendContext()
	require.NoError(t, err)
	recv, err := to.ReceiveContext()
	require.NoError(t, err)
	var enc []byte
	for i := range 3 {
		plain := rtpPacket(t, ssrc, seqAt(i))
		enc, err = send.EncryptRTP(nil, plain, nil)
		require.NoError(t, err)
		got, err := recv.DecryptRTP(nil, enc, nil)
		require.NoError(t, err)
		require.Equal(t, plain, got)
	}
	_, err = recv.DecryptRTP(nil, enc, nil)
	assertReplay(t, err)

	plain := rtcpPacket(t, ssrc, 0)
	enc, err = send.EncryptRTCP(nil, plain, nil)
	require.NoError(t, err)
	got, err := recv.DecryptRTCP(nil, enc, nil)
	require.NoError(t, err)
	require.Equal(t, plain, got)

	// The sender's own receive key does not open it: the directions differ.
	own, err := from.ReceiveContext()
	require.NoError(t, err)
	_, err = own.DecryptRTCP(nil, enc, nil)
	assert.ErrorIs(t, err, srtp.ErrFailedToVerifyAuthTag)
}

// TestDTLSServerPreference checks that the server's order, not the
// client's, decides the suite (pion/dtls picks the first profile in the
// server's list that the client offered), and that both ends report it.
func TestDTLSServerPreference(t *testing.T) {
	clientOffer := []srtpkeys.Suite{srtpkeys.AES128CM_SHA1_80, srtpkeys.AES128CM_SHA1_32, srtpkeys.AEADAES128GCM, srtpkeys.AEADAES256GCM}
	for _, tc := range []struct {
		name   string
		server []srtpkeys.Suite
		want   srtpkeys.Suite
	}{
		{"server prefers GCM-256", []srtpkeys.Suite{srtpkeys.AEADAES256GCM, srtpkeys.AES128CM_SHA1_80}, srtpkeys.AEADAES256GCM},
		{"server prefers AES-CM-80", []srtpkeys.Suite{srtpkeys.AES128CM_SHA1_80, srtpkeys.AEADAES256GCM}, srtpkeys.AES128CM_SHA1_80},
		{"first server suite not offered", []srtpkeys.Suite{srtpkeys.AES256CM_SHA1_80, srtpkeys.AEADAES128GCM, srtpkeys.AES128CM_SHA1_32}, srtpkeys.AEADAES128GCM},
		{"server's defaults", nil, srtpkeys.AEADAES256GCM},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			cp, err := srtpkeys.DTLSProfiles(clientOffer...)
			require.NoError(t, err)
			sp, err := srtpkeys.DTLSProfiles(tc.server...)
			require.NoError(t, err)
			client, server := dtlsPair(t, cp, sp)
			cs, err := srtpkeys.FromDTLS(client, true, nil)
			require.NoError(t, err)
			ss, err := srtpkeys.FromDTLS(server, false, nil)
			require.NoError(t, err)
			assert.Equal(t, tc.want, cs.Suite)
			assert.Equal(t, tc.want, ss.Suite)
			assert.True(t, cs.Local.Equal(ss.Remote))
			assert.True(t, cs.Remote.Equal(ss.Local))
		})
	}
}

// TestFromDTLSWithoutProfile checks that FromDTLS refuses a connection
// whose handshake has not run yet, and one that negotiated no SRTP
// protection profile, with errors wrapping ErrDTLS.
func TestFromDTLSWithoutProfile(t *testing.T) {
	t.Run("before the handshake", func(t *testing.T) {
		t.Parallel()
		profiles, err := srtpkeys.DTLSProfiles()
		require.NoError(t, err)
		client, server := dtlsConns(t, profiles, profiles)
		for _, end := range []struct {
			conn     *dtls.Conn
			isClient bool
		}{{client, true}, {server, false}} {
			s, err := srtpkeys.FromDTLS(end.conn, end.isClient, nil)
			assert.ErrorIs(t, err, srtpkeys.ErrDTLS, "client %v", end.isClient)
			assert.Nil(t, s)
		}
	})
	t.Run("no use_srtp", func(t *testing.T) {
		t.Parallel()
		client, server := dtlsPair(t, nil, nil)
		for _, end := range []struct {
			conn     *dtls.Conn
			isClient bool
		}{{client, true}, {server, false}} {
			s, err := srtpkeys.FromDTLS(end.conn, end.isClient, nil)
			assert.ErrorIs(t, err, srtpkeys.ErrDTLS, "client %v", end.isClient)
			assert.Nil(t, s)
		}
	})
}

// TestFromDTLSAgreedMKI runs DTLS-SRTP with MKIs: when both ends
// configured the same one, the server echoes it and every packet in both
// directions carries it (RFC 5764 §4.1.2); when only the client offers one,
// or the two differ, the server declines it and no packet carries one.
func TestFromDTLSAgreedMKI(t *testing.T) {
	mki := []byte{0xde, 0xad, 0xbe, 0xef}
	profiles, err := srtpkeys.DTLSProfiles(srtpkeys.AES128CM_SHA1_80)
	require.NoError(t, err)
	tag := srtpkeys.AES128CM_SHA1_80.AuthTagLen()
	for _, c := range []struct {
		name                 string
		clientMKI, serverMKI []byte
		agreed               bool
	}{
		{"both", mki, mki, true},
		{"client only", mki, nil, false},
		{"different", mki, []byte{1, 2, 3, 4}, false},
	} {
		t.Run(c.name, func(t *testing.T) {
			client, server := dtlsPairMKI(t, profiles, c.clientMKI, c.serverMKI)
			cs, err := srtpkeys.FromDTLS(client, true, c.clientMKI)
			require.NoError(t, err)
			ss, err := srtpkeys.FromDTLS(server, false, c.serverMKI)
			require.NoError(t, err)
			var want []byte
			if c.agreed {
				want = mki
			}
			for _, k := range []srtpkeys.MasterKey{cs.Local, cs.Remote, ss.Local, ss.Remote} {
				assert.Equal(t, want, k.MKI)
			}
			send, err := cs.SendContext()
			require.NoError(t, err)
			enc, err := send.EncryptRTP(nil, rtpPacket(t, 0x33333333, 1), nil)
			require.NoError(t, err)
			if c.agreed {
				assert.Equal(t, mki, enc[len(enc)-tag-len(mki):len(enc)-tag], "the MKI sits before the tag")
			}
			rtpThrough(t, cs, ss, 0x44444444)
			rtpThrough(t, ss, cs, 0x55555555)
		})
	}
}

func TestDTLSProfilesRefusesAES192(t *testing.T) {
	_, err := srtpkeys.DTLSProfiles(srtpkeys.AEADAES128GCM, srtpkeys.AES192CM_SHA1_80)
	assert.ErrorIs(t, err, srtpkeys.ErrUnknownSuite)
	def, err := srtpkeys.DTLSProfiles()
	require.NoError(t, err)
	want, err := srtpkeys.DTLSProfiles(srtpkeys.PionSuites()...)
	require.NoError(t, err)
	assert.Equal(t, want, def)
}

// dtlsPair returns a client and a server that completed a DTLS handshake
// over 127.0.0.1, offering the given SRTP protection profiles (none for a
// nil list). Both are closed when the test ends.
func dtlsPair(t *testing.T, clientProfiles, serverProfiles []dtls.SRTPProtectionProfile) (client, server *dtls.Conn) {
	t.Helper()
	client, server = dtlsConnsMKI(t, clientProfiles, serverProfiles, nil, nil)
	return handshake(t, client, server)
}

// dtlsPairMKI is dtlsPair with an MKI configured on each end (nil for none).
func dtlsPairMKI(t *testing.T, profiles []dtls.SRTPProtectionProfile, clientMKI, serverMKI []byte) (client, server *dtls.Conn) {
	t.Helper()
	client, server = dtlsConnsMKI(t, profiles, profiles, clientMKI, serverMKI)
	return handshake(t, client, server)
}

func handshake(t *testing.T, client, server *dtls.Conn) (*dtls.Conn, *dtls.Conn) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), handshakeTimeout)
	defer cancel()
	serverErr := make(chan error, 1)
	go func() { serverErr <- server.HandshakeContext(ctx) }()
	cerr := client.HandshakeContext(ctx)
	if cerr != nil {
		// Unblock the server now rather than at the timeout.
		cancel()
	}
	serr := <-serverErr
	require.NoError(t, errors.Join(cerr, serr), "DTLS handshake")
	return client, server
}

// dtlsConns returns a DTLS client and server on two UDP sockets of
// 127.0.0.1, addressed to each other, before any handshake. Each pins the
// other's self-signed certificate by fingerprint; the server requires a
// client certificate, as WebRTC and SIP DTLS-SRTP do.
func dtlsConns(t *testing.T, clientProfiles, serverProfiles []dtls.SRTPProtectionProfile) (client, server *dtls.Conn) {
	t.Helper()
	return dtlsConnsMKI(t, clientProfiles, serverProfiles, nil, nil)
}

// dtlsConnsMKI is dtlsConns with an MKI configured on each end (nil for
// none).
func dtlsConnsMKI(t *testing.T, clientProfiles, serverProfiles []dtls.SRTPProtectionProfile, clientMKI, serverMKI []byte) (client, server *dtls.Conn) {
	t.Helper()
	cpc := listenLoopback(t)
	spc := listenLoopback(t)
	ccert, cfp := selfSigned(t, "client")
	scert, sfp := selfSigned(t, "server")

	copts := []dtls.ClientOption{
		dtls.WithCertificates(ccert),
		dtls.WithInsecureSkipVerify(true), // self-signed: checked by fingerprint below
		dtls.WithVerifyPeerCertificate(pinFingerprint(sfp)),
	}
	if clientProfiles != nil {
		copts = append(copts, dtls.WithSRTPProtectionProfiles(clientProfiles...))
	}
	if clientMKI != nil {
		copts = append(copts, dtls.WithSRTPMasterKeyIdentifier(clientMKI))
	}
	sopts := []dtls.ServerOption{
		dtls.WithCertificates(scert),
		dtls.WithClientAuth(dtls.RequireAnyClientCert),
		dtls.WithVerifyPeerCertificate(pinFingerprint(cfp)),
	}
	if serverProfiles != nil {
		sopts = append(sopts, dtls.WithSRTPProtectionProfiles(serverProfiles...))
	}
	if serverMKI != nil {
		sopts = append(sopts, dtls.WithSRTPMasterKeyIdentifier(serverMKI))
	}

	client, err := dtls.ClientWithOptions(cpc, spc.LocalAddr(), copts...)
	require.NoError(t, err)
	t.Cleanup(func() { client.Close() })
	server, err = dtls.ServerWithOptions(spc, cpc.LocalAddr(), sopts...)
	require.NoError(t, err)
	t.Cleanup(func() { server.Close() })
	return client, server
}

func listenLoopback(t *testing.T) *net.UDPConn {
	t.Helper()
	c, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	require.NoError(t, err)
	t.Cleanup(func() { c.Close() }) // the DTLS conn closes it too; a second close is harmless
	return c
}

// selfSigned returns a fresh self-signed ECDSA P-256 certificate and the
// SHA-256 fingerprint of its DER.
func selfSigned(t *testing.T, cn string) (tls.Certificate, [sha256.Size]byte) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	require.NoError(t, err)
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 128))
	require.NoError(t, err)
	now := time.Now()
	tmpl := &x509.Certificate{
		SerialNumber: serial,
		Subject:      pkix.Name{CommonName: "srtpkeys test " + cn},
		NotBefore:    now.Add(-time.Hour),
		NotAfter:     now.Add(time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	require.NoError(t, err)
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}, sha256.Sum256(der)
}

// pinFingerprint accepts only a peer whose certificate has fingerprint fp.
func pinFingerprint(fp [sha256.Size]byte) func([][]byte, [][]*x509.Certificate) error {
	return func(raw [][]byte, _ [][]*x509.Certificate) error {
		if len(raw) == 0 {
			return errors.New("no peer certificate")
		}
		got := sha256.Sum256(raw[0])
		if !bytes.Equal(got[:], fp[:]) {
			return errors.New("peer certificate fingerprint mismatch")
		}
		return nil
	}
}
