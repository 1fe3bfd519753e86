package tftpd

import (
	"bytes"
	"context"
	"crypto"
	"encoding/binary"
	"fmt"
	"net"
	"net/netip"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pin/tftp/v3"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/ucsec/ucsec/internal/testnet"
)

// serveTFTP runs srv on a UDP socket of host (127.0.0.1 if "") until the
// test ends, and returns its address and a function that stops it and
// returns ServeTFTP's result.
func serveTFTP(t testing.TB, srv *Server, host string) (addr string, stop func() error) {
	t.Helper()
	if host == "" {
		host = "127.0.0.1"
	}
	c, err := net.ListenUDP("udp", net.UDPAddrFromAddrPort(netip.AddrPortFrom(netip.MustParseAddr(host), 0)))
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.ServeTFTP(ctx, c) }()
	var once sync.Once
	var result error
	stop = func() error {
		once.Do(func() {
			cancel()
			select {
			case result = <-done:
			case <-time.After(testnet.Patience(t)):
				result = fmt.Errorf("ServeTFTP did not return")
			}
		})
		return result
	}
	t.Cleanup(func() {
		if err := stop(); err != nil {
			t.Errorf("ServeTFTP: %v", err)
		}
	})
	return c.LocalAddr().String(), stop
}

// pinGet fetches name with pin/tftp's client.
func pinGet(t testing.TB, addr, name string, blksize int, tsize bool) ([]byte, int64, error) {
	t.Helper()
	c, err := tftp.NewClient(addr)
	require.NoError(t, err)
	c.SetTimeout(2 * time.Second)
	c.SetRetries(3)
	if blksize > 0 {
		c.SetBlockSize(blksize)
	}
	c.RequestTSize(tsize)
	wt, err := c.Receive(name, "octet")
	if err != nil {
		return nil, 0, err
	}
	size, _ := wt.(tftp.IncomingTransfer).Size()
	var b bytes.Buffer
	_, err = wt.WriteTo(&b)
	return b.Bytes(), size, err
}

func TestTFTPPinClient(t *testing.T) {
	fx := newFixture(t)
	addr, _ := serveTFTP(t, fx.srv, "")
	big := bytes.Repeat([]byte("0123456789abcdef"), 1<<16) // 1 MiB
	fx.write(t, "big.bin", big)

	for _, tc := range []struct {
		name    string
		blksize int
		tsize   bool
	}{
		{"RingList.xml", 0, false},
		{"RingList.xml.sgn", 0, true},
		{testDevice + ".cnf.xml.sgn", 1428, true},
		{"English_United_States/g3-tones.xml.sgn", 512, true},
		{"big.bin", 1428, true},
		{"big.bin.sgn", 8192, true},
	} {
		t.Run(fmt.Sprintf("%s/%d", tc.name, tc.blksize), func(t *testing.T) {
			got, size, err := pinGet(t, addr, tc.name, tc.blksize, tc.tsize)
			require.NoError(t, err)
			if tc.tsize {
				assert.Equal(t, int64(len(got)), size, "tsize")
			}
			if src, ok := strings.CutSuffix(tc.name, ".sgn"); ok {
				assert.Equal(t, fx.read(t, src), verifySigned(t, got, tc.name, fx.cert, crypto.SHA1))
			} else {
				assert.Equal(t, fx.read(t, tc.name), got)
			}
		})
	}
	_, _, err := pinGet(t, addr, "missing.xml", 0, false)
	assert.ErrorContains(t, err, "File not found")

	rec := fx.record(t, "SEP001122334455.cnf.xml.sgn")
	assert.Contains(t, rec, "file=SEP001122334455.cnf.xml.sgn result=ok bytes=")
	assert.Contains(t, rec, "signed=true encrypted=false cached=false")
	assert.Contains(t, rec, `blksize=1428 options="blksize=1428 tsize=`)
	assert.Contains(t, fx.record(t, "missing.xml"), "file=missing.xml result=\"not found\"")
	assert.Eventually(t, func() bool { return len(fx.records()) == 7 }, testnet.Patience(t), 10*time.Millisecond)
}

// rawClient is a TFTP client that sends what a test tells it to.
type rawClient struct {
	t      testing.TB
	c      *net.UDPConn
	server *net.UDPAddr
	peer   *net.UDPAddr // the transfer's socket, once it answered
}

func newRawClient(t testing.TB, addr, from string) *rawClient {
	t.Helper()
	if from == "" {
		from = "127.0.0.1"
	}
	c, err := net.ListenUDP("udp", net.UDPAddrFromAddrPort(netip.AddrPortFrom(netip.MustParseAddr(from), 0)))
	require.NoError(t, err)
	t.Cleanup(func() { c.Close() })
	s, err := net.ResolveUDPAddr("udp", addr)
	require.NoError(t, err)
	return &rawClient{t: t, c: c, server: s}
}

// rrq builds a read request.
func rrq(name, mode string, opts ...string) []byte {
	b := binary.BigEndian.AppendUint16(nil, opRRQ)
	for _, f := range append([]string{name, mode}, opts...) {
		b = append(append(b, f...), 0)
	}
	return b
}

func (r *rawClient) send(p []byte) {
	r.t.Helper()
	_, err := r.c.WriteToUDP(p, r.server)
	require.NoError(r.t, err)
}

func (r *rawClient) sendPeer(p []byte) {
	r.t.Helper()
	require.NotNil(r.t, r.peer)
	_, err := r.c.WriteToUDP(p, r.peer)
	require.NoError(r.t, err)
}

func ack(block uint16) []byte {
	return binary.BigEndian.AppendUint16(binary.BigEndian.AppendUint16(nil, opACK), block)
}

// recv returns the next packet, or nil after wait.
func (r *rawClient) recv(wait time.Duration) []byte {
	r.t.Helper()
	buf := make([]byte, 70000)
	r.c.SetReadDeadline(time.Now().Add(wait))
	n, from, err := r.c.ReadFromUDP(buf)
	if err != nil {
		return nil
	}
	if r.peer == nil && from.Port != r.server.Port {
		r.peer = from
	}
	return buf[:n]
}

// expectError waits for an ERROR packet with code and returns its message.
func (r *rawClient) expectError(code uint16) string {
	r.t.Helper()
	p := r.recv(testnet.Patience(r.t))
	require.NotNil(r.t, p, "no answer")
	require.GreaterOrEqual(r.t, len(p), 5, "%q", p)
	require.Equal(r.t, uint16(opERROR), binary.BigEndian.Uint16(p), "%q", p)
	assert.Equal(r.t, code, binary.BigEndian.Uint16(p[2:]), "%q", p)
	return string(trimNUL(p[4:]))
}

// get runs a whole transfer after the request was sent, acknowledging
// each block, and returns the OACK's options and the data.
func (r *rawClient) get(blksize int) (oack map[string]string, data []byte) {
	return r.getFrom(blksize, 0)
}

// getFrom is get after block was received and acknowledged.
func (r *rawClient) getFrom(blksize int, block uint16) (oack map[string]string, data []byte) {
	r.t.Helper()
	wait := testnet.Patience(r.t)
	for {
		p := r.recv(wait)
		require.NotNil(r.t, p, "no answer")
		switch binary.BigEndian.Uint16(p) {
		case opOACK:
			oack = map[string]string{}
			f := bytes.Split(bytes.TrimSuffix(p[2:], []byte{0}), []byte{0})
			for i := 0; i+1 < len(f); i += 2 {
				oack[string(f[i])] = string(f[i+1])
			}
			r.sendPeer(ack(0))
		case opDATA:
			b := binary.BigEndian.Uint16(p[2:])
			if b != block+1 {
				continue
			}
			block = b
			data = append(data, p[4:]...)
			r.sendPeer(ack(b))
			if len(p)-4 < blksize {
				return oack, data
			}
		default:
			r.t.Fatalf("unexpected packet %q", p)
		}
	}
}

func TestTFTPRefusals(t *testing.T) {
	fx := newFixture(t)
	addr, _ := serveTFTP(t, fx.srv, "")

	c := newRawClient(t, addr, "")
	wrq := rrq("x", "octet")
	wrq[1] = opWRQ
	c.send(wrq)
	assert.Contains(t, c.expectError(errCodeAccess), "read-only")

	for _, p := range [][]byte{
		{0, 9, 'x', 0, 'o', 0}, // unknown opcode
		{0, 1, 'x', 0},         // no mode
		{0, 1, 'x'},            // unterminated name
		{0, 1, 0, 'o', 0},      // empty name
		rrq("RingList.xml", "mail"),
		rrq("RingList.xml", "binary"),
	} {
		c := newRawClient(t, addr, "")
		c.send(p)
		c.expectError(errCodeIllegal)
	}
	// stray transfer packets and runts get no answer
	for _, p := range [][]byte{ack(1), {0, 3, 0, 1, 'x'}, {0, 5, 0, 0, 0}, {0}, {}} {
		c := newRawClient(t, addr, "")
		c.send(p)
		assert.Nil(t, c.recv(100*time.Millisecond), "%q", p)
	}

	for name, code := range map[string]uint16{
		"missing":               errCodeNotFound,
		"../etc/passwd":         errCodeAccess,
		"a\\b":                  errCodeAccess,
		"English_United_States": errCodeAccess,
	} {
		c := newRawClient(t, addr, "")
		c.send(rrq(name, "octet"))
		c.expectError(code)
		assert.NotNil(t, c.peer, "errors come from the transfer's own socket")
	}
	// a transfer gives its slot back just after its error packet is sent
	assert.Eventually(t, func() bool { return fx.srv.Stats().Active == 0 }, 10*time.Second, 10*time.Millisecond)
}

func TestTFTPOptions(t *testing.T) {
	fx := newFixture(t)
	fx.srv.MaxBlockSize = 1024
	addr, _ := serveTFTP(t, fx.srv, "")
	want := fx.read(t, testDevice+".cnf.xml")
	size := fmt.Sprint(len(want))
	for _, tc := range []struct {
		opts    []string
		oack    map[string]string // nil: no OACK
		blksize int
	}{
		{nil, nil, 512},
		{[]string{"blksize", "1000"}, map[string]string{"blksize": "1000"}, 1000},
		{[]string{"BlkSize", "8"}, map[string]string{"blksize": "8"}, 8},
		{[]string{"blksize", "65464"}, map[string]string{"blksize": "1024"}, 1024},
		{[]string{"blksize", "7"}, nil, 512},
		{[]string{"blksize", "65465"}, nil, 512},
		{[]string{"blksize", "abc"}, nil, 512},
		{[]string{"blksize", "+900"}, nil, 512},
		{[]string{"blksize", " 900"}, nil, 512},
		{[]string{"blksize", "99999999999999999999999"}, nil, 512},
		{[]string{"blksize", "600", "blksize", "700"}, map[string]string{"blksize": "600"}, 600},
		{[]string{"tsize", "0"}, map[string]string{"tsize": size}, 512},
		{[]string{"tsize", "123"}, map[string]string{"tsize": size}, 512},
		{[]string{"tsize", "-1"}, nil, 512},
		{[]string{"timeout", "3"}, map[string]string{"timeout": "3"}, 512},
		{[]string{"timeout", "0"}, nil, 512},
		{[]string{"timeout", "256"}, nil, 512},
		{[]string{"windowsize", "8", "multicast", ""}, nil, 512},
		{[]string{"blksize", "1024", "tsize", "0", "timeout", "1"}, map[string]string{"blksize": "1024", "tsize": size, "timeout": "1"}, 1024},
		{[]string{"blksize"}, nil, 512}, // a name without a value
	} {
		t.Run(strings.Join(tc.opts, ","), func(t *testing.T) {
			c := newRawClient(t, addr, "")
			c.send(rrq(testDevice+".cnf.xml", "octet", tc.opts...))
			oack, data := c.get(tc.blksize)
			assert.Equal(t, tc.oack, oack)
			assert.Equal(t, want, data)
		})
	}
}

func TestTFTPNetascii(t *testing.T) {
	fx := newFixture(t)
	fx.write(t, "text.txt", []byte("a\nb\rc\r\n"))
	addr, _ := serveTFTP(t, fx.srv, "")
	c := newRawClient(t, addr, "")
	c.send(rrq("text.txt", "NetASCII", "tsize", "0"))
	oack, data := c.get(512)
	assert.Equal(t, "a\r\nb\r\x00c\r\x00\r\n", string(data))
	assert.Equal(t, fmt.Sprint(len(data)), oack["tsize"])
}

// A client that stops acknowledging is given up after the retries; the
// others are served meanwhile.
func TestTFTPStalledClient(t *testing.T) {
	fx := newFixture(t)
	fx.srv.RetransmitTimeout = 50 * time.Millisecond
	fx.srv.Retries = 2
	addr, _ := serveTFTP(t, fx.srv, "")

	stalled := newRawClient(t, addr, "")
	stalled.send(rrq(testDevice+".cnf.xml", "octet"))
	var copies int
	for p := stalled.recv(3 * time.Second); p != nil; p = stalled.recv(3 * time.Second) {
		require.Equal(t, uint16(opDATA), binary.BigEndian.Uint16(p))
		require.Equal(t, uint16(1), binary.BigEndian.Uint16(p[2:]))
		copies++
		if copies == 1 {
			got, _, err := pinGet(t, addr, "RingList.xml", 0, false)
			require.NoError(t, err)
			assert.Equal(t, fx.read(t, "RingList.xml"), got)
		}
	}
	assert.Equal(t, 3, copies, "sent once and again twice")
	require.Eventually(t, func() bool { return fx.srv.Stats().Active == 0 }, 10*time.Second, 10*time.Millisecond)
	assert.Contains(t, fx.logs.String(), `result="no answer"`)
}

// A transfer is ended after TransferTimeout however fast the client
// answers each packet.
func TestTFTPTransferTimeout(t *testing.T) {
	fx := newFixture(t)
	fx.srv.TransferTimeout = 300 * time.Millisecond
	addr, _ := serveTFTP(t, fx.srv, "")
	c := newRawClient(t, addr, "")
	c.send(rrq(testDevice+".cnf.xml", "octet", "blksize", "8"))
	start := time.Now()
	for {
		p := c.recv(testnet.Patience(t))
		require.NotNil(t, p)
		if binary.BigEndian.Uint16(p) == opERROR {
			assert.Contains(t, string(p), "Transfer timed out")
			break
		}
		time.Sleep(20 * time.Millisecond) // a slow client
		block := uint16(0)
		if binary.BigEndian.Uint16(p) == opDATA {
			block = binary.BigEndian.Uint16(p[2:])
		}
		c.sendPeer(ack(block))
	}
	assert.Less(t, time.Since(start), 10*time.Second)
	assert.Contains(t, fx.logs.String(), `result="transfer timeout"`)
}

// Duplicate acknowledgements are not answered (the Sorcerer's
// Apprentice syndrome); an ERROR from the client ends the transfer.
func TestTFTPDuplicateAckAndClientError(t *testing.T) {
	fx := newFixture(t)
	fx.srv.RetransmitTimeout = 2 * time.Second
	addr, _ := serveTFTP(t, fx.srv, "")
	c := newRawClient(t, addr, "")
	c.send(rrq(testDevice+".cnf.xml", "octet"))
	p := c.recv(testnet.Patience(t))
	require.Equal(t, uint16(1), binary.BigEndian.Uint16(p[2:]))
	c.sendPeer(ack(1))
	c.sendPeer(ack(1))
	c.sendPeer(ack(0))
	p = c.recv(testnet.Patience(t))
	require.Equal(t, uint16(2), binary.BigEndian.Uint16(p[2:]))
	assert.Nil(t, c.recv(300*time.Millisecond), "DATA 2 sent twice")
	c.sendPeer(appendError(nil, 0, "user\ncancelled"))
	require.Eventually(t, func() bool { return fx.srv.Stats().Active == 0 }, 10*time.Second, 10*time.Millisecond)
	assert.Contains(t, fx.logs.String(), `result="client error"`)
	assert.Contains(t, fx.logs.String(), `user?cancelled`)
}

// What a transfer sends is the file as it was when the request came,
// whatever happens to it while it is sent.
func TestTFTPFileChangesDuringTransfer(t *testing.T) {
	fx := newFixture(t)
	orig := bytes.Repeat([]byte("original "), 10000)
	fx.write(t, "f.bin", orig)
	addr, _ := serveTFTP(t, fx.srv, "")
	for _, change := range []func(){
		func() { fx.write(t, "f.bin", bytes.Repeat([]byte("CHANGED! "), 12000)) }, // in place
		func() { fx.replace(t, "f.bin", bytes.Repeat([]byte("renamed "), 5000)) }, // by rename
	} {
		fx.write(t, "f.bin", orig)
		c := newRawClient(t, addr, "")
		c.send(rrq("f.bin", "octet"))
		p := c.recv(testnet.Patience(t))
		require.Equal(t, uint16(opDATA), binary.BigEndian.Uint16(p))
		change()
		data := append([]byte(nil), p[4:]...)
		c.sendPeer(ack(1))
		_, rest := c.getFrom(512, 1)
		data = append(data, rest...)
		assert.Equal(t, orig, data)
	}
}

func TestTFTPPerHostLimit(t *testing.T) {
	fx := newFixture(t)
	fx.srv.MaxPerHost = 2
	fx.srv.RetransmitTimeout = 5 * time.Second
	fx.srv.ShutdownTimeout = 50 * time.Millisecond
	addr, _ := serveTFTP(t, fx.srv, "")
	var held []*rawClient
	for range 2 {
		c := newRawClient(t, addr, "")
		c.send(rrq("RingList.xml", "octet"))
		require.NotNil(t, c.recv(testnet.Patience(t)))
		held = append(held, c)
	}
	c := newRawClient(t, addr, "")
	c.send(rrq("RingList.xml", "octet"))
	assert.Contains(t, c.expectError(errCodeUndefined), "busy")
	// another host is served
	other := newRawClient(t, addr, "127.0.0.2")
	other.send(rrq("RingList.xml", "octet"))
	_, data := other.get(512)
	assert.Equal(t, fx.read(t, "RingList.xml"), data)
	// a slot given back can be taken again
	held[0].sendPeer(ack(1))
	require.Eventually(t, func() bool { return fx.srv.Stats().Active == 1 }, 10*time.Second, 10*time.Millisecond)
	c = newRawClient(t, addr, "")
	c.send(rrq("RingList.xml", "octet"))
	_, data = c.get(512)
	assert.Equal(t, fx.read(t, "RingList.xml"), data)
	assert.Contains(t, fx.logs.String(), "transfers in progress for host 127.0.0.1")
}

func TestTFTPMemoryLimit(t *testing.T) {
	fx := newFixture(t)
	fx.srv.MaxMemory = 6000
	fx.srv.RetransmitTimeout = 5 * time.Second
	fx.srv.ShutdownTimeout = 50 * time.Millisecond
	addr, _ := serveTFTP(t, fx.srv, "")
	held := newRawClient(t, addr, "")
	held.send(rrq(testDevice+".cnf.xml", "octet")) // 4 KiB held
	require.NotNil(t, held.recv(testnet.Patience(t)))
	c := newRawClient(t, addr, "")
	c.send(rrq(testDevice+".cnf.xml", "octet"))
	assert.Contains(t, c.expectError(errCodeUndefined), "busy")
	c = newRawClient(t, addr, "")
	c.send(rrq("RingList.xml", "octet"))
	_, data := c.get(512)
	assert.Equal(t, fx.read(t, "RingList.xml"), data)
}

// 1,000 requests for files that do not exist each get "not found", and
// leave nothing behind.
func TestTFTPNotFoundFlood(t *testing.T) {
	fx := newFixture(t)
	fx.srv.MaxPerHost = -1
	fx.srv.Logger = nil
	addr, _ := serveTFTP(t, fx.srv, "")
	before := runtime.NumGoroutine()
	c := newRawClient(t, addr, "")
	const n, window = 1000, 32
	got := map[uint16]int{}
	var mu sync.Mutex
	done := make(chan struct{})
	// At most window requests wait for their answer, so that the socket
	// buffers (the server's and the client's) never overflow on a busy
	// machine: each answer lets one more request go.
	tokens := make(chan struct{}, window)
	go func() {
		defer close(done)
		buf := make([]byte, 600)
		for answered := 0; answered < n; {
			c.c.SetReadDeadline(time.Now().Add(10 * time.Second))
			m, _, err := c.c.ReadFromUDP(buf)
			if err != nil {
				return
			}
			if m < 4 || binary.BigEndian.Uint16(buf) != opERROR {
				continue
			}
			mu.Lock()
			got[binary.BigEndian.Uint16(buf[2:])]++
			mu.Unlock()
			answered++
			select {
			case <-tokens:
			default:
			}
		}
	}()
send:
	for i := range n {
		select {
		case tokens <- struct{}{}:
		case <-done:
			break send
		}
		c.send(rrq(fmt.Sprintf("missing-%d.cnf.xml.sgn", i), "octet"))
	}
	<-done
	mu.Lock()
	assert.GreaterOrEqual(t, got[errCodeNotFound], n*99/100, "%v", got)
	assert.Equal(t, got[errCodeNotFound], got[errCodeNotFound]+got[errCodeUndefined]+got[errCodeAccess], "only not found: %v", got)
	mu.Unlock()
	require.Eventually(t, func() bool { return fx.srv.Stats().Active == 0 }, 10*time.Second, 10*time.Millisecond)
	require.Eventually(t, func() bool { return runtime.NumGoroutine() <= before+2 }, 5*time.Second, 10*time.Millisecond,
		"goroutines: %d, before %d", runtime.NumGoroutine(), before)
	got2, _, err := pinGet(t, addr, "RingList.xml", 0, false)
	require.NoError(t, err)
	assert.Equal(t, fx.read(t, "RingList.xml"), got2)
}

// Shutdown lets a running transfer go on for ShutdownTimeout, then ends
// it with an error packet; ServeTFTP then returns nil.
func TestTFTPShutdown(t *testing.T) {
	fx := newFixture(t)
	fx.srv.ShutdownTimeout = 200 * time.Millisecond
	fx.srv.RetransmitTimeout = 5 * time.Second
	addr, stop := serveTFTP(t, fx.srv, "")
	c := newRawClient(t, addr, "")
	c.send(rrq(testDevice+".cnf.xml", "octet"))
	require.NotNil(t, c.recv(testnet.Patience(t)))
	start := time.Now()
	require.NoError(t, stop())
	assert.Less(t, time.Since(start), 10*time.Second)
	assert.Contains(t, c.expectError(errCodeUndefined), "shutting down")
	// the socket is closed
	c2 := newRawClient(t, addr, "")
	c2.send(rrq("RingList.xml", "octet"))
	assert.Nil(t, c2.recv(200*time.Millisecond))
}

func TestTFTPIPv6AndWildcard(t *testing.T) {
	fx := newFixture(t)
	for _, host := range []string{"0.0.0.0", "::1", "::"} {
		t.Run(host, func(t *testing.T) {
			addr, _ := serveTFTP(t, fx.srv, host)
			_, port, _ := net.SplitHostPort(addr)
			target := "127.0.0.1"
			if strings.Contains(host, ":") {
				target = "::1"
			}
			got, _, err := pinGet(t, net.JoinHostPort(target, port), "RingList.xml.sgn", 1428, true)
			if err != nil && strings.Contains(err.Error(), "cannot assign") {
				t.Skip("no IPv6 loopback")
			}
			require.NoError(t, err)
			verifySigned(t, got, "RingList.xml.sgn", fx.cert, crypto.SHA1)
		})
	}
}

// Blocks past 65535 wrap around to 0, as tftp-hpa and most clients do.
func TestTFTPBlockRollover(t *testing.T) {
	if testing.Short() {
		t.Skip("65,537 round trips")
	}
	fx := newFixture(t)
	data := make([]byte, 65536*8+3)
	for i := range data {
		data[i] = byte(i * 7)
	}
	fx.write(t, "big", data)
	addr, _ := serveTFTP(t, fx.srv, "")
	c := newRawClient(t, addr, "")
	c.send(rrq("big", "octet", "blksize", "8"))
	var got []byte
	var block uint16
	wait := testnet.Patience(t)
	for {
		p := c.recv(wait)
		require.NotNil(t, p)
		switch binary.BigEndian.Uint16(p) {
		case opOACK:
			c.sendPeer(ack(0))
			continue
		case opDATA:
		default:
			t.Fatalf("%q", p)
		}
		if b := binary.BigEndian.Uint16(p[2:]); b != block+1 {
			continue
		}
		block++
		got = append(got, p[4:]...)
		c.sendPeer(ack(block))
		if len(p) < 12 {
			break
		}
	}
	assert.Equal(t, data, got)
}
