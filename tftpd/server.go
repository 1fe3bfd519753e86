package tftpd

import (
	"bytes"
	"context"
	"crypto"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/ucsec/ucsec/cnfenc"
	"github.com/ucsec/ucsec/ctl"
	"github.com/ucsec/ucsec/sgn"
)

// Defaults of the Server fields whose zero value means "the default".
const (
	DefaultMaxTransfers      = 256
	DefaultMaxPerHost        = 16
	DefaultMaxFileSize       = 64 << 20
	DefaultMaxMemory         = 512 << 20
	DefaultMaxCacheBytes     = 64 << 20
	DefaultTransferTimeout   = 10 * time.Minute
	DefaultRetransmitTimeout = time.Second
	DefaultRetries           = 5
	DefaultMaxBlockSize      = 65464 // the largest RFC 2348 allows
	DefaultShutdownTimeout   = 5 * time.Second
)

// A Server is CUCM's TFTP service: it serves the plain files of one
// directory, read-only, over TFTP (ServeTFTP) and HTTP (ServeHTTP,
// ServeHTTPListener), and makes what a phone of a secure cluster asks for
// on the fly: signed files, trust lists under the per-device names, and
// encrypted configurations. See the package documentation for what is
// served under which name.
//
// Set the fields before the first call and do not change them after.
// The zero value of each optional field is a safe default: no signing, no
// encryption, bounded transfers.
type Server struct {
	// Root is the directory served, opened with os.OpenRoot: nothing
	// outside it is read, whatever the name asked for or the symbolic
	// links inside it. The service never writes to it. Required.
	Root *os.Root

	// Certificate and Key are the TFTP signer (CUCM: the TFTP node's
	// CallManager certificate, in the phones' trust lists as TFTP or
	// CCM+TFTP): an RSA certificate and its private key, which may be in
	// a token. Without them nothing is signed or encrypted: a request for
	// NAME.sgn is answered only by a file of that name in Root.
	Certificate *x509.Certificate
	Key         crypto.Signer
	// Hash is the hash of the signatures (CUCM's "TFTP File Signature
	// Algorithm"): crypto.SHA1 (0 means SHA-1, CUCM's default) or
	// crypto.SHA512; crypto.SHA256 is defined by the format but accepted
	// by no known phone.
	Hash crypto.Hash

	// ITL and CTL are the trust lists served as ITLFile.tlv and
	// CTLFile.tlv, and under the per-device names ITL<device>.tlv and
	// CTL<device>.tlv, as given (build them with itl.Create and
	// ctl.Create). Each must parse as a trust list. If nil, the file of
	// that name in Root, if any, is served in the same way.
	ITL, CTL []byte

	// PhoneCertificates gives the certificate each device's configuration
	// is encrypted to: CAPFCertificates (a CAPF store) or CertDirectory
	// (DEVICE.pem files). Required when Encrypt is set.
	PhoneCertificates PhoneCertificates
	// Encrypt reports whether device's configuration is served encrypted
	// (CUCM's "TFTP Encrypted Config" of its security profile); device is
	// what precedes ".cnf.xml" in the name, such as "SEP001122334455".
	// nil means none is (use EncryptAll for all). A device it names whose
	// certificate PhoneCertificates knows gets DEVICE.cnf.xml.enc.sgn and
	// the short DEVICE.cnf.xml.sgn, and never its plain configuration; one
	// without a certificate yet gets its configuration without digest
	// credentials, as with ExcludeDigest. Needs Certificate and Key.
	Encrypt func(device string) bool
	// ExcludeDigest serves configurations (*.cnf.xml and the .sgn made
	// from them) without their SIP digest credentials (CUCM's "Exclude
	// Digest Credentials in Configuration File"), unless encrypted.
	ExcludeDigest bool

	// MaxTransfers bounds the transfers in progress, TFTP and HTTP
	// together; beyond it a request is refused as busy. 0 means
	// DefaultMaxTransfers.
	MaxTransfers int
	// MaxPerHost bounds the transfers in progress for one host (an IPv4
	// address, or an IPv6 /64), so that one host cannot take every place
	// of MaxTransfers. 0 means DefaultMaxPerHost; a negative value means
	// no per-host bound. Raise it for many phones behind one NAT address.
	MaxPerHost int
	// MaxFileSize bounds the files served, in bytes. 0 means
	// DefaultMaxFileSize.
	MaxFileSize int64
	// MaxMemory bounds the bytes that transfers in progress hold (each
	// holds the file it sends, read once); beyond it a request is refused
	// as busy. 0 means DefaultMaxMemory.
	MaxMemory int64
	// MaxCacheBytes bounds the signed and encrypted files kept. 0 means
	// DefaultMaxCacheBytes; a negative value keeps none (concurrent
	// requests for one file still share one signature).
	MaxCacheBytes int64
	// TransferTimeout bounds one transfer from request to last
	// acknowledgement (TFTP) or last byte written (HTTP). 0 means
	// DefaultTransferTimeout.
	TransferTimeout time.Duration
	// RetransmitTimeout is how long a TFTP transfer waits for an
	// acknowledgement before it sends again, unless the client asks for
	// another with the timeout option (RFC 2349). 0 means
	// DefaultRetransmitTimeout.
	RetransmitTimeout time.Duration
	// Retries is how many times a TFTP packet is sent again before the
	// transfer is given up. 0 means DefaultRetries.
	Retries int
	// MaxBlockSize caps the block size a TFTP client may ask for with
	// the blksize option (RFC 2348), in bytes, from 512 to 65464. 0 means
	// DefaultMaxBlockSize; lower it where IP fragments are lost.
	MaxBlockSize int
	// ShutdownTimeout is how long transfers in progress may go on after
	// the context of ServeTFTP or ServeHTTPListener is done. 0 means
	// DefaultShutdownTimeout.
	ShutdownTimeout time.Duration

	// Logger receives one record per transfer (client, file, bytes,
	// result, whether signed, encrypted or cached) and warnings; nil is
	// silent. No key, file content or credential is logged.
	Logger *slog.Logger
	// Time returns the signing time written in signed files. nil means
	// time.Now.
	Time func() time.Time
	// Rand is the source of the AES keys and IVs of encrypted
	// configurations. nil means crypto/rand.Reader.
	Rand io.Reader

	initOnce sync.Once
	initErr  error
	log      *slog.Logger
	hash     crypto.Hash
	signerID [sha256.Size]byte
	cache    *cache
	limit    *limiter
	itl, ctl []byte

	maxFileSize       int64
	transferTimeout   time.Duration
	retransmitTimeout time.Duration
	retries           int
	maxBlockSize      int
	shutdownTimeout   time.Duration

	transfers, failures, signed, encrypted atomic.Uint64
}

// EncryptAll is an Encrypt policy under which every device's
// configuration is encrypted once its certificate is known.
func EncryptAll(device string) bool { return true }

type discardHandler struct{}

func (discardHandler) Enabled(context.Context, slog.Level) bool  { return false }
func (discardHandler) Handle(context.Context, slog.Record) error { return nil }
func (d discardHandler) WithAttrs([]slog.Attr) slog.Handler      { return d }
func (d discardHandler) WithGroup(string) slog.Handler           { return d }

func orDefault[T int | int64 | time.Duration](v, def T) T {
	if v == 0 {
		return def
	}
	return v
}

func (s *Server) init() error {
	s.initOnce.Do(func() { s.initErr = s.setup() })
	return s.initErr
}

func (s *Server) setup() error {
	s.log = s.Logger
	if s.log == nil {
		s.log = slog.New(discardHandler{})
	}
	if s.Root == nil {
		return fmt.Errorf("%w: no Root", ErrConfig)
	}
	switch s.Hash {
	case 0:
		s.hash = crypto.SHA1
	case crypto.SHA1, crypto.SHA256, crypto.SHA512:
		s.hash = s.Hash
	default:
		return fmt.Errorf("%w: Hash %v (want SHA-1, SHA-256 or SHA-512)", ErrConfig, s.Hash)
	}
	if (s.Certificate == nil) != (s.Key == nil) {
		return fmt.Errorf("%w: Certificate and Key go together", ErrConfig)
	}
	if s.Certificate != nil {
		pub, ok := s.Certificate.PublicKey.(*rsa.PublicKey)
		if !ok {
			return fmt.Errorf("%w: the TFTP certificate's key is not RSA (signed files are RSA only)", ErrConfig)
		}
		if !pub.Equal(s.Key.Public()) {
			return fmt.Errorf("%w: Key is not the key of Certificate", ErrConfig)
		}
		s.signerID = sha256.Sum256(s.Certificate.Raw)
	}
	if s.Encrypt != nil {
		if s.Certificate == nil {
			return fmt.Errorf("%w: Encrypt needs Certificate and Key to sign what it encrypts", ErrConfig)
		}
		if s.PhoneCertificates == nil {
			return fmt.Errorf("%w: Encrypt needs PhoneCertificates", ErrConfig)
		}
	}
	for _, tl := range []struct {
		name string
		data []byte
		dst  *[]byte
	}{{ITLName, s.ITL, &s.itl}, {CTLName, s.CTL, &s.ctl}} {
		if tl.data == nil {
			continue
		}
		if _, err := ctl.Parse(tl.data); err != nil {
			return fmt.Errorf("%w: %s: %w", ErrConfig, tl.name, err)
		}
		*tl.dst = bytes.Clone(tl.data)
	}
	if s.MaxTransfers < 0 || s.MaxFileSize < 0 || s.MaxMemory < 0 || s.TransferTimeout < 0 ||
		s.RetransmitTimeout < 0 || s.Retries < 0 || s.ShutdownTimeout < 0 {
		return fmt.Errorf("%w: a negative limit", ErrConfig)
	}
	if s.MaxBlockSize != 0 && (s.MaxBlockSize < 512 || s.MaxBlockSize > 65464) {
		return fmt.Errorf("%w: MaxBlockSize %d (want 512 to 65464)", ErrConfig, s.MaxBlockSize)
	}
	perHost := orDefault(s.MaxPerHost, DefaultMaxPerHost)
	if perHost < 0 {
		perHost = 0
	}
	s.limit = newLimiter(orDefault(s.MaxTransfers, DefaultMaxTransfers), perHost, orDefault(s.MaxMemory, DefaultMaxMemory))
	s.cache = newCache(orDefault(s.MaxCacheBytes, DefaultMaxCacheBytes))
	s.maxFileSize = orDefault(s.MaxFileSize, DefaultMaxFileSize)
	s.transferTimeout = orDefault(s.TransferTimeout, DefaultTransferTimeout)
	s.retransmitTimeout = orDefault(s.RetransmitTimeout, DefaultRetransmitTimeout)
	s.retries = orDefault(s.Retries, DefaultRetries)
	s.maxBlockSize = orDefault(s.MaxBlockSize, DefaultMaxBlockSize)
	s.shutdownTimeout = orDefault(s.ShutdownTimeout, DefaultShutdownTimeout)
	return nil
}

// Check returns an error wrapping ErrConfig if the fields of s cannot
// work together (no Root, a Key that is not Certificate's, a trust list
// that does not parse, ...). The services and Open check them at their
// first use; Check lets a program fail before it listens.
func (s *Server) Check() error { return s.init() }

// A File is what the service sends for a name: the bytes, and how they
// were made.
type File struct {
	// Name is the name asked for, cleaned (see CleanName).
	Name string
	// Data is what is sent. It may be shared with the cache and with
	// other requests: do not modify it.
	Data []byte
	// Source is the file of the root Data was read or made from, "" for
	// a trust list given in Server.ITL or Server.CTL.
	Source string
	// ModTime is the modification time of Source, zero for a file made
	// for a phone certificate (an encrypted or short configuration),
	// which can change while its source does not.
	ModTime time.Time
	// Signed reports that this service signed Data (NAME.sgn made from
	// NAME, or a short configuration); a file served as it is in the
	// root is not, even if it is a signed file.
	Signed bool
	// Encrypted reports an encrypted configuration (.cnf.xml.enc.sgn).
	Encrypted bool
	// Stripped reports a configuration served without its digest
	// credentials.
	Stripped bool
	// Cached reports that Data was not made for this request: taken from
	// the cache, or made for a concurrent request for the same file.
	Cached bool

	etag string
}

// ETag returns a strong HTTP entity tag of Data (RFC 9110 §8.8.3).
func (f *File) ETag() string {
	if f.etag == "" {
		f.etag = etagOf(f.Data)
	}
	return f.etag
}

// Open returns what the service sends for name, as TFTP and HTTP
// requests get it, without the per-transfer limits (MaxTransfers,
// MaxPerHost, MaxMemory), which bound the network services. ctx bounds
// the phone-certificate lookup and the wait for a signature that another
// request is making. Errors wrap ErrNotFound, ErrForbidden, ErrTooLarge,
// ErrUnavailable or ErrConfig.
func (s *Server) Open(ctx context.Context, name string) (*File, error) {
	if err := s.init(); err != nil {
		return nil, err
	}
	return s.open(ctx, name, nil)
}

// Stats are counters of a Server, for monitoring and tests.
type Stats struct {
	Transfers    uint64 // transfers completed (TFTP and HTTP)
	Failures     uint64 // transfers that failed or were refused
	Signatures   uint64 // signed files made (.sgn and short configurations)
	Encryptions  uint64 // encrypted configurations made
	CacheHits    uint64 // products taken from the cache or a concurrent request
	CacheEntries int    // products in the cache
	CacheBytes   int64  // their size
	Active       int    // transfers in progress
	Memory       int64  // bytes they hold
}

// Stats returns the server's counters.
func (s *Server) Stats() Stats {
	if s.init() != nil {
		return Stats{}
	}
	st := Stats{
		Transfers:   s.transfers.Load(),
		Failures:    s.failures.Load(),
		Signatures:  s.signed.Load(),
		Encryptions: s.encrypted.Load(),
		CacheHits:   s.cache.hits.Load(),
	}
	st.CacheEntries, st.CacheBytes = s.cache.usage()
	st.Active, st.Memory = s.limit.inUse()
	return st
}

// source is a file of the root as read for one request.
type source struct {
	name    string
	data    []byte
	modTime time.Time
	sum     [sha256.Size]byte
	summed  bool
}

func (src *source) hash() [sha256.Size]byte {
	if !src.summed {
		src.sum, src.summed = sha256.Sum256(src.data), true
	}
	return src.sum
}

func (s *Server) open(ctx context.Context, name string, sl *slot) (*File, error) {
	clean, err := CleanName(name)
	if err != nil {
		return nil, err
	}
	if generic, perDevice, ok := trustList(clean); ok {
		return s.openTrustList(clean, generic, perDevice, sl)
	}
	strip := s.ExcludeDigest
	if dev, suffix, ok := deviceConfig(clean); ok && s.Encrypt != nil && s.Encrypt(dev) {
		phone, err := s.PhoneCertificates.PhoneCertificate(ctx, dev)
		if err != nil {
			return nil, fmt.Errorf("%w: %s: phone certificate of %s: %w", ErrUnavailable, clean, dev, err)
		}
		if phone != nil {
			return s.openEncrypted(ctx, clean, dev, suffix, phone, sl)
		}
		strip = true // encryption is wanted: no credentials in clear meanwhile
	}
	return s.openFile(ctx, clean, strip, sl)
}

func (s *Server) openTrustList(name, generic string, perDevice bool, sl *slot) (*File, error) {
	if perDevice {
		// A per-device list in the root is served as it is.
		src, err := s.read(name, sl)
		if err == nil {
			return &File{Name: name, Data: src.data, Source: name, ModTime: src.modTime}, nil
		}
		if !errors.Is(err, ErrNotFound) {
			return nil, err
		}
	}
	if list := map[string][]byte{ITLName: s.itl, CTLName: s.ctl}[generic]; list != nil {
		return &File{Name: name, Data: list}, nil
	}
	src, err := s.read(generic, sl)
	if err != nil {
		return nil, err
	}
	return &File{Name: name, Data: src.data, Source: generic, ModTime: src.modTime}, nil
}

// openFile serves name as it is in the root, or NAME.sgn signed from
// NAME; a configuration without its digest credentials if strip.
func (s *Server) openFile(ctx context.Context, name string, strip bool, sl *slot) (*File, error) {
	src, err := s.read(name, sl)
	if err == nil {
		f := &File{Name: name, Data: src.data, Source: name, ModTime: src.modTime}
		if strip && strings.HasSuffix(name, configSuffix) {
			return s.stripped(ctx, f, src, sl)
		}
		return f, nil
	}
	base, isSgn := strings.CutSuffix(name, sgnSuffix)
	if !errors.Is(err, ErrNotFound) || !isSgn || s.Certificate == nil || base == "" || strings.HasSuffix(base, "/") {
		return nil, err
	}
	src, err = s.read(base, sl)
	if err != nil {
		return nil, err
	}
	strip = strip && strings.HasSuffix(base, configSuffix)
	key := cacheKey{kind: kindSigned, strip: strip, name: name, source: src.hash(), hash: s.hash, signer: s.signerID}
	data, etag, shared, err := s.cache.get(ctx, key, func() ([]byte, error) {
		payload := src.data
		if strip {
			var err error
			if payload, _, err = cnfenc.ExcludeDigestCredentials(payload); err != nil {
				return nil, err
			}
		}
		out, err := sgn.Sign(nil, payload, s.Certificate, s.Key, sgn.SignOptions{Filename: name, Hash: s.hash, Time: s.Time})
		if err == nil {
			s.signed.Add(1)
		}
		return out, err
	})
	if err != nil {
		return nil, s.madeErr(ctx, name, err)
	}
	if err := sl.reserve(int64(len(data))); err != nil {
		return nil, err
	}
	return &File{Name: name, Data: data, Source: base, ModTime: src.modTime, Signed: true, Stripped: strip, Cached: shared, etag: etag}, nil
}

func (s *Server) stripped(ctx context.Context, f *File, src *source, sl *slot) (*File, error) {
	key := cacheKey{kind: kindStripped, strip: true, name: f.Name, source: src.hash()}
	data, etag, shared, err := s.cache.get(ctx, key, func() ([]byte, error) {
		out, _, err := cnfenc.ExcludeDigestCredentials(src.data)
		return out, err
	})
	if err != nil {
		return nil, s.madeErr(ctx, f.Name, err)
	}
	if err := sl.reserve(int64(len(data))); err != nil {
		return nil, err
	}
	f.Data, f.etag, f.Stripped, f.Cached = data, etag, true, shared
	return f, nil
}

// openEncrypted serves the configuration of a device whose configuration
// is encrypted to phone: the encrypted file, the short configuration
// (signed, or plain for DEVICE.cnf.xml), never the full one in clear.
func (s *Server) openEncrypted(ctx context.Context, name, dev, suffix string, phone *x509.Certificate, sl *slot) (*File, error) {
	src, err := s.read(dev+configSuffix, sl)
	if err != nil {
		return nil, err
	}
	key := cacheKey{name: name, source: src.hash(), cert: sha256.Sum256(phone.Raw), hash: s.hash, signer: s.signerID}
	var build func() ([]byte, error)
	switch suffix {
	case encSuffix:
		key.kind = kindEncrypted
		build = func() ([]byte, error) {
			out, err := cnfenc.Encrypt(s.Rand, src.data, phone, s.Certificate, s.Key, cnfenc.EncryptOptions{Filename: name, Hash: s.hash, Time: s.Time})
			if err == nil {
				s.encrypted.Add(1)
			}
			return out, err
		}
	case shortSuffix:
		key.kind = kindShort
		build = func() ([]byte, error) {
			short, err := cnfenc.ShortConfig(src.data, phone)
			if err != nil {
				return nil, err
			}
			out, err := sgn.Sign(nil, short, s.Certificate, s.Key, sgn.SignOptions{Filename: name, Hash: s.hash, Time: s.Time})
			if err == nil {
				s.signed.Add(1)
			}
			return out, err
		}
	default: // configSuffix: a phone without a trust list gets the short configuration unsigned
		key.kind = kindShortPlain
		build = func() ([]byte, error) { return cnfenc.ShortConfig(src.data, phone) }
	}
	data, etag, shared, err := s.cache.get(ctx, key, build)
	if err != nil {
		return nil, s.madeErr(ctx, name, err)
	}
	if err := sl.reserve(int64(len(data))); err != nil {
		return nil, err
	}
	return &File{Name: name, Data: data, Source: src.name, Signed: suffix != configSuffix, Encrypted: suffix == encSuffix, Cached: shared, etag: etag}, nil
}

// madeErr wraps an error of making a product: the request's own context
// ending, or ErrUnavailable.
func (s *Server) madeErr(ctx context.Context, name string, err error) error {
	if ctxErr := ctx.Err(); ctxErr != nil && errors.Is(err, ctxErr) {
		return fmt.Errorf("tftpd: %s: %w", name, err)
	}
	return fmt.Errorf("%w: %s: %w", ErrUnavailable, name, err)
}

// read reads a regular file of the root whole, once: what a transfer
// sends is one version of it, whatever happens to the file meanwhile. A
// file replaced by rename is read as it was when opened; one written in
// place while it is read is read again (once), then refused.
func (s *Server) read(name string, sl *slot) (*source, error) {
	for attempt := 0; ; attempt++ {
		src, changed, err := s.readOnce(name, sl)
		if err != nil || !changed {
			return src, err
		}
		if attempt == 1 {
			return nil, fmt.Errorf("%w: %s changed while it was read", ErrUnavailable, name)
		}
	}
}

func (s *Server) readOnce(name string, sl *slot) (src *source, changed bool, err error) {
	// Stat first, so that a FIFO or a device is never opened; then check
	// again what was opened, in case it was replaced in between.
	fi, err := s.Root.Stat(name)
	if err != nil {
		return nil, false, s.openErr(name, err)
	}
	if !fi.Mode().IsRegular() {
		return nil, false, fmt.Errorf("%w: %s is not a regular file", ErrForbidden, name)
	}
	f, err := s.Root.OpenFile(name, os.O_RDONLY|syscall.O_NONBLOCK|syscall.O_NOCTTY, 0)
	if err != nil {
		return nil, false, s.openErr(name, err)
	}
	defer f.Close()
	if fi, err = f.Stat(); err != nil {
		return nil, false, fmt.Errorf("%w: %s: %w", ErrUnavailable, name, err)
	}
	if !fi.Mode().IsRegular() {
		return nil, false, fmt.Errorf("%w: %s is not a regular file", ErrForbidden, name)
	}
	size := fi.Size()
	if size > s.maxFileSize {
		return nil, false, fmt.Errorf("%w: %s has %d bytes (MaxFileSize %d)", ErrTooLarge, name, size, s.maxFileSize)
	}
	if err := sl.reserve(size); err != nil {
		return nil, false, err
	}
	data := make([]byte, size)
	if _, err := io.ReadFull(f, data); err != nil {
		if errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF) {
			return nil, true, nil // shrunk
		}
		return nil, false, fmt.Errorf("%w: %s: %w", ErrUnavailable, name, err)
	}
	var one [1]byte
	if n, _ := f.Read(one[:]); n > 0 {
		return nil, true, nil // grew
	}
	after, err := f.Stat()
	if err != nil {
		return nil, false, fmt.Errorf("%w: %s: %w", ErrUnavailable, name, err)
	}
	if after.Size() != size || !after.ModTime().Equal(fi.ModTime()) {
		return nil, true, nil
	}
	return &source{name: name, data: data, modTime: fi.ModTime()}, false, nil
}

// openErr maps an error of opening name through the root: a missing file
// (or a missing directory on the way) is not found; anything else (an
// escape from the root, a loop, a permission) is refused.
func (s *Server) openErr(name string, err error) error {
	if errors.Is(err, fs.ErrNotExist) || errors.Is(err, syscall.ENOTDIR) {
		return fmt.Errorf("%w: %s", ErrNotFound, name)
	}
	return fmt.Errorf("%w: %s: %w", ErrForbidden, name, err)
}
