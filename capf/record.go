package capf

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"time"
)

// A record is what this package keeps about one device: the public
// [Device] view and the server's bookkeeping, which never leaves the
// package.
type record struct {
	name       string
	pending    *pending
	last       *Result
	cert       []byte // DER of the LSC the device last acknowledged
	fetched    []byte // DER of the certificate the last fetch got
	lastSeen   time.Time
	voidBefore time.Time
}

// pending is a scheduled operation and the server's state of it.
type pending struct {
	Schedule // Failures counts wrong authentication strings
	// claim is the session carrying the operation out, from right before
	// a certificate is issued; zero if none.
	claim claim
	// issued is the serial of the certificate the operation issued (and
	// recorded), "" before one is.
	issued string
}

// A claim says which session of which server carries an operation out,
// and until when.
type claim struct {
	owner claimOwner
	until time.Time
}

// A claimOwner is a server's random identity (8 bytes) and a session id
// of that server (4 bytes, big-endian): unique across the servers of a
// store. The zero value is no owner.
type claimOwner [12]byte

func (o claimOwner) String() string {
	return fmt.Sprintf("session %d of server %x", binary.BigEndian.Uint32(o[8:]), o[:8])
}

// live reports whether the claim is held by someone at now.
func (c *claim) live(now time.Time) bool {
	return c.owner != claimOwner{} && now.Before(c.until)
}

// view returns the record as the public Device, without the
// authentication string and the server's bookkeeping.
func (r *record) view() *Device {
	d := &Device{
		Name:        r.name,
		Certificate: bytes.Clone(r.cert),
		Fetched:     bytes.Clone(r.fetched),
		LastSeen:    r.lastSeen,
		VoidBefore:  r.voidBefore,
	}
	if r.pending != nil {
		s := r.pending.Schedule
		s.AuthString = ""
		d.Pending = &s
	}
	if r.last != nil {
		l := *r.last
		d.Last = &l
	}
	return d
}

// The encoding of records, owned by this package and opaque to stores.
//
// A device record and a log entry each start with a version byte. This
// package writes the newest version it knows, reads every version up to
// it, and refuses a newer one with [ErrStoreVersion], so that a record is
// never read in part and written back without what it did not understand.
// A change of layout (a new field, a new value of an enumeration) takes a
// new version.
//
// In version 1 of both, the version byte is followed by the length of
// the rest (uvarint), so that a record cut short is noticed, and the rest
// is a sequence of fields in increasing tag order, each at most once: a
// tag byte, a length (uvarint), and the value. A field
// whose value would be zero is left out. Integers are uvarints; a time is
// the Unix seconds (varint) then the nanoseconds (uvarint), UTC; a nested
// field holds a sequence of fields itself.
//
// Device record, version 1:
//
//	1 device name (required; must be the store's key)
//	2 pending operation (nested):
//	    1 operation (1 byte)   2 authentication mode (1 byte)
//	    3 authentication string  4 key (1 byte)
//	    5 deadline (time)      6 scheduled (time)
//	    7 wrong strings so far (uvarint)
//	    8 claim owner (12 bytes)  9 claim lease end (time)
//	    10 serial of the certificate issued for the operation
//	3 last result (nested):
//	    1 operation (1 byte)  2 failure (1 byte)  3 time (time)  4 serial
//	4 DER of the acknowledged LSC
//	5 DER of the fetched certificate
//	6 last seen (time)
//	7 void before (time)
//
// Log entry data, version 1 (the serial and device are the store's):
//
//	1 issued (time)
//	2 DER of the certificate
const (
	recordVersion = 1
	issuedVersion = 1
	// maxRecord bounds an encoded record or log entry (see Store).
	maxRecord = 1 << 20
	// maxFailures bounds the count of wrong strings read from a record.
	maxFailures = 1 << 30
	// minUnix and maxUnix bound the times a record holds: the years 1 to
	// 9999, which time.Time converts to and from Unix seconds exactly.
	minUnix, maxUnix = -62135596800, 253402300799
)

// validTime reports whether t can be kept in a record: zero, or in the
// years 1 to 9999.
func validTime(t time.Time) bool {
	return t.IsZero() || t.Unix() >= minUnix && t.Unix() <= maxUnix
}

// Field tags of version 1.
const (
	recName, recPending, recLast, recCert, recFetched, recLastSeen, recVoidBefore uint8 = 1, 2, 3, 4, 5, 6, 7

	pendOperation, pendAuth, pendAuthString, pendKey, pendDeadline, pendScheduled,
	pendFailures, pendClaimOwner, pendClaimUntil, pendIssued uint8 = 1, 2, 3, 4, 5, 6, 7, 8, 9, 10

	lastOperation, lastFailure, lastTime, lastSerial uint8 = 1, 2, 3, 4

	issTime, issDER uint8 = 1, 2
)

// fieldWriter appends fields.
type fieldWriter []byte

func (w *fieldWriter) bytes(tag uint8, v []byte) {
	if len(v) == 0 {
		return
	}
	*w = append(*w, tag)
	*w = binary.AppendUvarint(*w, uint64(len(v)))
	*w = append(*w, v...)
}

func (w *fieldWriter) string(tag uint8, v string) { w.bytes(tag, []byte(v)) }

func (w *fieldWriter) byte(tag uint8, v uint8) {
	if v != 0 {
		w.bytes(tag, []byte{v})
	}
}

func (w *fieldWriter) uint(tag uint8, v uint64) {
	if v != 0 {
		w.bytes(tag, binary.AppendUvarint(nil, v))
	}
}

func (w *fieldWriter) time(tag uint8, t time.Time) {
	if t.IsZero() {
		return
	}
	b := binary.AppendVarint(nil, t.Unix())
	w.bytes(tag, binary.AppendUvarint(b, uint64(t.Nanosecond())))
}

// nested appends a field that holds the fields fill writes; it is
// present (perhaps empty) whatever fill writes.
func (w *fieldWriter) nested(tag uint8, fill func(*fieldWriter)) {
	var n fieldWriter
	fill(&n)
	*w = append(*w, tag)
	*w = binary.AppendUvarint(*w, uint64(len(n)))
	*w = append(*w, n...)
}

// versioned returns the fields w as a record of the version.
func versioned(version uint8, w fieldWriter) []byte {
	b := binary.AppendUvarint([]byte{version}, uint64(len(w)))
	return append(b, w...)
}

// encode returns the record in the newest version.
func (r *record) encode() ([]byte, error) {
	var w fieldWriter
	w.string(recName, r.name)
	if p := r.pending; p != nil {
		w.nested(recPending, func(w *fieldWriter) {
			w.byte(pendOperation, uint8(p.Operation))
			w.byte(pendAuth, uint8(p.Auth))
			w.string(pendAuthString, p.AuthString)
			w.byte(pendKey, uint8(p.Key))
			w.time(pendDeadline, p.Deadline)
			w.time(pendScheduled, p.Scheduled)
			w.uint(pendFailures, uint64(p.Failures))
			if p.claim.owner != (claimOwner{}) {
				w.bytes(pendClaimOwner, p.claim.owner[:])
			}
			w.time(pendClaimUntil, p.claim.until)
			w.string(pendIssued, p.issued)
		})
	}
	if l := r.last; l != nil {
		w.nested(recLast, func(w *fieldWriter) {
			w.byte(lastOperation, uint8(l.Operation))
			w.byte(lastFailure, uint8(l.Failure))
			w.time(lastTime, l.Time)
			w.string(lastSerial, l.Serial)
		})
	}
	w.bytes(recCert, r.cert)
	w.bytes(recFetched, r.fetched)
	w.time(recLastSeen, r.lastSeen)
	w.time(recVoidBefore, r.voidBefore)
	if err := r.check(); err != nil {
		return nil, err
	}
	b := versioned(recordVersion, w)
	if len(b) > maxRecord {
		return nil, fmt.Errorf("%w: record of device %q is %d bytes (at most %d)", ErrInvalid, r.name, len(b), maxRecord)
	}
	return b, nil
}

// check reports values that would not read back: a bad name, a value no
// enumeration has, a negative count, a malformed serial.
func (r *record) check() error {
	if err := checkDeviceName(r.name); err != nil {
		return err
	}
	times := []time.Time{r.lastSeen, r.voidBefore}
	if p := r.pending; p != nil {
		times = append(times, p.Deadline, p.Scheduled, p.claim.until)
	}
	if r.last != nil {
		times = append(times, r.last.Time)
	}
	for _, t := range times {
		if !validTime(t) {
			return fmt.Errorf("%w: device %q: time %v out of range", ErrInvalid, r.name, t)
		}
	}
	if p := r.pending; p != nil {
		switch {
		case int(p.Operation) >= len(operationNames) || int(p.Auth) >= len(authNames) || !p.Key.Valid():
			return fmt.Errorf("%w: device %q: pending operation %v, auth %v, key %v", ErrInvalid, r.name, p.Operation, p.Auth, p.Key)
		case p.Failures < 0 || p.Failures > maxFailures:
			return fmt.Errorf("%w: device %q: %d failures", ErrInvalid, r.name, p.Failures)
		case p.issued != "" && !validSerial(p.issued):
			return fmt.Errorf("%w: device %q: issued serial %q", ErrInvalid, r.name, p.issued)
		}
	}
	if l := r.last; l != nil {
		if int(l.Operation) >= len(operationNames) || int(l.Failure) >= len(failureText) {
			return fmt.Errorf("%w: device %q: last operation %v, failure %v", ErrInvalid, r.name, l.Operation, l.Failure)
		}
	}
	return nil
}

// fieldReader reads the fields of one sequence.
type fieldReader struct {
	b    []byte
	last int // the last tag read, 0 before the first
	err  error
}

// next returns the next field, or false at the end or on an error
// (r.err). Tags must increase.
func (r *fieldReader) next() (tag uint8, v []byte, ok bool) {
	if r.err != nil || len(r.b) == 0 {
		return 0, nil, false
	}
	tag = r.b[0]
	n, k := binary.Uvarint(r.b[1:])
	switch {
	case k <= 0:
		r.err = fmt.Errorf("field %d: bad length", tag)
	case int(tag) <= r.last:
		r.err = fmt.Errorf("field %d after field %d", tag, r.last)
	case n > uint64(len(r.b)-1-k):
		r.err = fmt.Errorf("field %d: length %d beyond the end", tag, n)
	}
	if r.err != nil {
		return 0, nil, false
	}
	r.last = int(tag)
	v = r.b[1+k : 1+k+int(n)]
	r.b = r.b[1+k+int(n):]
	return tag, v, true
}

func (r *fieldReader) fail(tag uint8, what string) {
	if r.err == nil {
		r.err = fmt.Errorf("field %d: %s", tag, what)
	}
}

func (r *fieldReader) byte(tag uint8, v []byte, limit int) uint8 {
	if len(v) != 1 || int(v[0]) >= limit {
		r.fail(tag, "bad value")
		return 0
	}
	return v[0]
}

func (r *fieldReader) uint(tag uint8, v []byte, limit uint64) uint64 {
	n, k := binary.Uvarint(v)
	if k != len(v) || n > limit {
		r.fail(tag, "bad number")
		return 0
	}
	return n
}

func (r *fieldReader) time(tag uint8, v []byte) time.Time {
	sec, k := binary.Varint(v)
	if k <= 0 || sec < minUnix || sec > maxUnix {
		r.fail(tag, "bad time")
		return time.Time{}
	}
	nsec, k2 := binary.Uvarint(v[k:])
	if k2 <= 0 || k+k2 != len(v) || nsec >= 1e9 {
		r.fail(tag, "bad time")
		return time.Time{}
	}
	t := time.Unix(sec, int64(nsec)).UTC()
	if t.IsZero() {
		r.fail(tag, "zero time")
	}
	return t
}

// bytes returns a copy of v. An empty value is refused: the writer
// leaves such a field out, so that every value has one encoding.
func (r *fieldReader) bytes(tag uint8, v []byte) []byte {
	if len(v) == 0 {
		r.fail(tag, "empty")
		return nil
	}
	return bytes.Clone(v)
}

func (r *fieldReader) serial(tag uint8, v []byte) string {
	if !validSerial(string(v)) {
		r.fail(tag, "bad serial number")
		return ""
	}
	return string(v)
}

func (r *fieldReader) unknown(tag uint8) { r.fail(tag, "unknown field") }

// readVersion checks the version byte of data, and its length, and
// returns the fields.
func readVersion(data []byte, newest uint8, what string) ([]byte, error) {
	switch v := data[0]; {
	case v == 0:
		return nil, fmt.Errorf("%w: %s: version 0", ErrCorrupt, what)
	case v > newest:
		return nil, fmt.Errorf("%w: %s has version %d; this package reads versions up to %d (upgrade it)", ErrStoreVersion, what, v, newest)
	}
	n, k := binary.Uvarint(data[1:])
	if k <= 0 || n != uint64(len(data)-1-k) {
		return nil, fmt.Errorf("%w: %s: %d bytes, not the length it gives", ErrCorrupt, what, len(data))
	}
	return data[1+k:], nil
}

// decodeRecord decodes the record a store holds for device: nil, with no
// error, if data is empty (no record). Errors wrap [ErrCorrupt] or
// [ErrStoreVersion].
func decodeRecord(device string, data []byte) (*record, error) {
	if len(data) == 0 {
		return nil, nil
	}
	what := fmt.Sprintf("record of device %q", device)
	body, err := readVersion(data, recordVersion, what)
	if err != nil {
		return nil, err
	}
	rec := new(record)
	fr := &fieldReader{b: body}
	for tag, v, ok := fr.next(); ok; tag, v, ok = fr.next() {
		switch tag {
		case recName:
			rec.name = string(v)
		case recPending:
			rec.pending = decodePending(fr, tag, v)
		case recLast:
			rec.last = decodeLast(fr, tag, v)
		case recCert:
			rec.cert = fr.bytes(tag, v)
		case recFetched:
			rec.fetched = fr.bytes(tag, v)
		case recLastSeen:
			rec.lastSeen = fr.time(tag, v)
		case recVoidBefore:
			rec.voidBefore = fr.time(tag, v)
		default:
			fr.unknown(tag)
		}
	}
	if fr.err != nil {
		return nil, fmt.Errorf("%w: %s: %v", ErrCorrupt, what, fr.err)
	}
	if rec.name != device {
		return nil, fmt.Errorf("%w: %s names device %q", ErrCorrupt, what, rec.name)
	}
	if err := rec.check(); err != nil {
		return nil, fmt.Errorf("%w: %s: %v", ErrCorrupt, what, err)
	}
	return rec, nil
}

func decodePending(outer *fieldReader, outerTag uint8, b []byte) *pending {
	p := new(pending)
	fr := &fieldReader{b: b}
	for tag, v, ok := fr.next(); ok; tag, v, ok = fr.next() {
		switch tag {
		case pendOperation:
			p.Operation = Operation(fr.byte(tag, v, len(operationNames)))
		case pendAuth:
			p.Auth = AuthMode(fr.byte(tag, v, len(authNames)))
		case pendAuthString:
			p.AuthString = string(v)
		case pendKey:
			p.Key = KeySpec(fr.byte(tag, v, len(keyNames)))
		case pendDeadline:
			p.Deadline = fr.time(tag, v)
		case pendScheduled:
			p.Scheduled = fr.time(tag, v)
		case pendFailures:
			p.Failures = int(fr.uint(tag, v, maxFailures))
		case pendClaimOwner:
			if len(v) != len(p.claim.owner) {
				fr.fail(tag, "bad claim owner")
			}
			copy(p.claim.owner[:], v)
		case pendClaimUntil:
			p.claim.until = fr.time(tag, v)
		case pendIssued:
			p.issued = fr.serial(tag, v)
		default:
			fr.unknown(tag)
		}
	}
	if fr.err != nil {
		outer.fail(outerTag, fr.err.Error())
	}
	return p
}

func decodeLast(outer *fieldReader, outerTag uint8, b []byte) *Result {
	l := new(Result)
	fr := &fieldReader{b: b}
	for tag, v, ok := fr.next(); ok; tag, v, ok = fr.next() {
		switch tag {
		case lastOperation:
			l.Operation = Operation(fr.byte(tag, v, len(operationNames)))
		case lastFailure:
			l.Failure = Failure(fr.byte(tag, v, len(failureText)))
		case lastTime:
			l.Time = fr.time(tag, v)
		case lastSerial:
			l.Serial = string(v)
		default:
			fr.unknown(tag)
		}
	}
	if fr.err != nil {
		outer.fail(outerTag, fr.err.Error())
	}
	return l
}

// encodeIssued returns the data of a log entry for c, in the newest
// version.
func encodeIssued(c *IssuedCertificate) []byte {
	var w fieldWriter
	w.time(issTime, c.Issued)
	w.bytes(issDER, c.DER)
	return versioned(issuedVersion, w)
}

// decodeIssued decodes a log entry. Errors wrap [ErrCorrupt] or
// [ErrStoreVersion].
func decodeIssued(rec IssuedRecord) (*IssuedCertificate, error) {
	what := fmt.Sprintf("issued log entry %q of device %q", rec.Serial, rec.Device)
	switch {
	case !validSerial(rec.Serial) || checkDeviceName(rec.Device) != nil:
		return nil, fmt.Errorf("%w: %s: not a serial number and device name", ErrCorrupt, what)
	case len(rec.Data) == 0:
		return nil, fmt.Errorf("%w: %s: empty", ErrCorrupt, what)
	}
	body, err := readVersion(rec.Data, issuedVersion, what)
	if err != nil {
		return nil, err
	}
	c := &IssuedCertificate{Serial: rec.Serial, Device: rec.Device}
	fr := &fieldReader{b: body}
	for tag, v, ok := fr.next(); ok; tag, v, ok = fr.next() {
		switch tag {
		case issTime:
			c.Issued = fr.time(tag, v)
		case issDER:
			c.DER = fr.bytes(tag, v)
		default:
			fr.unknown(tag)
		}
	}
	if fr.err != nil {
		return nil, fmt.Errorf("%w: %s: %v", ErrCorrupt, what, fr.err)
	}
	return c, nil
}
