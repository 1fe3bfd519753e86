package tftpd

import (
	"context"
	"crypto"
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ucsec/ucsec/sgn"
)

// The benchmarks compare this service with Debian's tftpd-hpa, side by
// side in one run:
//
//	go test -run '^$' -bench 'TFTP' -benchtime 3s ./tftpd
//
// BenchmarkTFTPConfig32: transfers per second of a 4 KiB configuration
// with 32 concurrent clients (RFC 1350, 512-byte blocks), this service
// serving SEP….cnf.xml.sgn from a warm signing cache against tftpd-hpa
// serving the same signed file from disk. BenchmarkTFTP1MiB: one 1 MiB
// file at blksize 1428. BenchmarkColdSignature: what a signature costs
// when the cache cannot help. tftpd-hpa (in.tftpd) is started by the
// benchmark as a throw-away instance on a loopback port; without it, or
// without root (in.tftpd chroots into its directory), its half is
// skipped.

// benchClient is a minimal TFTP client for the benchmarks: one socket,
// one transfer at a time, acknowledging each block.
type benchClient struct {
	c      *net.UDPConn
	server *net.UDPAddr
	buf    []byte
	old    *net.UDPAddr // the previous transfer's peer, whose strays are ignored
}

func newBenchClient(tb testing.TB, server *net.UDPAddr) *benchClient {
	c, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { c.Close() })
	return &benchClient{c: c, server: server, buf: make([]byte, 65536)}
}

// get fetches name, asking for blksize unless it is 512, and returns the
// bytes received. A lost packet is left to the server's retransmission.
func (bc *benchClient) get(name string, blksize int) (int, error) {
	req := rrq(name, "octet")
	if blksize != 512 {
		req = rrq(name, "octet", "blksize", strconv.Itoa(blksize), "tsize", "0")
	}
	if _, err := bc.c.WriteToUDP(req, bc.server); err != nil {
		return 0, err
	}
	var peer *net.UDPAddr
	var block uint16
	total := 0
	ack := make([]byte, 4)
	ack[1] = opACK
	for {
		bc.c.SetReadDeadline(time.Now().Add(10 * time.Second))
		n, from, err := bc.c.ReadFromUDP(bc.buf)
		if err != nil {
			return total, fmt.Errorf("%s: block %d: %w", name, block+1, err)
		}
		if n < 4 {
			continue
		}
		if peer == nil && bc.old != nil && from.Port == bc.old.Port {
			// A retransmission of the previous transfer's last block,
			// unless the new transfer's socket got the same port: then
			// it starts with an OACK or block 1.
			op, b := binary.BigEndian.Uint16(bc.buf), binary.BigEndian.Uint16(bc.buf[2:])
			if op != opOACK && (op != opDATA || b != 1) {
				continue
			}
		}
		if peer == nil {
			peer = from
		} else if from.Port != peer.Port {
			continue
		}
		switch binary.BigEndian.Uint16(bc.buf) {
		case opOACK:
			binary.BigEndian.PutUint16(ack[2:], 0)
			bc.c.WriteToUDP(ack, peer)
			continue
		case opERROR:
			return total, fmt.Errorf("%s: error %q", name, bc.buf[4:n])
		case opDATA:
		default:
			continue
		}
		b := binary.BigEndian.Uint16(bc.buf[2:])
		if b != block+1 {
			if b == block { // our acknowledgement was lost
				binary.BigEndian.PutUint16(ack[2:], b)
				bc.c.WriteToUDP(ack, peer)
			}
			continue
		}
		block = b
		total += n - 4
		binary.BigEndian.PutUint16(ack[2:], b)
		bc.c.WriteToUDP(ack, peer)
		if n-4 < blksize {
			bc.old = peer
			return total, nil
		}
	}
}

// startTFTPDHPA starts tftpd-hpa on a loopback port serving dir, and
// returns its address.
func startTFTPDHPA(b *testing.B, dir string) *net.UDPAddr {
	path, err := exec.LookPath("in.tftpd")
	if err != nil {
		path, err = exec.LookPath("/usr/sbin/in.tftpd") // not on every user's PATH
	}
	if err != nil {
		b.Skipf("tftpd-hpa is not installed (apt-get install tftpd-hpa): %v", err)
	}
	if os.Geteuid() != 0 {
		b.Skip("in.tftpd chroots into its directory: run the benchmark as root")
	}
	// A free port: taken, then given back for in.tftpd.
	l, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		b.Fatal(err)
	}
	addr := l.LocalAddr().(*net.UDPAddr)
	l.Close()
	// -L: stay in the foreground; -u root: the files are the test's.
	cmd := exec.Command(path, "-L", "-u", "root", "-a", addr.String(), "-s", dir)
	if err := cmd.Start(); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	// Wait until it answers.
	bc := newBenchClient(b, addr)
	bc.c.SetReadDeadline(time.Now().Add(100 * time.Millisecond))
	for i := 0; ; i++ {
		if _, err := bc.get("probe", 512); err == nil {
			return addr
		} else if i == 50 {
			b.Fatalf("in.tftpd does not answer on %s: %v", addr, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// benchFiles writes the benchmark's files to a new directory: the 4 KiB
// configuration, its signed form (for tftpd-hpa), a 1 MiB file, and a
// probe.
func benchFiles(b *testing.B, fx *fixture) (dir string, config []byte) {
	dir = b.TempDir()
	config = phoneConfig(4096)
	signed, err := sgn.Sign(nil, config, fx.cert, fx.key, sgn.SignOptions{Filename: testDevice + ".cnf.xml.sgn", Hash: crypto.SHA1})
	if err != nil {
		b.Fatal(err)
	}
	big := make([]byte, 1<<20)
	for i := range big {
		big[i] = byte(i * 7)
	}
	for name, data := range map[string][]byte{
		testDevice + ".cnf.xml":     config,
		testDevice + ".cnf.xml.sgn": signed,
		"big.bin":                   big,
		"probe":                     []byte("x"),
	} {
		if err := os.WriteFile(filepath.Join(dir, name), data, 0o644); err != nil {
			b.Fatal(err)
		}
	}
	return dir, config
}

// benchServers runs fn against this service and tftpd-hpa, each serving
// a copy of the files benchFiles writes; ours serves name+ours, tftpd-hpa
// name+theirs.
func benchServers(b *testing.B, fn func(b *testing.B, addr *net.UDPAddr, onServer func() *Server)) {
	fx := newFixture(b)
	fx.srv.Logger = nil
	dir, _ := benchFiles(b, fx)
	b.Run("server=ucsec", func(b *testing.B) {
		// ours signs the configuration itself: no .sgn in its root
		ours := b.TempDir()
		for _, name := range []string{testDevice + ".cnf.xml", "big.bin", "probe"} {
			data, err := os.ReadFile(filepath.Join(dir, name))
			if err != nil {
				b.Fatal(err)
			}
			if err := os.WriteFile(filepath.Join(ours, name), data, 0o644); err != nil {
				b.Fatal(err)
			}
		}
		root, err := os.OpenRoot(ours)
		if err != nil {
			b.Fatal(err)
		}
		defer root.Close()
		srv := &Server{Root: root, Certificate: fx.cert, Key: fx.key, MaxPerHost: -1, MaxTransfers: 1024}
		conn, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
		if err != nil {
			b.Fatal(err)
		}
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error, 1)
		go func() { done <- srv.ServeTFTP(ctx, conn) }()
		defer func() {
			cancel()
			if err := <-done; err != nil {
				b.Error(err)
			}
		}()
		fn(b, conn.LocalAddr().(*net.UDPAddr), func() *Server { return srv })
	})
	b.Run("server=tftpd-hpa", func(b *testing.B) {
		fn(b, startTFTPDHPA(b, dir), nil)
	})
}

// BenchmarkTFTPConfig32 measures transfers per second of a signed 4 KiB
// configuration with 32 concurrent clients.
func BenchmarkTFTPConfig32(b *testing.B) {
	const clients = 32
	name := testDevice + ".cnf.xml.sgn"
	benchServers(b, func(b *testing.B, addr *net.UDPAddr, srv func() *Server) {
		cs := make([]*benchClient, clients)
		for i := range cs {
			cs[i] = newBenchClient(b, addr)
		}
		if _, err := cs[0].get(name, 512); err != nil { // warms the signing cache
			b.Fatal(err)
		}
		var next atomic.Int64
		var failed atomic.Pointer[error]
		b.ResetTimer()
		start := time.Now()
		var wg sync.WaitGroup
		for _, c := range cs {
			wg.Go(func() {
				for next.Add(1) <= int64(b.N) {
					if _, err := c.get(name, 512); err != nil {
						failed.CompareAndSwap(nil, &err)
						return
					}
				}
			})
		}
		wg.Wait()
		b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "transfers/s")
		if err := failed.Load(); err != nil {
			b.Fatal(*err)
		}
		if srv != nil {
			if st := srv().Stats(); st.Signatures != 1 {
				b.Fatalf("%d signatures, want 1 (a warm cache)", st.Signatures)
			}
		}
	})
}

// BenchmarkTFTP1MiB measures the throughput of one 1 MiB transfer at a
// time, blksize 1428.
func BenchmarkTFTP1MiB(b *testing.B) {
	benchServers(b, func(b *testing.B, addr *net.UDPAddr, _ func() *Server) {
		c := newBenchClient(b, addr)
		b.SetBytes(1 << 20)
		b.ResetTimer()
		for b.Loop() {
			n, err := c.get("big.bin", 1428)
			if err != nil {
				b.Fatal(err)
			}
			if n != 1<<20 {
				b.Fatalf("%d bytes", n)
			}
		}
	})
}

// BenchmarkColdSignature measures what a request for a .sgn costs when it
// must be signed: with the cache off, every Open signs (RSA-2048, SHA-1),
// against a warm cache.
func BenchmarkColdSignature(b *testing.B) {
	for _, tc := range []struct {
		name  string
		cache int64
	}{{"cache=cold", -1}, {"cache=warm", 0}} {
		b.Run(tc.name, func(b *testing.B) {
			fx := newFixture(b)
			fx.srv.Logger = nil
			fx.srv.MaxCacheBytes = tc.cache
			name := testDevice + ".cnf.xml.sgn"
			for b.Loop() {
				f, err := fx.srv.Open(context.Background(), name)
				if err != nil {
					b.Fatal(err)
				}
				if len(f.Data) < 4096 {
					b.Fatal(errors.New("short"))
				}
			}
		})
	}
}
