package tftpd

import (
	"bytes"
	"context"
	"errors"
	"io"
	"log"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"strings"
	"time"
)

// ServeHTTP serves a GET or HEAD request for a file, as CUCM's TFTP
// service does over HTTP (port 6970 by convention): the URL path is the
// name asked for (see CleanName) and the answer is the same as over TFTP.
// Each answer carries a strong ETag (the SHA-256 of the bytes), so a
// request with If-None-Match gets 304 Not Modified while the file is
// unchanged; ranges are served too. Errors are 404 (not found), 403
// (refused name, too large), 503 (busy, with Retry-After, or a source
// that failed) and 405 (another method). The transfer counts against
// MaxTransfers, MaxPerHost and MaxMemory, and its writing is bounded by
// TransferTimeout.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if err := s.init(); err != nil {
		s.failures.Add(1)
		http.Error(w, "server misconfigured", http.StatusInternalServerError)
		if s.log != nil {
			s.log.Error("tftpd: http", "err", err)
		}
		return
	}
	rec := &record{proto: "http", client: r.RemoteAddr, file: r.URL.Path, start: time.Now()}
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header().Set("Allow", "GET, HEAD")
		http.Error(w, "method not allowed: read-only server", http.StatusMethodNotAllowed)
		rec.result = "method refused"
		s.logTransfer(rec, nil)
		return
	}
	var client netip.Addr
	if ap, err := netip.ParseAddrPort(r.RemoteAddr); err == nil {
		client = ap.Addr()
	}
	sl, err := s.limit.acquire(client)
	if err != nil {
		w.Header().Set("Retry-After", "1")
		http.Error(w, "server busy", http.StatusServiceUnavailable)
		s.failures.Add(1)
		if s.limit.warn() {
			s.log.Warn("tftpd: request refused", "client", r.RemoteAddr, "file", safeName(r.URL.Path), "err", err)
		}
		return
	}
	defer sl.release()
	ctx, cancel := context.WithDeadline(r.Context(), rec.start.Add(s.transferTimeout))
	defer cancel()
	http.NewResponseController(w).SetWriteDeadline(rec.start.Add(s.transferTimeout))

	f, err := s.open(ctx, r.URL.Path, sl)
	if err != nil {
		status, msg := httpError(err)
		if status == http.StatusServiceUnavailable {
			w.Header().Set("Retry-After", "1")
		}
		http.Error(w, msg, status)
		_, _, rec.result = tftpError(err)
		s.logTransfer(rec, err)
		return
	}
	rec.setFile(f)
	h := w.Header()
	h.Set("ETag", f.ETag())
	h.Set("Content-Type", "application/octet-stream")
	h.Set("Cache-Control", "no-cache")
	cw := &countingWriter{ResponseWriter: w}
	http.ServeContent(cw, r, "", f.ModTime, bytes.NewReader(f.Data))
	rec.bytes = cw.n
	switch {
	case cw.status == http.StatusNotModified:
		rec.result = "not modified"
	case cw.status >= 400:
		rec.result = http.StatusText(cw.status)
	case cw.err != nil:
		rec.result = "write failed"
	default:
		rec.result = "ok"
	}
	s.logTransfer(rec, cw.err)
}

func httpError(err error) (int, string) {
	switch {
	case errors.Is(err, ErrNotFound):
		return http.StatusNotFound, "file not found"
	case errors.Is(err, ErrForbidden):
		return http.StatusForbidden, "access violation"
	case errors.Is(err, ErrTooLarge):
		return http.StatusForbidden, "file too large"
	case errors.Is(err, ErrBusy):
		return http.StatusServiceUnavailable, "server busy"
	default:
		return http.StatusServiceUnavailable, "file unavailable"
	}
}

// countingWriter counts what ServeContent writes, and notes its status.
type countingWriter struct {
	http.ResponseWriter
	n      int64
	status int
	err    error
}

func (c *countingWriter) WriteHeader(code int) {
	if c.status == 0 {
		c.status = code
	}
	c.ResponseWriter.WriteHeader(code)
}

func (c *countingWriter) Write(p []byte) (int, error) {
	if c.status == 0 {
		c.status = http.StatusOK
	}
	n, err := c.ResponseWriter.Write(p)
	c.n += int64(n)
	if err != nil && c.err == nil {
		c.err = err
	}
	return n, err
}

func (c *countingWriter) Unwrap() http.ResponseWriter { return c.ResponseWriter }

// ServeHTTPListener serves HTTP on l with ServeHTTP until ctx is done,
// with bounds on what a connection may take (headers within 10 seconds
// and 8 KiB, idle connections closed after a minute). It then stops
// taking connections, lets requests in progress finish for
// ShutdownTimeout, closes the rest and returns nil; or returns the error
// that ended serving.
func (s *Server) ServeHTTPListener(ctx context.Context, l net.Listener) error {
	if err := s.init(); err != nil {
		l.Close()
		return err
	}
	hs := &http.Server{
		Handler:           s,
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       30 * time.Second,
		IdleTimeout:       time.Minute,
		MaxHeaderBytes:    8 << 10,
		ErrorLog:          log.New(logWriter{s.log}, "", 0),
		BaseContext:       func(net.Listener) context.Context { return context.WithoutCancel(ctx) },
	}
	errc := make(chan error, 1)
	go func() { errc <- hs.Serve(l) }()
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.Background(), s.shutdownTimeout)
	defer cancel()
	if err := hs.Shutdown(sctx); err != nil {
		hs.Close()
	}
	if err := <-errc; !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}

// logWriter passes net/http's own messages (TLS handshake errors, bad
// requests) to the Logger as warnings.
type logWriter struct{ l *slog.Logger }

func (w logWriter) Write(p []byte) (int, error) {
	w.l.Warn("tftpd: http: " + strings.TrimSpace(string(p)))
	return len(p), nil
}

var _ io.Writer = logWriter{}
