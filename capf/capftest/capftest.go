package capftest

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ucsec/ucsec/capf"
)

// TestStore tests a [capf.Store]. open must return a new, empty store for
// the test t, and release it when t ends (t.Cleanup); the suite may close
// it first, so closing it twice must be harmless. open is called once for
// each subtest, concurrently with no other.
func TestStore(t *testing.T, open func(t *testing.T) capf.Store) {
	t.Helper()
	run(t, func(t *testing.T) (capf.Store, capf.Store) {
		s := open(t)
		return s, s
	}, false)
}

// TestSharedStore tests a [capf.Store] of which several handles (several
// processes) share one state, such as a store in a database. open must
// return two handles, opened separately, on a new, empty store for the
// test t, and release them when t ends. The suite runs its checks with
// writes through one handle and reads, and concurrent writes, through the
// other, and its two servers each on their own handle. A store should
// pass [TestStore] as well.
func TestSharedStore(t *testing.T, open func(t *testing.T) (a, b capf.Store)) {
	t.Helper()
	run(t, open, true)
}

// run runs the suite on the handles open returns (the same one twice,
// unless shared).
func run(t *testing.T, open func(t *testing.T) (a, b capf.Store), shared bool) {
	for _, tc := range []struct {
		name string
		test func(t *testing.T, a, b capf.Store)
	}{
		{"Absent", testAbsent},
		{"RoundTrip", testRoundTrip},
		{"ReplaceAndDelete", testReplaceAndDelete},
		{"FnError", testFnError},
		{"LastCallWins", testLastCallWins},
		{"Copies", testCopies},
		{"UpdateConcurrent", testUpdateConcurrent},
		{"RecordIssued", testRecordIssued},
		{"RecordIssuedConcurrent", testRecordIssuedConcurrent},
		{"IssuedOrder", testIssuedOrder},
		{"Context", testContext},
		{"Close", func(t *testing.T, a, b capf.Store) { testClose(t, a, b, shared) }},
		{"ServersOneCertificate", testServersOneCertificate},
		{"ServersLiveClaim", testServersLiveClaim},
		{"ServersLapsedClaim", testServersLapsedClaim},
	} {
		t.Run(tc.name, func(t *testing.T) {
			a, b := open(t)
			if a == nil || b == nil {
				t.Fatal("open returned a nil store")
			}
			tc.test(t, a, b)
		})
	}
}

// Device names a store must keep apart and list in byte order: prefixes
// of each other, letters in both cases, SQL wildcards and quotes, and the
// longest name.
var names = []string{
	"SEP001122334455", "SEP0011223344550", "SEP00112233445", "sep001122334455",
	"SEP_", "SEP%", "SEP", "A", "a'b\"c\\d;--", "~!#$&()*+,-./:<=>?@[]^`{|}",
	strings.Repeat("Z", 64),
}

// values returns records a store must keep byte for byte: short, every
// byte value, NULs, not UTF-8, and one of the largest size (1 MiB).
func values() [][]byte {
	all := make([]byte, 256)
	for i := range all {
		all[i] = byte(i)
	}
	big := make([]byte, 1<<20)
	rng := rand.NewChaCha8([32]byte{'c', 'a', 'p', 'f'})
	rng.Read(big)
	big[0], big[len(big)-1] = 0, 0
	return [][]byte{{1}, []byte("record"), all, {0, 0, 0}, {0xff, 0xfe, 0xc3, 0x28}, big}
}

// put stores data as the device's record, failing the test on an error.
func put(t *testing.T, s capf.Store, device string, data []byte) {
	t.Helper()
	if err := s.Update(t.Context(), device, func([]byte) ([]byte, error) { return data, nil }); err != nil {
		t.Fatalf("Update(%q): %v", device, err)
	}
}

// get returns the device's record, failing the test on an error.
func get(t *testing.T, s capf.Store, device string) []byte {
	t.Helper()
	data, err := s.Get(t.Context(), device)
	if err != nil {
		t.Fatalf("Get(%q): %v", device, err)
	}
	return data
}

// wantRecord checks the device's record: data, or none if data is nil.
func wantRecord(t *testing.T, s capf.Store, device string, data []byte) {
	t.Helper()
	got := get(t, s, device)
	switch {
	case data == nil && len(got) != 0:
		t.Fatalf("Get(%q) = %d bytes, want no record", device, len(got))
	case data != nil && !bytes.Equal(got, data):
		t.Fatalf("Get(%q) = %s, want %s", device, brief(got), brief(data))
	}
}

// brief describes data for an error message.
func brief(data []byte) string {
	if data == nil {
		return "nil"
	}
	if len(data) > 16 {
		return fmt.Sprintf("%d bytes %x…", len(data), data[:16])
	}
	return fmt.Sprintf("%d bytes %x", len(data), data)
}

func list(t *testing.T, s capf.Store) []capf.DeviceRecord {
	t.Helper()
	recs, err := s.List(t.Context())
	if err != nil {
		t.Fatalf("List: %v", err)
	}
	return recs
}

func issued(t *testing.T, s capf.Store, device string) []capf.IssuedRecord {
	t.Helper()
	recs, err := s.Issued(t.Context(), device)
	if err != nil {
		t.Fatalf("Issued(%q): %v", device, err)
	}
	return recs
}

func serials(recs []capf.IssuedRecord) []string {
	s := []string{}
	for _, r := range recs {
		s = append(s, r.Serial)
	}
	return s
}

func entry(serial, device string) capf.IssuedRecord {
	return capf.IssuedRecord{Serial: serial, Device: device, Data: []byte("data of " + serial + "\x00\xff")}
}

// keep is an update function that leaves the record as it is.
func keep(old []byte) ([]byte, error) { return old, nil }

// never is an update function that must not be called.
func never(t *testing.T) func([]byte) ([]byte, error) {
	return func([]byte) ([]byte, error) {
		t.Error("fn called")
		return nil, errors.New("fn called")
	}
}

func testAbsent(t *testing.T, a, b capf.Store) {
	ctx := t.Context()
	for _, name := range names {
		wantRecord(t, a, name, nil)
	}
	if recs := list(t, a); len(recs) != 0 {
		t.Fatalf("List of an empty store: %d records", len(recs))
	}
	if recs := issued(t, a, ""); len(recs) != 0 {
		t.Fatalf("Issued of an empty store: %d entries", len(recs))
	}
	if recs := issued(t, a, names[0]); len(recs) != 0 {
		t.Fatalf("Issued(%q) of an empty store: %d entries", names[0], len(recs))
	}
	// Update gives fn no record, and nil back stores none.
	calls := 0
	err := b.Update(ctx, names[0], func(old []byte) ([]byte, error) {
		calls++
		if len(old) != 0 {
			t.Errorf("fn got %s for an absent record", brief(old))
		}
		return nil, nil
	})
	if err != nil || calls == 0 {
		t.Fatalf("Update of an absent record: %v, fn called %d times", err, calls)
	}
	wantRecord(t, a, names[0], nil)
	if recs := list(t, a); len(recs) != 0 {
		t.Fatalf("List after deleting an absent record: %d records", len(recs))
	}
}

func testRoundTrip(t *testing.T, a, b capf.Store) {
	ctx := t.Context()
	vals := values()
	want := map[string][]byte{}
	for i, name := range names {
		v := vals[i%len(vals)]
		put(t, a, name, v)
		want[name] = v
	}
	for _, name := range names {
		wantRecord(t, b, name, want[name])
		// fn sees the stored record.
		err := b.Update(ctx, name, func(old []byte) ([]byte, error) {
			if !bytes.Equal(old, want[name]) {
				t.Errorf("fn got %s, want %s", brief(old), brief(want[name]))
			}
			return old, nil
		})
		if err != nil {
			t.Fatalf("Update(%q): %v", name, err)
		}
	}
	recs := list(t, b)
	sorted := slices.Clone(names)
	slices.Sort(sorted)
	var got []string
	for _, r := range recs {
		got = append(got, r.Device)
		if !bytes.Equal(r.Data, want[r.Device]) {
			t.Fatalf("List: %q holds %s, want %s", r.Device, brief(r.Data), brief(want[r.Device]))
		}
	}
	if !slices.Equal(got, sorted) {
		t.Fatalf("List = %q, want %q (byte order)", got, sorted)
	}
}

func testReplaceAndDelete(t *testing.T, a, b capf.Store) {
	ctx := t.Context()
	dev, other := names[0], names[1]
	put(t, a, dev, []byte("first"))
	put(t, a, other, []byte("other"))
	put(t, b, dev, []byte("second, longer than the first"))
	wantRecord(t, a, dev, []byte("second, longer than the first"))
	put(t, a, dev, []byte("3"))
	wantRecord(t, b, dev, []byte("3"))

	// nil and an empty record both delete.
	for _, empty := range [][]byte{nil, {}} {
		if err := b.Update(ctx, dev, func([]byte) ([]byte, error) { return empty, nil }); err != nil {
			t.Fatalf("delete: %v", err)
		}
		wantRecord(t, a, dev, nil)
		if recs := list(t, a); len(recs) != 1 || recs[0].Device != other {
			t.Fatalf("List after a delete: %d records", len(recs))
		}
		put(t, a, dev, []byte("again"))
		wantRecord(t, b, dev, []byte("again"))
	}
	wantRecord(t, a, other, []byte("other"))
}

func testFnError(t *testing.T, a, b capf.Store) {
	ctx := t.Context()
	boom := errors.New("capftest: fn failed")
	dev, absent := names[0], names[1]
	put(t, a, dev, []byte("kept"))
	for _, fn := range []func([]byte) ([]byte, error){
		func([]byte) ([]byte, error) { return []byte("changed"), boom },
		func([]byte) ([]byte, error) { return nil, boom },
	} {
		if err := b.Update(ctx, dev, fn); !errors.Is(err, boom) {
			t.Fatalf("Update with a failing fn: %v, want fn's error", err)
		}
		wantRecord(t, a, dev, []byte("kept"))
		if err := b.Update(ctx, absent, fn); !errors.Is(err, boom) {
			t.Fatalf("Update of an absent record with a failing fn: %v, want fn's error", err)
		}
		wantRecord(t, a, absent, nil)
		// Neither the log entry nor the record change is stored.
		if err := b.RecordIssued(ctx, entry("aa", dev), fn); !errors.Is(err, boom) {
			t.Fatalf("RecordIssued with a failing fn: %v, want fn's error", err)
		}
		wantRecord(t, a, dev, []byte("kept"))
		if recs := issued(t, a, ""); len(recs) != 0 {
			t.Fatalf("RecordIssued with a failing fn logged %q", serials(recs))
		}
	}
	// The serial is still free.
	if err := a.RecordIssued(ctx, entry("aa", dev), keep); err != nil {
		t.Fatal(err)
	}
}

// testLastCallWins checks that what the last call of fn returned is
// stored, however often the store calls it.
func testLastCallWins(t *testing.T, a, b capf.Store) {
	ctx := t.Context()
	dev := names[0]
	var last []byte
	calls := 0
	err := a.Update(ctx, dev, func(old []byte) ([]byte, error) {
		calls++
		last = fmt.Appendf(nil, "call %d after %q", calls, old)
		return last, nil
	})
	if err != nil || calls == 0 {
		t.Fatalf("Update: %v, fn called %d times", err, calls)
	}
	wantRecord(t, b, dev, last)
	if err := a.RecordIssued(ctx, entry("01", dev), func(old []byte) ([]byte, error) {
		calls++
		last = fmt.Appendf(nil, "call %d after %q", calls, old)
		return last, nil
	}); err != nil {
		t.Fatal(err)
	}
	wantRecord(t, b, dev, last)
}

// testCopies checks that the store shares no memory with its caller.
func testCopies(t *testing.T, a, b capf.Store) {
	ctx := t.Context()
	dev := names[0]
	in := []byte("original")
	put(t, a, dev, in)
	in[0] = 'X'
	wantRecord(t, b, dev, []byte("original"))

	got := get(t, b, dev)
	got[0] = 'Y'
	wantRecord(t, b, dev, []byte("original"))
	recs := list(t, b)
	recs[0].Data[0] = 'Z'
	wantRecord(t, b, dev, []byte("original"))

	rec := entry("0a", dev)
	if err := a.RecordIssued(ctx, rec, keep); err != nil {
		t.Fatal(err)
	}
	rec.Data[0] = 'X'
	log := issued(t, b, dev)
	log[0].Data[0] = 'Y'
	if log := issued(t, b, ""); len(log) != 1 || !bytes.Equal(log[0].Data, entry("0a", dev).Data) {
		t.Fatalf("the log entry changed with the caller's memory: %v", log)
	}
}

// counter is a record holding a count, with binary around it.
func counter(n uint64) []byte {
	b := []byte{0, 0xff, 'n'}
	return binary.BigEndian.AppendUint64(b, n)
}

func count(t *testing.T, data []byte) uint64 {
	if len(data) == 0 {
		return 0
	}
	if len(data) != 11 || !bytes.Equal(data[:3], []byte{0, 0xff, 'n'}) {
		t.Errorf("counter record %s", brief(data))
		return 0
	}
	return binary.BigEndian.Uint64(data[3:])
}

func increment(t *testing.T) func([]byte) ([]byte, error) {
	return func(old []byte) ([]byte, error) { return counter(count(t, old) + 1), nil }
}

// testUpdateConcurrent runs increments of one device's counter from many
// goroutines on both handles (two servers): none may be lost. Increments
// of other devices and failing updates run alongside.
func testUpdateConcurrent(t *testing.T, a, b capf.Store) {
	ctx := t.Context()
	const workers, rounds = 8, 10
	shared := names[0]
	boom := errors.New("capftest: fn failed")
	var wg sync.WaitGroup
	errs := make(chan error, workers*rounds*3)
	for w := range workers {
		s := a
		if w%2 == 1 {
			s = b
		}
		own := fmt.Sprintf("SEP%012X", w)
		wg.Go(func() {
			for range rounds {
				errs <- s.Update(ctx, shared, increment(t))
				errs <- s.Update(ctx, own, increment(t))
				if err := s.Update(ctx, shared, func(old []byte) ([]byte, error) {
					return counter(count(t, old) + 1000), boom
				}); !errors.Is(err, boom) {
					errs <- fmt.Errorf("failing update: %v", err)
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	if n := count(t, get(t, a, shared)); n != workers*rounds {
		t.Fatalf("counter of %q = %d after %d increments: updates were lost", shared, n, workers*rounds)
	}
	for w := range workers {
		own := fmt.Sprintf("SEP%012X", w)
		if n := count(t, get(t, b, own)); n != rounds {
			t.Fatalf("counter of %q = %d after %d increments", own, n, rounds)
		}
	}
	if recs := list(t, a); len(recs) != workers+1 {
		t.Fatalf("List: %d records, want %d", len(recs), workers+1)
	}
}

func testRecordIssued(t *testing.T, a, b capf.Store) {
	ctx := t.Context()
	dev, other := names[0], names[1]
	vals := values()
	for i, v := range vals {
		rec := capf.IssuedRecord{Serial: fmt.Sprintf("%02x", i+1), Device: dev, Data: v}
		if err := a.RecordIssued(ctx, rec, increment(t)); err != nil {
			t.Fatalf("RecordIssued(%s): %v", rec.Serial, err)
		}
	}
	log := issued(t, b, dev)
	if len(log) != len(vals) {
		t.Fatalf("Issued(%q): %d entries, want %d", dev, len(log), len(vals))
	}
	for i, rec := range log {
		if rec.Serial != fmt.Sprintf("%02x", i+1) || rec.Device != dev || !bytes.Equal(rec.Data, vals[i]) {
			t.Fatalf("entry %d: %q %q %s", i, rec.Serial, rec.Device, brief(rec.Data))
		}
	}
	if n := count(t, get(t, b, dev)); n != uint64(len(vals)) {
		t.Fatalf("RecordIssued's record updates: counter %d, want %d", n, len(vals))
	}

	// A serial is logged once, for whichever device; the duplicate
	// changes neither the log nor the record.
	put(t, a, other, []byte("other"))
	for _, rec := range []capf.IssuedRecord{entry("01", dev), entry("01", other), entry("02", other)} {
		err := b.RecordIssued(ctx, rec, func([]byte) ([]byte, error) { return []byte("changed"), nil })
		if !errors.Is(err, capf.ErrDuplicateSerial) {
			t.Fatalf("RecordIssued of logged serial %s for %q: %v, want ErrDuplicateSerial", rec.Serial, rec.Device, err)
		}
	}
	wantRecord(t, a, other, []byte("other"))
	if n := count(t, get(t, a, dev)); n != uint64(len(vals)) {
		t.Fatalf("a duplicate changed the record: counter %d", n)
	}
	if n := len(issued(t, a, "")); n != len(vals) {
		t.Fatalf("a duplicate was logged: %d entries", n)
	}
	// The log keeps entries of devices without a record, and of deleted
	// ones.
	if err := b.RecordIssued(ctx, entry("ff", names[2]), keep); err != nil {
		t.Fatal(err)
	}
	wantRecord(t, a, names[2], nil)
	put(t, a, dev, nil)
	if n := len(issued(t, a, dev)); n != len(vals) {
		t.Fatalf("deleting the record changed the log: %d entries", n)
	}
	if got := serials(issued(t, a, names[2])); !slices.Equal(got, []string{"ff"}) {
		t.Fatalf("Issued(%q) = %q", names[2], got)
	}
}

// testRecordIssuedConcurrent races workers on both handles to log the
// same serials, each success counted in the device's record in the same
// transaction: every serial is logged once, and the count matches the
// log. Each worker also logs serials of its own, in order.
func testRecordIssuedConcurrent(t *testing.T, a, b capf.Store) {
	ctx := t.Context()
	const workers, rounds = 8, 10
	shared := names[0]
	var wg sync.WaitGroup
	var mu sync.Mutex
	won := map[string]int{}
	errs := make(chan error, workers*rounds*2)
	for w := range workers {
		s := a
		if w%2 == 1 {
			s = b
		}
		own := fmt.Sprintf("SEP%012X", w)
		wg.Go(func() {
			for r := range rounds {
				serial := fmt.Sprintf("%04x", 0x1000+r)
				switch err := s.RecordIssued(ctx, entry(serial, shared), increment(t)); {
				case err == nil:
					mu.Lock()
					won[serial]++
					mu.Unlock()
				case !errors.Is(err, capf.ErrDuplicateSerial):
					errs <- err
				}
				errs <- s.RecordIssued(ctx, entry(fmt.Sprintf("%06x", 0x100000+w*rounds+r), own), increment(t))
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	for r := range rounds {
		serial := fmt.Sprintf("%04x", 0x1000+r)
		if won[serial] != 1 {
			t.Fatalf("serial %s logged %d times", serial, won[serial])
		}
	}
	log := issued(t, b, shared)
	if len(log) != rounds {
		t.Fatalf("Issued(%q): %d entries, want %d", shared, len(log), rounds)
	}
	if n := count(t, get(t, a, shared)); n != rounds {
		t.Fatalf("record of %q counts %d entries, the log holds %d: record and log were not written together", shared, n, rounds)
	}
	for w := range workers {
		own := fmt.Sprintf("SEP%012X", w)
		got := serials(issued(t, a, own))
		if len(got) != rounds || !slices.IsSorted(got) {
			t.Fatalf("Issued(%q) = %q, want its %d serials in the order recorded", own, got, rounds)
		}
		if n := count(t, get(t, b, own)); n != rounds {
			t.Fatalf("record of %q counts %d", own, n)
		}
	}
	if n := len(issued(t, a, "")); n != rounds+workers*rounds {
		t.Fatalf("Issued: %d entries, want %d", n, rounds+workers*rounds)
	}
}

// testIssuedOrder checks the order of the log and its filter by device,
// with serials out of sort order and names that prefix each other or
// hold SQL wildcards.
func testIssuedOrder(t *testing.T, a, b capf.Store) {
	ctx := t.Context()
	recs := []capf.IssuedRecord{
		entry("f0", "SEP1"), entry("10", "SEP10"), entry("e1", "SEP1"), entry("20", "SEP1"),
		entry("d3", "SEP10"), entry("05", "SEP"), entry("0a", "SEP1"), entry("bb", "SEP_"),
		entry("cc", "SEP%"), entry("dd", "sep1"),
	}
	for i, rec := range recs {
		s := a
		if i%2 == 1 {
			s = b
		}
		if err := s.RecordIssued(ctx, rec, keep); err != nil {
			t.Fatal(err)
		}
	}
	for _, tc := range []struct {
		device string
		want   []string
	}{
		{"SEP1", []string{"f0", "e1", "20", "0a"}},
		{"SEP10", []string{"10", "d3"}},
		{"SEP", []string{"05"}},
		{"SEP_", []string{"bb"}},
		{"SEP%", []string{"cc"}},
		{"sep1", []string{"dd"}},
		{"SEP2", []string{}},
		{"SE", []string{}},
		{"", []string{"f0", "10", "e1", "20", "d3", "05", "0a", "bb", "cc", "dd"}},
	} {
		for _, s := range []capf.Store{a, b} {
			log := issued(t, s, tc.device)
			if got := serials(log); !slices.Equal(got, tc.want) {
				t.Fatalf("Issued(%q) = %q, want %q", tc.device, got, tc.want)
			}
			for _, rec := range log {
				if want := entry(rec.Serial, rec.Device); (tc.device != "" && rec.Device != tc.device) || !bytes.Equal(rec.Data, want.Data) {
					t.Fatalf("Issued(%q): entry %q of %q with %s", tc.device, rec.Serial, rec.Device, brief(rec.Data))
				}
			}
		}
	}
	// Writes after reads come after.
	if err := b.RecordIssued(ctx, entry("01", "SEP1"), keep); err != nil {
		t.Fatal(err)
	}
	if got := serials(issued(t, a, "SEP1")); !slices.Equal(got, []string{"f0", "e1", "20", "0a", "01"}) {
		t.Fatalf("Issued(SEP1) = %q", got)
	}
}

func testContext(t *testing.T, a, b capf.Store) {
	dev := names[0]
	put(t, a, dev, []byte("kept"))
	cancelled, cancel := context.WithCancel(t.Context())
	cancel()
	expired, cancel2 := context.WithDeadline(t.Context(), time.Now().Add(-time.Second))
	defer cancel2()
	for _, c := range []struct {
		ctx  context.Context
		want error
	}{{cancelled, context.Canceled}, {expired, context.DeadlineExceeded}} {
		ctx := c.ctx
		check := func(what string, err error) {
			t.Helper()
			if !errors.Is(err, c.want) {
				t.Fatalf("%s with a done context: %v, want %v", what, err, c.want)
			}
		}
		_, err := b.Get(ctx, dev)
		check("Get", err)
		_, err = b.List(ctx)
		check("List", err)
		check("Update", b.Update(ctx, dev, never(t)))
		check("Update of an absent record", b.Update(ctx, names[1], never(t)))
		check("RecordIssued", b.RecordIssued(ctx, entry("01", dev), never(t)))
		_, err = b.Issued(ctx, "")
		check("Issued", err)
		_, err = b.Issued(ctx, dev)
		check("Issued of a device", err)
	}
	// Nothing was written.
	wantRecord(t, a, dev, []byte("kept"))
	wantRecord(t, a, names[1], nil)
	if log := issued(t, a, ""); len(log) != 0 {
		t.Fatalf("log after calls with a done context: %q", serials(log))
	}
}

func testClose(t *testing.T, a, b capf.Store, shared bool) {
	ctx := t.Context()
	dev := names[0]
	put(t, a, dev, []byte("kept"))
	if err := a.RecordIssued(ctx, entry("01", dev), keep); err != nil {
		t.Fatal(err)
	}
	if err := a.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	check := func(what string, err error) {
		t.Helper()
		if !errors.Is(err, capf.ErrStoreClosed) {
			t.Fatalf("%s after Close: %v, want ErrStoreClosed", what, err)
		}
	}
	_, err := a.Get(ctx, dev)
	check("Get", err)
	_, err = a.List(ctx)
	check("List", err)
	check("Update", a.Update(ctx, dev, never(t)))
	check("RecordIssued", a.RecordIssued(ctx, entry("02", dev), never(t)))
	_, err = a.Issued(ctx, "")
	check("Issued", err)
	if err := a.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	if shared {
		// The other handle carries on, with what the closed one wrote.
		wantRecord(t, b, dev, []byte("kept"))
		if got := serials(issued(t, b, dev)); !slices.Equal(got, []string{"01"}) {
			t.Fatalf("Issued through the other handle = %q", got)
		}
		put(t, b, dev, []byte("changed"))
	}
}
