package tftpd

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"sync"
	"time"

	"golang.org/x/net/ipv4"
	"golang.org/x/net/ipv6"
)

// packetConn is the server's socket, with the local address each request
// came to, so that the transfer answers from it (a client checks where
// the answer comes from).
type packetConn interface {
	read(b []byte) (n int, src netip.AddrPort, dst netip.Addr, err error)
	write(b []byte, to netip.AddrPort, from netip.Addr) error
}

type plainConn struct{ c *net.UDPConn }

func (p plainConn) read(b []byte) (int, netip.AddrPort, netip.Addr, error) {
	n, src, err := p.c.ReadFromUDPAddrPort(b)
	return n, src, netip.Addr{}, err
}

func (p plainConn) write(b []byte, to netip.AddrPort, _ netip.Addr) error {
	_, err := p.c.WriteToUDPAddrPort(b, to)
	return err
}

type conn4 struct{ c *ipv4.PacketConn }

func (p conn4) read(b []byte) (int, netip.AddrPort, netip.Addr, error) {
	n, cm, src, err := p.c.ReadFrom(b)
	var dst netip.Addr
	if cm != nil {
		dst, _ = netip.AddrFromSlice(cm.Dst)
	}
	return n, addrPort(src), dst.Unmap(), err
}

func (p conn4) write(b []byte, to netip.AddrPort, from netip.Addr) error {
	var cm *ipv4.ControlMessage
	if from.IsValid() {
		cm = &ipv4.ControlMessage{Src: from.AsSlice()}
	}
	_, err := p.c.WriteTo(b, cm, net.UDPAddrFromAddrPort(to))
	return err
}

type conn6 struct{ c *ipv6.PacketConn }

func (p conn6) read(b []byte) (int, netip.AddrPort, netip.Addr, error) {
	n, cm, src, err := p.c.ReadFrom(b)
	var dst netip.Addr
	if cm != nil {
		dst, _ = netip.AddrFromSlice(cm.Dst)
	}
	return n, addrPort(src), dst, err
}

func (p conn6) write(b []byte, to netip.AddrPort, from netip.Addr) error {
	var cm *ipv6.ControlMessage
	if from.IsValid() {
		cm = &ipv6.ControlMessage{Src: from.AsSlice()}
	}
	_, err := p.c.WriteTo(b, cm, net.UDPAddrFromAddrPort(to))
	return err
}

func addrPort(a net.Addr) netip.AddrPort {
	if u, ok := a.(*net.UDPAddr); ok {
		return u.AddrPort()
	}
	return netip.AddrPort{}
}

// newPacketConn asks the kernel for the destination address of each
// datagram (IP_PKTINFO, IPV6_RECVPKTINFO) when c listens on an unspecified
// address; where it cannot, or need not, the transfers answer from c's
// own address.
func newPacketConn(c *net.UDPConn) packetConn {
	local := addrPort(c.LocalAddr()).Addr()
	if !local.IsUnspecified() {
		return plainConn{c}
	}
	if local.Is4() {
		p := ipv4.NewPacketConn(c)
		if p.SetControlMessage(ipv4.FlagDst, true) == nil {
			return conn4{p}
		}
	} else {
		p := ipv6.NewPacketConn(c)
		if p.SetControlMessage(ipv6.FlagDst, true) == nil {
			return conn6{p}
		}
	}
	return plainConn{c}
}

// ServeTFTP serves TFTP read requests (RFC 1350, with the options blksize,
// timeout and tsize of RFC 2347, 2348 and 2349) that arrive on conn, each
// transfer from a socket of its own (a new transfer ID, RFC 1350 §4) on
// the address the request came to, until ctx is done or conn fails. It
// then closes conn, lets transfers in progress go on for ShutdownTimeout,
// ends those still running with an error packet to their client, and
// returns once every transfer has ended: nil after ctx is done, else the
// error of conn.
//
// Write requests are refused (error 2, access violation), as are
// requests in "mail" mode and packets that are not requests (error 4);
// "netascii" transfers are converted as RFC 1350 says, which breaks
// signatures: phones ask in "octet" mode. A request beyond MaxTransfers,
// MaxPerHost or MaxMemory gets error 0, "server busy".
func (s *Server) ServeTFTP(ctx context.Context, conn *net.UDPConn) error {
	if err := s.init(); err != nil {
		conn.Close()
		return err
	}
	pc := newPacketConn(conn)
	local := addrPort(conn.LocalAddr()).Addr()

	// Transfers get a context of their own, cancelled when the grace
	// period after ctx runs out.
	tctx, abort := context.WithCancel(context.WithoutCancel(ctx))
	defer abort()
	var wg sync.WaitGroup
	stop := context.AfterFunc(ctx, func() { conn.SetReadDeadline(time.Now()) })
	defer stop()

	var readErr error
	buf := make([]byte, maxRequest)
	var backoff time.Duration
	for {
		n, src, dst, err := pc.read(buf)
		if err != nil {
			if ctx.Err() != nil {
				break
			}
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() || isTemporary(err) {
				// out of buffers, or a deadline set by someone else:
				// wait and go on rather than end the service
				backoff = min(max(2*backoff, 5*time.Millisecond), time.Second)
				s.log.Warn("tftpd: read failed, retrying", "err", err, "in", backoff)
				select {
				case <-time.After(backoff):
				case <-ctx.Done():
				}
				conn.SetReadDeadline(time.Time{})
				continue
			}
			readErr = err
			break
		}
		backoff = 0
		if !dst.IsValid() {
			dst = local
		}
		s.request(tctx, &wg, pc, buf[:n], src, dst)
	}
	conn.Close()

	finished := make(chan struct{})
	go func() { wg.Wait(); close(finished) }()
	t := time.NewTimer(s.shutdownTimeout)
	defer t.Stop()
	select {
	case <-finished:
	case <-t.C:
		abort()
		<-finished
	}
	if errors.Is(readErr, net.ErrClosed) {
		readErr = nil // closed by its owner: the end of the service
	}
	return readErr
}

func isTemporary(err error) bool {
	var te interface{ Temporary() bool }
	return errors.As(err, &te) && te.Temporary()
}

// request handles one datagram that came to the server's socket.
func (s *Server) request(ctx context.Context, wg *sync.WaitGroup, pc packetConn, pkt []byte, src netip.AddrPort, dst netip.Addr) {
	if !src.IsValid() || src.Port() == 0 {
		return
	}
	reply := func(code uint16, msg string) {
		pc.write(appendError(nil, code, msg), src, dst)
	}
	req, err := parseRequest(pkt)
	if err != nil {
		if len(pkt) >= 2 {
			switch op := binary.BigEndian.Uint16(pkt); op {
			case opDATA, opACK, opERROR, opOACK:
				// part of a transfer that is not this socket's: dropped
				// (answering could make this a reflector)
			default:
				reply(errCodeIllegal, "Illegal TFTP operation")
			}
		}
		if s.limit.warn() {
			s.log.Debug("tftpd: bad packet", "client", src.String(), "err", err)
		}
		return
	}
	rec := &record{proto: "tftp", client: src.String(), file: req.name, start: time.Now()}
	switch {
	case req.op == opWRQ:
		reply(errCodeAccess, "Access violation: read-only server")
		rec.result = "write refused"
		s.logTransfer(rec, nil)
		return
	case req.mode != "octet" && req.mode != "netascii":
		reply(errCodeIllegal, "Unsupported transfer mode")
		rec.result = "bad mode"
		s.logTransfer(rec, fmt.Errorf("mode %q", printable(req.mode, 16)))
		return
	}
	sl, err := s.limit.acquire(src.Addr())
	if err != nil {
		reply(errCodeUndefined, "Server busy, try again later")
		s.failures.Add(1)
		if s.limit.warn() {
			s.log.Warn("tftpd: request refused", "client", src.String(), "file", safeName(req.name), "err", err)
		}
		return
	}
	wg.Add(1)
	go func() {
		defer wg.Done()
		defer sl.release()
		s.transfer(ctx, req, src, dst, sl, rec)
	}()
}

// transfer sends one file to the client at remote from a socket of its
// own, answering from local.
func (s *Server) transfer(ctx context.Context, req *request, remote netip.AddrPort, local netip.Addr, sl *slot, rec *record) {
	deadline := rec.start.Add(s.transferTimeout)
	ctx, cancel := context.WithDeadline(ctx, deadline)
	defer cancel()
	c, err := net.DialUDP("udp", net.UDPAddrFromAddrPort(netip.AddrPortFrom(local, 0)), net.UDPAddrFromAddrPort(remote))
	if err != nil {
		rec.result = "socket"
		s.logTransfer(rec, err)
		return
	}
	defer c.Close()
	stop := context.AfterFunc(ctx, func() { c.SetReadDeadline(time.Now()) })
	defer stop()
	t := &tftpTransfer{c: c, ctx: ctx, retries: s.retries}

	f, err := s.open(ctx, req.name, sl)
	if err != nil {
		code, msg, result := tftpError(err)
		t.sendError(code, msg)
		rec.result = result
		s.logTransfer(rec, err)
		return
	}
	rec.setFile(f)
	data := f.Data
	if req.mode == "netascii" {
		if data = toNetascii(data); len(data) != len(f.Data) {
			if err := sl.reserve(int64(len(data))); err != nil {
				t.sendError(errCodeUndefined, "Server busy, try again later")
				rec.result = "busy"
				s.logTransfer(rec, err)
				return
			}
		}
	}
	p := negotiate(req.opts, s.maxBlockSize)
	t.rto = s.retransmitTimeout
	if p.timeout > 0 {
		t.rto = p.timeout
	}
	rec.blksize = p.blksize
	rec.options = optionString(p.oack, len(data))
	err = t.send(data, p)
	rec.bytes = t.sent
	switch {
	case err == nil:
		rec.result = "ok"
	case errors.Is(err, errClientError):
		rec.result = "client error"
	case ctx.Err() != nil && time.Now().Before(deadline):
		rec.result = "shutdown"
		t.sendError(errCodeUndefined, "Server shutting down")
	case ctx.Err() != nil:
		rec.result = "transfer timeout"
		t.sendError(errCodeUndefined, "Transfer timed out")
	default:
		rec.result = "no answer"
	}
	s.logTransfer(rec, err)
}

// tftpError maps an error of Open to a TFTP error code and message, and
// the result logged. The message says what kind of failure, never why:
// the reason is logged.
func tftpError(err error) (code uint16, msg, result string) {
	switch {
	case errors.Is(err, ErrNotFound):
		return errCodeNotFound, "File not found", "not found"
	case errors.Is(err, ErrForbidden):
		return errCodeAccess, "Access violation", "forbidden"
	case errors.Is(err, ErrTooLarge):
		return errCodeDiskFull, "File too large", "too large"
	case errors.Is(err, ErrBusy):
		return errCodeUndefined, "Server busy, try again later", "busy"
	case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		return errCodeUndefined, "Server shutting down", "shutdown"
	default:
		return errCodeUndefined, "File unavailable", "unavailable"
	}
}

var errClientError = errors.New("client sent an error")

// tftpTransfer is the sending side of one transfer.
type tftpTransfer struct {
	c       *net.UDPConn
	ctx     context.Context
	rto     time.Duration
	retries int
	sent    int64 // bytes of data acknowledged
	recv    [512]byte
}

// send runs the transfer: OACK and its acknowledgement (block 0) if
// options were taken, then each block until one shorter than the block
// size, each sent again after rto without its acknowledgement, retries
// times at most.
func (t *tftpTransfer) send(data []byte, p params) error {
	pkt := make([]byte, 0, 4+min(p.blksize, len(data)))
	if len(p.oack) > 0 {
		if err := t.exchange(appendOACK(pkt, p.oack, len(data)), 0); err != nil {
			return err
		}
	}
	for block, off := uint16(1), 0; ; block++ {
		n := min(p.blksize, len(data)-off)
		pkt = binary.BigEndian.AppendUint16(pkt[:0], opDATA)
		pkt = binary.BigEndian.AppendUint16(pkt, block)
		pkt = append(pkt, data[off:off+n]...)
		if err := t.exchange(pkt, block); err != nil {
			return err
		}
		off += n
		t.sent = int64(off)
		if n < p.blksize {
			return nil
		}
	}
}

// exchange sends pkt and waits for the acknowledgement of block, sending
// pkt again each time rto passes without it. Duplicate and stray
// acknowledgements are ignored, not answered (which would start the
// Sorcerer's Apprentice syndrome, RFC 1123 §4.2.3.1). The socket is
// connected to the client, so datagrams from other ports never reach it.
func (t *tftpTransfer) exchange(pkt []byte, block uint16) error {
	for try := 0; ; try++ {
		if err := t.ctx.Err(); err != nil {
			return err
		}
		if _, err := t.c.Write(pkt); err != nil {
			return err
		}
		t.c.SetReadDeadline(time.Now().Add(t.rto))
		for {
			n, err := t.c.Read(t.recv[:])
			if err != nil {
				if errors.Is(err, os.ErrDeadlineExceeded) {
					break
				}
				var ne net.Error
				if errors.As(err, &ne) && ne.Timeout() {
					break
				}
				// ICMP port unreachable: the client is gone
				return err
			}
			if n < 4 {
				continue
			}
			switch binary.BigEndian.Uint16(t.recv[:]) {
			case opACK:
				if binary.BigEndian.Uint16(t.recv[2:]) == block {
					return nil
				}
			case opERROR:
				return fmt.Errorf("%w: code %d: %s", errClientError, binary.BigEndian.Uint16(t.recv[2:]), printable(string(trimNUL(t.recv[4:n])), 64))
			}
		}
		if t.ctx.Err() != nil {
			return t.ctx.Err()
		}
		if try >= t.retries {
			return fmt.Errorf("no acknowledgement of block %d after %d tries", block, try+1)
		}
	}
}

func trimNUL(b []byte) []byte {
	for i, c := range b {
		if c == 0 {
			return b[:i]
		}
	}
	return b
}

// sendError tells the client why its transfer ends. It is sent once:
// an error packet is not acknowledged (RFC 1350 §7).
func (t *tftpTransfer) sendError(code uint16, msg string) {
	t.c.Write(appendError(nil, code, msg))
}

// record is what the log record of a transfer tells.
type record struct {
	proto, client, file string
	start               time.Time
	result              string
	bytes               int64
	blksize             int
	options             string // the options acknowledged, as "blksize=1428 tsize=4096"
	signed, encrypted   bool
	cached, stripped    bool
}

func (r *record) setFile(f *File) {
	r.signed, r.encrypted, r.cached, r.stripped = f.Signed, f.Encrypted, f.Cached, f.Stripped
}

// logTransfer writes the one record of a transfer and counts it.
func (s *Server) logTransfer(r *record, err error) {
	level := slog.LevelInfo
	if r.result == "ok" || r.result == "not modified" {
		s.transfers.Add(1)
	} else {
		s.failures.Add(1)
		if r.result != "not found" {
			level = slog.LevelWarn
		}
	}
	if !s.log.Enabled(context.Background(), level) {
		return
	}
	attrs := []slog.Attr{
		slog.String("proto", r.proto),
		slog.String("client", r.client),
		slog.String("file", safeName(r.file)),
		slog.String("result", r.result),
		slog.Int64("bytes", r.bytes),
		slog.Bool("signed", r.signed),
		slog.Bool("encrypted", r.encrypted),
		slog.Bool("cached", r.cached),
	}
	if r.stripped {
		attrs = append(attrs, slog.Bool("stripped", true))
	}
	if r.blksize > 0 {
		attrs = append(attrs, slog.Int("blksize", r.blksize))
	}
	if r.options != "" {
		attrs = append(attrs, slog.String("options", r.options))
	}
	attrs = append(attrs, slog.Duration("duration", time.Since(r.start)))
	if err != nil {
		attrs = append(attrs, slog.String("err", err.Error()))
	}
	s.log.LogAttrs(context.Background(), level, "tftpd: transfer", attrs...)
}
