package main

// The file service phones fetch their trust lists and configurations
// from: package tftpd over TFTP (what phones use by default, UDP) and
// HTTP (CUCM's port 6970), serving the cluster's file directory; and the
// phones' side of it.

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"net"
	"os"
	"strings"
	"time"

	"github.com/pin/tftp/v3"

	"github.com/ucsec/ucsec/tftpd"
)

// How phones fetch their files (clusterOptions.Files, -files).
const (
	filesTFTP = "tftp"
	filesHTTP = "http"
)

// newFileService makes the file service of the cluster's file directory:
// the files the cluster wrote, served as they are, over TFTP and HTTP.
// Every simulated phone comes from the loopback address, and all may
// fetch at once: no per-host bound.
func (c *cluster) newFileService(log *slog.Logger) error {
	root, err := os.OpenRoot(c.tftpDir)
	if err != nil {
		return err
	}
	c.files = &tftpd.Server{
		Root:         root,
		MaxTransfers: 4096,
		MaxPerHost:   -1,
		Logger:       log.With("service", "files"),
	}
	return c.files.Check()
}

// serveTFTP serves the file service over TFTP on udp until ctx is done.
func (c *cluster) serveTFTP(ctx context.Context, udp *net.UDPConn) {
	c.serve(&c.wg, "tftp", func() error { return c.files.ServeTFTP(ctx, udp) })
}

// fileURL is the base URL phones fetch from: "tftp://127.0.0.1:PORT/",
// or "http://127.0.0.1:PORT/" for -files http.
func fileURL(files string, udp *net.UDPConn, tcp net.Listener) (string, error) {
	switch files {
	case "", filesTFTP:
		return "tftp://" + udp.LocalAddr().String() + "/", nil
	case filesHTTP:
		return "http://" + tcp.Addr().String() + "/", nil
	}
	return "", fmt.Errorf("cluster: files over %q (want tftp or http)", files)
}

// tftpBlockSize is the block size phones ask for (RFC 2348): the largest
// that fits an Ethernet frame with the IP and UDP headers, as CUCM
// documents for its TFTP service.
const tftpBlockSize = 1428

// tftpGet fetches name from the TFTP server at addr, as a phone does: in
// octet mode, asking for blksize and tsize, each packet sent again after
// a second without an answer, five times at most.
func tftpGet(ctx context.Context, addr, name string) ([]byte, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	cl, err := tftp.NewClient(addr)
	if err != nil {
		return nil, err
	}
	cl.SetTimeout(time.Second)
	cl.SetRetries(5)
	cl.SetBlockSize(tftpBlockSize)
	cl.RequestTSize(true)
	wt, err := cl.Receive(name, "octet")
	if err != nil {
		return nil, tftpError(name, err)
	}
	if it, ok := wt.(tftp.IncomingTransfer); ok {
		if n, ok := it.Size(); ok && n > maxDownload {
			return nil, fmt.Errorf("%s: larger than %d bytes", name, maxDownload)
		}
	}
	var buf limitedBuffer
	if _, err := wt.WriteTo(&buf); err != nil {
		return nil, tftpError(name, err)
	}
	return buf.Bytes(), nil
}

// tftpError is an error of a TFTP download, named as an HTTP one is.
func tftpError(name string, err error) error {
	if strings.Contains(err.Error(), "File not found") {
		return fmt.Errorf("%s: not found (TFTP): %w", name, err)
	}
	return fmt.Errorf("%s: TFTP: %w", name, err)
}

// limitedBuffer takes at most maxDownload bytes.
type limitedBuffer struct{ bytes.Buffer }

var errTooLarge = fmt.Errorf("larger than %d bytes", maxDownload)

func (b *limitedBuffer) Write(p []byte) (int, error) {
	if b.Len()+len(p) > maxDownload {
		return 0, errTooLarge
	}
	return b.Buffer.Write(p)
}

// A fetchFunc downloads a file of the file service by name.
type fetchFunc func(ctx context.Context, name string) ([]byte, error)

// fetch returns how p downloads from c's file service: over TFTP, or with
// its HTTP client for -files http.
func (p *phone) fetch(c *cluster) fetchFunc {
	return func(ctx context.Context, name string) ([]byte, error) {
		return download(ctx, p.client(), c.FileURL, name)
	}
}
