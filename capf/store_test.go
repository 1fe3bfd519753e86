package capf

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	bolt "go.etcd.io/bbolt"
)

func TestMemoryStore(t *testing.T) {
	testStore(t, func(t *testing.T) Store {
		s := NewMemoryStore()
		t.Cleanup(func() { s.Close() })
		return s
	})
}

func TestBoltStore(t *testing.T) {
	testStore(t, func(t *testing.T) Store {
		s, err := OpenBoltStore(filepath.Join(t.TempDir(), "capf.db"), nil)
		require.NoError(t, err)
		t.Cleanup(func() { s.Close() })
		return s
	})
}

// fullDevice returns a record with every field set. Times are UTC without
// a monotonic reading, so that they survive a JSON round trip unchanged.
func fullDevice(name string) *Device {
	t0 := time.Date(2025, 3, 4, 5, 6, 7, 8, time.UTC)
	return &Device{
		Name: name,
		Pending: &Schedule{
			Operation: OpInstall, Auth: AuthString, AuthString: "123456", Key: EC384,
			Deadline: t0.Add(24 * time.Hour), Scheduled: t0, Failures: 2,
		},
		Last:        &Result{Operation: OpFetch, Failure: FailNoCertificate, Time: t0.Add(-time.Hour), Serial: "abc"},
		Certificate: []byte{0x30, 0x03, 0x01, 0x02, 0x03},
		Fetched:     []byte{0x30, 0x01, 0x00},
		LastSeen:    t0.Add(time.Minute),
	}
}

// set returns an Update function that copies want into the record.
func set(want *Device) func(*Device) error {
	return func(d *Device) error {
		*d = *cloneDevice(want)
		return nil
	}
}

func issuedCert(serial, device string) *IssuedCertificate {
	return &IssuedCertificate{
		Serial: serial, Device: device,
		Issued: time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC),
		DER:    []byte("der of " + serial),
	}
}

func serials(cs []*IssuedCertificate) []string {
	var s []string
	for _, c := range cs {
		s = append(s, c.Serial)
	}
	return s
}

func names(ds []*Device) []string {
	var s []string
	for _, d := range ds {
		s = append(s, d.Name)
	}
	return s
}

// testStore is the conformance suite every Store must pass. open returns
// a new, empty store that the test may close.
func testStore(t *testing.T, open func(t *testing.T) Store) {
	ctx := context.Background()
	never := func(t *testing.T) func(*Device) error {
		return func(*Device) error {
			t.Error("fn called")
			return nil
		}
	}

	t.Run("UnknownDevice", func(t *testing.T) {
		s := open(t)
		_, err := s.Device(ctx, "SEP001122334455")
		require.ErrorIs(t, err, ErrUnknownDevice)
		err = s.Update(ctx, "SEP001122334455", false, never(t))
		require.ErrorIs(t, err, ErrUnknownDevice)
		// Names no record can have are unknown too, not invalid.
		for _, name := range []string{"", "a b", "a\x00", strings.Repeat("A", 1000)} {
			_, err = s.Device(ctx, name)
			require.ErrorIs(t, err, ErrUnknownDevice, "%q", name)
			require.ErrorIs(t, s.Update(ctx, name, false, never(t)), ErrUnknownDevice, "%q", name)
			require.NoError(t, s.Remove(ctx, name), "%q", name)
		}
		ds, err := s.Devices(ctx)
		require.NoError(t, err)
		require.Empty(t, ds)
		cs, err := s.Issued(ctx, "SEP001122334455")
		require.NoError(t, err)
		require.Empty(t, cs)
		cs, err = s.Issued(ctx, "")
		require.NoError(t, err)
		require.Empty(t, cs)
	})

	t.Run("Create", func(t *testing.T) {
		s := open(t)
		calls := 0
		err := s.Update(ctx, "SEP001122334455", true, func(d *Device) error {
			calls++
			require.Equal(t, &Device{Name: "SEP001122334455"}, d)
			d.Pending = &Schedule{Operation: OpFetch}
			return nil
		})
		require.NoError(t, err)
		require.GreaterOrEqual(t, calls, 1)
		d, err := s.Device(ctx, "SEP001122334455")
		require.NoError(t, err)
		// KeyDefault is stored as what it means.
		require.Equal(t, &Device{Name: "SEP001122334455", Pending: &Schedule{Operation: OpFetch, Key: RSA2048}}, d)

		// Without create, fn sees the stored record.
		want := fullDevice("SEP001122334455")
		err = s.Update(ctx, "SEP001122334455", false, func(d *Device) error {
			require.Equal(t, OpFetch, d.Pending.Operation)
			return set(want)(d)
		})
		require.NoError(t, err)
		d, err = s.Device(ctx, "SEP001122334455")
		require.NoError(t, err)
		require.Equal(t, want, d)

		// create on an existing record changes nothing about that.
		err = s.Update(ctx, "SEP001122334455", true, func(d *Device) error {
			require.Equal(t, want, d)
			d.Pending = nil
			return nil
		})
		require.NoError(t, err)
		d, err = s.Device(ctx, "SEP001122334455")
		require.NoError(t, err)
		require.Nil(t, d.Pending)
		require.Equal(t, want.Certificate, d.Certificate)

		require.NoError(t, s.Update(ctx, "CSFUSER1", true, func(*Device) error { return nil }))
		require.NoError(t, s.Update(ctx, "BOT-2", true, func(*Device) error { return nil }))
		ds, err := s.Devices(ctx)
		require.NoError(t, err)
		require.Equal(t, []string{"BOT-2", "CSFUSER1", "SEP001122334455"}, names(ds))
		require.Nil(t, ds[2].Pending)
	})

	t.Run("DeviceName", func(t *testing.T) {
		s := open(t)
		for _, name := range []string{"", " ", "SEP 1", "SEP\x001", "SEP\t1", "SEP\x7f", "SEPé", strings.Repeat("A", 65), "//host/x", "a%zz", ":x"} {
			err := s.Update(ctx, name, true, never(t))
			require.ErrorIs(t, err, ErrInvalid, "%q", name)
		}
		for _, name := range []string{"A", "SEP001122334455", "CP-7962-SEP001122334455", "BOT_JSMITH.1", strings.Repeat("A", 64)} {
			require.NoError(t, s.Update(ctx, name, true, func(*Device) error { return nil }), "%q", name)
			_, err := s.Device(ctx, name)
			require.NoError(t, err, "%q", name)
		}
		ds, err := s.Devices(ctx)
		require.NoError(t, err)
		require.Len(t, ds, 5)
	})

	t.Run("FnErrorAborts", func(t *testing.T) {
		s := open(t)
		boom := errors.New("boom")
		err := s.Update(ctx, "SEP1", true, func(d *Device) error {
			d.LastSeen = time.Now()
			return boom
		})
		require.ErrorIs(t, err, boom)
		_, err = s.Device(ctx, "SEP1")
		require.ErrorIs(t, err, ErrUnknownDevice, "a failed create must not create")

		want := fullDevice("SEP1")
		require.NoError(t, s.Update(ctx, "SEP1", true, set(want)))
		err = s.Update(ctx, "SEP1", false, func(d *Device) error {
			d.Pending = nil
			d.Certificate[0] = 0xff
			d.Certificate = nil
			return boom
		})
		require.ErrorIs(t, err, boom)
		d, err := s.Device(ctx, "SEP1")
		require.NoError(t, err)
		require.Equal(t, want, d)

		// A record fn leaves invalid is refused, and not written.
		for _, bad := range []func(*Device){
			func(d *Device) { d.Name = "SEP2" },
			func(d *Device) { d.Pending.Operation = 9 },
			func(d *Device) { d.Pending.Auth = 9 },
			func(d *Device) { d.Pending.Key = 99 },
			func(d *Device) { d.Last.Operation = 9 },
			func(d *Device) { d.Last.Failure = 200 },
		} {
			err = s.Update(ctx, "SEP1", false, func(d *Device) error { bad(d); return nil })
			require.ErrorIs(t, err, ErrInvalid)
		}
		d, err = s.Device(ctx, "SEP1")
		require.NoError(t, err)
		require.Equal(t, want, d)
		ds, err := s.Devices(ctx)
		require.NoError(t, err)
		require.Equal(t, []string{"SEP1"}, names(ds))
	})

	t.Run("DeepCopy", func(t *testing.T) {
		s := open(t)
		want := fullDevice("SEP1")
		in := fullDevice("SEP1")
		var kept *Device
		require.NoError(t, s.Update(ctx, "SEP1", true, func(d *Device) error {
			*d = *in // d shares in's pointers and slices
			kept = d
			return nil
		}))
		// Changing what fn was given or set, after Update, changes nothing.
		in.Pending.Failures = 99
		in.Last.Serial = "ffff"
		in.Certificate[0] = 0xff
		in.Fetched[0] = 0xff
		kept.Name = "SEP9"
		kept.LastSeen = time.Time{}

		d, err := s.Device(ctx, "SEP1")
		require.NoError(t, err)
		require.Equal(t, want, d)
		// Nor does changing what Device returned.
		d.Pending.AuthString = "000000"
		d.Last.Failure = FailNone
		d.Certificate[1] = 0xff
		d.Fetched[1] = 0xff
		d2, err := s.Device(ctx, "SEP1")
		require.NoError(t, err)
		require.Equal(t, want, d2)
		// Nor what Devices returned.
		ds, err := s.Devices(ctx)
		require.NoError(t, err)
		ds[0].Pending.Key = RSA1024
		ds[0].Certificate[2] = 0xff
		ds[0].Last.Time = time.Time{}
		d2, err = s.Device(ctx, "SEP1")
		require.NoError(t, err)
		require.Equal(t, want, d2)
		// Nor what Update's fn was given, if fn fails.
		require.Error(t, s.Update(ctx, "SEP1", false, func(d *Device) error {
			d.Pending.Failures = 50
			d.Certificate[0] = 0
			return errors.New("no")
		}))
		d2, err = s.Device(ctx, "SEP1")
		require.NoError(t, err)
		require.Equal(t, want, d2)

		c := issuedCert("1a", "SEP1")
		require.NoError(t, s.RecordIssued(ctx, c))
		c.DER[0] = 'X'
		c.Device = "SEP2"
		cs, err := s.Issued(ctx, "SEP1")
		require.NoError(t, err)
		require.Equal(t, []*IssuedCertificate{issuedCert("1a", "SEP1")}, cs)
		cs[0].DER[0] = 'Y'
		cs, err = s.Issued(ctx, "")
		require.NoError(t, err)
		require.Equal(t, []*IssuedCertificate{issuedCert("1a", "SEP1")}, cs)
	})

	t.Run("Remove", func(t *testing.T) {
		s := open(t)
		require.NoError(t, s.Update(ctx, "SEP1", true, set(fullDevice("SEP1"))))
		require.NoError(t, s.Update(ctx, "SEP2", true, set(fullDevice("SEP2"))))
		require.NoError(t, s.RecordIssued(ctx, issuedCert("1", "SEP1")))
		require.NoError(t, s.Remove(ctx, "SEP1"))
		_, err := s.Device(ctx, "SEP1")
		require.ErrorIs(t, err, ErrUnknownDevice)
		require.ErrorIs(t, s.Update(ctx, "SEP1", false, never(t)), ErrUnknownDevice)
		require.NoError(t, s.Remove(ctx, "SEP1"), "removing an absent device")
		require.NoError(t, s.Remove(ctx, "SEP3"), "removing an unknown device")
		ds, err := s.Devices(ctx)
		require.NoError(t, err)
		require.Equal(t, []string{"SEP2"}, names(ds))
		// Issued certificates stay.
		cs, err := s.Issued(ctx, "SEP1")
		require.NoError(t, err)
		require.Equal(t, []string{"1"}, serials(cs))
		// A new record under the name starts empty.
		require.NoError(t, s.Update(ctx, "SEP1", true, func(d *Device) error {
			require.Equal(t, &Device{Name: "SEP1"}, d)
			return nil
		}))
	})

	t.Run("RecordIssued", func(t *testing.T) {
		s := open(t)
		require.NoError(t, s.RecordIssued(ctx, issuedCert("abc", "SEP1")))
		err := s.RecordIssued(ctx, issuedCert("abc", "SEP2"))
		require.ErrorIs(t, err, ErrDuplicateSerial)
		// Leading zeros do not make another serial.
		err = s.RecordIssued(ctx, issuedCert("0abc", "SEP1"))
		require.ErrorIs(t, err, ErrDuplicateSerial)
		require.NoError(t, s.RecordIssued(ctx, issuedCert("0", "SEP1")))
		require.ErrorIs(t, s.RecordIssued(ctx, issuedCert("000", "SEP1")), ErrDuplicateSerial)

		for _, c := range []*IssuedCertificate{
			nil,
			issuedCert("", "SEP1"),
			issuedCert("ABC", "SEP1"),
			issuedCert("0x1", "SEP1"),
			issuedCert("12 34", "SEP1"),
			issuedCert(strings.Repeat("1", 129), "SEP1"),
			issuedCert("def", ""),
			issuedCert("def", "SEP 1"),
		} {
			require.ErrorIs(t, s.RecordIssued(ctx, c), ErrInvalid, "%+v", c)
		}
		cs, err := s.Issued(ctx, "")
		require.NoError(t, err)
		require.Equal(t, []*IssuedCertificate{issuedCert("abc", "SEP1"), issuedCert("0", "SEP1")}, cs)
		cs, err = s.Issued(ctx, "SEP2")
		require.NoError(t, err)
		require.Empty(t, cs)
	})

	t.Run("IssuedOrder", func(t *testing.T) {
		s := open(t)
		// Serials out of sort order, devices whose names prefix each other.
		recs := []struct{ serial, device string }{
			{"f0", "SEP1"}, {"10", "SEP10"}, {"e1", "SEP1"}, {"20", "SEP1"},
			{"d3", "SEP10"}, {"5", "SEP"}, {"a", "SEP1"},
		}
		for _, r := range recs {
			require.NoError(t, s.RecordIssued(ctx, issuedCert(r.serial, r.device)))
		}
		for _, tc := range []struct {
			name string
			want []string
		}{
			{"SEP1", []string{"f0", "e1", "20", "a"}},
			{"SEP10", []string{"10", "d3"}},
			{"SEP", []string{"5"}},
			{"SEP2", nil},
			{"", []string{"f0", "10", "e1", "20", "d3", "5", "a"}},
		} {
			cs, err := s.Issued(ctx, tc.name)
			require.NoError(t, err)
			require.Equal(t, tc.want, serials(cs), "Issued(%q)", tc.name)
			for _, c := range cs {
				if tc.name != "" {
					require.Equal(t, tc.name, c.Device)
				}
				require.Equal(t, issuedCert(c.Serial, c.Device), c)
			}
		}
		// Names no device can have list nothing.
		for _, name := range []string{"SEP1\x00", "SEP1\x00\x00", " "} {
			cs, err := s.Issued(ctx, name)
			require.NoError(t, err, "%q", name)
			require.Empty(t, cs, "%q", name)
		}
	})

	t.Run("Panic", func(t *testing.T) {
		s := open(t)
		require.NoError(t, s.Update(ctx, "SEP1", true, set(fullDevice("SEP1"))))
		require.Panics(t, func() {
			s.Update(ctx, "SEP1", false, func(d *Device) error {
				d.Pending = nil
				panic("fn")
			})
		})
		// The store is still usable and unchanged.
		d, err := s.Device(ctx, "SEP1")
		require.NoError(t, err)
		require.Equal(t, fullDevice("SEP1"), d)
		require.NoError(t, s.Update(ctx, "SEP1", false, func(d *Device) error { d.Fetched = nil; return nil }))
		require.NoError(t, s.Close())
	})

	t.Run("Close", func(t *testing.T) {
		s := open(t)
		require.NoError(t, s.Update(ctx, "SEP1", true, set(fullDevice("SEP1"))))
		require.NoError(t, s.Close())
		_, err := s.Device(ctx, "SEP1")
		require.ErrorIs(t, err, ErrStoreClosed)
		_, err = s.Devices(ctx)
		require.ErrorIs(t, err, ErrStoreClosed)
		require.ErrorIs(t, s.Update(ctx, "SEP1", true, never(t)), ErrStoreClosed)
		require.ErrorIs(t, s.Remove(ctx, "SEP1"), ErrStoreClosed)
		require.ErrorIs(t, s.RecordIssued(ctx, issuedCert("1", "SEP1")), ErrStoreClosed)
		_, err = s.Issued(ctx, "")
		require.ErrorIs(t, err, ErrStoreClosed)
		require.NoError(t, s.Close(), "second Close")
	})

	t.Run("Context", func(t *testing.T) {
		s := open(t)
		require.NoError(t, s.Update(ctx, "SEP1", true, set(fullDevice("SEP1"))))
		cctx, cancel := context.WithCancel(ctx)
		cancel()
		_, err := s.Device(cctx, "SEP1")
		require.ErrorIs(t, err, context.Canceled)
		_, err = s.Devices(cctx)
		require.ErrorIs(t, err, context.Canceled)
		require.ErrorIs(t, s.Update(cctx, "SEP2", true, never(t)), context.Canceled)
		require.ErrorIs(t, s.Remove(cctx, "SEP1"), context.Canceled)
		require.ErrorIs(t, s.RecordIssued(cctx, issuedCert("1", "SEP1")), context.Canceled)
		_, err = s.Issued(cctx, "")
		require.ErrorIs(t, err, context.Canceled)
		dctx, cancel := context.WithDeadline(ctx, time.Now().Add(-time.Second))
		defer cancel()
		require.ErrorIs(t, s.Update(dctx, "SEP2", true, never(t)), context.DeadlineExceeded)

		// Nothing was written.
		ds, err := s.Devices(ctx)
		require.NoError(t, err)
		require.Equal(t, []*Device{fullDevice("SEP1")}, ds)
		cs, err := s.Issued(ctx, "")
		require.NoError(t, err)
		require.Empty(t, cs)
	})

	t.Run("Concurrent", func(t *testing.T) {
		s := open(t)
		const workers, rounds = 50, 20
		var wg sync.WaitGroup
		var recorded, duplicates atomic.Int64
		errs := make(chan error, workers*rounds*4)
		for w := range workers {
			own := fmt.Sprintf("SEP%012X", w)
			wg.Go(func() {
				for r := range rounds {
					// Own device: created on the first round.
					errs <- s.Update(ctx, own, true, func(d *Device) error {
						if d.Pending == nil {
							d.Pending = &Schedule{Operation: OpInstall}
						}
						d.Pending.Failures++
						d.Certificate = append(d.Certificate, byte(r))
						return nil
					})
					// The shared device, by every worker.
					errs <- s.Update(ctx, "SHARED", true, func(d *Device) error {
						if d.Pending == nil {
							d.Pending = &Schedule{}
						}
						d.Pending.Failures++
						return nil
					})
					// Every worker records the same rounds' serials: one
					// wins each; plus one of its own.
					switch err := s.RecordIssued(ctx, issuedCert(fmt.Sprintf("%x", 0x1000+r), own)); {
					case err == nil:
						recorded.Add(1)
					case errors.Is(err, ErrDuplicateSerial):
						duplicates.Add(1)
					default:
						errs <- err
					}
					errs <- s.RecordIssued(ctx, issuedCert(fmt.Sprintf("%x", 0x10000+w*rounds+r), own))
					// Failing updates in the same batches change nothing.
					errBad := errors.New("bad")
					if err := s.Update(ctx, own, false, func(d *Device) error {
						d.Pending.Failures += 1000
						return errBad
					}); !errors.Is(err, errBad) {
						errs <- fmt.Errorf("failing update: %v", err)
					}
					if err := s.Update(ctx, own+"X", false, func(d *Device) error {
						return nil
					}); !errors.Is(err, ErrUnknownDevice) {
						errs <- fmt.Errorf("update of an unknown device: %v", err)
					}
					if r%5 == 0 {
						_, err := s.Devices(ctx)
						errs <- err
						_, err = s.Issued(ctx, own)
						errs <- err
					}
				}
			})
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			require.NoError(t, err)
		}
		require.EqualValues(t, rounds, recorded.Load())
		require.EqualValues(t, (workers-1)*rounds, duplicates.Load())

		d, err := s.Device(ctx, "SHARED")
		require.NoError(t, err)
		require.Equal(t, workers*rounds, d.Pending.Failures)
		ds, err := s.Devices(ctx)
		require.NoError(t, err)
		require.Len(t, ds, workers+1)
		wantCert := make([]byte, rounds)
		for r := range wantCert {
			wantCert[r] = byte(r)
		}
		own := 0
		for _, d := range ds {
			if d.Name == "SHARED" {
				continue
			}
			own++
			require.Equal(t, rounds, d.Pending.Failures, d.Name)
			require.Equal(t, wantCert, d.Certificate, d.Name)
			cs, err := s.Issued(ctx, d.Name)
			require.NoError(t, err)
			// Its own serials, in the order it recorded them.
			var mine []string
			for _, c := range cs {
				if len(c.Serial) == 5 {
					mine = append(mine, c.Serial)
				}
			}
			require.Len(t, mine, rounds, d.Name)
			require.IsIncreasing(t, mine, d.Name)
		}
		require.Equal(t, workers, own)
		cs, err := s.Issued(ctx, "")
		require.NoError(t, err)
		require.Len(t, cs, rounds+workers*rounds)
	})
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

func TestBoltStoreReopen(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "capf.db")
	s := openBolt(t, path)
	for _, n := range []string{"SEP3", "SEP1", "SEP2"} {
		require.NoError(t, s.Update(ctx, n, true, set(fullDevice(n))))
	}
	require.NoError(t, s.Remove(ctx, "SEP2"))
	require.NoError(t, s.RecordIssued(ctx, issuedCert("ff", "SEP1")))
	require.NoError(t, s.RecordIssued(ctx, issuedCert("11", "SEP3")))
	require.NoError(t, s.RecordIssued(ctx, issuedCert("22", "SEP1")))
	require.NoError(t, s.Close())

	s = openBolt(t, path)
	defer s.Close()
	ds, err := s.Devices(ctx)
	require.NoError(t, err)
	require.Equal(t, []*Device{fullDevice("SEP1"), fullDevice("SEP3")}, ds)
	// The sequence carries on: new records come after the old ones, and
	// old serials are still taken.
	require.ErrorIs(t, s.RecordIssued(ctx, issuedCert("ff", "SEP3")), ErrDuplicateSerial)
	require.NoError(t, s.RecordIssued(ctx, issuedCert("01", "SEP1")))
	cs, err := s.Issued(ctx, "SEP1")
	require.NoError(t, err)
	require.Equal(t, []string{"ff", "22", "01"}, serials(cs))
	cs, err = s.Issued(ctx, "")
	require.NoError(t, err)
	require.Equal(t, []string{"ff", "11", "22", "01"}, serials(cs))
}

// TestBoltStoreOpenErrors checks that OpenBoltStore reports this
// package's sentinels, and this package's schema.
func TestBoltStoreOpenErrors(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "capf.db")
	s := openBolt(t, path)
	_, err := OpenBoltStore(path, &BoltOptions{Timeout: 100 * time.Millisecond})
	require.ErrorIs(t, err, ErrStoreLocked)
	require.True(t, strings.HasPrefix(err.Error(), "capf: store in use: "+path), err.Error())
	t.Log(err)
	require.NoError(t, s.Close())
	_, err = OpenBoltStore(path, &BoltOptions{Timeout: -1})
	require.ErrorIs(t, err, ErrInvalid)
	_, err = OpenBoltStore(filepath.Join(dir, "no", "dir", "capf.db"), nil)
	require.ErrorIs(t, err, os.ErrNotExist)
	require.True(t, strings.HasPrefix(err.Error(), "capf: open store: "), err.Error())

	for _, tc := range []struct {
		name string
		edit func(tx *bolt.Tx) error
		want error
		msg  string
	}{
		{"newer", func(tx *bolt.Tx) error {
			return tx.Bucket([]byte("meta")).Put([]byte("version"), []byte(strconv.Itoa(boltSchema+1)))
		}, ErrStoreVersion, "capf: store schema version not supported: "},
		{"missing bucket", func(tx *bolt.Tx) error {
			return tx.DeleteBucket([]byte("issued-by-device"))
		}, ErrCorrupt, `no "issued-by-device" bucket`},
		{"no meta", func(tx *bolt.Tx) error { return tx.DeleteBucket([]byte("meta")) }, ErrCorrupt, "not a CAPF store"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := openBolt(t, path)
			require.NoError(t, s.h.DB().Update(tc.edit))
			require.NoError(t, s.Close())
			_, err := OpenBoltStore(path, nil)
			require.ErrorIs(t, err, tc.want)
			require.True(t, strings.HasPrefix(err.Error(), "capf: "), err.Error())
			require.Contains(t, err.Error(), tc.msg)
			t.Log(err)
			require.NoError(t, os.Remove(path))
		})
	}
}

func TestBoltStoreCorrupt(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "capf.db")
	s := openBolt(t, path)
	require.NoError(t, s.Update(ctx, "SEP1", true, set(fullDevice("SEP1"))))
	require.NoError(t, s.RecordIssued(ctx, issuedCert("1", "SEP1")))
	require.NoError(t, s.Close())

	good, err := os.ReadFile(path)
	require.NoError(t, err)
	for _, tc := range []struct {
		name   string
		bucket string
		key    string
		value  string
	}{
		{"not JSON", "devices", "SEP1", "{"},
		{"wrong type", "devices", "SEP1", `{"name":"SEP1","pending":7}`},
		{"unknown operation", "devices", "SEP1", `{"name":"SEP1","pending":{"operation":"explode"}}`},
		{"other name", "devices", "SEP1", `{"name":"SEP2"}`},
		{"issued not JSON", "issued", "1", "\x00\x01"},
		{"issued other serial", "issued", "1", `{"serial":"2","device":"SEP1"}`},
		{"issued other device", "issued", "1", `{"serial":"1","device":"SEP9"}`}, // only the device index is wrong
		{"issued missing", "issued", "1", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			require.NoError(t, os.WriteFile(path, good, 0o600))
			s := openBolt(t, path)
			require.NoError(t, s.h.DB().Update(func(tx *bolt.Tx) error {
				if tc.value == "" {
					return tx.Bucket([]byte(tc.bucket)).Delete([]byte(tc.key))
				}
				return tx.Bucket([]byte(tc.bucket)).Put([]byte(tc.key), []byte(tc.value))
			}))
			require.NoError(t, s.Close())
			s = openBolt(t, path) // which does not read records
			defer s.Close()
			if tc.bucket == "devices" {
				_, err := s.Device(ctx, "SEP1")
				require.ErrorIs(t, err, ErrCorrupt)
				t.Log(err)
				_, err = s.Devices(ctx)
				require.ErrorIs(t, err, ErrCorrupt)
				err = s.Update(ctx, "SEP1", true, func(*Device) error {
					t.Error("fn called on a corrupt record")
					return nil
				})
				require.ErrorIs(t, err, ErrCorrupt)
				// A corrupt record can be removed and made again.
				require.NoError(t, s.Remove(ctx, "SEP1"))
				require.NoError(t, s.Update(ctx, "SEP1", true, func(*Device) error { return nil }))
			} else {
				_, err := s.Issued(ctx, "SEP1")
				require.ErrorIs(t, err, ErrCorrupt)
				t.Log(err)
				if tc.name != "issued other device" {
					_, err = s.Issued(ctx, "")
					require.ErrorIs(t, err, ErrCorrupt)
				}
				_, err = s.Device(ctx, "SEP1")
				require.NoError(t, err)
			}
		})
	}
}

// BenchmarkBoltStoreUpdateParallel measures Update with many goroutines,
// each on its own device, as a server with many phones enrolling at once
// does. Each goroutine waits for a synced commit; the batch shares it.
func BenchmarkBoltStoreUpdateParallel(b *testing.B) {
	for _, perProc := range []int{1, 8, 64} {
		b.Run(fmt.Sprintf("goroutines=%dxGOMAXPROCS", perProc), func(b *testing.B) {
			s, err := OpenBoltStore(filepath.Join(b.TempDir(), "capf.db"), nil)
			if err != nil {
				b.Fatal(err)
			}
			defer s.Close()
			ctx := context.Background()
			var next atomic.Int64
			b.SetParallelism(perProc)
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				name := fmt.Sprintf("SEP%012X", next.Add(1))
				cert := bytes.Repeat([]byte{0x30}, 1200) // about an LSC
				for pb.Next() {
					err := s.Update(ctx, name, true, func(d *Device) error {
						d.LastSeen = time.Now()
						d.Certificate = cert
						if d.Pending == nil {
							d.Pending = &Schedule{Operation: OpInstall}
						}
						d.Pending.Failures++
						return nil
					})
					if err != nil {
						b.Error(err)
						return
					}
				}
			})
		})
	}
}
