package main

// Media: the SDP the phones and the call controller exchange, and the RTP
// or SRTP packets the phones then send each other over UDP on 127.0.0.1.
//
// A secure phone offers SDES keys (srtpkeys.NewOffer) in RTP/SAVP with the
// suites CUCM offers between SIP devices; the answering phone picks one
// (srtpkeys.Answer) and adds its own key, so that each direction has its
// own. Both then build pion/srtp contexts from the srtpkeys.Session, one
// to send and one to receive, and check that every packet the peer sent
// decrypts to what was sent. A non-secure phone offers and answers RTP/AVP
// without keys, and a secure phone whose peer answers that way falls back
// to RTP (best effort, as CUCM does): such a call shows no lock.

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/pion/rtp"
	"github.com/pion/srtp/v3"

	"github.com/ucsec/ucsec/srtpkeys"
)

// callPackets is how many packets each phone of a call sends: enough to
// show that every one decrypts, few enough for 100 calls on two cores.
const callPackets = 20

// packetInterval paces the packets a little, as a real stream would (20 ms
// there), so that a busy receiver's socket buffer never overflows.
const packetInterval = 2 * time.Millisecond

// mediaTimeout bounds the wait for the last packet of a stream.
const mediaTimeout = 5 * time.Second

// offerSuites are the suites a secure phone offers, in CUCM's order of
// preference between SIP devices: AEAD first, then the AES-CM suites.
var offerSuites = []srtpkeys.Suite{
	srtpkeys.AEADAES256GCM, srtpkeys.AEADAES128GCM,
	srtpkeys.AES128CM_SHA1_80, srtpkeys.AES128CM_SHA1_32,
}

// Media profiles of an m= line.
const (
	profileRTP  = "RTP/AVP"
	profileSRTP = "RTP/SAVP"
)

// sdpMedia is what this simulation reads from and writes to an SDP body:
// one audio stream (PCMU), its address and port, its profile and, for
// SRTP, the a=crypto attributes (the whole lines, with the real keys).
type sdpMedia struct {
	Addr    netip.AddrPort
	Profile string   // profileRTP or profileSRTP
	Crypto  []string // "a=crypto:…" lines; they hold keys: never log them
}

// secure reports whether the stream is keyed with SDES.
func (m *sdpMedia) secure() bool { return m.Profile == profileSRTP && len(m.Crypto) > 0 }

// marshal writes m as an SDP body. sessionID is the o= line's session id.
func (m *sdpMedia) marshal(sessionID uint64) []byte {
	var b bytes.Buffer
	ip := m.Addr.Addr().String()
	fmt.Fprintf(&b, "v=0\r\no=- %d 1 IN IP4 %s\r\ns=phonesim\r\nc=IN IP4 %s\r\nt=0 0\r\n", sessionID, ip, ip)
	fmt.Fprintf(&b, "m=audio %d %s 0\r\na=rtpmap:0 PCMU/8000\r\na=ptime:20\r\n", m.Addr.Port(), m.Profile)
	for _, c := range m.Crypto {
		b.WriteString(c)
		b.WriteString("\r\n")
	}
	b.WriteString("a=sendrecv\r\n")
	return b.Bytes()
}

// errSDP is wrapped by the errors of parseSDP.
var errSDP = errors.New("unusable SDP")

// parseSDP reads the first audio stream of an SDP body: the c= address
// (media level, else session level), the m= port and profile, and the
// stream's a=crypto lines. It accepts only what this simulation writes and
// its close variants: IPv4 addresses, one audio stream with a port.
func parseSDP(body []byte) (*sdpMedia, error) {
	if len(body) == 0 {
		return nil, fmt.Errorf("%w: no body", errSDP)
	}
	if len(body) > 8<<10 {
		return nil, fmt.Errorf("%w: body too long", errSDP)
	}
	var (
		m          sdpMedia
		sessAddr   netip.Addr
		mediaAddr  netip.Addr
		port       int
		inAudio    bool
		audioFound bool
	)
	for line := range strings.Lines(string(body)) {
		line = strings.TrimRight(line, "\r\n")
		if len(line) < 2 || line[1] != '=' {
			continue
		}
		switch {
		case strings.HasPrefix(line, "m="):
			if audioFound { // only the first audio stream counts
				inAudio = false
				continue
			}
			f := strings.Fields(line[2:])
			if len(f) < 3 || f[0] != "audio" {
				inAudio = false
				continue
			}
			p, err := strconv.Atoi(f[1])
			if err != nil || p < 0 || p > 65535 {
				return nil, fmt.Errorf("%w: bad port in m= line", errSDP)
			}
			port, m.Profile, inAudio, audioFound = p, f[2], true, true
		case strings.HasPrefix(line, "c="):
			f := strings.Fields(line[2:])
			if len(f) != 3 || f[0] != "IN" || f[1] != "IP4" {
				return nil, fmt.Errorf("%w: unsupported c= line", errSDP)
			}
			a, err := netip.ParseAddr(f[2])
			if err != nil || !a.Is4() {
				return nil, fmt.Errorf("%w: bad address in c= line", errSDP)
			}
			if inAudio {
				mediaAddr = a
			} else if !audioFound {
				sessAddr = a
			}
		case inAudio && strings.HasPrefix(line, "a=crypto:"):
			m.Crypto = append(m.Crypto, line)
		}
	}
	if !audioFound {
		return nil, fmt.Errorf("%w: no audio stream", errSDP)
	}
	addr := mediaAddr
	if !addr.IsValid() {
		addr = sessAddr
	}
	if !addr.IsValid() {
		return nil, fmt.Errorf("%w: no connection address", errSDP)
	}
	m.Addr = netip.AddrPortFrom(addr, uint16(port))
	return &m, nil
}

// A mediaLeg is one phone's end of a call's audio: its UDP socket, the
// peer's address from the SDP, and, for SRTP, the keys of both directions.
type mediaLeg struct {
	conn    *net.UDPConn
	remote  netip.AddrPort
	session *srtpkeys.Session // nil for RTP
}

// openMedia opens a phone's RTP socket on 127.0.0.1, port chosen by the
// system.
func openMedia() (*net.UDPConn, error) {
	return net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
}

// localAddr is the address to put in the SDP.
func localAddr(c *net.UDPConn) netip.AddrPort {
	return c.LocalAddr().(*net.UDPAddr).AddrPort()
}

// A streamResult counts one direction of a call's media.
type streamResult struct {
	Sent     int `json:"sent"`     // packets the sender sent
	Received int `json:"received"` // packets that decrypted (SRTP) or parsed (RTP) to exactly what was sent
	Bad      int `json:"bad"`      // packets that failed authentication or differed
}

// ok reports whether every packet sent arrived intact.
func (s streamResult) ok(n int) bool { return s.Sent == n && s.Received == n && s.Bad == 0 }

// exchangeMedia sends n packets from a to b and n from b to a at the same
// time, and checks each on arrival. Every packet carries a payload drawn
// at random for its stream and sequence number, so that the receiver
// knows exactly what must come out of decryption.
func exchangeMedia(ctx context.Context, a, b *mediaLeg, n int) (aToB, bToA streamResult, err error) {
	if (a.session == nil) != (b.session == nil) {
		return aToB, bToA, errors.New("media: one end keyed SRTP and the other not")
	}
	ab, err := newStream(a, b, n)
	if err != nil {
		return aToB, bToA, err
	}
	ba, err := newStream(b, a, n)
	if err != nil {
		return aToB, bToA, err
	}
	ctx, cancel := context.WithTimeout(ctx, mediaTimeout)
	defer cancel()
	var wg sync.WaitGroup
	errs := make([]error, 4)
	wg.Go(func() { aToB.Sent, errs[0] = ab.send(ctx) })
	wg.Go(func() { bToA.Sent, errs[1] = ba.send(ctx) })
	wg.Go(func() { aToB.Received, aToB.Bad, errs[2] = ab.receive(ctx) })
	wg.Go(func() { bToA.Received, bToA.Bad, errs[3] = ba.receive(ctx) })
	wg.Wait()
	return aToB, bToA, errors.Join(errs...)
}

// A stream is one direction of a call's media: what the sender sends and
// what the receiver must get.
type stream struct {
	from, to    *mediaLeg
	n           int
	ssrc        uint32
	seq0        uint16
	ts0         uint32
	payloads    [][]byte
	sendContext *srtp.Context // nil for RTP
	receiveCtx  *srtp.Context // nil for RTP
}

// pcmuFrame is the payload of a packet: 20 ms of PCMU.
const pcmuFrame = 160

func newStream(from, to *mediaLeg, n int) (*stream, error) {
	s := &stream{from: from, to: to, n: n}
	var hdr [10]byte
	if _, err := rand.Read(hdr[:]); err != nil {
		return nil, err
	}
	s.ssrc = binary.BigEndian.Uint32(hdr[0:])
	s.seq0 = binary.BigEndian.Uint16(hdr[4:]) & 0x7fff // room before the 16-bit wrap
	s.ts0 = binary.BigEndian.Uint32(hdr[6:])
	s.payloads = make([][]byte, n)
	buf := make([]byte, n*pcmuFrame)
	if _, err := rand.Read(buf); err != nil {
		return nil, err
	}
	for i := range s.payloads {
		s.payloads[i] = buf[i*pcmuFrame : (i+1)*pcmuFrame : (i+1)*pcmuFrame]
	}
	if from.session != nil {
		var err error
		if s.sendContext, err = from.session.SendContext(); err != nil {
			return nil, fmt.Errorf("media: send context: %w", err)
		}
		if s.receiveCtx, err = to.session.ReceiveContext(); err != nil {
			return nil, fmt.Errorf("media: receive context: %w", err)
		}
	}
	return s, nil
}

// send sends the stream's packets from its sender's socket to the address
// the receiver gave in its SDP.
func (s *stream) send(ctx context.Context) (int, error) {
	dst := net.UDPAddrFromAddrPort(s.from.remote)
	sent := 0
	out := make([]byte, 0, 12+pcmuFrame+32)
	for i := range s.n {
		p := rtp.Packet{
			Header: rtp.Header{Version: 2, PayloadType: 0, Marker: i == 0,
				SequenceNumber: s.seq0 + uint16(i), Timestamp: s.ts0 + uint32(i*pcmuFrame), SSRC: s.ssrc},
			Payload: s.payloads[i],
		}
		pkt, err := p.Marshal()
		if err != nil {
			return sent, err
		}
		if s.sendContext != nil {
			if pkt, err = s.sendContext.EncryptRTP(out[:0], pkt, &p.Header); err != nil {
				return sent, fmt.Errorf("media: encrypt: %w", err)
			}
		}
		if _, err := s.from.conn.WriteToUDP(pkt, dst); err != nil {
			return sent, fmt.Errorf("media: send: %w", err)
		}
		sent++
		if packetInterval > 0 && i < s.n-1 {
			select {
			case <-ctx.Done():
				return sent, ctx.Err()
			case <-time.After(packetInterval):
			}
		}
	}
	return sent, nil
}

// receive reads the stream's packets on the receiver's socket until all
// have arrived or ctx is done, and checks each: it must come from the
// sender's address, decrypt (SRTP: authenticate, and not be a replay),
// and carry the payload sent under its sequence number.
func (s *stream) receive(ctx context.Context) (ok, bad int, err error) {
	conn := s.to.conn
	if d, has := ctx.Deadline(); has {
		_ = conn.SetReadDeadline(d)
	}
	seen := make([]bool, s.n)
	buf := make([]byte, 1500)
	plain := make([]byte, 0, 1500)
	want := s.to.remote // symmetric RTP: the peer sends from the address it gave
	for ok+bad < s.n {
		k, from, rerr := conn.ReadFromUDPAddrPort(buf)
		if rerr != nil {
			return ok, bad, fmt.Errorf("media: %d of %d packets arrived: %w", ok+bad, s.n, rerr)
		}
		if from != want {
			continue // not from the peer: ignore, as a phone's RTP stack does
		}
		pkt := buf[:k]
		if s.receiveCtx != nil {
			var derr error
			if pkt, derr = s.receiveCtx.DecryptRTP(plain[:0], pkt, nil); derr != nil {
				bad++
				continue
			}
		}
		var p rtp.Packet
		if err := p.Unmarshal(pkt); err != nil || p.SSRC != s.ssrc {
			bad++
			continue
		}
		i := int(p.SequenceNumber - s.seq0)
		if i < 0 || i >= s.n || seen[i] || !bytes.Equal(p.Payload, s.payloads[i]) {
			bad++
			continue
		}
		seen[i] = true
		ok++
	}
	return ok, bad, nil
}
