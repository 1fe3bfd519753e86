package interop

import (
	"context"
	"crypto/tls"
	"io"
	"net"
	"slices"
	"sync"
	"testing"
	"time"
)

// A TapFrame is one frame a [Tap] relayed, as the server saw it: a
// request after any rewrite, a response before.
type TapFrame struct {
	FromServer bool
	Raw        []byte // header and payload
}

// TapConfig describes a [Tap]: the TLS certificate it presents to the
// client, how it reaches the server, and how it cuts the plaintext into
// frames.
type TapConfig struct {
	Cert tls.Certificate
	Dial func(context.Context) (net.Conn, error)
	// HeaderSize is the size of a frame's header, and PayloadLen the
	// length of the payload that follows, read from the header.
	HeaderSize int
	PayloadLen func(header []byte) int
	// Rewrite, if not nil, is called for each connection and returns the
	// function that gives the bytes to pass on for each frame (it may
	// change a request in place). The tap calls it with its lock held.
	Rewrite func() func(fromServer bool, frame []byte) []byte
}

// A Tap sits between a client and a server, terminating TLS on both sides
// (it holds the server's key; it does not check the server's
// certificate), and records every frame it relays, each passed on in one
// write.
type Tap struct {
	Addr     string
	cfg      TapConfig
	mu       sync.Mutex
	sessions [][]TapFrame
}

// StartTap starts a Tap on a port of 127.0.0.1, closed when the test ends.
func StartTap(t testing.TB, cfg TapConfig) *Tap {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	tp := &Tap{Addr: l.Addr().String(), cfg: cfg}
	var wg sync.WaitGroup
	t.Cleanup(func() { l.Close(); wg.Wait() })
	wg.Go(func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			tp.mu.Lock()
			idx := len(tp.sessions)
			tp.sessions = append(tp.sessions, nil)
			tp.mu.Unlock()
			wg.Go(func() { tp.relay(c, idx) })
		}
	})
	return tp
}

// Sessions returns the frames of every connection so far.
func (tp *Tap) Sessions() [][]TapFrame {
	tp.mu.Lock()
	defer tp.mu.Unlock()
	out := make([][]TapFrame, len(tp.sessions))
	for i, s := range tp.sessions {
		out[i] = slices.Clone(s)
	}
	return out
}

// Session returns the frames of connection i, or nil.
func (tp *Tap) Session(i int) []TapFrame {
	tp.mu.Lock()
	defer tp.mu.Unlock()
	if i < 0 || i >= len(tp.sessions) {
		return nil
	}
	return slices.Clone(tp.sessions[i])
}

func (tp *Tap) relay(raw net.Conn, idx int) {
	ctx, cancel := context.WithTimeout(context.Background(), RefTimeout)
	defer cancel()
	down := tls.Server(raw, &tls.Config{Certificates: []tls.Certificate{tp.cfg.Cert}})
	defer down.Close()
	upRaw, err := tp.cfg.Dial(ctx)
	if err != nil {
		return
	}
	up := tls.Client(upRaw, &tls.Config{InsecureSkipVerify: true}) // our own relay to a server under test
	defer up.Close()
	deadline := time.Now().Add(RefTimeout)
	raw.SetDeadline(deadline)
	upRaw.SetDeadline(deadline)
	if down.HandshakeContext(ctx) != nil || up.HandshakeContext(ctx) != nil {
		return
	}
	var rewrite func(bool, []byte) []byte
	if tp.cfg.Rewrite != nil {
		rewrite = tp.cfg.Rewrite()
	}
	var once sync.Once
	closeBoth := func() { once.Do(func() { down.Close(); up.Close() }) }
	pump := func(src, dst *tls.Conn, fromServer bool) {
		defer closeBoth()
		for {
			buf := make([]byte, tp.cfg.HeaderSize)
			if _, err := io.ReadFull(src, buf); err != nil {
				return
			}
			buf = append(buf, make([]byte, tp.cfg.PayloadLen(buf))...)
			if _, err := io.ReadFull(src, buf[tp.cfg.HeaderSize:]); err != nil {
				return
			}
			out := buf
			tp.mu.Lock()
			if rewrite != nil {
				out = rewrite(fromServer, buf)
			}
			tp.sessions[idx] = append(tp.sessions[idx], TapFrame{FromServer: fromServer, Raw: buf})
			tp.mu.Unlock()
			if _, err := dst.Write(out); err != nil {
				return
			}
		}
	}
	var wg sync.WaitGroup
	wg.Go(func() { pump(down, up, false) })
	pump(up, down, true)
	wg.Wait()
}
