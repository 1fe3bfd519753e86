package capf

import (
	"bytes"
	"context"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	bolt "go.etcd.io/bbolt"
)

// The conformance suite (package capftest) runs on MemoryStore and
// BoltStore in conformance_test.go. These tests check this package's side
// of the contract (the record encoding, the helpers) and what only
// BoltStore does.

var t0 = time.Date(2025, 3, 4, 5, 6, 7, 8, time.UTC)

// fullRecord returns a record with every field set.
func fullRecord(name string) *record {
	return &record{
		name: name,
		pending: &pending{
			Schedule: Schedule{
				Operation: OpInstall, Auth: AuthString, AuthString: "123456", Key: EC384,
				Deadline: t0.Add(24 * time.Hour), Scheduled: t0, Failures: 2,
			},
			claim:  claim{owner: claimOwner{1, 2, 3, 4, 5, 6, 7, 8, 0, 0, 1, 0}, until: t0.Add(time.Minute)},
			issued: "0a1b",
		},
		last:       &Result{Operation: OpFetch, Failure: FailNoCertificate, Time: t0.Add(-time.Hour), Serial: "abc"},
		cert:       []byte{0x30, 0x03, 0x01, 0x02, 0x03},
		fetched:    []byte{0x30, 0x01, 0x00},
		lastSeen:   t0.Add(time.Minute),
		voidBefore: time.Date(1965, 1, 2, 3, 4, 5, 999999999, time.UTC), // before 1970
	}
}

// fullRecordV1 is fullRecord("SEP1") in version 1 of the encoding: a
// record of that version, as a store may hold it, that every later
// version of this package must read.
const fullRecordV1 = "01" + "7d" + // version, length of the rest
	"0104" + "53455031" + // name
	"0240" + // pending:
	"010101" + "020101" + "0306" + "313233343536" + "040106" + // install, string, "123456", ec384
	"0506" + "feeebefc0c" + "08" + // deadline
	"0606" + "fea8b4fc0c" + "08" + // scheduled
	"070102" + // failures
	"080c" + "010203040506070800000100" + // claim owner
	"0906" + "f6a9b4fc0c" + "08" + // claim until
	"0a04" + "30613162" + // issued
	"0313" + // last:
	"010102" + "020108" + "0306" + "def0b3fc0c" + "08" + "0403" + "616263" + // fetch, no certificate, time, "abc"
	"0405" + "3003010203" + // LSC
	"0503" + "300100" + // fetched
	"0606" + "f6a9b4fc0c" + "08" + // last seen
	"070a" + "b5d9ae9601" + "ff93ebdc03" // void before

func TestRecordEncoding(t *testing.T) {
	r := fullRecord("SEP1")
	data, err := r.encode()
	require.NoError(t, err)
	require.Equal(t, fullRecordV1, hex.EncodeToString(data))
	got, err := decodeRecord("SEP1", data)
	require.NoError(t, err)
	require.Equal(t, r, got)

	// Zero values are left out.
	min := &record{name: "SEP1"}
	data, err = min.encode()
	require.NoError(t, err)
	require.Equal(t, "0106010453455031", hex.EncodeToString(data))
	got, err = decodeRecord("SEP1", data)
	require.NoError(t, err)
	require.Equal(t, min, got)
	// An empty pending operation or result is still there.
	min.pending, min.last = &pending{}, &Result{}
	data, err = min.encode()
	require.NoError(t, err)
	require.Equal(t, "010a01045345503102000300", hex.EncodeToString(data))
	got, err = decodeRecord("SEP1", data)
	require.NoError(t, err)
	require.Equal(t, min, got)

	// No record.
	got, err = decodeRecord("SEP1", nil)
	require.NoError(t, err)
	require.Nil(t, got)

	// Records that cannot be written.
	for _, bad := range []func(r *record){
		func(r *record) { r.name = "SEP 1" },
		func(r *record) { r.pending.Operation = 9 },
		func(r *record) { r.pending.Auth = 9 },
		func(r *record) { r.pending.Key = 99 },
		func(r *record) { r.pending.Failures = -1 },
		func(r *record) { r.pending.issued = "0X" },
		func(r *record) { r.last.Operation = 9 },
		func(r *record) { r.last.Failure = 200 },
		func(r *record) { r.cert = make([]byte, maxRecord) },
		func(r *record) { r.pending.Deadline = time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC) },
		func(r *record) { r.lastSeen = time.Date(0, 12, 31, 0, 0, 0, 0, time.UTC) },
	} {
		r := fullRecord("SEP1")
		bad(r)
		_, err := r.encode()
		require.ErrorIs(t, err, ErrInvalid)
	}
}

func TestRecordDecodeErrors(t *testing.T) {
	good, err := hex.DecodeString(fullRecordV1)
	require.NoError(t, err)
	for _, tc := range []struct {
		name   string
		data   string // hex; spaces are ignored
		fields bool   // data is the fields of a version 1 record
		want   error
	}{
		{"version 0", "0006010453455031", false, ErrCorrupt},
		{"version 2", "0206010453455031", false, ErrStoreVersion},
		{"version 255", "ff", false, ErrStoreVersion},
		{"JSON", `7b226e616d65223a2253455031227d`, false, ErrStoreVersion},
		{"no length", "01", false, ErrCorrupt},
		{"cut short", "0107010453455031", false, ErrCorrupt},
		{"trailing byte", "010601045345503100", false, ErrCorrupt},
		{"other name", "010453455032", true, ErrCorrupt},
		{"no name", "", true, ErrCorrupt},
		{"truncated field length", "01", true, ErrCorrupt},
		{"field length beyond the end", "0105534550", true, ErrCorrupt},
		{"bad field length", "01ffffffffffffffffffff01", true, ErrCorrupt},
		{"unknown field", "010453455031 08020000", true, ErrCorrupt},
		{"field repeated", "010453455031 010453455031", true, ErrCorrupt},
		{"fields out of order", "040130 010453455031", true, ErrCorrupt},
		{"unknown pending field", "010453455031 0202 0f00", true, ErrCorrupt},
		{"unknown operation", "010453455031 0203 010104", true, ErrCorrupt},
		{"operation of two bytes", "010453455031 0204 01020101", true, ErrCorrupt},
		{"unknown failure", "010453455031 0303 02010b", true, ErrCorrupt},
		{"bad claim owner", "010453455031 0203 080101", true, ErrCorrupt},
		{"bad serial", "010453455031 0204 0a02 3058", true, ErrCorrupt},
		{"bad failures", "010453455031 0207 0705ffffffff0f", true, ErrCorrupt},
		{"bad time", "010453455031 06 01 80", true, ErrCorrupt},
		{"nanoseconds beyond a second", "010453455031 06 06 02 8094ebdc03", true, ErrCorrupt},
		{"time with trailing bytes", "010453455031 06 03 020000", true, ErrCorrupt},
		{"zero time", "010453455031 06 07 ffdb8ff9ce03 00", true, ErrCorrupt},
		{"time beyond 9999", "010453455031 06 07 8086a2ffdf0e 00", true, ErrCorrupt},
	} {
		t.Run(tc.name, func(t *testing.T) {
			data, err := hex.DecodeString(strings.ReplaceAll(tc.data, " ", ""))
			require.NoError(t, err)
			if tc.fields {
				data = versioned(1, data)
			}
			_, err = decodeRecord("SEP1", data)
			require.ErrorIs(t, err, tc.want)
			require.True(t, strings.HasPrefix(err.Error(), "capf: "), err.Error())
			t.Log(err)
		})
	}
	// Every truncation of a good record is refused.
	for n := 1; n < len(good); n++ {
		if _, err := decodeRecord("SEP1", good[:n]); err == nil {
			t.Fatalf("truncated to %d bytes: decoded", n)
		}
	}
}

func TestIssuedEncoding(t *testing.T) {
	c := &IssuedCertificate{Serial: "0a1b", Device: "SEP1", Issued: t0, DER: []byte{0x30, 0x00}}
	rec := IssuedRecord{Serial: c.Serial, Device: c.Device, Data: encodeIssued(c)}
	require.Equal(t, "010c"+"0106"+"fea8b4fc0c"+"08"+"0202"+"3000", hex.EncodeToString(rec.Data))
	got, err := decodeIssued(rec)
	require.NoError(t, err)
	require.Equal(t, c, got)

	for _, tc := range []struct {
		name string
		rec  IssuedRecord
		want error
	}{
		{"empty", IssuedRecord{Serial: "01", Device: "SEP1"}, ErrCorrupt},
		{"newer", IssuedRecord{Serial: "01", Device: "SEP1", Data: []byte{2}}, ErrStoreVersion},
		{"unknown field", IssuedRecord{Serial: "01", Device: "SEP1", Data: []byte{1, 2, 3, 0}}, ErrCorrupt},
		{"cut short", IssuedRecord{Serial: "01", Device: "SEP1", Data: []byte{1, 3, 2, 0}}, ErrCorrupt},
		{"bad serial", IssuedRecord{Serial: "0X", Device: "SEP1", Data: []byte{1, 0}}, ErrCorrupt},
		{"bad device", IssuedRecord{Serial: "01", Device: "SEP 1", Data: []byte{1, 0}}, ErrCorrupt},
	} {
		_, err := decodeIssued(tc.rec)
		require.ErrorIs(t, err, tc.want, tc.name)
	}
}

// TestDeviceView checks that a Device leaves out the authentication
// string and the server's bookkeeping, and shares no memory with the
// record.
func TestDeviceView(t *testing.T) {
	r := fullRecord("SEP1")
	d := r.view()
	require.Equal(t, &Device{
		Name: "SEP1",
		Pending: &Schedule{
			Operation: OpInstall, Auth: AuthString, Key: EC384,
			Deadline: t0.Add(24 * time.Hour), Scheduled: t0, Failures: 2,
		},
		Last:        &Result{Operation: OpFetch, Failure: FailNoCertificate, Time: t0.Add(-time.Hour), Serial: "abc"},
		Certificate: []byte{0x30, 0x03, 0x01, 0x02, 0x03},
		Fetched:     []byte{0x30, 0x01, 0x00},
		LastSeen:    t0.Add(time.Minute),
		VoidBefore:  r.voidBefore,
	}, d)
	d.Certificate[0], d.Fetched[0], d.Last.Serial, d.Pending.Failures = 0, 0, "", 0
	require.Equal(t, fullRecord("SEP1"), r)
	require.Equal(t, "install, auth string (string set), key ec384, by 2025-03-05T05:06:07Z", d.Pending.String())
}

// A store that hands out whatever it is given: records that this package
// must refuse.
type rawStore struct {
	*MemoryStore
	records []DeviceRecord
	issued  []IssuedRecord
}

func (s *rawStore) List(context.Context) ([]DeviceRecord, error)           { return s.records, nil }
func (s *rawStore) Issued(context.Context, string) ([]IssuedRecord, error) { return s.issued, nil }

func TestHelpers(t *testing.T) {
	ctx := context.Background()
	st := NewMemoryStore()
	now := t0
	sch := Schedule{Operation: OpInstall, Auth: AuthString, AuthString: "1234", Deadline: t0.Add(time.Hour), Failures: 3}
	require.NoError(t, ScheduleOperation(ctx, st, "SEP2", sch, now))
	require.NoError(t, ScheduleOperation(ctx, st, "SEP1", Schedule{Operation: OpFetch, Auth: AuthNull}, now))

	d, err := LookupDevice(ctx, st, "SEP2")
	require.NoError(t, err)
	// Scheduled is set, failures reset, the default key resolved, the
	// string kept but not shown.
	require.Equal(t, &Device{Name: "SEP2", Pending: &Schedule{Operation: OpInstall, Auth: AuthString, Key: RSA2048, Deadline: t0.Add(time.Hour), Scheduled: now}}, d)
	r, err := lookup(ctx, st, "SEP2")
	require.NoError(t, err)
	require.Equal(t, "1234", r.pending.AuthString)

	ds, err := ListDevices(ctx, st)
	require.NoError(t, err)
	require.Len(t, ds, 2)
	require.Equal(t, "SEP1", ds[0].Name)
	require.Equal(t, "SEP2", ds[1].Name)
	require.Empty(t, ds[1].Pending.AuthString)

	// Names no record can have are unknown, not invalid.
	for _, name := range []string{"SEP3", "", "a b", "a\x00", strings.Repeat("A", 1000)} {
		_, err := LookupDevice(ctx, st, name)
		require.ErrorIs(t, err, ErrUnknownDevice, "%q", name)
		require.ErrorIs(t, CancelOperation(ctx, st, name, now), ErrUnknownDevice, "%q", name)
		require.NoError(t, RemoveDevice(ctx, st, name), "%q", name)
		cs, err := ListIssued(ctx, st, name)
		require.NoError(t, err, "%q", name)
		require.Empty(t, cs, "%q", name)
	}
	require.ErrorIs(t, ScheduleOperation(ctx, st, "a b", sch, now), ErrInvalid)

	require.NoError(t, CancelOperation(ctx, st, "SEP2", now.Add(time.Minute)))
	d, err = LookupDevice(ctx, st, "SEP2")
	require.NoError(t, err)
	require.Nil(t, d.Pending)
	require.Equal(t, &Result{Operation: OpInstall, Failure: FailCancelled, Time: now.Add(time.Minute)}, d.Last)
	require.NoError(t, CancelOperation(ctx, st, "SEP2", now.Add(time.Hour)), "nothing pending")
	d, err = LookupDevice(ctx, st, "SEP2")
	require.NoError(t, err)
	require.Equal(t, now.Add(time.Minute), d.Last.Time)

	// Scheduling OpNone clears the operation and keeps the rest.
	require.NoError(t, ScheduleOperation(ctx, st, "SEP1", Schedule{}, now))
	d, err = LookupDevice(ctx, st, "SEP1")
	require.NoError(t, err)
	require.Equal(t, &Device{Name: "SEP1"}, d)

	require.NoError(t, RemoveDevice(ctx, st, "SEP1"))
	_, err = LookupDevice(ctx, st, "SEP1")
	require.ErrorIs(t, err, ErrUnknownDevice)

	// The issued log, as the server writes it.
	c := &IssuedCertificate{Serial: "0a", Device: "SEP2", Issued: t0, DER: []byte{0x30, 0}}
	require.NoError(t, st.RecordIssued(ctx, IssuedRecord{Serial: c.Serial, Device: c.Device, Data: encodeIssued(c)}, func(old []byte) ([]byte, error) { return old, nil }))
	cs, err := ListIssued(ctx, st, "SEP2")
	require.NoError(t, err)
	require.Equal(t, []*IssuedCertificate{c}, cs)
	cs, err = ListIssued(ctx, st, "")
	require.NoError(t, err)
	require.Equal(t, []*IssuedCertificate{c}, cs)

	// What a broken store returns is refused.
	good, err := fullRecord("SEP1").encode()
	require.NoError(t, err)
	for _, recs := range [][]DeviceRecord{
		{{"SEP2", good}},
		{{"SEP1", good}, {"SEP1", good}},
		{{"SEP1", nil}},
		{{"SEP1", good[:len(good)-1]}},
	} {
		_, err := ListDevices(ctx, &rawStore{MemoryStore: st, records: recs})
		require.ErrorIs(t, err, ErrCorrupt)
	}
	_, err = ListIssued(ctx, &rawStore{MemoryStore: st, issued: []IssuedRecord{{Serial: "01", Device: "SEP1", Data: []byte{1}}}}, "SEP2")
	require.ErrorIs(t, err, ErrCorrupt)

	// A record of a newer version is neither read nor overwritten.
	newer := []byte{recordVersion + 1, 0xde, 0xad}
	require.NoError(t, st.Update(ctx, "SEP9", func([]byte) ([]byte, error) { return newer, nil }))
	_, err = LookupDevice(ctx, st, "SEP9")
	require.ErrorIs(t, err, ErrStoreVersion)
	require.ErrorIs(t, ScheduleOperation(ctx, st, "SEP9", Schedule{Operation: OpFetch}, now), ErrStoreVersion)
	require.ErrorIs(t, CancelOperation(ctx, st, "SEP9", now), ErrStoreVersion)
	_, err = ListDevices(ctx, st)
	require.ErrorIs(t, err, ErrStoreVersion)
	data, err := st.Get(ctx, "SEP9")
	require.NoError(t, err)
	require.Equal(t, newer, data)
	// It can be removed.
	require.NoError(t, RemoveDevice(ctx, st, "SEP9"))
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

func keep(old []byte) ([]byte, error) { return old, nil }

func TestBoltStoreReopen(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "capf.db")
	s := openBolt(t, path)
	for _, n := range []string{"SEP3", "SEP1", "SEP2"} {
		require.NoError(t, ScheduleOperation(ctx, s, n, Schedule{Operation: OpFetch}, t0))
	}
	require.NoError(t, RemoveDevice(ctx, s, "SEP2"))
	rec := func(serial, device string) IssuedRecord {
		return IssuedRecord{Serial: serial, Device: device, Data: []byte("data " + serial)}
	}
	require.NoError(t, s.RecordIssued(ctx, rec("ff", "SEP1"), keep))
	require.NoError(t, s.RecordIssued(ctx, rec("11", "SEP3"), keep))
	require.NoError(t, s.RecordIssued(ctx, rec("22", "SEP1"), keep))
	require.NoError(t, s.Close())

	s = openBolt(t, path)
	defer s.Close()
	ds, err := ListDevices(ctx, s)
	require.NoError(t, err)
	require.Len(t, ds, 2)
	require.Equal(t, &Device{Name: "SEP3", Pending: &Schedule{Operation: OpFetch, Key: RSA2048, Scheduled: t0}}, ds[1])
	// The sequence carries on: new entries come after the old ones, and
	// old serials are still taken.
	require.ErrorIs(t, s.RecordIssued(ctx, rec("ff", "SEP3"), keep), ErrDuplicateSerial)
	require.NoError(t, s.RecordIssued(ctx, rec("01", "SEP1"), keep))
	cs, err := s.Issued(ctx, "SEP1")
	require.NoError(t, err)
	require.Equal(t, []IssuedRecord{rec("ff", "SEP1"), rec("22", "SEP1"), rec("01", "SEP1")}, cs)
	cs, err = s.Issued(ctx, "")
	require.NoError(t, err)
	require.Len(t, cs, 4)
	require.Equal(t, rec("11", "SEP3"), cs[1])
}

// TestBoltStoreArgs checks what BoltStore refuses to write.
func TestBoltStoreArgs(t *testing.T) {
	ctx := context.Background()
	s := openBolt(t, filepath.Join(t.TempDir(), "capf.db"))
	defer s.Close()
	never := func([]byte) ([]byte, error) {
		t.Error("fn called")
		return nil, nil
	}
	for _, name := range []string{"", "a b", "a\x00", strings.Repeat("A", 65)} {
		require.ErrorIs(t, s.Update(ctx, name, never), ErrInvalid, "%q", name)
		require.ErrorIs(t, s.RecordIssued(ctx, IssuedRecord{Serial: "01", Device: name, Data: []byte{1}}, never), ErrInvalid, "%q", name)
		data, err := s.Get(ctx, name)
		require.NoError(t, err)
		require.Nil(t, data)
		cs, err := s.Issued(ctx, name)
		require.NoError(t, err)
		require.Empty(t, cs)
	}
	for _, rec := range []IssuedRecord{
		{Serial: "", Device: "SEP1", Data: []byte{1}},
		{Serial: "0X", Device: "SEP1", Data: []byte{1}},
		{Serial: strings.Repeat("1", 129), Device: "SEP1", Data: []byte{1}},
		{Serial: "01", Device: "SEP1"},
		{Serial: "01", Device: "SEP1", Data: make([]byte, maxRecord+1)},
	} {
		require.ErrorIs(t, s.RecordIssued(ctx, rec, never), ErrInvalid)
	}
	big := func([]byte) ([]byte, error) { return make([]byte, maxRecord+1), nil }
	require.ErrorIs(t, s.Update(ctx, "SEP1", big), ErrInvalid)
	data, err := s.Get(ctx, "SEP1")
	require.NoError(t, err)
	require.Nil(t, data)
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

	setVersion := func(v int) func(tx *bolt.Tx) error {
		return func(tx *bolt.Tx) error {
			return tx.Bucket([]byte("meta")).Put([]byte("version"), []byte(strconv.Itoa(v)))
		}
	}
	for _, tc := range []struct {
		name string
		edit func(tx *bolt.Tx) error
		want error
		msg  string
	}{
		{"newer", setVersion(boltSchema + 1), ErrStoreVersion, "capf: store schema version not supported: "},
		{"version 1", setVersion(1), ErrStoreVersion, "has schema version 1, written by an earlier version of this package"},
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
			// The file is not left locked.
			db, err := bolt.Open(path, 0o600, &bolt.Options{Timeout: 100 * time.Millisecond})
			require.NoError(t, err)
			require.NoError(t, db.Close())
			require.NoError(t, os.Remove(path))
		})
	}
}

// TestBoltStoreV1File opens a file as the previous version of this
// package left it: a clear error, and the file unchanged.
func TestBoltStoreV1File(t *testing.T) {
	path := filepath.Join(t.TempDir(), "capf.db")
	db, err := bolt.Open(path, 0o600, nil)
	require.NoError(t, err)
	require.NoError(t, db.Update(func(tx *bolt.Tx) error {
		meta, err := tx.CreateBucket([]byte("meta"))
		if err != nil {
			return err
		}
		for _, b := range []string{"devices", "issued", "issued-order", "issued-by-device"} {
			if _, err := tx.CreateBucket([]byte(b)); err != nil {
				return err
			}
		}
		if err := tx.Bucket([]byte("devices")).Put([]byte("SEP1"), []byte(`{"name":"SEP1","pending":{"operation":"fetch"}}`)); err != nil {
			return err
		}
		return meta.Put([]byte("version"), []byte("1"))
	}))
	require.NoError(t, db.Close())
	before, err := os.ReadFile(path)
	require.NoError(t, err)
	_, err = OpenBoltStore(path, nil)
	require.ErrorIs(t, err, ErrStoreVersion)
	require.Contains(t, err.Error(), path)
	t.Log(err)
	after, err := os.ReadFile(path)
	require.NoError(t, err)
	require.Equal(t, before, after)
}

func TestBoltStoreCorrupt(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "capf.db")
	s := openBolt(t, path)
	require.NoError(t, ScheduleOperation(ctx, s, "SEP1", Schedule{Operation: OpFetch}, t0))
	c := &IssuedCertificate{Serial: "01", Device: "SEP1", Issued: t0, DER: []byte{0x30, 0}}
	require.NoError(t, s.RecordIssued(ctx, IssuedRecord{Serial: "01", Device: "SEP1", Data: encodeIssued(c)}, keep))
	require.NoError(t, s.Close())

	seq1 := "\x00\x00\x00\x00\x00\x00\x00\x01"
	good, err := os.ReadFile(path)
	require.NoError(t, err)
	for _, tc := range []struct {
		name   string
		bucket string
		key    string
		value  string
	}{
		{"cut short", "devices", "SEP1", "\x01\x05"},
		{"newer version", "devices", "SEP1", "\x02"},
		{"other name", "devices", "SEP1", "\x01\x06\x01\x04SEP2"},
		{"entry malformed", "issued-order", seq1, "\x05"},
		{"entry of another device", "issued-order", seq1, "\x0201\x04SEP2\x01\x00"},
		{"entry missing", "issued-order", seq1, ""},
		{"entry data of a newer version", "issued-order", seq1, "\x0201\x04SEP1\x02"},
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
			want := ErrCorrupt
			if strings.Contains(tc.name, "newer") {
				want = ErrStoreVersion
			}
			if tc.bucket == "devices" {
				_, err := LookupDevice(ctx, s, "SEP1")
				require.ErrorIs(t, err, want)
				t.Log(err)
				_, err = ListDevices(ctx, s)
				require.ErrorIs(t, err, want)
				require.ErrorIs(t, ScheduleOperation(ctx, s, "SEP1", Schedule{Operation: OpFetch}, t0), want)
				// A corrupt record can be removed and made again.
				require.NoError(t, RemoveDevice(ctx, s, "SEP1"))
				require.NoError(t, ScheduleOperation(ctx, s, "SEP1", Schedule{Operation: OpFetch}, t0))
				return
			}
			_, err := ListIssued(ctx, s, "SEP1")
			require.ErrorIs(t, err, want)
			t.Log(err)
			if tc.name != "entry missing" && tc.name != "entry of another device" {
				_, err = ListIssued(ctx, s, "")
				require.ErrorIs(t, err, want)
			}
			_, err = LookupDevice(ctx, s, "SEP1")
			require.NoError(t, err)
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
					err := modify(ctx, s, name, func(r *record) (*record, error) {
						if r == nil {
							r = &record{name: name, pending: &pending{Schedule: Schedule{Operation: OpInstall}}}
						}
						r.lastSeen = time.Now()
						r.cert = cert
						r.pending.Failures++
						return r, nil
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
