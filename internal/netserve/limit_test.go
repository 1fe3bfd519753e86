package netserve

import (
	"context"
	"crypto/tls"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ucsec/ucsec/internal/testnet"
	"github.com/ucsec/ucsec/internal/testpki"
)

func tcpAddr(s string) *net.TCPAddr { return net.TCPAddrFromAddrPort(netip.MustParseAddrPort(s)) }

func TestHostKey(t *testing.T) {
	for _, tc := range []struct {
		addr net.Addr
		want string // "" for no key
	}{
		{tcpAddr("127.0.0.2:1234"), "127.0.0.2/32"},
		{tcpAddr("[::ffff:192.0.2.7]:1"), "192.0.2.7/32"},
		{tcpAddr("[2001:db8:1:2:3:4:5:6]:1"), "2001:db8:1:2::/64"},
		{tcpAddr("[2001:db8:1:2:ffff::1]:1"), "2001:db8:1:2::/64"},
		{tcpAddr("[fe80::1%eth0]:1"), "fe80::/64"},
		{&net.UDPAddr{IP: net.IPv4(10, 0, 0, 1), Port: 5}, "10.0.0.1/32"}, // any Addr that prints host:port
		{&net.UnixAddr{Name: "/run/x.sock", Net: "unix"}, ""},
		{&net.UnixAddr{Name: "", Net: "unix"}, ""},
		{nil, ""},
	} {
		key, ok := HostKey(tc.addr)
		got := ""
		if ok {
			got = key.String()
		}
		if got != tc.want {
			t.Errorf("HostKey(%v) = %q, want %q", tc.addr, got, tc.want)
		}
	}
}

// take and give count connections per host and in all; a connection
// refused by the global bound does not count against its host.
func TestLimitTake(t *testing.T) {
	l := NewLimit(3, 2)
	a, b, c := tcpAddr("127.0.0.2:1"), tcpAddr("127.0.0.1:1"), tcpAddr("127.0.0.3:1")
	take := func(addr net.Addr, want error) (netip.Prefix, bool) {
		t.Helper()
		key, counted, err := l.take(addr)
		_, tcp := addr.(*net.TCPAddr)
		if !errors.Is(err, want) || counted != (err == nil && tcp && l.perHost > 0) {
			t.Fatalf("take(%v) = %v, %v; want %v", addr, counted, err, want)
		}
		return key, counted
	}
	ka, ca := take(a, nil)
	take(a, nil)
	take(a, errTooManyForHost)
	take(b, nil)
	take(c, errTooMany)
	if n := l.hosts[netip.MustParsePrefix("127.0.0.3/32")]; n != 0 {
		t.Fatalf("refused connection still counted: %d", n)
	}
	l.give(ka, ca)
	take(c, nil)
	take(a, errTooMany)

	// IPv6 counts per /64; a Unix socket only in all; no per-host bound
	// with perHost 0.
	l = NewLimit(4, 1)
	take(tcpAddr("[2001:db8::1]:1"), nil)
	take(tcpAddr("[2001:db8::2]:1"), errTooManyForHost)
	take(tcpAddr("[2001:db8:0:1::1]:1"), nil)
	u := &net.UnixAddr{Net: "unix"}
	take(u, nil)
	take(u, nil)
	take(u, errTooMany)
	l = NewLimit(2, 0)
	take(a, nil)
	take(a, nil)
	take(a, errTooMany)
}

func TestWarn(t *testing.T) {
	var last atomic.Int64
	if !warn(&last) || warn(&last) {
		t.Fatal("second warning within a second not suppressed")
	}
	last.Store(time.Now().Add(-2 * time.Second).UnixNano())
	if !warn(&last) {
		t.Fatal("warning after two seconds suppressed")
	}
}

// One host holding its share of the connections, and trying for more,
// neither stops another host from being served nor fills the log; a
// share given back can be taken again.
func TestServePerHost(t *testing.T) {
	wait := testnet.Patience(t)
	l := listen(t)
	var logs testnet.Log
	cfg := Config{Limit: NewLimit(8, 2), ShutdownTimeout: wait, Log: slog.New(slog.NewTextHandler(&logs, nil)), Prefix: "test:"}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	served := make(chan string, 16) // the source address of each connection served
	go func() {
		done <- Serve(ctx, l, cfg, func(_ context.Context, c net.Conn) {
			served <- c.RemoteAddr().(*net.TCPAddr).AddrPort().Addr().String()
			// Hold the connection until the client closes it.
			c.SetReadDeadline(time.Now().Add(wait))
			io.Copy(io.Discard, c)
		})
	}()
	var conns []net.Conn
	defer func() {
		for _, c := range conns {
			c.Close()
		}
		cancel()
		if err := <-done; err != nil {
			t.Error(err)
		}
	}()
	dial := func(src string) net.Conn {
		t.Helper()
		d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(src)}, Timeout: wait}
		c, err := d.Dial("tcp", l.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		conns = append(conns, c)
		return c
	}
	expectServed := func(src string) {
		t.Helper()
		select {
		case got := <-served:
			if got != src {
				t.Fatalf("served %s, want %s", got, src)
			}
		case <-time.After(wait):
			t.Fatalf("connection from %s not served", src)
		}
	}
	// closed reports whether the server closed c without a word.
	closed := func(c net.Conn) bool {
		c.SetReadDeadline(time.Now().Add(wait))
		n, err := c.Read(make([]byte, 1))
		return n == 0 && err != nil && !errors.Is(err, os.ErrDeadlineExceeded)
	}

	held := []net.Conn{dial("127.0.0.2"), dial("127.0.0.2")}
	expectServed("127.0.0.2")
	expectServed("127.0.0.2")
	for range 3 {
		if c := dial("127.0.0.2"); !closed(c) {
			t.Fatal("connection beyond the host's share not closed")
		}
	}
	dial("127.0.0.1")
	expectServed("127.0.0.1")
	if got := strings.Count(logs.String(), "too many connections from one host"); got < 1 || got > 3 {
		t.Fatalf("%d refusals logged:\n%s", got, logs.String())
	}
	if s := logs.String(); !strings.Contains(s, "host=127.0.0.2 ") || !strings.Contains(s, "max_per_host=2") {
		t.Fatalf("log: %s", s)
	}

	// Once a held connection ends, its host may have another one.
	held[0].Close()
	for start := time.Now(); ; {
		c := dial("127.0.0.2")
		refused := make(chan bool, 1)
		go func() { refused <- closed(c) }()
		select {
		case got := <-served:
			if got != "127.0.0.2" {
				t.Fatalf("served %s", got)
			}
			return
		case <-refused: // the server has not seen the end yet
		case <-time.After(wait):
			t.Fatal("connection neither served nor refused")
		}
		if time.Since(start) > wait {
			t.Fatal("the host's share was not given back")
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// testTLSConfig is a server configuration with a fresh self-signed
// certificate.
func testTLSConfig(t *testing.T) *tls.Config {
	t.Helper()
	key := testpki.Key(t, testpki.EC256)
	cert := testpki.SelfSigned(t, testpki.Server("netserve test"), key)
	return &tls.Config{Certificates: []tls.Certificate{testpki.TLSCertificate(cert, key)}}
}

// accepted returns the server end of a new loopback connection and the
// client end.
func accepted(t *testing.T) (server, client net.Conn) {
	t.Helper()
	l := listen(t)
	defer l.Close()
	client, err := net.Dial("tcp", l.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { client.Close() })
	server, err = l.Accept()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { server.Close() })
	return server, client
}

// A client that sends nothing is dropped after firstByte, long before the
// handshake's timeout; one that has begun has the whole timeout; one that
// goes on gets through the byte Handshake took aside.
func TestHandshakeFirstByte(t *testing.T) {
	wait := testnet.Patience(t)
	cfg := testTLSConfig(t)
	ctx := context.Background()

	t.Run("silent", func(t *testing.T) {
		server, _ := accepted(t)
		_, done, err := Handshake(ctx, server, cfg, 50*time.Millisecond, wait)
		defer done()
		if !errors.Is(err, os.ErrDeadlineExceeded) || !strings.Contains(err.Error(), "nothing received within 50ms") {
			t.Fatalf("%v", err)
		}
	})
	t.Run("first byte longer than timeout", func(t *testing.T) {
		server, _ := accepted(t)
		_, done, err := Handshake(ctx, server, cfg, wait, 50*time.Millisecond)
		defer done()
		if !errors.Is(err, os.ErrDeadlineExceeded) || !strings.Contains(err.Error(), "nothing received within 50ms") {
			t.Fatalf("%v", err)
		}
	})
	t.Run("stalled after the first byte", func(t *testing.T) {
		server, client := accepted(t)
		if _, err := client.Write([]byte{0x16}); err != nil { // a handshake record begins
			t.Fatal(err)
		}
		const timeout = 500 * time.Millisecond
		start := time.Now()
		_, done, err := Handshake(ctx, server, cfg, 10*time.Millisecond, timeout)
		defer done()
		if !errors.Is(err, os.ErrDeadlineExceeded) && !errors.Is(err, context.DeadlineExceeded) || strings.Contains(err.Error(), "nothing received") {
			t.Fatalf("%v", err)
		}
		if d := time.Since(start); d < timeout-10*time.Millisecond {
			t.Fatalf("gave up after %v, before the handshake timeout", d)
		}
	})
	t.Run("cancelled", func(t *testing.T) {
		server, _ := accepted(t)
		cctx, cancel := context.WithCancel(ctx)
		time.AfterFunc(10*time.Millisecond, cancel)
		_, done, err := Handshake(cctx, server, cfg, wait, wait)
		defer done()
		if err == nil || errors.Is(err, os.ErrDeadlineExceeded) {
			t.Fatalf("%v", err)
		}
	})
	t.Run("complete", func(t *testing.T) {
		server, client := accepted(t)
		errc := make(chan error, 1)
		go func() {
			tc := tls.Client(client, &tls.Config{InsecureSkipVerify: true})
			tc.SetDeadline(time.Now().Add(wait))
			if err := tc.Handshake(); err != nil {
				errc <- err
				return
			}
			_, err := tc.Write([]byte("ping"))
			errc <- err
		}()
		conn, done, err := Handshake(ctx, server, cfg, wait, wait)
		defer done()
		if err != nil {
			t.Fatal(err)
		}
		buf := make([]byte, 4)
		if _, err := io.ReadFull(conn, buf); err != nil || string(buf) != "ping" {
			t.Fatalf("%q %v", buf, err)
		}
		if err := <-errc; err != nil {
			t.Fatal(err)
		}
	})
}
