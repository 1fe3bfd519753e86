package main

import (
	"context"
	"crypto/x509"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/ucsec/ucsec/capf"
	"github.com/ucsec/ucsec/tftpd"
)

var tftpGroup = &group{
	name:     "tftp",
	summary:  "serve phones their files over TFTP and HTTP, signing and encrypting them on the fly as CUCM's TFTP service does",
	commands: []*command{tftpServe},
}

var tftpServe = &command{
	name:     "serve",
	synopsis: "--root DIR [--cert FILE --key FILE --hash sha1|sha512] [--tftp ADDR] [--http ADDR] [--phone-certs DIR] [--capf-store DIR|URL] [--itl FILE] [--ctl FILE] [flags]",
	summary:  "serve a directory to phones over TFTP and HTTP, signing, encrypting and serving trust lists as CUCM's TFTP service does",
	help: `
Serve the files of --root, read-only, to phones: over TFTP on --tftp
(UDP, port 69 by convention; RFC 1350 with the blksize, tsize and
timeout options) and over HTTP on --http (TCP, port 6970 by convention,
with ETag and If-None-Match). An empty --tftp or --http turns that
service off. Nothing outside --root is served (no absolute or parent
path, no symbolic link out of it), nothing is ever written, and TFTP
write requests are refused.

With the TFTP signer (--cert, --key: the TFTP node's CallManager
certificate, an RSA key, which may be in a token; one PEM file may hold
both) and --hash (sha1, CUCM's default, or sha512), the service signs as
CUCM's does:
  NAME.sgn          where only NAME exists in --root: NAME signed on the
                    fly; signatures are cached by the source's content
                    and made again when it changes
  ITLFile.tlv       --itl FILE and --ctl FILE as given (or the files of
  CTLFile.tlv       that name in --root), also under the per-device
                    names ITLSEP<MAC>.tlv and CTLSEP<MAC>.tlv

With --phone-certs DIR (SEP<MAC>.pem phone certificates, read at each
request) or --capf-store DIR|URL (the LSCs of a CAPF store), the
configuration of each device whose certificate is known is encrypted to
it: SEP<MAC>.cnf.xml.enc.sgn, and the short signed SEP<MAC>.cnf.xml.sgn
that points to it; the plain SEP<MAC>.cnf.xml is then never served. A new
LSC means a new encryption at the next request. --encrypt limits this to
the devices it lists (comma-separated); a listed device whose certificate
is not known yet gets its configuration without digest credentials.
--exclude-digest strips the SIP digest credentials from every
configuration served unencrypted.

--capf-store is the --store of 'ucsec capf serve'. A PostgreSQL store is
read at each request, beside the CAPF servers that share it. A directory
store is opened at each request, which only works while no 'ucsec capf
serve' holds it: beside a running CAPF on a directory, give --phone-certs
a directory of the LSCs instead (or share a PostgreSQL store).

At most --max-transfers transfers run at once, and at most
--max-per-host for one host (an IPv4 address or an IPv6 /64; 0 for no
such bound); beyond them a request is refused as busy. A transfer is
ended after --transfer-timeout. The service logs one line per transfer
to standard error (client, file, bytes, result, whether signed,
encrypted or cached); no key, credential or file content is logged. Once
it listens it prints "tftp: listening on tftp ADDR" and "tftp: listening
on http ADDR". SIGINT or SIGTERM stops it: transfers under way may
finish for 5 seconds, and it exits with status 0.`,
	examples: []string{
		"ucsec tftp serve --root /srv/tftp",
		"ucsec tftp serve --root /srv/tftp --cert tftp.pem --key tftp.pem --hash sha1 --itl ITLFile.tlv --ctl CTLFile.tlv --phone-certs lsc/",
		"ucsec tftp serve --root /srv/tftp --cert tftp.pem --key tftp.pem --hash sha512 --capf-store 'postgres://tftp@db.example/uc?sslmode=verify-full' --tftp 10.0.0.5:69 --http 10.0.0.5:6970",
	},
	args:  noArgs,
	setup: func(fs *flag.FlagSet) action { return newTFTPServeCmd(fs).run },
}

type tftpServeCmd struct {
	keys          *keyPairFlags
	root          string
	hash          string
	tftpAddr      string
	httpAddr      string
	phoneCerts    string
	capfStore     string
	itl, ctl      string
	encrypt       string
	excludeDigest bool
	maxTransfers  int
	perHost       int
	timeout       time.Duration
	maxBlksize    int
}

func newTFTPServeCmd(fs *flag.FlagSet) *tftpServeCmd {
	c := &tftpServeCmd{keys: addKeyPairFlags(fs, "", "TFTP signer")}
	fs.StringVar(&c.root, "root", "", "serve the files of `DIR` (required)")
	fs.StringVar(&c.hash, "hash", "", "hash `ALG` of the signatures: sha1 or sha512 (required with --cert)")
	fs.StringVar(&c.tftpAddr, "tftp", ":69", "serve TFTP on UDP `ADDR`, host:port (empty: no TFTP)")
	fs.StringVar(&c.httpAddr, "http", ":6970", "serve HTTP on TCP `ADDR`, host:port (empty: no HTTP)")
	fs.StringVar(&c.phoneCerts, "phone-certs", "", "encrypt configurations to the phone certificates `DIR`/SEP<MAC>.pem")
	fs.StringVar(&c.capfStore, "capf-store", "", "encrypt configurations to the LSCs of the CAPF store `DIR|URL`")
	fs.StringVar(&c.itl, "itl", "", "serve the trust list `FILE` as ITLFile.tlv and ITL<device>.tlv")
	fs.StringVar(&c.ctl, "ctl", "", "serve the trust list `FILE` as CTLFile.tlv and CTL<device>.tlv")
	fs.StringVar(&c.encrypt, "encrypt", "", "encrypt only the configurations of `DEVICES`, comma-separated (default: every device with a certificate)")
	fs.BoolVar(&c.excludeDigest, "exclude-digest", false, "strip the SIP digest credentials from the configurations served unencrypted")
	fs.IntVar(&c.maxTransfers, "max-transfers", tftpd.DefaultMaxTransfers, "most concurrent transfers, `N`")
	fs.IntVar(&c.perHost, "max-per-host", tftpd.DefaultMaxPerHost, "most concurrent transfers for one host (IPv4 address or IPv6 /64), `N`, 0 for no such bound")
	fs.DurationVar(&c.timeout, "transfer-timeout", tftpd.DefaultTransferTimeout, "bound on one transfer, `DUR`")
	fs.IntVar(&c.maxBlksize, "max-blksize", tftpd.DefaultMaxBlockSize, "largest TFTP block size granted, `N` bytes, 512 to 65464")
	return c
}

func (c *tftpServeCmd) run(e *env, _ []string) error {
	switch {
	case c.root == "":
		return usageError("missing --root")
	case c.tftpAddr == "" && c.httpAddr == "":
		return usageError("nothing to serve on: --tftp and --http are both empty")
	case c.maxTransfers < 1:
		return usageError("--max-transfers must be at least 1")
	case c.perHost < 0:
		return usageError("--max-per-host must be 0 (no bound) or more")
	case c.timeout <= 0:
		return usageError("--transfer-timeout must be positive")
	case c.maxBlksize < 512 || c.maxBlksize > 65464:
		return usageError("--max-blksize must be from 512 to 65464")
	case c.phoneCerts != "" && c.capfStore != "":
		return usageError("give --phone-certs or --capf-store, not both")
	case c.encrypt != "" && c.phoneCerts == "" && c.capfStore == "":
		return usageError("--encrypt needs --phone-certs or --capf-store")
	}
	signing := c.keys.set()
	if !signing && (c.phoneCerts != "" || c.capfStore != "") {
		return usageError("encrypting configurations needs the TFTP signer: give --cert and --key")
	}
	if !signing && c.hash != "" {
		return usageError("--hash without --cert and --key: nothing to sign")
	}
	srv := &tftpd.Server{
		ExcludeDigest:   c.excludeDigest,
		MaxTransfers:    c.maxTransfers,
		MaxPerHost:      c.perHost,
		TransferTimeout: c.timeout,
		MaxBlockSize:    c.maxBlksize,
	}
	if c.perHost == 0 {
		srv.MaxPerHost = -1 // tftpd.Server: no per-host bound
	}
	if signing {
		var err error
		if srv.Hash, err = parseHash(c.hash, "sha1", "sha512"); err != nil {
			if c.hash == "" {
				return usageError("missing --hash (sha1 or sha512)")
			}
			return err
		}
		if srv.Certificate, srv.Key, err = c.keys.load(); err != nil {
			return err
		}
	}
	for _, tl := range []struct {
		path string
		dst  *[]byte
	}{{c.itl, &srv.ITL}, {c.ctl, &srv.CTL}} {
		if tl.path == "" {
			continue
		}
		data, err := readFile(tl.path)
		if err != nil {
			return err
		}
		*tl.dst = data
	}
	if c.encrypt != "" {
		devices := map[string]bool{}
		for d := range strings.SplitSeq(c.encrypt, ",") {
			if d = strings.TrimSpace(d); d != "" {
				devices[d] = true
			}
		}
		srv.Encrypt = func(dev string) bool { return devices[dev] }
	} else if c.phoneCerts != "" || c.capfStore != "" {
		srv.Encrypt = tftpd.EncryptAll
	}

	fi, err := os.Stat(c.root)
	if err != nil {
		return &fileError{c.root, withoutPath(err)}
	}
	if !fi.IsDir() {
		return &fileError{c.root, errors.New("is not a directory")}
	}
	root, err := os.OpenRoot(c.root)
	if err != nil {
		return &fileError{c.root, withoutPath(err)}
	}
	defer root.Close()
	srv.Root = root

	log := slog.New(slog.NewTextHandler(e.stderr, nil))
	srv.Logger = log
	switch {
	case c.phoneCerts != "":
		certRoot, err := os.OpenRoot(c.phoneCerts)
		if err != nil {
			return &fileError{c.phoneCerts, withoutPath(err)}
		}
		defer certRoot.Close()
		srv.PhoneCertificates = tftpd.CertDirectory{Root: certRoot}
	case c.capfStore != "":
		loc, err := parseStoreFlag(c.capfStore)
		if err != nil {
			return usageError(strings.Replace(err.Error(), "--store", "--capf-store", 1))
		}
		if loc.url != "" {
			loc.warnPassword(log, "tftp")
			st, err := openPostgres(loc, log, capfAdmin.openPostgres)
			if err != nil {
				return err
			}
			defer st.Close()
			srv.PhoneCertificates = tftpd.CAPFCertificates{Store: st}
		} else {
			path := filepath.Join(loc.dir, storeFileName)
			if _, err := os.Stat(path); err != nil {
				return &fileError{path, fmt.Errorf("%w: no CAPF store in %s", withoutPath(err), loc.dir)}
			}
			srv.PhoneCertificates = &boltPhoneCerts{path: path}
		}
	}

	// Everything is checked before anything listens.
	if err := srv.Check(); err != nil {
		return err
	}
	if signing {
		if now := time.Now(); now.Before(srv.Certificate.NotBefore) || now.After(srv.Certificate.NotAfter) {
			log.Warn("tftp: the TFTP certificate is not valid now", "not_before", srv.Certificate.NotBefore.UTC(), "not_after", srv.Certificate.NotAfter.UTC())
		}
	}

	var udp *net.UDPConn
	if c.tftpAddr != "" {
		addr, err := net.ResolveUDPAddr("udp", c.tftpAddr)
		if err != nil {
			return usageError(fmt.Sprintf("--tftp %s: %v", c.tftpAddr, err))
		}
		if udp, err = net.ListenUDP("udp", addr); err != nil {
			return err
		}
	}
	var tcp net.Listener
	if c.httpAddr != "" {
		if tcp, err = net.Listen("tcp", c.httpAddr); err != nil {
			if udp != nil {
				udp.Close()
			}
			return err
		}
	}
	ctx, stop := serverContext(c.root, log, "tftp: stopping: transfers under way may finish")
	defer stop()
	var wg sync.WaitGroup
	errs := make(chan error, 2)
	// Both sockets are open: what arrives now waits for the services.
	if udp != nil {
		fmt.Fprintf(e.stderr, "tftp: listening on tftp %s\n", udp.LocalAddr())
	}
	if tcp != nil {
		fmt.Fprintf(e.stderr, "tftp: listening on http %s\n", tcp.Addr())
	}
	if udp != nil {
		wg.Go(func() { errs <- srv.ServeTFTP(ctx, udp) })
	}
	if tcp != nil {
		wg.Go(func() { errs <- srv.ServeHTTPListener(ctx, tcp) })
	}
	attrs := []any{"root", c.root, "signing", signing, "encrypting", srv.Encrypt != nil, "exclude_digest", c.excludeDigest}
	if signing {
		attrs = append(attrs, "certificate", srv.Certificate.Subject.String(), "hash", strings.ToLower(hashLabel(srv.Hash)))
	}
	log.Info("tftp: serving", attrs...)
	// The first service to end ends the other.
	first := <-errs
	stop()
	wg.Wait()
	close(errs)
	for err := range errs {
		first = errors.Join(first, err)
	}
	if first != nil {
		return first
	}
	st := srv.Stats()
	log.Info("tftp: stopped", "transfers", st.Transfers, "failures", st.Failures, "signatures", st.Signatures, "encryptions", st.Encryptions)
	return nil
}

// boltPhoneCerts reads LSCs from a CAPF store directory's bbolt file,
// opening it for each lookup, so that it holds no lock between requests.
type boltPhoneCerts struct {
	path string
	mu   sync.Mutex // one open at a time: bbolt locks the file per process
}

func (b *boltPhoneCerts) PhoneCertificate(ctx context.Context, device string) (*x509.Certificate, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	st, err := capfAdmin.openBolt(b.path, directOpenTimeout)
	if errors.Is(err, capf.ErrStoreLocked) {
		return nil, fmt.Errorf("the CAPF store %s is in use (by 'ucsec capf serve'?): use --phone-certs or a PostgreSQL store beside a running CAPF", b.path)
	}
	if err != nil {
		return nil, err
	}
	defer st.Close()
	return tftpd.CAPFCertificates{Store: st}.PhoneCertificate(ctx, device)
}
