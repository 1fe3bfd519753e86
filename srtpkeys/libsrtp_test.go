package srtpkeys_test

// Interop with an SRTP implementation no one here wrote: libsrtp 2, driven
// through Debian's python3-pylibsrtp by testdata/libsrtp_peer.py. For each
// suite both support, pion (keyed by this package) is endpoint A and
// libsrtp endpoint B of a call keyed by GenerateCallKeys:
//
//   - A→B: RTP protected by a NewContext context, unprotected by libsrtp,
//     with sequence numbers 65530…65541 so that the rollover counter
//     goes from 0 to 1 mid-stream, then SRTCP.
//   - B→A: the same, protected by libsrtp and unprotected by a NewContext
//     context; and a second pion context with B's key protects the same
//     plaintexts to the very same bytes (the transforms are deterministic).
//   - Replays are refused on both ends, and libsrtp refuses a packet with
//     a flipped bit.
//
// Payloads are compared byte for byte. libsrtp's first SRTCP packet
// carries index 1, as does pion's (it counts from SetIndex's "last used"
// index 0), which the byte comparison also checks.

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/pion/rtcp"
	"github.com/pion/rtp"
	"github.com/pion/srtp/v3"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/ucsec/ucsec/internal/interop"
	"github.com/ucsec/ucsec/srtpkeys"
)

// libsrtpTimeout bounds one libsrtp peer process, start to exit.
const libsrtpTimeout = 30 * time.Second

// libsrtpProfiles maps the suites libsrtp (through pylibsrtp) runs to its
// profile names. pylibsrtp exposes no AES-256-CM profile.
var libsrtpProfiles = []struct {
	suite   srtpkeys.Suite
	profile string
}{
	{srtpkeys.AES128CM_SHA1_80, "AES128_CM_SHA1_80"},
	{srtpkeys.AES128CM_SHA1_32, "AES128_CM_SHA1_32"},
	{srtpkeys.AEADAES128GCM, "AEAD_AES_128_GCM"},
	{srtpkeys.AEADAES256GCM, "AEAD_AES_256_GCM"},
}

const (
	ssrcA = 0x1a2b3c4d // pion's SSRC
	ssrcB = 0xcafebabe // libsrtp's SSRC
	seq0  = 65530      // first sequence number: the ROC wraps after 6 packets
	nRTP  = 12
	nRTCP = 3
)

func TestLibsrtpInterop(t *testing.T) {
	python := interop.PyLibSRTP(t)
	for _, p := range libsrtpProfiles {
		t.Run(p.suite.String(), func(t *testing.T) {
			t.Parallel()
			start := time.Now()
			keys, err := srtpkeys.GenerateCallKeys(nil, p.suite)
			require.NoError(t, err)
			aSend, aRecv := keys.A()
			bSend, bRecv := keys.B()

			libRecv := startLibsrtp(t, python, p.profile, "unprotect", bRecv)
			libSend := startLibsrtp(t, python, p.profile, "protect", bSend)
			pionSend, err := srtpkeys.NewContext(aSend, nil)
			require.NoError(t, err)
			pionRecv, err := srtpkeys.NewContext(aRecv, nil)
			require.NoError(t, err)
			pionRef, err := srtpkeys.NewContext(bSend, nil) // B's key in pion, for the byte comparison
			require.NoError(t, err)

			t.Run("RTP pion to libsrtp", func(t *testing.T) {
				var last []byte
				for i := range nRTP {
					plain := rtpPacket(t, ssrcA, seqAt(i))
					enc, err := pionSend.EncryptRTP(nil, plain, nil)
					require.NoError(t, err)
					require.Len(t, enc, len(plain)+p.suite.AuthTagLen())
					require.NotEqual(t, plain[12:], enc[12:len(plain)], "payload not encrypted")
					got, err := libRecv.do(t, "rtp", enc)
					require.NoError(t, err, "libsrtp refused packet %d (seq %d)", i, seqAt(i))
					require.Equal(t, plain, got, "packet %d", i)
					last = enc
				}
				roc, ok := pionSend.ROC(ssrcA)
				require.True(t, ok)
				assert.Equal(t, uint32(1), roc, "pion's ROC after the wrap")

				_, err := libRecv.do(t, "rtp", last)
				assert.ErrorContains(t, err, "replay", "libsrtp accepted a replayed packet")

				plain := rtpPacket(t, ssrcA, seqAt(nRTP))
				enc, err := pionSend.EncryptRTP(nil, plain, nil)
				require.NoError(t, err)
				bad := bytes.Clone(enc)
				bad[14] ^= 1
				_, err = libRecv.do(t, "rtp", bad)
				assert.ErrorContains(t, err, "authentication failure", "libsrtp accepted a changed packet")
				got, err := libRecv.do(t, "rtp", enc)
				require.NoError(t, err, "libsrtp refused the genuine packet after a forged one")
				assert.Equal(t, plain, got)
			})

			t.Run("RTP libsrtp to pion", func(t *testing.T) {
				var last []byte
				for i := range nRTP {
					plain := rtpPacket(t, ssrcB, seqAt(i))
					enc, err := libSend.do(t, "rtp", plain)
					require.NoError(t, err, "libsrtp could not protect packet %d", i)
					ref, err := pionRef.EncryptRTP(nil, plain, nil)
					require.NoError(t, err)
					require.Equal(t, ref, enc, "libsrtp and pion protect packet %d (seq %d) differently", i, seqAt(i))
					got, err := pionRecv.DecryptRTP(nil, enc, nil)
					require.NoError(t, err, "pion refused packet %d (seq %d)", i, seqAt(i))
					require.Equal(t, plain, got, "packet %d", i)
					last = enc
				}
				roc, ok := pionRecv.ROC(ssrcB)
				require.True(t, ok)
				assert.Equal(t, uint32(1), roc, "pion's ROC after the wrap")

				_, err := pionRecv.DecryptRTP(nil, last, nil)
				assertReplay(t, err)
			})

			t.Run("SRTCP pion to libsrtp", func(t *testing.T) {
				var first []byte
				for i := range nRTCP {
					plain := rtcpPacket(t, ssrcA, i)
					enc, err := pionSend.EncryptRTCP(nil, plain, nil)
					require.NoError(t, err)
					assert.Equal(t, uint32(i+1), srtcpIndex(t, p.suite, enc), "SRTCP index of packet %d", i)
					got, err := libRecv.do(t, "rtcp", enc)
					require.NoError(t, err, "libsrtp refused SRTCP packet %d", i)
					require.Equal(t, plain, got, "SRTCP packet %d", i)
					if i == 0 {
						first = enc
					}
				}
				_, err := libRecv.do(t, "rtcp", first)
				assert.ErrorContains(t, err, "replay", "libsrtp accepted a replayed SRTCP packet")
			})

			t.Run("SRTCP libsrtp to pion", func(t *testing.T) {
				var first []byte
				for i := range nRTCP {
					plain := rtcpPacket(t, ssrcB, i)
					enc, err := libSend.do(t, "rtcp", plain)
					require.NoError(t, err, "libsrtp could not protect SRTCP packet %d", i)
					assert.Equal(t, uint32(i+1), srtcpIndex(t, p.suite, enc), "libsrtp's SRTCP index of packet %d", i)
					ref, err := pionRef.EncryptRTCP(nil, plain, nil)
					require.NoError(t, err)
					require.Equal(t, ref, enc, "libsrtp and pion protect SRTCP packet %d differently", i)
					got, err := pionRecv.DecryptRTCP(nil, enc, nil)
					require.NoError(t, err, "pion refused SRTCP packet %d", i)
					require.Equal(t, plain, got, "SRTCP packet %d", i)
					if i == 0 {
						first = enc
					}
				}
				_, err := pionRecv.DecryptRTCP(nil, first, nil)
				assertReplay(t, err)
			})
			t.Logf("%s: %v", p.suite, time.Since(start).Round(time.Millisecond))
		})
	}
}

// TestLibsrtpRefusesWrongKey checks that the interop above is not vacuous:
// libsrtp refuses what pion protected under the other direction's key.
func TestLibsrtpRefusesWrongKey(t *testing.T) {
	python := interop.PyLibSRTP(t)
	keys, err := srtpkeys.GenerateCallKeys(nil, srtpkeys.AES128CM_SHA1_80)
	require.NoError(t, err)
	lib := startLibsrtp(t, python, "AES128_CM_SHA1_80", "unprotect", keys.BtoA)
	send, err := srtpkeys.NewContext(keys.AtoB, nil)
	require.NoError(t, err)
	enc, err := send.EncryptRTP(nil, rtpPacket(t, ssrcA, 1), nil)
	require.NoError(t, err)
	_, err = lib.do(t, "rtp", enc)
	assert.ErrorContains(t, err, "authentication failure")
}

// assertReplay checks that pion refused a packet as a replay, not for
// another reason.
func assertReplay(t *testing.T, err error) {
	t.Helper()
	require.Error(t, err, "pion accepted a replayed packet")
	assert.NotErrorIs(t, err, srtp.ErrFailedToVerifyAuthTag)
	assert.ErrorContains(t, err, "duplicated")
}

// rtpPacket returns an RTP packet with 160 random payload bytes (20 ms of
// G.711).
func rtpPacket(t *testing.T, ssrc uint32, seq uint16) []byte {
	t.Helper()
	p := rtp.Packet{
		Header: rtp.Header{
			Version:        2,
			Marker:         seq == seq0,
			PayloadType:    0,
			SequenceNumber: seq,
			Timestamp:      uint32(seq) * 160,
			SSRC:           ssrc,
		},
		Payload: make([]byte, 160),
	}
	rand.Read(p.Payload)
	b, err := p.Marshal()
	require.NoError(t, err)
	return b
}

// rtcpPacket returns a compound RTCP packet: a sender report and a CNAME.
func rtcpPacket(t *testing.T, ssrc uint32, i int) []byte {
	t.Helper()
	b, err := rtcp.Marshal([]rtcp.Packet{
		&rtcp.SenderReport{
			SSRC:        ssrc,
			NTPTime:     0xe9a1b2c3_00000000 + uint64(i)<<32,
			RTPTime:     uint32(i) * 8000,
			PacketCount: uint32(i) * 50,
			OctetCount:  uint32(i) * 8000,
		},
		&rtcp.SourceDescription{Chunks: []rtcp.SourceDescriptionChunk{{
			Source: ssrc,
			Items:  []rtcp.SourceDescriptionItem{{Type: rtcp.SDESCNAME, Text: fmt.Sprintf("peer-%08x@127.0.0.1", ssrc)}},
		}}},
	})
	require.NoError(t, err)
	return b
}

// srtcpIndex returns the 31-bit SRTCP index of a protected packet and
// checks its E flag: the E‖index word sits before the authentication tag
// for the AES-CM suites and last for AEAD (RFC 3711 §3.4, RFC 7714 §17).
func srtcpIndex(t *testing.T, suite srtpkeys.Suite, pkt []byte) uint32 {
	t.Helper()
	end := len(pkt)
	if !suite.AEAD() {
		end -= suite.RTCPAuthTagLen()
	}
	require.GreaterOrEqual(t, end, 12)
	w := binary.BigEndian.Uint32(pkt[end-4 : end])
	assert.NotZero(t, w&0x80000000, "E flag not set: SRTCP packet not encrypted")
	return w &^ 0x80000000
}

// libsrtpPeer is a running testdata/libsrtp_peer.py: one direction of one
// stream in libsrtp.
type libsrtpPeer struct {
	name   string
	cmd    *exec.Cmd
	stdin  io.WriteCloser
	out    *bufio.Scanner
	stderr bytes.Buffer
	done   bool
	err    error
}

// startLibsrtp starts a libsrtp peer that protects or unprotects
// ("protect", "unprotect") with key k. The process is bounded by
// libsrtpTimeout and ends with the test.
func startLibsrtp(t *testing.T, python, profile, direction string, k srtpkeys.MasterKey) *libsrtpPeer {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), libsrtpTimeout)
	p := &libsrtpPeer{name: "libsrtp " + profile + " " + direction}
	p.cmd = exec.CommandContext(ctx, python, filepath.Join("testdata", "libsrtp_peer.py"), profile, direction)
	p.cmd.Stderr = &p.stderr
	p.cmd.WaitDelay = 2 * time.Second
	var err error
	p.stdin, err = p.cmd.StdinPipe()
	require.NoError(t, err)
	stdout, err := p.cmd.StdoutPipe()
	require.NoError(t, err)
	p.out = bufio.NewScanner(stdout)
	p.out.Buffer(make([]byte, 0, 8192), 64*1024)
	if err := p.cmd.Start(); err != nil {
		cancel()
		t.Fatalf("%s: %v", p.name, err)
	}
	t.Cleanup(func() {
		defer cancel()
		if err := p.wait(); err != nil && !t.Failed() {
			t.Errorf("%s: %v\n%s", p.name, err, p.stderr.String())
		}
	})
	// The key goes on stdin, not the command line, so ps does not show it.
	if _, err := fmt.Fprintf(p.stdin, "%x\n", k.KeySalt()); err != nil {
		p.fail(t, err)
	}
	return p
}

// do sends one packet to the peer ("rtp" or "rtcp") and returns what
// libsrtp made of it, or an error with libsrtp's reason if it refused it.
// A peer that does not answer fails the test t (the caller's, which may be
// a subtest of the one that started the peer).
func (p *libsrtpPeer) do(t testing.TB, kind string, pkt []byte) ([]byte, error) {
	t.Helper()
	if _, err := fmt.Fprintf(p.stdin, "%s %x\n", kind, pkt); err != nil {
		p.fail(t, err)
	}
	if !p.out.Scan() {
		p.fail(t, p.out.Err())
	}
	status, data, _ := strings.Cut(p.out.Text(), " ")
	switch status {
	case "ok":
		b, err := hex.DecodeString(data)
		if err != nil {
			p.fail(t, err)
		}
		return b, nil
	case "err":
		return nil, errors.New("libsrtp: " + data)
	}
	p.fail(t, fmt.Errorf("unexpected answer %q", p.out.Text()))
	return nil, nil
}

// fail ends the test with the peer's exit status and standard error.
func (p *libsrtpPeer) fail(t testing.TB, err error) {
	t.Helper()
	werr := p.wait()
	t.Fatalf("%s: %v (exit: %v)\n%s", p.name, err, werr, p.stderr.String())
}

// wait closes the peer's input, which ends it, and waits for it to exit.
func (p *libsrtpPeer) wait() error {
	if !p.done {
		p.done = true
		p.stdin.Close()
		p.err = p.cmd.Wait()
	}
	return p.err
}

// seqAt returns the sequence number of the i-th packet from seq0,
// wrapping past 65535.
func seqAt(i int) uint16 { return uint16(seq0 + i) }
