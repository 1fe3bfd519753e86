package capf

import (
	"context"
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
	sch.Failures, sch.Claimed, sch.ClaimedAt = 0, 0, time.Time{}
	return st.Update(ctx, device, true, func(d *Device) error {
		if sch.Operation == OpNone {
			d.Pending = nil
			return nil
		}
		p := sch
		d.Pending = &p
		return nil
	})
}

// CancelOperation removes the device's pending operation and records it as
// cancelled. It returns an error wrapping [ErrUnknownDevice] if the store
// has no such device, and nil if nothing was pending.
func CancelOperation(ctx context.Context, st Store, device string, now time.Time) error {
	return st.Update(ctx, device, false, func(d *Device) error {
		if d.Pending == nil {
			return nil
		}
		d.Last = &Result{Operation: d.Pending.Operation, Failure: FailCancelled, Time: now}
		d.Pending = nil
		return nil
	})
}
