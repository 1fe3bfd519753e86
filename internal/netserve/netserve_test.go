package netserve

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"os"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

type failingListener struct {
	net.Listener
	temporary atomic.Int32 // EMFILE errors still to return
	permanent error
}

func (l *failingListener) Accept() (net.Conn, error) {
	if l.temporary.Add(-1) >= 0 {
		return nil, &net.OpError{Op: "accept", Net: "tcp", Err: os.NewSyscallError("accept", syscall.EMFILE)}
	}
	if l.permanent != nil {
		return nil, l.permanent
	}
	return l.Listener.Accept()
}

func listen(t *testing.T) net.Listener {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	return l
}

func TestServe(t *testing.T) {
	inner := listen(t)
	l := &failingListener{Listener: inner}
	l.temporary.Store(2)
	cfg := Config{Limit: NewLimit(1, 0), ShutdownTimeout: 200 * time.Millisecond, Log: slog.New(slog.DiscardHandler), Prefix: "test:"}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	started := make(chan struct{}, 4)
	var handlerCancelled atomic.Bool
	go func() {
		done <- Serve(ctx, l, cfg, func(hctx context.Context, c net.Conn) {
			started <- struct{}{}
			<-hctx.Done() // hold the slot until the grace period ends
			handlerCancelled.Store(true)
		})
	}()
	a, err := net.Dial("tcp", inner.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	select {
	case <-started:
	case <-time.After(5 * time.Second):
		t.Fatal("first connection not served (temporary errors not retried?)")
	}
	// The one slot is taken: a second connection is closed at once.
	b, err := net.Dial("tcp", inner.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	b.SetReadDeadline(time.Now().Add(5 * time.Second))
	if n, err := b.Read(make([]byte, 1)); n != 0 || err == nil || errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("second connection: %d, %v", n, err)
	}
	b.Close()
	start := time.Now()
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if d := time.Since(start); d < 150*time.Millisecond || !handlerCancelled.Load() {
		t.Fatalf("returned after %v, handler cancelled %v", d, handlerCancelled.Load())
	}
	if _, err := net.Dial("tcp", inner.Addr().String()); err == nil {
		t.Fatal("listener still open")
	}
}

func TestServeAcceptError(t *testing.T) {
	l := &failingListener{Listener: listen(t), permanent: errors.New("boom")}
	cfg := Config{Limit: NewLimit(1, 0), Log: slog.New(slog.DiscardHandler)}
	err := Serve(context.Background(), l, cfg, func(context.Context, net.Conn) {})
	if err == nil || err.Error() != "boom" {
		t.Fatalf("%v", err)
	}
}
