package main

// The entries of a TVS store: "ucsec tvs list", "add" and "remove", and
// their operations on the admin socket of "ucsec tvs serve" (see
// admin.go): a request is a tvsAdminRequest, its result a
// tvsAdminResult.

import (
	"context"
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/ucsec/ucsec/ctl"
	"github.com/ucsec/ucsec/internal/pemutil"
	"github.com/ucsec/ucsec/stores/postgres"
	"github.com/ucsec/ucsec/tvs"
)

// Files in a TVS --store directory. The socket's name differs from the
// CAPF's, so that one directory may hold the stores of both.
const (
	tvsStoreFileName  = "tvs.db"
	tvsSocketFileName = "tvs.sock"
)

// tvsAdmin is the admin socket of "tvs serve", and the way of the list,
// add and remove commands to its store.
var tvsAdmin = &adminService[tvs.Store, tvsAdminRequest, tvsAdminResult]{
	group:      "tvs",
	name:       "TVS",
	storeFile:  tvsStoreFileName,
	socketFile: tvsSocketFileName,
	openBolt: func(path string, timeout time.Duration) (tvs.Store, error) {
		st, err := tvs.OpenBoltStore(path, &tvs.BoltOptions{Timeout: timeout})
		if err != nil {
			return nil, err
		}
		return st, nil
	},
	locked: tvs.ErrStoreLocked,
	openPostgres: func(ctx context.Context, connString string, opts *postgres.Options) (tvs.Store, error) {
		st, err := postgres.OpenTVSStore(ctx, connString, opts)
		if err != nil {
			return nil, err
		}
		return st, nil
	},
	firstUse: "add an entry with 'ucsec tvs add'",
	handle:   handleTVSAdmin,
	describe: func(req *tvsAdminRequest) []any {
		attrs := []any{"op", req.Op}
		if n := len(req.Entries) + len(req.Sums); n > 0 {
			attrs = append(attrs, "certificates", n)
		}
		return attrs
	},
	kinds: []adminErrorKind{
		{"not-found", tvs.ErrNotFound},
		{"invalid", tvs.ErrInvalid},
	},
}

// A tvsAdminRequest is one request on the admin socket of "tvs serve".
type tvsAdminRequest struct {
	// Op is "list", "add" or "remove".
	Op string `json:"op"`
	// Entries are the entries to add.
	Entries []*tvsEntryRequest `json:"entries,omitempty"`
	// Sums are the SHA-256 hashes of the certificates to remove.
	Sums []hexBytes `json:"sums,omitempty"`
}

// A tvsEntryRequest is a tvs.Entry on the admin socket.
type tvsEntryRequest struct {
	Certificate []byte     `json:"certificate"` // DER
	Roles       []ctl.Role `json:"roles"`
	TTL         int64      `json:"ttl,omitempty"` // seconds; 0 for the server's default
}

// A tvsAdminResult is the result of a tvsAdminRequest: the entries
// listed, added or removed.
type tvsAdminResult struct {
	Entries []*tvsEntryReport `json:"entries,omitempty"`
}

// A tvsEntryReport is one entry as "tvs list" shows it.
type tvsEntryReport struct {
	Certificate string   `json:"certificate"` // the subject
	SHA256      hexBytes `json:"sha256"`
	Roles       []string `json:"roles"`
	TTL         int64    `json:"ttl"` // seconds; 0 for the server's default (tvs serve --ttl)
}

func newTVSEntryReport(e *tvs.Entry) *tvsEntryReport {
	sum := e.Sum()
	r := &tvsEntryReport{Certificate: e.Certificate.Subject.String(), SHA256: sum[:], Roles: []string{}, TTL: int64(e.TTL / time.Second)}
	for _, role := range e.Roles {
		r.Roles = append(r.Roles, role.ShortName())
	}
	return r
}

// ttlText returns the TTL of a report as the commands print it.
func (r *tvsEntryReport) ttlText() string {
	if r.TTL == 0 {
		return "default"
	}
	return (time.Duration(r.TTL) * time.Second).String()
}

// handleTVSAdmin carries out req on st. The server runs it for requests
// on its socket, the commands on a store they opened themselves.
func handleTVSAdmin(ctx context.Context, st tvs.Store, req *tvsAdminRequest, _ time.Time) (*tvsAdminResult, error) {
	res := &tvsAdminResult{}
	switch req.Op {
	case "list":
		entries, err := tvs.Entries(ctx, st)
		if err != nil {
			return nil, err
		}
		for _, e := range entries {
			res.Entries = append(res.Entries, newTVSEntryReport(e))
		}
	case "add":
		if len(req.Entries) == 0 {
			return nil, fmt.Errorf("%w: add request without entries", tvs.ErrInvalid)
		}
		// Every entry is checked before the store changes.
		staged := tvs.NewMemoryStore()
		for i, r := range req.Entries {
			cert, err := x509.ParseCertificate(r.Certificate)
			if err != nil {
				return nil, fmt.Errorf("%w: entry %d: certificate: %v", tvs.ErrInvalid, i+1, err)
			}
			if r.TTL < 0 || r.TTL > int64(tvs.MaxTTL/time.Second) {
				return nil, fmt.Errorf("%w: entry %d: TTL of %d seconds", tvs.ErrInvalid, i+1, r.TTL)
			}
			e := &tvs.Entry{Certificate: cert, Roles: r.Roles, TTL: time.Duration(r.TTL) * time.Second}
			if err := tvs.Put(ctx, staged, e); err != nil {
				return nil, fmt.Errorf("%w (certificate %s)", err, cert.Subject)
			}
		}
		if err := copyEntries(ctx, staged, st, false); err != nil {
			return nil, err
		}
		entries, err := tvs.Entries(ctx, staged)
		if err != nil {
			return nil, err
		}
		for _, e := range entries {
			res.Entries = append(res.Entries, newTVSEntryReport(e))
		}
	case "remove":
		if len(req.Sums) == 0 {
			return nil, fmt.Errorf("%w: remove request without certificates", tvs.ErrInvalid)
		}
		// Every certificate must be there before any is removed.
		sums := make([][32]byte, len(req.Sums))
		for i, s := range req.Sums {
			if len(s) != sha256.Size {
				return nil, fmt.Errorf("%w: SHA-256 hash of %d bytes", tvs.ErrInvalid, len(s))
			}
			sums[i] = [32]byte(s)
			e, err := tvs.Lookup(ctx, st, sums[i])
			switch {
			case err == nil:
				res.Entries = append(res.Entries, newTVSEntryReport(e))
			case errors.Is(err, tvs.ErrCorrupt), errors.Is(err, tvs.ErrStoreVersion):
				// A record this version cannot read may still be removed.
				res.Entries = append(res.Entries, &tvsEntryReport{Certificate: "(unreadable record)", SHA256: s, Roles: []string{}})
			default:
				return nil, err
			}
		}
		for _, sum := range sums {
			if err := st.Delete(ctx, sum); err != nil {
				return nil, err
			}
		}
	default:
		return nil, fmt.Errorf("%w: unknown admin request %q", tvs.ErrInvalid, req.Op)
	}
	return res, nil
}

// tvsStoreFlag defines --store for the tvs commands that manage entries.
func tvsStoreFlag(fs *flag.FlagSet, p *string) {
	fs.StringVar(p, "store", "", "TVS store `DIR|URL`, as 'tvs serve --store': a directory or a postgres:// URL, without the password (required)")
}

// tvsStoreReach is the paragraph of the help of list, add and remove on
// how they reach the store.
const tvsStoreReach = `--store is the store of 'ucsec tvs serve' (see its help): a directory,
whose running server the command asks through its admin socket,
DIR/tvs.sock, or whose file DIR/tvs.db it opens itself when no server
runs; or a PostgreSQL database, as a postgres:// URL, which the command
uses directly, from any host, as every TVS server that uses it does.
Give the database's password in PGPASSWORD or a password file
(PGPASSFILE, ~/.pgpass), never in the URL. A running server answers with
the change at once: it reads the store for each request.`

var tvsList = &command{
	name:     "list",
	synopsis: "--store DIR|URL [--json]",
	summary:  "list the certificates a TVS store vouches for",
	help: `
List the entries of a TVS store, sorted by subject: each certificate's
SHA-256 hash (the key a phone's request is looked up by), its roles, the
TTL for which a phone may keep the verdict ("default": the --ttl of the
server), and its subject. --json prints one object per entry:
{"certificate", "sha256", "roles", "ttl"}, the TTL in seconds, 0 for the
server's default.

` + tvsStoreReach,
	examples: []string{
		"ucsec tvs list --store /var/lib/tvs",
		"ucsec tvs list --store 'postgres://tvs@db.example/uc?sslmode=verify-full' --json",
	},
	args: noArgs,
	setup: func(fs *flag.FlagSet) action {
		var store string
		var asJSON bool
		tvsStoreFlag(fs, &store)
		jsonFlag(fs, &asJSON)
		return func(e *env, _ []string) error {
			loc, err := parseStoreFlag(store)
			if err != nil {
				return err
			}
			res, err := tvsAdmin.call(context.Background(), loc, &tvsAdminRequest{Op: "list"}, false)
			if err != nil {
				return err
			}
			if asJSON {
				for _, r := range res.Entries {
					if err := e.printJSON(r); err != nil {
						return err
					}
				}
				return nil
			}
			tw := tabwriter.NewWriter(e.stdout, 0, 0, 2, ' ', 0)
			fmt.Fprintln(tw, "SHA-256\tROLES\tTTL\tCERTIFICATE")
			for _, r := range res.Entries {
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", hex.EncodeToString(r.SHA256), strings.Join(r.Roles, ","), r.ttlText(), printable(r.Certificate))
			}
			return tw.Flush()
		}
	},
}

var tvsAdd = &command{
	name:     "add",
	synopsis: "--store DIR|URL --trust ROLES=CERT... [--ttl DUR]",
	summary:  "add certificates to a TVS store, or change their roles",
	help: `
Add the certificates of each --trust ROLES=CERT to a TVS store: the
certificates in CERT (PEM, several allowed, or one DER), in ROLES, a
comma-separated list of sast, ccm, ccm+tftp, tftp, capf, app-server and
tvs, as 'ucsec tvs serve --trust' takes them. A certificate the store
holds already gets the roles and TTL given here, not the union with what
it had; one given twice gets those of its last --trust. --ttl is how long
a phone may keep the verdict on these certificates, 1s to 720h; without
it, the server's --ttl applies.

Every file is read and every certificate checked before the store
changes: a mistake changes nothing. Prints one line per certificate.

` + tvsStoreReach,
	examples: []string{
		"ucsec tvs add --store /var/lib/tvs --trust ccm+tftp=other-cluster/cucm-b.pem",
		"ucsec tvs add --store 'postgres://tvs@db.example/uc?sslmode=verify-full' --trust capf=capf.crt --trust sast,ccm=cucm-pub.pem --ttl 1h",
	},
	args:  noArgs,
	setup: func(fs *flag.FlagSet) action { return newTVSAddCmd(fs).run },
}

type tvsAddCmd struct {
	store  string
	trusts listFlag
	ttl    string
}

func newTVSAddCmd(fs *flag.FlagSet) *tvsAddCmd {
	c := new(tvsAddCmd)
	tvsStoreFlag(fs, &c.store)
	fs.Var(&c.trusts, "trust", "vouch for the certificates in a file: `ROLES=CERT` (repeatable, required)")
	fs.StringVar(&c.ttl, "ttl", "", "how long phones may keep a verdict, `DUR`, 1s to 720h (default: the server's --ttl)")
	return c
}

func (c *tvsAddCmd) run(e *env, _ []string) error {
	store, err := parseStoreFlag(c.store)
	if err != nil {
		return err
	}
	if len(c.trusts) == 0 {
		return usageError("missing --trust")
	}
	var ttl time.Duration
	if c.ttl != "" {
		ttl, err = time.ParseDuration(c.ttl)
		if err != nil || ttl < time.Second || ttl > tvs.MaxTTL || ttl%time.Second != 0 {
			return usageError("--ttl must be a whole number of seconds from 1s to 720h (30 days)")
		}
	}
	trusts, err := parseTrustFlags(c.trusts)
	if err != nil {
		return err
	}
	// Checked in memory first, as "tvs serve" does.
	ctx := context.Background()
	staged := tvs.NewMemoryStore()
	for _, t := range trusts {
		data, err := readFile(t.path)
		if err != nil {
			return err
		}
		if _, err := tvs.LoadCertificates(ctx, staged, data, t.roles, ttl); err != nil {
			return &fileError{t.path, err}
		}
	}
	entries, err := tvs.Entries(ctx, staged)
	if err != nil {
		return err
	}
	req := &tvsAdminRequest{Op: "add"}
	for _, en := range entries {
		req.Entries = append(req.Entries, &tvsEntryRequest{Certificate: en.Certificate.Raw, Roles: en.Roles, TTL: int64(en.TTL / time.Second)})
	}
	res, err := tvsAdmin.call(ctx, store, req, true)
	if err != nil {
		return err
	}
	for _, r := range res.Entries {
		fmt.Fprintf(e.stdout, "added %s (SHA-256 %x): roles %s, TTL %s\n", printable(r.Certificate), []byte(r.SHA256), strings.Join(r.Roles, ","), r.ttlText())
	}
	return nil
}

var tvsRemove = &command{
	name:     "remove",
	synopsis: "--store DIR|URL (CERT | --sha256 HEX)",
	summary:  "remove certificates from a TVS store",
	help: `
Remove from a TVS store the certificates in CERT (PEM, several allowed,
or one DER; '-' reads standard input), found by the SHA-256 hash of each,
or the one whose hash --sha256 gives (as 'ucsec tvs list' prints it).
If the store does not hold one of them, none is removed and the command
fails with exit status 2. Prints one line per certificate removed.

Phones that asked about a certificate before keep the verdict for its
TTL: its removal reaches them that late.

` + tvsStoreReach,
	examples: []string{
		"ucsec tvs remove --store /var/lib/tvs other-cluster/cucm-b.pem",
		"ucsec tvs remove --store 'postgres://tvs@db.example/uc?sslmode=verify-full' --sha256 3f0c…",
	},
	args: argCount{0, 1, "certificate file"},
	setup: func(fs *flag.FlagSet) action {
		var store, sumHex string
		tvsStoreFlag(fs, &store)
		fs.StringVar(&sumHex, "sha256", "", "remove the certificate whose SHA-256 hash is `HEX`, in place of a file")
		return func(e *env, args []string) error {
			loc, err := parseStoreFlag(store)
			if err != nil {
				return err
			}
			req := &tvsAdminRequest{Op: "remove"}
			var file string
			switch {
			case len(args) == 0 && sumHex == "":
				return usageError("missing certificate file or --sha256")
			case len(args) > 0 && sumHex != "":
				return usageError("a certificate file and --sha256 exclude each other")
			case sumHex != "":
				sum, err := hex.DecodeString(strings.ReplaceAll(sumHex, ":", ""))
				if err != nil || len(sum) != sha256.Size {
					return usageError(fmt.Sprintf("--sha256 %q is not a SHA-256 hash in hex (64 digits)", sumHex))
				}
				req.Sums = []hexBytes{sum}
			default:
				file = args[0]
				certs, err := parseInput(e, file, pemutil.ParseCertificates)
				if err != nil {
					return err
				}
				seen := make(map[[32]byte]bool)
				for _, cert := range certs {
					sum := sha256.Sum256(cert.Raw)
					if !seen[sum] {
						seen[sum] = true
						req.Sums = append(req.Sums, sum[:])
					}
				}
			}
			res, err := tvsAdmin.call(context.Background(), loc, req, false)
			if errors.Is(err, tvs.ErrNotFound) && file != "" {
				return &fileError{file, err}
			} else if err != nil {
				return err
			}
			for _, r := range res.Entries {
				fmt.Fprintf(e.stdout, "removed %s (SHA-256 %x)\n", printable(r.Certificate), []byte(r.SHA256))
			}
			return nil
		}
	},
}
