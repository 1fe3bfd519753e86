package main

import (
	"crypto/x509"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"time"

	"github.com/ucsec/ucsec/capf"
)

var capfServe = &command{
	name:     "serve",
	synopsis: "--store DIR|URL --cert FILE --key FILE [--listen ADDR] [flags]",
	summary:  "run a CAPF server that issues LSCs with its own CA",
	help: `
Run a CAPF server: phones (and 'ucsec capf enroll') connect over TLS to
--listen and carry out the operations scheduled for them with 'ucsec capf
schedule'. The CAPF certificate (--cert, --key: one PEM file may hold
both) is the server's TLS certificate and the CA that signs the LSCs, as
in the reference capfd. It must be a CA certificate: basic constraints
CA:TRUE with pathlen:0 and key usage keyCertSign and digitalSignature
(phones from CUCM 14SU2 on refuse it otherwise). The server does not
start with a certificate whose key usage lacks keyCertSign or
digitalSignature: without the latter no phone accepts its TLS handshake.
With --legacy-tls and an RSA key, the key usage should also hold
keyEncipherment, for the RSA key exchange 7900-series phones use; the
server warns if it does not. An LSC is valid for --validity days, and
never beyond the CAPF certificate.

--store is the server's directory, created with mode 0700: capf.db, the
operations, device records and every certificate issued, and admin.sock,
the socket on which the schedule, cancel and list commands reach the
running server (the server holds capf.db locked). Every change is on disk
before it is reported done.

--store may also be a PostgreSQL database, as a postgres:// or
postgresql:// URL, which several CAPF servers, each on its own host, may
share: a phone may enrol with any of them, and no certificate leaves a
server before the database holds it. There is no admin socket then:
schedule, cancel and list use the database directly, from any host.

` + postgresStoreHelp + `

The certificate authentication modes (lsc, mic) accept an LSC issued by
this CA, or a manufacturing certificate (MIC) that chains to --roots,
through --mic-intermediates if needed. Without --roots no MIC is accepted.
A phone may add its SUDI certificate (Secure Unique Device Identifier)
with signatures over the session. With --sudi-roots the SUDI must chain
to those roots (Cisco's SUDI roots, supplied by you), through
--sudi-intermediates if needed; without, only its signatures are
checked, so a self-made SUDI passes. --require-sudi refuses certificate
authentication without a SUDI; it needs --sudi-roots.

At most --max-conns sessions run at once, and at most
--max-conns-per-host from one host: an IPv4 address, or an IPv6 /64
prefix. Beyond either, a new connection is closed at once. Raise
--max-conns-per-host, or set it to 0 for no such bound, when many phones
reach the server through one NAT address. A connection that sends
nothing for 5 seconds is closed.

The server logs to standard error, one line per session; once it listens
it prints "capf: listening on ADDR". SIGINT or SIGTERM stops it: it stops
accepting, lets sessions under way finish (up to 30 seconds) and exits
with status 0. A second signal kills it.`,
	examples: []string{
		"ucsec capf serve --store /var/lib/capf --cert capf.pem --key capf.pem --listen :3804",
		"ucsec capf serve --store capf --cert capf.pem --key capf.pem --roots cisco-mic-roots.pem --allow-expired-mic --legacy-tls",
		"ucsec capf serve --store capf --cert capf.pem --key capf.pem --roots cisco-mic-roots.pem --sudi-roots cisco-sudi-roots.pem --require-sudi",
		"ucsec capf serve --store 'postgres://capf@db.example/uc?sslmode=verify-full' --cert capf.pem --key capf.pem",
	},
	args:  noArgs,
	setup: func(fs *flag.FlagSet) action { return newCapfServeCmd(fs).run },
}

type capfServeCmd struct {
	store           string
	listen          string
	keys            *keyPairFlags
	roots           string
	intermediates   string
	allowExpiredMIC bool
	legacyTLS       bool
	validity        int
	sudiRoots       string
	sudiInter       string
	requireSUDI     bool
	maxAuthFailures int
	authTimeout     time.Duration
	keygenTimeout   time.Duration
	maxConns        int
	maxConnsPerHost int
}

// maxValidityDays is capfd's bound on the LSC validity.
const maxValidityDays = 3560

func newCapfServeCmd(fs *flag.FlagSet) *capfServeCmd {
	c := new(capfServeCmd)
	storeFlag(fs, &c.store)
	fs.StringVar(&c.listen, "listen", ":3804", "listen on `ADDR`, host:port")
	c.keys = addKeyPairFlags(fs, "", "CAPF (CA)")
	fs.StringVar(&c.roots, "roots", "", "manufacturing root certificates `FILE` (PEM, several allowed) for MIC authentication")
	fs.StringVar(&c.intermediates, "mic-intermediates", "", "manufacturing intermediate certificates `FILE` (PEM)")
	fs.BoolVar(&c.allowExpiredMIC, "allow-expired-mic", false, "accept expired MICs (many 7900-series MICs are)")
	fs.StringVar(&c.sudiRoots, "sudi-roots", "", "SUDI root certificates `FILE` (PEM, several allowed) that a phone's SUDI must chain to")
	fs.StringVar(&c.sudiInter, "sudi-intermediates", "", "SUDI intermediate certificates `FILE` (PEM)")
	fs.BoolVar(&c.requireSUDI, "require-sudi", false, "refuse certificate authentication without a SUDI (needs --sudi-roots)")
	fs.BoolVar(&c.legacyTLS, "legacy-tls", false, "allow TLS 1.0 and 1.1 with CBC suites, for 7900-series phones")
	fs.IntVar(&c.validity, "validity", 365, fmt.Sprintf("LSC validity in `DAYS`, 1 to %d", maxValidityDays))
	fs.IntVar(&c.maxAuthFailures, "max-auth-failures", capf.DefaultMaxAuthFailures, "wrong authentication strings that lock an operation, `N`")
	fs.DurationVar(&c.authTimeout, "auth-timeout", capf.DefaultAuthTimeout, "bound on the TLS handshake and each device message, `DUR`")
	fs.DurationVar(&c.keygenTimeout, "keygen-timeout", capf.DefaultKeyGenTimeout, "how long a device may take to make its key, `DUR`")
	fs.IntVar(&c.maxConns, "max-conns", capf.DefaultMaxConns, "most concurrent sessions, `N`")
	fs.IntVar(&c.maxConnsPerHost, "max-conns-per-host", capf.DefaultMaxConnsPerHost, "most concurrent sessions from one host (IPv4 address or IPv6 /64), `N`, 0 for no such bound")
	return c
}

// storeFlag defines --store, the CAPF store all capf commands share.
func storeFlag(fs *flag.FlagSet, p *string) {
	fs.StringVar(p, "store", "", "CAPF store `DIR|URL`: a directory (capf.db, admin.sock) or a postgres:// URL, without the password (required)")
}

func (c *capfServeCmd) run(e *env, _ []string) error {
	store, err := parseStoreFlag(c.store)
	if err != nil {
		return err
	}
	switch {
	case c.validity < 1 || c.validity > maxValidityDays:
		return usageError(fmt.Sprintf("--validity must be between 1 and %d days", maxValidityDays))
	case c.maxAuthFailures < 1:
		return usageError("--max-auth-failures must be at least 1")
	case c.authTimeout <= 0:
		return usageError("--auth-timeout must be positive")
	case c.keygenTimeout < c.authTimeout:
		return usageError("--keygen-timeout must not be shorter than --auth-timeout")
	case c.intermediates != "" && c.roots == "":
		return usageError("--mic-intermediates needs --roots")
	case c.sudiInter != "" && c.sudiRoots == "":
		return usageError("--sudi-intermediates needs --sudi-roots")
	case c.requireSUDI && c.sudiRoots == "":
		return usageError("--require-sudi needs --sudi-roots: a SUDI checked against no roots proves nothing")
	case c.maxConns < 1:
		return usageError("--max-conns must be at least 1")
	case c.maxConnsPerHost < 0:
		return usageError("--max-conns-per-host must be 0 (no bound) or more")
	}
	cert, key, err := c.keys.load()
	if err != nil {
		return err
	}
	validity := time.Duration(c.validity) * 24 * time.Hour
	switch now := time.Now(); {
	case !cert.BasicConstraintsValid || !cert.IsCA:
		return fmt.Errorf("%s: the CAPF certificate must be a CA certificate (basic constraints CA:TRUE, pathlen:0)", c.keys.certPath)
	case cert.KeyUsage != 0 && cert.KeyUsage&x509.KeyUsageCertSign == 0:
		return fmt.Errorf("%s: the CAPF certificate's key usage lacks keyCertSign", c.keys.certPath)
	case now.Before(cert.NotBefore):
		return fmt.Errorf("%s: the CAPF certificate is not valid before %s", c.keys.certPath, cert.NotBefore.UTC().Format(time.RFC3339))
	case now.Add(validity).After(cert.NotAfter):
		return fmt.Errorf("%s: the CAPF certificate expires %s, before an LSC of %d days would: renew it or lower --validity",
			c.keys.certPath, cert.NotAfter.UTC().Format(time.RFC3339), c.validity)
	}
	tlsConfig, err := serverTLS(cert, key, c.legacyTLS, "CAPF", c.keys.certPath)
	if err != nil {
		return err
	}
	pools := make([]*x509.CertPool, 4)
	for i, path := range []string{c.roots, c.intermediates, c.sudiRoots, c.sudiInter} {
		if path == "" {
			continue
		}
		if pools[i], err = loadCertPool(path); err != nil {
			return err
		}
	}
	micRoots, micIntermediates, sudiRoots, sudiIntermediates := pools[0], pools[1], pools[2], pools[3]
	perHost := c.maxConnsPerHost
	if perHost == 0 {
		perHost = -1 // capf.Server: no per-host bound
	}

	log := slog.New(slog.NewTextHandler(e.stderr, nil))
	if !cert.BasicConstraintsValid || cert.MaxPathLen != 0 || !cert.MaxPathLenZero {
		log.Warn("capf: the CAPF certificate has no pathlen:0; phones from CUCM 14SU2 on may refuse it")
	}
	store.warnPassword(log, "capf")
	st, adminListener, err := capfAdmin.openServerStore(store, log)
	if err != nil {
		return err
	}
	defer st.Close()
	if adminListener != nil {
		defer adminListener.Close()
	}
	tcp, err := net.Listen("tcp", c.listen)
	if err != nil {
		return err
	}

	srv := &capf.Server{
		Store:             st,
		Issuer:            &capf.LocalCA{Certificate: cert, Signer: key, Validity: validity},
		TLSConfig:         tlsConfig,
		LegacyTLS:         c.legacyTLS,
		MICRoots:          micRoots,
		MICIntermediates:  micIntermediates,
		AllowExpiredMIC:   c.allowExpiredMIC,
		SUDIRoots:         sudiRoots,
		SUDIIntermediates: sudiIntermediates,
		RequireSUDI:       c.requireSUDI,
		MaxAuthFailures:   c.maxAuthFailures,
		AuthTimeout:       c.authTimeout,
		KeyGenTimeout:     c.keygenTimeout,
		MaxConns:          c.maxConns,
		MaxConnsPerHost:   perHost,
		Logger:            log,
	}
	ctx, stop := serverContext(c.store, log, "capf: stopping: sessions under way may finish")
	defer stop()

	fmt.Fprintf(e.stderr, "capf: listening on %s\n", tcp.Addr())
	adminDone := capfAdmin.serveAdmin(ctx, adminListener, st, log)
	log.Info("capf: serving", "addr", tcp.Addr().String(), "store", store.String(),
		"ca", cert.Subject.String(), "validity_days", c.validity, "legacy_tls", c.legacyTLS, "mic_roots", micRoots != nil,
		"sudi_roots", sudiRoots != nil, "require_sudi", c.requireSUDI, "max_conns", c.maxConns, "max_conns_per_host", c.maxConnsPerHost)
	err = srv.Serve(ctx, tcp)
	stop()
	adminDone()
	if !errors.Is(err, capf.ErrServerClosed) {
		return err
	}
	if err := st.Close(); err != nil {
		return err
	}
	log.Info("capf: stopped")
	return nil
}

// loadCertPool returns a pool of the certificates in the file path: PEM
// certificates, or one in DER.
func loadCertPool(path string) (*x509.CertPool, error) {
	certs, err := loadCertificates(path)
	if err != nil {
		return nil, err
	}
	pool := x509.NewCertPool()
	for _, c := range certs {
		pool.AddCert(c)
	}
	return pool, nil
}
