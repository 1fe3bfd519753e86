package tvs

import (
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	bolt "go.etcd.io/bbolt"

	"github.com/ucsec/ucsec/ctl"
	"github.com/ucsec/ucsec/internal/boltdb"
	"github.com/ucsec/ucsec/internal/testkeys"
)

func pemOf(c *x509.Certificate) []byte {
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: c.Raw})
}

// requireEntry checks that got is want as a store gives it back: the same
// certificate (fully parsed), the roles in order.
func requireEntry(t *testing.T, want *Entry, got *Entry) {
	t.Helper()
	require.NotNil(t, got)
	require.Equal(t, want.Certificate.Raw, got.Certificate.Raw)
	require.True(t, want.Certificate.Equal(got.Certificate))
	require.Equal(t, want.Certificate.Subject.String(), got.Certificate.Subject.String())
	require.Equal(t, want.Certificate.PublicKey, got.Certificate.PublicKey)
	require.Equal(t, want.Roles, got.Roles)
	require.Equal(t, want.TTL, got.TTL)
}

func requireEntries(t *testing.T, want, got []*Entry) {
	t.Helper()
	require.Len(t, got, len(want))
	for i := range want {
		requireEntry(t, want[i], got[i])
	}
}

// openers are the stores of this package, for the tests of what package
// tvs does on top of a Store. Package tvstest checks the stores
// themselves (conformance_test.go).
var openers = map[string]func(t *testing.T) Store{
	"memory": func(t *testing.T) Store {
		s := NewMemoryStore()
		t.Cleanup(func() { s.Close() })
		return s
	},
	"bolt": func(t *testing.T) Store {
		s, err := OpenBoltStore(filepath.Join(t.TempDir(), "tvs.db"), nil)
		require.NoError(t, err)
		t.Cleanup(func() { s.Close() })
		return s
	},
}

// TestEntries checks Put, Lookup and Entries, which encode and decode
// the records of a Store, on each store of this package.
func TestEntries(t *testing.T) {
	for name, open := range openers {
		t.Run(name, func(t *testing.T) { testEntries(t, open) })
	}
}

func testEntries(t *testing.T, open func(t *testing.T) Store) {
	ctx := context.Background()
	allRoles := []ctl.Role{ctl.RoleSAST, ctl.RoleCCM, ctl.RoleCCMTFTP, ctl.RoleTFTP, ctl.RoleCAPF, ctl.RoleAppServer, ctl.RoleTVS}

	t.Run("NotFound", func(t *testing.T) {
		s := open(t)
		sum := sha256.Sum256([]byte("no such certificate"))
		_, err := Lookup(ctx, s, sum)
		require.ErrorIs(t, err, ErrNotFound)
		require.Contains(t, err.Error(), fmt.Sprintf("%x", sum))
		require.ErrorIs(t, s.Delete(ctx, sum), ErrNotFound)
		es, err := Entries(ctx, s)
		require.NoError(t, err)
		require.Empty(t, es)
	})

	t.Run("PutLookup", func(t *testing.T) {
		s := open(t)
		c := svCert(t, "CUCM")
		in := &Entry{Certificate: c, Roles: []ctl.Role{ctl.RoleTVS, ctl.RoleCCM}, TTL: time.Hour}
		require.NoError(t, Put(ctx, s, in))
		// Put leaves its argument alone: roles not sorted in place.
		require.Equal(t, []ctl.Role{ctl.RoleTVS, ctl.RoleCCM}, in.Roles)
		want := &Entry{Certificate: c, Roles: []ctl.Role{ctl.RoleCCM, ctl.RoleTVS}, TTL: time.Hour}
		got, err := Lookup(ctx, s, sha256.Sum256(c.Raw))
		require.NoError(t, err)
		requireEntry(t, want, got)
		require.Equal(t, "CUCM", got.Certificate.Subject.CommonName)
		require.Equal(t, in.Sum(), got.Sum())

		// Put again replaces.
		want = &Entry{Certificate: c, Roles: []ctl.Role{ctl.RoleTFTP}}
		require.NoError(t, Put(ctx, s, want))
		got, err = Lookup(ctx, s, in.Sum())
		require.NoError(t, err)
		requireEntry(t, want, got)
		es, err := Entries(ctx, s)
		require.NoError(t, err)
		requireEntries(t, []*Entry{want}, es)

		// Every role at once, reversed: stored in the fixed order.
		want = &Entry{Certificate: c, Roles: allRoles, TTL: MaxTTL}
		reversed := slices.Clone(allRoles)
		slices.Reverse(reversed)
		require.NoError(t, Put(ctx, s, &Entry{Certificate: c, Roles: reversed, TTL: MaxTTL}))
		got, err = Lookup(ctx, s, in.Sum())
		require.NoError(t, err)
		requireEntry(t, want, got)
	})

	t.Run("Invalid", func(t *testing.T) {
		s := open(t)
		c := svCert(t, "CUCM")
		junk := *c
		junk.Raw = []byte{0x30, 0x03, 0x02, 0x01, 0x01}
		huge := *c
		huge.Raw = make([]byte, MaxCertificateSize+1)
		ok := []ctl.Role{ctl.RoleCCM}
		for _, tc := range []struct {
			name string
			e    *Entry
		}{
			{"nil", nil},
			{"no certificate", &Entry{Roles: ok}},
			{"empty Raw", &Entry{Certificate: &x509.Certificate{}, Roles: ok}},
			{"junk Raw", &Entry{Certificate: &junk, Roles: ok}},
			{"Raw too long", &Entry{Certificate: &huge, Roles: ok}},
			{"no roles", &Entry{Certificate: c}},
			{"empty roles", &Entry{Certificate: c, Roles: []ctl.Role{}}},
			{"role 5", &Entry{Certificate: c, Roles: []ctl.Role{5}}},
			{"role 8", &Entry{Certificate: c, Roles: []ctl.Role{ctl.RoleCCM, 8}}},
			{"role 256", &Entry{Certificate: c, Roles: []ctl.Role{256}}},
			{"role 277", &Entry{Certificate: c, Roles: []ctl.Role{256 + 21}}},
			{"role 65535", &Entry{Certificate: c, Roles: []ctl.Role{65535}}},
			{"role twice", &Entry{Certificate: c, Roles: []ctl.Role{ctl.RoleCCM, ctl.RoleTVS, ctl.RoleCCM}}},
			{"negative TTL", &Entry{Certificate: c, Roles: ok, TTL: -time.Second}},
			{"TTL under 1s", &Entry{Certificate: c, Roles: ok, TTL: 999 * time.Millisecond}},
			{"TTL 1ns", &Entry{Certificate: c, Roles: ok, TTL: 1}},
			{"TTL not whole seconds", &Entry{Certificate: c, Roles: ok, TTL: 1500 * time.Millisecond}},
			{"TTL over 30 days", &Entry{Certificate: c, Roles: ok, TTL: MaxTTL + time.Second}},
			{"TTL a year", &Entry{Certificate: c, Roles: ok, TTL: 365 * 24 * time.Hour}},
		} {
			err := Put(ctx, s, tc.e)
			require.ErrorIs(t, err, ErrInvalid, tc.name)
			t.Logf("%s: %v", tc.name, err)
		}
		es, err := Entries(ctx, s)
		require.NoError(t, err)
		require.Empty(t, es, "nothing invalid was stored")

		for _, ttl := range []time.Duration{0, time.Second, 86400 * time.Second, MaxTTL} {
			e := &Entry{Certificate: c, Roles: ok, TTL: ttl}
			require.NoError(t, Put(ctx, s, e), "%v", ttl)
			got, err := Lookup(ctx, s, e.Sum())
			require.NoError(t, err)
			require.Equal(t, ttl, got.TTL)
		}
	})

	t.Run("DeepCopy", func(t *testing.T) {
		s := open(t)
		c := svCert(t, "CUCM")
		want := &Entry{Certificate: newCopy(t, c), Roles: []ctl.Role{ctl.RoleCCM, ctl.RoleTVS}, TTL: time.Minute}
		in := &Entry{Certificate: c, Roles: []ctl.Role{ctl.RoleCCM, ctl.RoleTVS}, TTL: time.Minute}
		sum := in.Sum()
		require.NoError(t, Put(ctx, s, in))
		// Changing what Put was given changes nothing.
		in.Roles[0] = ctl.RoleSAST
		c.Raw[len(c.Raw)-1] ^= 0xff
		c.Subject.CommonName = "changed"
		in.TTL = time.Hour

		got, err := Lookup(ctx, s, sum)
		require.NoError(t, err)
		requireEntry(t, want, got)
		// Nor changing what Lookup returned.
		got.Roles[1] = ctl.RoleSAST
		got.Certificate.Raw[0] = 0
		got.Certificate.RawSubject[0] = 0
		got.Certificate.Subject.CommonName = "changed"
		got.TTL = 0
		got2, err := Lookup(ctx, s, sum)
		require.NoError(t, err)
		requireEntry(t, want, got2)
		require.Equal(t, "CUCM", got2.Certificate.Subject.CommonName)
		// Nor what Entries returned.
		es, err := Entries(ctx, s)
		require.NoError(t, err)
		es[0].Roles[0] = ctl.RoleTFTP
		es[0].Certificate.Raw[1] = 0
		es[0].Certificate.Signature[0] ^= 0xff
		got2, err = Lookup(ctx, s, sum)
		require.NoError(t, err)
		requireEntry(t, want, got2)
		// Two lookups share nothing either.
		got3, err := Lookup(ctx, s, sum)
		require.NoError(t, err)
		got3.Certificate.Raw[2] = 0
		requireEntry(t, want, got2)
	})

	t.Run("EntriesOrder", func(t *testing.T) {
		s := open(t)
		// Two with the same subject (ordered by sum), names out of order.
		a1, a2, b, c := svCert(t, "a"), svCert(t, "a"), svCert(t, "b"), svCert(t, "c")
		if sa1, sa2 := sha256.Sum256(a1.Raw), sha256.Sum256(a2.Raw); bytes.Compare(sa1[:], sa2[:]) > 0 {
			a1, a2 = a2, a1
		}
		in := map[*x509.Certificate]*Entry{}
		for _, cert := range []*x509.Certificate{c, a2, b, a1} {
			e := &Entry{Certificate: cert, Roles: []ctl.Role{ctl.RoleCCM}}
			in[cert] = e
			require.NoError(t, Put(ctx, s, e))
		}
		es, err := Entries(ctx, s)
		require.NoError(t, err)
		requireEntries(t, []*Entry{in[a1], in[a2], in[b], in[c]}, es)
		// Subject strings, as pkix.Name.String gives them.
		require.Equal(t, "CN=a,O=ucsec test", es[0].Certificate.Subject.String())
	})

	t.Run("Delete", func(t *testing.T) {
		s := open(t)
		e1 := &Entry{Certificate: svCert(t, "one"), Roles: []ctl.Role{ctl.RoleCCM}}
		e2 := &Entry{Certificate: svCert(t, "two"), Roles: []ctl.Role{ctl.RoleTFTP}}
		require.NoError(t, Put(ctx, s, e1))
		require.NoError(t, Put(ctx, s, e2))
		require.NoError(t, s.Delete(ctx, e1.Sum()))
		_, err := Lookup(ctx, s, e1.Sum())
		require.ErrorIs(t, err, ErrNotFound)
		got, err := Lookup(ctx, s, e2.Sum())
		require.NoError(t, err)
		requireEntry(t, e2, got)
		es, err := Entries(ctx, s)
		require.NoError(t, err)
		requireEntries(t, []*Entry{e2}, es)
		require.NoError(t, Put(ctx, s, e1))
		es, err = Entries(ctx, s)
		require.NoError(t, err)
		requireEntries(t, []*Entry{e1, e2}, es)
	})

	t.Run("Errors", func(t *testing.T) {
		s := open(t)
		e := &Entry{Certificate: svCert(t, "one"), Roles: []ctl.Role{ctl.RoleCCM}}
		require.NoError(t, Put(ctx, s, e))
		cctx, cancel := context.WithCancel(ctx)
		cancel()
		_, err := Lookup(cctx, s, e.Sum())
		require.ErrorIs(t, err, context.Canceled)
		require.ErrorIs(t, Put(cctx, s, &Entry{Certificate: svCert(t, "two"), Roles: []ctl.Role{ctl.RoleCCM}}), context.Canceled)
		_, err = Entries(cctx, s)
		require.ErrorIs(t, err, context.Canceled)
		es, err := Entries(ctx, s)
		require.NoError(t, err)
		requireEntries(t, []*Entry{e}, es)

		// An invalid entry is refused before the store is asked.
		require.ErrorIs(t, Put(cctx, s, &Entry{}), ErrInvalid)
		require.NoError(t, s.Close())
		_, err = Lookup(ctx, s, e.Sum())
		require.ErrorIs(t, err, ErrStoreClosed)
		require.ErrorIs(t, Put(ctx, s, e), ErrStoreClosed)
		_, err = Entries(ctx, s)
		require.ErrorIs(t, err, ErrStoreClosed)
		require.ErrorIs(t, Put(ctx, s, &Entry{}), ErrInvalid)
	})

	t.Run("Corrupt", func(t *testing.T) {
		// A record that does not decode fails Lookup and Entries; a
		// corrupt record can be replaced, or deleted.
		s := open(t)
		good := &Entry{Certificate: svCert(t, "good"), Roles: []ctl.Role{ctl.RoleCCM}}
		bad := &Entry{Certificate: svCert(t, "bad"), Roles: []ctl.Role{ctl.RoleTFTP}}
		require.NoError(t, Put(ctx, s, good))
		require.NoError(t, s.Put(ctx, bad.Sum(), []byte{1, 0, 0, 0, 0, 1, 3}))
		_, err := Lookup(ctx, s, bad.Sum())
		require.ErrorIs(t, err, ErrCorrupt)
		_, err = Entries(ctx, s)
		require.ErrorIs(t, err, ErrCorrupt)
		got, err := Lookup(ctx, s, good.Sum())
		require.NoError(t, err)
		requireEntry(t, good, got)
		require.NoError(t, Put(ctx, s, bad))
		got, err = Lookup(ctx, s, bad.Sum())
		require.NoError(t, err)
		requireEntry(t, bad, got)
		require.NoError(t, s.Put(ctx, bad.Sum(), []byte{2}))
		_, err = Entries(ctx, s)
		require.ErrorIs(t, err, ErrStoreVersion)
		require.NoError(t, s.Delete(ctx, bad.Sum()))
		es, err := Entries(ctx, s)
		require.NoError(t, err)
		requireEntries(t, []*Entry{good}, es)
	})

	t.Run("Concurrent", func(t *testing.T) {
		s := open(t)
		// fixed is always there; flip's roles change, toggle comes and goes.
		fixed := &Entry{Certificate: svCert(t, "fixed"), Roles: []ctl.Role{ctl.RoleTVS}, TTL: time.Hour}
		flipA := &Entry{Certificate: svCert(t, "flip"), Roles: []ctl.Role{ctl.RoleCCM}}
		flipB := &Entry{Certificate: flipA.Certificate, Roles: []ctl.Role{ctl.RoleTFTP, ctl.RoleCAPF}, TTL: time.Minute}
		toggle := &Entry{Certificate: svCert(t, "toggle"), Roles: []ctl.Role{ctl.RoleAppServer}}
		require.NoError(t, Put(ctx, s, fixed))
		require.NoError(t, Put(ctx, s, flipA))

		const readers, writes = 4, 40
		var (
			wg      sync.WaitGroup // readers
			writers sync.WaitGroup
			done    atomic.Bool
			lookups atomic.Int64
		)
		errs := make(chan error, readers+2)
		for range readers {
			wg.Go(func() {
				for !done.Load() {
					runtime.Gosched() // leave the writers a core
					got, err := Lookup(ctx, s, fixed.Sum())
					if err != nil || !slices.Equal(got.Roles, fixed.Roles) || got.TTL != fixed.TTL {
						errs <- fmt.Errorf("fixed: %v, %v", got, err)
						return
					}
					got, err = Lookup(ctx, s, flipA.Sum())
					if err != nil || !(slices.Equal(got.Roles, flipA.Roles) && got.TTL == flipA.TTL ||
						slices.Equal(got.Roles, []ctl.Role{ctl.RoleTFTP, ctl.RoleCAPF}) && got.TTL == flipB.TTL) {
						errs <- fmt.Errorf("flip: %v, %v", got, err)
						return
					}
					switch got, err := Lookup(ctx, s, toggle.Sum()); {
					case err == nil && !slices.Equal(got.Roles, toggle.Roles):
						errs <- fmt.Errorf("toggle: %v", got.Roles)
						return
					case err != nil && !errors.Is(err, ErrNotFound):
						errs <- err
						return
					}
					lookups.Add(3)
				}
			})
		}
		writers.Go(func() {
			for i := range writes {
				e := flipA
				if i%2 == 0 {
					e = flipB
				}
				if err := Put(ctx, s, e); err != nil {
					errs <- err
					return
				}
			}
		})
		writers.Go(func() {
			for range writes / 2 {
				if err := Put(ctx, s, toggle); err != nil {
					errs <- err
					return
				}
				if _, err := Entries(ctx, s); err != nil {
					errs <- err
					return
				}
				if err := s.Delete(ctx, toggle.Sum()); err != nil {
					errs <- err
					return
				}
			}
		})
		writers.Wait()
		done.Store(true)
		wg.Wait()
		close(errs)
		for err := range errs {
			require.NoError(t, err)
		}
		t.Logf("%d lookups", lookups.Load())
		es, err := Entries(ctx, s)
		require.NoError(t, err)
		require.Len(t, es, 2)
	})
}

func newCopy(t *testing.T, c *x509.Certificate) *x509.Certificate {
	t.Helper()
	d, err := x509.ParseCertificate(bytes.Clone(c.Raw))
	require.NoError(t, err)
	return d
}

// Bolt-only behaviour. Package internal/boltdb tests what every store file
// does (creating, locking, schema versions, files of other kinds); these
// tests check what this package stores and the errors it reports.

func openBolt(t *testing.T, path string) *BoltStore {
	t.Helper()
	s, err := OpenBoltStore(path, &BoltOptions{Timeout: 200 * time.Millisecond})
	require.NoError(t, err)
	return s
}

// putBolt writes value under key in the certificates bucket of the store
// file at path, as it is (no checks).
func putBolt(t *testing.T, path string, key, value []byte) {
	t.Helper()
	s := openBolt(t, path)
	require.NoError(t, s.h.DB().Update(func(tx *bolt.Tx) error {
		return tx.Bucket([]byte("certificates")).Put(key, value)
	}))
	require.NoError(t, s.Close())
}

func TestBoltStoreReopen(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "tvs.db")
	s := openBolt(t, path)
	e1 := &Entry{Certificate: svCert(t, "one"), Roles: []ctl.Role{ctl.RoleCCM, ctl.RoleTVS}, TTL: 86400 * time.Second}
	e2 := &Entry{Certificate: svCert(t, "two"), Roles: []ctl.Role{ctl.RoleTFTP}}
	e3 := &Entry{Certificate: svCert(t, "three"), Roles: []ctl.Role{ctl.RoleSAST}, TTL: MaxTTL}
	for _, e := range []*Entry{e1, e2, e3} {
		require.NoError(t, Put(ctx, s, e))
	}
	require.NoError(t, s.Delete(ctx, e2.Sum()))
	require.NoError(t, s.Close())

	s = openBolt(t, path)
	defer s.Close()
	es, err := Entries(ctx, s)
	require.NoError(t, err)
	requireEntries(t, []*Entry{e1, e3}, es)
	got, err := Lookup(ctx, s, e3.Sum())
	require.NoError(t, err)
	requireEntry(t, e3, got)
	_, err = Lookup(ctx, s, e2.Sum())
	require.ErrorIs(t, err, ErrNotFound)

	// The record format the schema comment documents.
	require.NoError(t, s.h.DB().View(func(tx *bolt.Tx) error {
		sum := e1.Sum()
		v := tx.Bucket([]byte("certificates")).Get(sum[:])
		require.Equal(t, slices.Concat([]byte{1}, sum[:], []byte{0, 1, 0x51, 0x80, 2, 1, 21}, e1.Certificate.Raw), v)
		require.Equal(t, "2", string(tx.Bucket([]byte("meta")).Get([]byte("version"))))
		return nil
	}))
}

// TestBoltStoreMigrate opens a file of schema version 1, whose records
// lack the format version byte: it is migrated to version 2, once.
func TestBoltStoreMigrate(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "tvs.db")
	e1 := &Entry{Certificate: svCert(t, "one"), Roles: []ctl.Role{ctl.RoleCCM, ctl.RoleTVS}, TTL: 86400 * time.Second}
	e2 := &Entry{Certificate: svCert(t, "two"), Roles: []ctl.Role{ctl.RoleSAST}}
	db, err := boltdb.Open(path, time.Second, &boltdb.Schema{Name: "TVS store", Version: 1, Buckets: [][]byte{[]byte("certificates")}})
	require.NoError(t, err)
	require.NoError(t, db.Update(func(tx *bolt.Tx) error {
		b := tx.Bucket([]byte("certificates"))
		s1, s2 := e1.Sum(), e2.Sum()
		// As version 1 wrote them.
		return errors.Join(
			b.Put(s1[:], slices.Concat([]byte{0, 1, 0x51, 0x80, 2, 1, 21}, e1.Certificate.Raw)),
			b.Put(s2[:], slices.Concat([]byte{0, 0, 0, 0, 1, 0}, e2.Certificate.Raw)))
	}))
	require.NoError(t, db.Close())

	for range 2 {
		s := openBolt(t, path)
		es, err := Entries(ctx, s)
		require.NoError(t, err)
		requireEntries(t, []*Entry{e1, e2}, es)
		require.NoError(t, s.h.DB().View(func(tx *bolt.Tx) error {
			require.Equal(t, "2", string(tx.Bucket([]byte("meta")).Get([]byte("version"))))
			return nil
		}))
		require.NoError(t, s.Close())
	}
}

// TestBoltStoreOpenErrors checks that OpenBoltStore reports this
// package's sentinels, and this package's schema.
func TestBoltStoreOpenErrors(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "tvs.db")
	s := openBolt(t, path)
	_, err := OpenBoltStore(path, &BoltOptions{Timeout: 100 * time.Millisecond})
	require.ErrorIs(t, err, ErrStoreLocked)
	require.ErrorIs(t, err, boltdb.ErrLocked)
	require.True(t, strings.HasPrefix(err.Error(), "tvs: store in use: "+path), err.Error())
	require.NoError(t, s.Close())
	_, err = OpenBoltStore(path, &BoltOptions{Timeout: -1})
	require.ErrorIs(t, err, ErrInvalid)
	_, err = OpenBoltStore(filepath.Join(dir, "no", "dir", "tvs.db"), nil)
	require.ErrorIs(t, err, os.ErrNotExist)
	require.True(t, strings.HasPrefix(err.Error(), "tvs: open store: "), err.Error())

	// A newer schema, and files of other kinds.
	s = openBolt(t, path)
	require.NoError(t, s.h.DB().Update(func(tx *bolt.Tx) error {
		return tx.Bucket([]byte("meta")).Put([]byte("version"), []byte(strconv.Itoa(boltSchema+1)))
	}))
	require.NoError(t, s.Close())
	_, err = OpenBoltStore(path, nil)
	require.ErrorIs(t, err, ErrStoreVersion)
	require.ErrorIs(t, err, boltdb.ErrVersion)
	require.True(t, strings.HasPrefix(err.Error(), "tvs: store schema version not supported: "+path), err.Error())
	t.Log(err)

	// What capf writes: meta version 1, its own buckets.
	capfFile := filepath.Join(dir, "capf.db")
	db, err := boltdb.Open(capfFile, time.Second, &boltdb.Schema{Name: "CAPF store", Version: 1, Buckets: [][]byte{
		[]byte("devices"), []byte("issued"), []byte("issued-order"), []byte("issued-by-device"),
	}})
	require.NoError(t, err)
	require.NoError(t, db.Close())
	_, err = OpenBoltStore(capfFile, nil)
	require.ErrorIs(t, err, ErrCorrupt)
	require.ErrorIs(t, err, boltdb.ErrCorrupt)
	require.True(t, strings.HasPrefix(err.Error(), "tvs: store corrupt: "+capfFile), err.Error())
	require.Contains(t, err.Error(), `no "certificates" bucket`)
	t.Log(err)

	// A bbolt file without this package's meta bucket.
	require.NoError(t, os.Remove(path))
	s = openBolt(t, path)
	require.NoError(t, s.h.DB().Update(func(tx *bolt.Tx) error { return tx.DeleteBucket([]byte("meta")) }))
	require.NoError(t, s.Close())
	_, err = OpenBoltStore(path, nil)
	require.ErrorIs(t, err, ErrCorrupt)
	require.Contains(t, err.Error(), "not a TVS store")
}

// TestBoltStoreCorrupt: a key that is not a SHA-256 hash, which this
// package never writes, makes List fail; other records still read.
func TestBoltStoreCorrupt(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "tvs.db")
	good := &Entry{Certificate: svCert(t, "good"), Roles: []ctl.Role{ctl.RoleCCM}}
	s := openBolt(t, path)
	require.NoError(t, Put(ctx, s, good))
	require.NoError(t, s.Close())
	putBolt(t, path, []byte("short"), []byte{1, 0, 0, 0, 0, 1, 3})
	s = openBolt(t, path)
	defer s.Close()
	_, err := s.List(ctx)
	require.ErrorIs(t, err, ErrCorrupt)
	t.Log(err)
	_, err = Entries(ctx, s)
	require.ErrorIs(t, err, ErrCorrupt)
	got, err := Lookup(ctx, s, good.Sum())
	require.NoError(t, err)
	requireEntry(t, good, got)
}

// TestRecord checks the record format that the comment on recordVersion
// documents.
func TestRecord(t *testing.T) {
	e := &Entry{Certificate: svCert(t, "rec"), Roles: []ctl.Role{ctl.RoleTVS, ctl.RoleCCM}, TTL: 86400 * time.Second}
	r, err := newRecord(e)
	require.NoError(t, err)
	der := e.Certificate.Raw
	sum := e.Sum()
	v := r.marshal()
	require.Equal(t, slices.Concat([]byte{1}, sum[:], []byte{0, 1, 0x51, 0x80, 2, 1, 21}, der), v)
	for _, hash := range []bool{false, true} {
		got, err := parseRecord(sum, v, hash)
		require.NoError(t, err)
		requireEntry(t, &Entry{Certificate: e.Certificate, Roles: []ctl.Role{ctl.RoleCCM, ctl.RoleTVS}, TTL: 86400 * time.Second}, got)
	}

	// head returns the start of a record of the certificate, up to its
	// roles.
	head := func(ttl []byte, roles ...byte) []byte {
		return slices.Concat([]byte{1}, sum[:], ttl, []byte{byte(len(roles))}, roles)
	}
	ttl0, ttlMax := []byte{0, 0, 0, 0}, []byte{0, 0x27, 0x8d, 0x00} // 0, 2592000
	every := head(ttlMax, 0, 1, 2, 3, 4, 7, 21)
	rec := func(head []byte, tail ...byte) []byte { return slices.Concat(head, der, tail) }

	// The accepted boundaries: every role, the longest TTL; fields after
	// the certificate that a reader may ignore (tags below 0x80), in
	// order, empty or not.
	for name, v := range map[string][]byte{
		"every role":      rec(every),
		"optional field":  rec(every, 0x01, 0, 2, 'h', 'i'),
		"optional fields": rec(every, 0x00, 0, 0, 0x7f, 0, 1, 0xff),
		"long field":      rec(every, slices.Concat([]byte{0x10, 0xff, 0xff}, make([]byte, 0xffff))...),
		"field 0x30":      rec(every, 0x30, 0, 1, 0),
	} {
		for _, hash := range []bool{false, true} {
			got, err := parseRecord(sum, v, hash)
			require.NoError(t, err, name)
			requireEntry(t, &Entry{Certificate: e.Certificate, Roles: []ctl.Role{0, 1, 2, 3, 4, 7, 21}, TTL: MaxTTL}, got)
		}
	}

	other := svCert(t, "other")
	otherSum := sha256.Sum256(other.Raw)
	ok := head(ttl0, 3)
	for _, tc := range []struct {
		name  string
		value []byte
		want  error
	}{
		{"empty", []byte{}, ErrCorrupt},
		{"nil", nil, ErrCorrupt},
		{"format 0", slices.Concat([]byte{0}, ok[1:], der), ErrCorrupt},
		{"schema 1 record", slices.Concat([]byte{0, 0, 0, 0, 1, 3}, der), ErrCorrupt},
		{"format 2", slices.Concat([]byte{2}, ok[1:], der), ErrStoreVersion},
		{"format 255", []byte{255}, ErrStoreVersion},
		{"hash cut", slices.Concat([]byte{1}, sum[:31]), ErrCorrupt},
		{"short", slices.Concat([]byte{1}, sum[:], []byte{0, 0, 0, 0}), ErrCorrupt},
		{"roles cut", slices.Concat([]byte{1}, sum[:], []byte{0, 0, 0, 0, 2, 1}), ErrCorrupt},
		{"record of another certificate", slices.Concat([]byte{1}, otherSum[:], ok[33:], other.Raw), ErrCorrupt},
		{"named another hash", slices.Concat([]byte{1}, otherSum[:], ok[33:], der), ErrCorrupt},
		{"no certificate", ok, ErrCorrupt},
		{"certificate cut", rec(ok)[:100], ErrCorrupt},
		{"not a SEQUENCE", slices.Concat(ok, []byte{0x31}, der[1:]), ErrCorrupt},
		{"SEQUENCE not a certificate", slices.Concat(ok, []byte{0x30, 0}), ErrCorrupt},
		{"trailing byte", rec(ok, 0), ErrCorrupt},
		{"field cut", rec(ok, 1, 0, 2, 'h'), ErrCorrupt},
		{"field length cut", rec(ok, 1, 0), ErrCorrupt},
		{"fields out of order", rec(ok, 2, 0, 0, 1, 0, 0), ErrCorrupt},
		{"field twice", rec(ok, 1, 0, 0, 1, 0, 0), ErrCorrupt},
		{"critical field", rec(ok, 0x80, 0, 0), ErrStoreVersion},
		{"critical field 0xff", rec(ok, 1, 0, 0, 0xff, 0, 1, 0), ErrStoreVersion},
		{"no roles", rec(head(ttl0)), ErrCorrupt},
		{"unknown role", rec(head(ttl0, 5)), ErrCorrupt},
		{"role 255", rec(head(ttl0, 255)), ErrCorrupt},
		{"role twice", rec(head(ttl0, 3, 3)), ErrCorrupt},
		{"roles out of order", rec(head(ttl0, 21, 3)), ErrCorrupt},
		{"TTL too long", rec(head([]byte{0, 0x27, 0x8d, 0x01}, 3)), ErrCorrupt}, // 2592001
		{"TTL huge", rec(head([]byte{0xff, 0xff, 0xff, 0xff}, 3)), ErrCorrupt},
	} {
		for _, hash := range []bool{false, true} {
			_, err := parseRecord(sum, tc.value, hash)
			require.ErrorIs(t, err, tc.want, tc.name)
			require.Contains(t, err.Error(), fmt.Sprintf("record %x", sum), tc.name)
			if hash {
				t.Logf("%s: %v", tc.name, err)
			}
		}
	}

	// A record that names its key but holds another certificate: only
	// hashing the certificate finds it (Entries does; the Server
	// compares the certificate with the one asked about).
	swapped := slices.Concat(ok, other.Raw)
	_, err = parseRecord(sum, swapped, false)
	require.NoError(t, err)
	_, err = parseRecord(sum, swapped, true)
	require.ErrorIs(t, err, ErrCorrupt)
	require.Contains(t, err.Error(), "another hash")
}

func TestKnownRoles(t *testing.T) {
	// The roles an Entry may have are exactly those ctl names, and they
	// all fit a byte.
	var known []ctl.Role
	for r := range 1 << 16 {
		if knownRole(ctl.Role(r)) {
			known = append(known, ctl.Role(r))
		}
	}
	require.Equal(t, []ctl.Role{ctl.RoleSAST, ctl.RoleCCM, ctl.RoleCCMTFTP, ctl.RoleTFTP, ctl.RoleCAPF, ctl.RoleAppServer, ctl.RoleTVS}, known)
	var names []string
	for _, r := range known {
		names = append(names, r.ShortName())
	}
	// The fixed order of the reference is the order of the numbers.
	require.Equal(t, []string{"SAST", "CCM", "CCM+TFTP", "TFTP", "CAPF", "APP-SERVER", "TVS"}, names)
	require.False(t, knownRole(5))
	require.Equal(t, strconv.Itoa(5), ctl.Role(5).ShortName())
}

func TestEntrySum(t *testing.T) {
	c := svCert(t, "x")
	require.Equal(t, sha256.Sum256(c.Raw), (&Entry{Certificate: c}).Sum())
	require.Equal(t, [32]byte{}, (&Entry{}).Sum())
}

// Loading.

func TestLoadTrustList(t *testing.T) {
	ctx := context.Background()
	itl, err := ctl.Parse(testkeys.Vector(t, "ITLFile.tlv"))
	require.NoError(t, err)
	require.NoError(t, itl.Verify())
	require.Len(t, itl.Records, 7)
	sast, _ := testkeys.Load(t, "sast")
	asterisk, _ := testkeys.Load(t, "tftp")   // CN=Asterisk
	ec, _ := testkeys.Load(t, "tftp-ec-p384") // CN=ApacheEC

	for name, open := range openers {
		t.Run(name, func(t *testing.T) {
			s := open(t)
			defer s.Close()
			n, err := LoadTrustList(ctx, s, itl, 86400*time.Second)
			require.NoError(t, err)
			require.Equal(t, 3, n)
			es, err := Entries(ctx, s)
			require.NoError(t, err)
			day := 86400 * time.Second
			// Sorted by subject: CN=ApacheEC…, CN=Asterisk…, CN=SAST….
			requireEntries(t, []*Entry{
				{Certificate: ec, Roles: []ctl.Role{ctl.RoleTFTP}, TTL: day},
				// Five records of the one certificate.
				{Certificate: asterisk, Roles: []ctl.Role{ctl.RoleCCM, ctl.RoleCCMTFTP, ctl.RoleCAPF, ctl.RoleAppServer, ctl.RoleTVS}, TTL: day},
				{Certificate: sast, Roles: []ctl.Role{ctl.RoleSAST}, TTL: day},
			}, es)
			// What a phone's request for the TVS certificate finds.
			got, err := Lookup(ctx, s, sha256.Sum256(asterisk.Raw))
			require.NoError(t, err)
			require.Contains(t, got.Roles, ctl.RoleTVS)

			// The CTL, loaded next, replaces the roles of the
			// certificates it holds too.
			ctlFile, err := ctl.Parse(testkeys.Vector(t, "CTLFile-sha512-v1.1.tlv"))
			require.NoError(t, err)
			n, err = LoadTrustList(ctx, s, ctlFile, 0)
			require.NoError(t, err)
			require.Equal(t, 2, n)
			es, err = Entries(ctx, s)
			require.NoError(t, err)
			requireEntries(t, []*Entry{
				{Certificate: ec, Roles: []ctl.Role{ctl.RoleTFTP}, TTL: day},
				{Certificate: asterisk, Roles: []ctl.Role{ctl.RoleCCMTFTP}},
				{Certificate: sast, Roles: []ctl.Role{ctl.RoleSAST}},
			}, es)
		})
	}
}

func TestLoadTrustListRecords(t *testing.T) {
	ctx := context.Background()
	a, b := svCert(t, "a"), svCert(t, "b")
	s := NewMemoryStore()
	f := &ctl.File{Records: []ctl.Record{
		{Role: ctl.RoleCCM, DNSName: "cucm1"}, // no certificate: skipped
		{Role: ctl.RoleTVS, Certificate: a.Raw},
		{Role: ctl.RoleCCM, Certificate: b.Raw},
		{Role: ctl.RoleTVS, Certificate: a.Raw}, // the same again: one role
		{Role: ctl.RoleSAST, Certificate: a.Raw},
	}}
	n, err := LoadTrustList(ctx, s, f, time.Hour)
	require.NoError(t, err)
	require.Equal(t, 2, n)
	es, err := Entries(ctx, s)
	require.NoError(t, err)
	requireEntries(t, []*Entry{
		{Certificate: a, Roles: []ctl.Role{ctl.RoleSAST, ctl.RoleTVS}, TTL: time.Hour},
		{Certificate: b, Roles: []ctl.Role{ctl.RoleCCM}, TTL: time.Hour},
	}, es)

	// Nothing to load.
	n, err = LoadTrustList(ctx, s, &ctl.File{Records: []ctl.Record{{Role: ctl.RoleCCM}}}, 0)
	require.NoError(t, err)
	require.Zero(t, n)

	// Any bad record, and nothing is put.
	c := svCert(t, "c")
	for name, f := range map[string]*ctl.File{
		"nil":          nil,
		"junk":         {Records: []ctl.Record{{Role: ctl.RoleCCM, Certificate: c.Raw}, {Role: ctl.RoleTFTP, Certificate: []byte{0x30, 0x00}}}},
		"trailing":     {Records: []ctl.Record{{Role: ctl.RoleCCM, Certificate: c.Raw}, {Role: ctl.RoleTFTP, Certificate: append(slices.Clone(a.Raw), 0)}}},
		"unknown role": {Records: []ctl.Record{{Role: ctl.RoleCCM, Certificate: c.Raw}, {Role: 9, Certificate: a.Raw}}},
	} {
		n, err := LoadTrustList(ctx, s, f, 0)
		require.ErrorIs(t, err, ErrInvalid, name)
		require.Zero(t, n)
		t.Logf("%s: %v", name, err)
	}
	_, err = LoadTrustList(ctx, s, &ctl.File{Records: []ctl.Record{{Role: ctl.RoleCCM, Certificate: c.Raw}}}, 2*MaxTTL)
	require.ErrorIs(t, err, ErrInvalid)
	es, err = Entries(ctx, s)
	require.NoError(t, err)
	require.Len(t, es, 2)

	// A store error is passed on.
	require.NoError(t, s.Close())
	_, err = LoadTrustList(ctx, s, f, 0)
	require.ErrorIs(t, err, ErrStoreClosed)
}

func TestLoadCertificates(t *testing.T) {
	ctx := context.Background()
	sast, _ := testkeys.Load(t, "sast")
	asterisk, _ := testkeys.Load(t, "tftp")
	roles := []ctl.Role{ctl.RoleTVS, ctl.RoleCCM}
	want := []ctl.Role{ctl.RoleCCM, ctl.RoleTVS}

	// Two PEM files, each a private key and a certificate: the keys are
	// skipped.
	bundle := slices.Concat(testkeys.Vector(t, "keys/tftp.pem"), []byte("\n# comment\n"), testkeys.Vector(t, "keys/sast.pem"))
	s := NewMemoryStore()
	n, err := LoadCertificates(ctx, s, bundle, roles, time.Minute)
	require.NoError(t, err)
	require.Equal(t, 2, n)
	require.Equal(t, []ctl.Role{ctl.RoleTVS, ctl.RoleCCM}, roles, "roles left alone")
	es, err := Entries(ctx, s)
	require.NoError(t, err)
	requireEntries(t, []*Entry{
		{Certificate: asterisk, Roles: want, TTL: time.Minute},
		{Certificate: sast, Roles: want, TTL: time.Minute},
	}, es)

	// Changing the roles given afterwards changes nothing stored.
	roles[0] = ctl.RoleSAST
	got, err := Lookup(ctx, s, sha256.Sum256(sast.Raw))
	require.NoError(t, err)
	require.Equal(t, want, got.Roles)

	// DER; the same certificate twice in PEM; leading white space.
	s = NewMemoryStore()
	c := svCert(t, "c")
	n, err = LoadCertificates(ctx, s, c.Raw, []ctl.Role{ctl.RoleTFTP}, 0)
	require.NoError(t, err)
	require.Equal(t, 1, n)
	n, err = LoadCertificates(ctx, s, slices.Concat([]byte("\r\n\n"), pemOf(asterisk), pemOf(asterisk)), []ctl.Role{ctl.RoleCAPF}, 0)
	require.NoError(t, err)
	require.Equal(t, 1, n)
	es, err = Entries(ctx, s)
	require.NoError(t, err)
	requireEntries(t, []*Entry{
		{Certificate: asterisk, Roles: []ctl.Role{ctl.RoleCAPF}},
		{Certificate: c, Roles: []ctl.Role{ctl.RoleTFTP}},
	}, es)

	// Bad input, and nothing is put.
	broken := slices.Concat(pemOf(sast), []byte("-----BEGIN CERTIFICATE-----\n!!!!\n-----END CERTIFICATE-----\n"))
	for _, tc := range []struct {
		name  string
		data  []byte
		roles []ctl.Role
		ttl   time.Duration
	}{
		{"empty", nil, want, 0},
		{"junk", []byte("hello"), want, 0},
		{"DER with trailing data", append(slices.Clone(sast.Raw), 0), want, 0},
		{"PEM without a certificate", testkeys.Vector(t, "keys/tftp.pem")[:bytes.Index(testkeys.Vector(t, "keys/tftp.pem"), []byte("-----BEGIN CERTIFICATE"))], want, 0},
		{"malformed PEM block", broken, want, 0},
		{"PEM block not a certificate", pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: []byte{0x30, 0x00}}), want, 0},
		{"PEM after DER", slices.Concat(sast.Raw, pemOf(asterisk)), want, 0},
		{"no roles", pemOf(sast), nil, 0},
		{"unknown role", pemOf(sast), []ctl.Role{ctl.RoleCCM, 100}, 0},
		{"role twice", pemOf(sast), []ctl.Role{ctl.RoleCCM, ctl.RoleCCM}, 0},
		{"bad TTL", pemOf(sast), want, 1500 * time.Millisecond},
	} {
		n, err := LoadCertificates(ctx, s, tc.data, tc.roles, tc.ttl)
		require.ErrorIs(t, err, ErrInvalid, tc.name)
		require.Zero(t, n, tc.name)
		t.Logf("%s: %v", tc.name, err)
	}
	es, err = Entries(ctx, s)
	require.NoError(t, err)
	require.Len(t, es, 2)
}

// BenchmarkLookup measures what a phone's request costs the store: a
// lookup of an RSA-2048 certificate (897 bytes DER) among 100 others.
func BenchmarkLookup(b *testing.B) {
	ctx := context.Background()
	cert, _ := testkeys.Load(b, "tftp")
	target := &Entry{Certificate: cert, Roles: []ctl.Role{ctl.RoleCCM, ctl.RoleTVS}, TTL: 86400 * time.Second}
	for _, name := range []string{"memory", "bolt"} {
		var s Store
		if name == "memory" {
			s = NewMemoryStore()
		} else {
			bs, err := OpenBoltStore(filepath.Join(b.TempDir(), "tvs.db"), nil)
			require.NoError(b, err)
			s = bs
		}
		require.NoError(b, Put(ctx, s, target))
		for i := range 100 {
			require.NoError(b, Put(ctx, s, &Entry{Certificate: svCert(b, fmt.Sprint(i)), Roles: []ctl.Role{ctl.RoleCCM}}))
		}
		sum := target.Sum()
		miss := sha256.Sum256([]byte("unknown"))
		b.Run(name+"/hit", func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, err := Lookup(ctx, s, sum); err != nil {
					b.Fatal(err)
				}
			}
		})
		b.Run(name+"/miss", func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, err := Lookup(ctx, s, miss); !errors.Is(err, ErrNotFound) {
					b.Fatal(err)
				}
			}
		})
		b.Run(name+"/hit-parallel", func(b *testing.B) {
			b.ReportAllocs()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					if _, err := Lookup(ctx, s, sum); err != nil {
						b.Error(err)
						return
					}
				}
			})
		})
		require.NoError(b, s.Close())
	}
}
