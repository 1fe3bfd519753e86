package capf

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// Check reports whether the schedule is complete and consistent: a known
// operation, authentication mode and key, and for [AuthString] a string of
// 4 to 10 digits (CUCM's rule). Errors wrap [ErrInvalid].
func (s *Schedule) Check() error {
	if s.Operation > OpDelete {
		return fmt.Errorf("%w: unknown operation %v", ErrInvalid, s.Operation)
	}
	if s.Auth > AuthMIC {
		return fmt.Errorf("%w: unknown authentication mode %v", ErrInvalid, s.Auth)
	}
	if !s.Key.Valid() {
		return fmt.Errorf("%w: unknown key %v", ErrInvalid, s.Key)
	}
	if s.Auth == AuthString {
		if n := len(s.AuthString); n < 4 || n > 10 {
			return fmt.Errorf("%w: authentication string must be 4 to 10 digits, not %d characters", ErrInvalid, n)
		}
		for i := 0; i < len(s.AuthString); i++ {
			if c := s.AuthString[i]; c < '0' || c > '9' {
				return fmt.Errorf("%w: authentication string must be digits only", ErrInvalid)
			}
		}
	} else if s.AuthString != "" {
		return fmt.Errorf("%w: an authentication string is only used with the string mode", ErrInvalid)
	}
	return nil
}

// Expired reports whether the schedule has a deadline at or before now.
func (s *Schedule) Expired(now time.Time) bool {
	return !s.Deadline.IsZero() && !now.Before(s.Deadline)
}

// errUnchanged, returned by a function given to modify, leaves the
// record as it is: no write.
var errUnchanged = errors.New("capf: record unchanged")

// modify changes the device's record in one [Store.Update]: fn gets the
// decoded record, nil if there is none, and returns the record to store,
// nil to delete it, or errUnchanged to write nothing. fn may be called
// more than once. A record this package cannot read is an error, and is
// left as it is.
func modify(ctx context.Context, st Store, device string, fn func(r *record) (*record, error)) error {
	err := st.Update(ctx, device, recordFunc(device, fn))
	if errors.Is(err, errUnchanged) {
		return nil
	}
	return err
}

// recordFunc returns the function for [Store.Update] or
// [Store.RecordIssued] that decodes the device's record, gives it to fn
// and encodes what fn returns.
func recordFunc(device string, fn func(r *record) (*record, error)) func([]byte) ([]byte, error) {
	return func(old []byte) ([]byte, error) {
		r, err := decodeRecord(device, old)
		if err != nil {
			return nil, err
		}
		if r, err = fn(r); err != nil || r == nil {
			return nil, err
		}
		return r.encode()
	}
}

// ScheduleOperation checks sch and stores it as the device's pending
// operation, replacing any earlier one, creating the device record if
// needed. sch.Scheduled is set to now if zero, and the failure count is
// reset. Scheduling [OpNone] clears the pending operation.
func ScheduleOperation(ctx context.Context, st Store, device string, sch Schedule, now time.Time) error {
	if err := checkDeviceName(device); err != nil {
		return err
	}
	if err := sch.Check(); err != nil {
		return err
	}
	if sch.Expired(now) {
		return fmt.Errorf("%w: deadline %s has passed", ErrInvalid, sch.Deadline.Format(time.RFC3339))
	}
	if sch.Scheduled.IsZero() {
		sch.Scheduled = now
	}
	sch.Failures = 0
	sch.Key = sch.Key.resolve()
	return modify(ctx, st, device, func(r *record) (*record, error) {
		if r == nil {
			r = &record{name: device}
		}
		r.pending = nil
		if sch.Operation != OpNone {
			r.pending = &pending{Schedule: sch}
		}
		return r, nil
	})
}

// CancelOperation removes the device's pending operation and records it as
// cancelled. It returns an error wrapping [ErrUnknownDevice] if the store
// has no such device, and nil if nothing was pending. A session carrying
// the operation out when it is cancelled issues no certificate after
// that; one issued already stays recorded.
func CancelOperation(ctx context.Context, st Store, device string, now time.Time) error {
	if checkDeviceName(device) != nil {
		return fmt.Errorf("%w: %q", ErrUnknownDevice, device)
	}
	return modify(ctx, st, device, func(r *record) (*record, error) {
		switch {
		case r == nil:
			return nil, fmt.Errorf("%w: %q", ErrUnknownDevice, device)
		case r.pending == nil:
			return nil, errUnchanged
		}
		r.last = &Result{Operation: r.pending.Operation, Failure: FailCancelled, Time: now}
		r.pending = nil
		return r, nil
	})
}

// RemoveDevice deletes the device's record, with its pending operation;
// removing a device the store does not know is not an error. The issued
// log keeps the certificates issued to it.
func RemoveDevice(ctx context.Context, st Store, device string) error {
	if checkDeviceName(device) != nil {
		return nil // never stored
	}
	return st.Update(ctx, device, func([]byte) ([]byte, error) { return nil, nil })
}

// LookupDevice returns the store's record of the device, or an error
// wrapping [ErrUnknownDevice] if it has none.
func LookupDevice(ctx context.Context, st Store, device string) (*Device, error) {
	r, err := lookup(ctx, st, device)
	if err != nil {
		return nil, err
	}
	return r.view(), nil
}

// lookup returns the device's decoded record, or an error wrapping
// [ErrUnknownDevice] if there is none.
func lookup(ctx context.Context, st Store, device string) (*record, error) {
	if checkDeviceName(device) != nil {
		return nil, fmt.Errorf("%w: %q", ErrUnknownDevice, device)
	}
	data, err := st.Get(ctx, device)
	if err != nil {
		return nil, err
	}
	r, err := decodeRecord(device, data)
	if err == nil && r == nil {
		err = fmt.Errorf("%w: %q", ErrUnknownDevice, device)
	}
	return r, err
}

// ListDevices returns the store's record of every device, sorted by name.
func ListDevices(ctx context.Context, st Store) ([]*Device, error) {
	recs, err := st.List(ctx)
	if err != nil {
		return nil, err
	}
	ds := make([]*Device, 0, len(recs))
	for i, rec := range recs {
		if i > 0 && recs[i-1].Device >= rec.Device {
			return nil, fmt.Errorf("%w: the store listed device %q after %q", ErrCorrupt, rec.Device, recs[i-1].Device)
		}
		r, err := decodeRecord(rec.Device, rec.Data)
		if err != nil {
			return nil, err
		}
		if r == nil {
			return nil, fmt.Errorf("%w: the store listed device %q with an empty record", ErrCorrupt, rec.Device)
		}
		ds = append(ds, r.view())
	}
	return ds, nil
}

// ListIssued returns the certificates issued to the device, or to every
// device if device is "", in the order they were recorded.
func ListIssued(ctx context.Context, st Store, device string) ([]*IssuedCertificate, error) {
	if device != "" && checkDeviceName(device) != nil {
		return nil, nil // never recorded
	}
	recs, err := st.Issued(ctx, device)
	if err != nil {
		return nil, err
	}
	cs := make([]*IssuedCertificate, 0, len(recs))
	for _, rec := range recs {
		if device != "" && rec.Device != device {
			return nil, fmt.Errorf("%w: the store listed issued certificate %q of device %q as %q's", ErrCorrupt, rec.Serial, rec.Device, device)
		}
		c, err := decodeIssued(rec)
		if err != nil {
			return nil, err
		}
		cs = append(cs, c)
	}
	return cs, nil
}
