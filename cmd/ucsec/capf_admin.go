package main

// The admin operations of "ucsec capf serve" and of the commands that
// schedule, cancel and list operations (see admin.go): a request is an
// adminRequest, its result an adminResponse.

import (
	"context"
	"crypto/x509"
	"fmt"
	"time"

	"github.com/ucsec/ucsec/capf"
	"github.com/ucsec/ucsec/stores/postgres"
)

// Files in a CAPF --store directory.
const (
	storeFileName  = "capf.db"
	socketFileName = "admin.sock"
)

// capfAdmin is the admin socket of "capf serve", and the way of the
// schedule, list and cancel commands to its store.
var capfAdmin = &adminService[capf.Store, adminRequest, adminResponse]{
	group:      "capf",
	name:       "CAPF",
	storeFile:  storeFileName,
	socketFile: socketFileName,
	openBolt: func(path string, timeout time.Duration) (capf.Store, error) {
		st, err := capf.OpenBoltStore(path, &capf.BoltOptions{Timeout: timeout})
		if err != nil {
			return nil, err
		}
		return st, nil
	},
	locked: capf.ErrStoreLocked,
	openPostgres: func(ctx context.Context, connString string, opts *postgres.Options) (capf.Store, error) {
		st, err := postgres.OpenCAPFStore(ctx, connString, opts)
		if err != nil {
			return nil, err
		}
		return st, nil
	},
	firstUse: "schedule an operation",
	handle:   handleAdmin,
	describe: func(req *adminRequest) []any { return []any{"op", req.Op, "device", req.Device} },
	kinds: []adminErrorKind{
		{"unknown-device", capf.ErrUnknownDevice},
		{"invalid", capf.ErrInvalid},
	},
}

// An adminRequest is one request on the admin socket.
type adminRequest struct {
	// Op is "schedule", "cancel", "list" or "issued".
	Op string `json:"op"`
	// Device is the device to schedule or cancel; for list and issued, the
	// one device to report on ("" for all).
	Device string `json:"device,omitempty"`
	// Schedule is the operation to schedule.
	Schedule *scheduleRequest `json:"schedule,omitempty"`
}

// A scheduleRequest is a capf.Schedule on the admin socket, with the
// authentication string: this protocol's own JSON, which capf.Schedule
// (a view of the store, no wire format) does not define.
type scheduleRequest struct {
	Operation  capf.Operation `json:"operation"`
	Auth       capf.AuthMode  `json:"auth"`
	AuthString string         `json:"authString,omitempty"`
	Key        capf.KeySpec   `json:"key"`
	Deadline   time.Time      `json:"deadline,omitzero"`
}

func newScheduleRequest(s *capf.Schedule) *scheduleRequest {
	return &scheduleRequest{Operation: s.Operation, Auth: s.Auth, AuthString: s.AuthString, Key: s.Key, Deadline: s.Deadline}
}

func (r *scheduleRequest) schedule() capf.Schedule {
	return capf.Schedule{Operation: r.Operation, Auth: r.Auth, AuthString: r.AuthString, Key: r.Key, Deadline: r.Deadline}
}

// An adminResponse is the result of an adminRequest.
type adminResponse struct {
	// Cancelled is the operation that a cancel removed, "" if none was
	// pending.
	Cancelled string `json:"cancelled,omitempty"`
	// Devices answers list, Issued answers issued.
	Devices []*deviceReport `json:"devices,omitempty"`
	Issued  []*issuedReport `json:"issued,omitempty"`
}

// A deviceReport is one device as "capf list" shows it. It never holds
// the authentication string.
type deviceReport struct {
	Device   string         `json:"device"`
	Status   string         `json:"status"` // capf.Device.Status
	Pending  *pendingReport `json:"pending,omitempty"`
	Last     *lastReport    `json:"last,omitempty"`
	Serial   string         `json:"serial,omitempty"` // of the installed LSC
	NotAfter *time.Time     `json:"lsc_not_after,omitempty"`
	Fetched  string         `json:"fetched_serial,omitempty"` // of the certificate the last fetch got
	LastSeen *time.Time     `json:"last_seen,omitempty"`
}

// A pendingReport is a scheduled operation.
type pendingReport struct {
	Operation  string     `json:"operation"`
	Auth       string     `json:"auth"`
	AuthString string     `json:"auth_string,omitempty"` // "set", never the string
	Key        string     `json:"key"`
	Deadline   *time.Time `json:"deadline,omitempty"`
	Scheduled  *time.Time `json:"scheduled,omitempty"`
	Failures   int        `json:"failures,omitempty"` // wrong strings so far
}

// A lastReport is the result of the last operation.
type lastReport struct {
	Operation string     `json:"operation"`
	Status    string     `json:"status"` // capf.Result.Status
	Failure   string     `json:"failure,omitempty"`
	Time      *time.Time `json:"time,omitempty"`
	Serial    string     `json:"serial,omitempty"`
}

// An issuedReport is one certificate of the store's issued log.
type issuedReport struct {
	Serial   string     `json:"serial"`
	Device   string     `json:"device"`
	Issued   *time.Time `json:"issued"`
	NotAfter *time.Time `json:"not_after,omitempty"`
}

func newDeviceReport(d *capf.Device) *deviceReport {
	r := &deviceReport{Device: d.Name, Status: d.Status(), LastSeen: jsonTime(d.LastSeen)}
	if p := d.Pending; p != nil && p.Operation != capf.OpNone {
		r.Pending = &pendingReport{
			Operation: p.Operation.String(),
			Auth:      p.Auth.String(),
			Key:       p.Key.String(),
			Deadline:  jsonTime(p.Deadline),
			Scheduled: jsonTime(p.Scheduled),
			Failures:  p.Failures,
		}
		if p.Auth == capf.AuthString {
			r.Pending.AuthString = "set" // the view never holds the string
		}
	}
	if l := d.Last; l != nil {
		r.Last = &lastReport{Operation: l.Operation.String(), Status: l.Status(), Time: jsonTime(l.Time), Serial: l.Serial}
		if l.Failure != capf.FailNone {
			r.Last.Failure = l.Failure.String()
		}
	}
	if len(d.Certificate) > 0 {
		if c, err := x509.ParseCertificate(d.Certificate); err == nil {
			r.Serial = capf.SerialHex(c.SerialNumber)
			r.NotAfter = jsonTime(c.NotAfter)
		}
	}
	if len(d.Fetched) > 0 {
		if c, err := x509.ParseCertificate(d.Fetched); err == nil {
			r.Fetched = capf.SerialHex(c.SerialNumber)
		}
	}
	return r
}

func newIssuedReport(c *capf.IssuedCertificate) *issuedReport {
	r := &issuedReport{Serial: c.Serial, Device: c.Device, Issued: jsonTime(c.Issued)}
	if cert, err := x509.ParseCertificate(c.DER); err == nil {
		r.NotAfter = jsonTime(cert.NotAfter)
	}
	return r
}

// handleAdmin carries out req on st. The server runs it for requests on
// its socket, the commands on a store they opened themselves.
func handleAdmin(ctx context.Context, st capf.Store, req *adminRequest, now time.Time) (*adminResponse, error) {
	resp := &adminResponse{}
	var err error
	switch req.Op {
	case "schedule":
		if req.Schedule == nil {
			err = fmt.Errorf("%w: schedule request without a schedule", capf.ErrInvalid)
			break
		}
		err = capf.ScheduleOperation(ctx, st, req.Device, req.Schedule.schedule(), now)
	case "cancel":
		var d *capf.Device
		if d, err = capf.LookupDevice(ctx, st, req.Device); err != nil {
			break
		}
		if err = capf.CancelOperation(ctx, st, req.Device, now); err == nil && d.Pending != nil && d.Pending.Operation != capf.OpNone {
			resp.Cancelled = d.Pending.Operation.String()
		}
	case "list":
		var devices []*capf.Device
		if req.Device != "" {
			var d *capf.Device
			if d, err = capf.LookupDevice(ctx, st, req.Device); err == nil {
				devices = []*capf.Device{d}
			}
		} else {
			devices, err = capf.ListDevices(ctx, st)
		}
		for _, d := range devices {
			resp.Devices = append(resp.Devices, newDeviceReport(d))
		}
	case "issued":
		var issued []*capf.IssuedCertificate
		issued, err = capf.ListIssued(ctx, st, req.Device)
		for _, c := range issued {
			resp.Issued = append(resp.Issued, newIssuedReport(c))
		}
	default:
		err = fmt.Errorf("%w: unknown admin request %q", capf.ErrInvalid, req.Op)
	}
	if err != nil {
		return nil, err
	}
	return resp, nil
}
