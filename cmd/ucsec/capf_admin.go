package main

// The admin protocol between "ucsec capf serve" and the commands that
// schedule, cancel and list operations.
//
// The store is a bbolt file, DIR/capf.db, that a running server holds
// with an exclusive lock. So the server also listens on a unix socket,
// DIR/admin.sock (mode 0600, in a directory it creates 0700), and the
// other commands ask it there. With no socket, or nobody listening on it
// (the server stopped or was killed), they open DIR/capf.db themselves.
//
// One connection carries one request and one answer, each one line of
// JSON: an adminRequest, then an adminResponse. The server reads the
// request within adminReadTimeout and at most maxAdminRequest bytes, runs
// it on its store, and answers only after the store call returned, so an
// acknowledged schedule is on disk.

import (
	"bufio"
	"bytes"
	"cmp"
	"context"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"sync"
	"syscall"
	"time"

	"github.com/ucsec/ucsec/capf"
)

// Files in a --store directory.
const (
	storeFileName  = "capf.db"
	socketFileName = "admin.sock"
)

const (
	maxAdminRequest  = 64 << 10  // bytes in a request line
	maxAdminResponse = 256 << 20 // bytes in an answer line (a list of every device)
	adminReadTimeout = 5 * time.Second
	adminTimeout     = 60 * time.Second // the store call and the answer; the client's whole exchange
	// maxSocketPath is the longest socket path every system takes
	// (sun_path is 104 bytes on the BSDs and macOS, 108 on Linux).
	maxSocketPath = 103
	// directOpenTimeout is how long a command waits for the lock on a
	// store file that no server answers for.
	directOpenTimeout = 500 * time.Millisecond
)

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

// An adminResponse is the answer to an adminRequest.
type adminResponse struct {
	OK bool `json:"ok"`
	// Error and Kind say why the request failed. Kind is "invalid" (an
	// error wrapping capf.ErrInvalid), "unknown-device"
	// (capf.ErrUnknownDevice) or "".
	Error string `json:"error,omitempty"`
	Kind  string `json:"kind,omitempty"`
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
func handleAdmin(ctx context.Context, st capf.Store, req *adminRequest, now time.Time) *adminResponse {
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
		return &adminResponse{Error: err.Error(), Kind: errorKind(err)}
	}
	resp.OK = true
	return resp
}

func errorKind(err error) string {
	switch {
	case errors.Is(err, capf.ErrUnknownDevice):
		return "unknown-device"
	case errors.Is(err, capf.ErrInvalid):
		return "invalid"
	}
	return ""
}

// adminError is a failed request, as the answer reported it.
type adminError struct{ msg, kind string }

func (e *adminError) Error() string { return e.msg }

func (e *adminError) Unwrap() error {
	switch e.kind {
	case "unknown-device":
		return capf.ErrUnknownDevice
	case "invalid":
		return capf.ErrInvalid
	}
	return nil
}

// result returns the answer, or its error if the request failed.
func (r *adminResponse) result() (*adminResponse, error) {
	if !r.OK {
		return nil, &adminError{cmp.Or(r.Error, "request failed"), r.Kind}
	}
	return r, nil
}

// The server side.

// adminServer answers requests on the admin socket with the server's store.
type adminServer struct {
	st  capf.Store
	log *slog.Logger
	wg  sync.WaitGroup
}

// listenAdmin listens on the socket at path, replacing a stale one. The
// caller must hold the store's lock: it proves that no other server uses
// the socket.
func listenAdmin(path string) (*net.UnixListener, error) {
	if len(path) > maxSocketPath {
		return nil, fmt.Errorf("%s is too long for a unix socket (%d bytes, at most %d): use a shorter --store path", path, len(path), maxSocketPath)
	}
	if fi, err := os.Lstat(path); err == nil {
		if fi.Mode().Type() != fs.ModeSocket {
			return nil, fmt.Errorf("%s exists and is not a socket", path)
		}
		if err := os.Remove(path); err != nil {
			return nil, err
		}
	}
	l, err := net.ListenUnix("unix", &net.UnixAddr{Name: path, Net: "unix"})
	if err != nil {
		return nil, fmt.Errorf("admin socket: %w", err)
	}
	// The directory is 0700 already; the socket is private too.
	if err := os.Chmod(path, 0o600); err != nil {
		l.Close()
		return nil, fmt.Errorf("admin socket: %w", err)
	}
	return l, nil
}

// serve answers connections on l until ctx is done, then closes l (which
// removes the socket) and waits for the requests under way.
func (a *adminServer) serve(ctx context.Context, l *net.UnixListener) {
	stop := context.AfterFunc(ctx, func() { l.Close() })
	defer stop()
	for {
		c, err := l.Accept()
		if err != nil {
			if ctx.Err() == nil && !errors.Is(err, net.ErrClosed) {
				a.log.Error("capf: admin socket", "err", err)
			}
			break
		}
		a.wg.Add(1)
		go func() {
			defer a.wg.Done()
			a.handle(ctx, c)
		}()
	}
	l.Close()
	a.wg.Wait()
}

// handle answers the one request on c.
func (a *adminServer) handle(ctx context.Context, c net.Conn) {
	defer c.Close()
	c.SetReadDeadline(time.Now().Add(adminReadTimeout))
	var resp *adminResponse
	req, err := readAdminLine[adminRequest](c, maxAdminRequest)
	if err != nil {
		resp = &adminResponse{Error: "capf: admin request: " + err.Error(), Kind: "invalid"}
	} else {
		// A request under way finishes even if the server is stopping:
		// the store is closed only after it.
		sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), adminTimeout)
		resp = handleAdmin(sctx, a.st, req, time.Now())
		cancel()
	}
	if resp.OK {
		a.log.Info("capf: admin request", "op", req.Op, "device", req.Device)
	} else {
		a.log.Warn("capf: admin request failed", "err", resp.Error)
	}
	c.SetWriteDeadline(time.Now().Add(adminTimeout))
	if err := writeAdminLine(c, resp); err != nil {
		a.log.Warn("capf: admin answer", "err", err)
	}
}

// readAdminLine reads one line of JSON of at most limit bytes from r and
// decodes it strictly.
func readAdminLine[T any](r io.Reader, limit int64) (*T, error) {
	line, err := bufio.NewReader(io.LimitReader(r, limit+1)).ReadBytes('\n')
	switch {
	case int64(len(line)) > limit:
		return nil, fmt.Errorf("larger than %s", sizeText(limit))
	case err == io.EOF && len(line) == 0:
		return nil, errors.New("connection closed without a line")
	case err == io.EOF:
		return nil, errors.New("line cut short")
	case err != nil:
		return nil, err
	}
	dec := json.NewDecoder(bytes.NewReader(line))
	dec.DisallowUnknownFields()
	v := new(T)
	if err := dec.Decode(v); err != nil {
		return nil, err
	}
	return v, nil
}

func writeAdminLine(w io.Writer, v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	_, err = w.Write(append(b, '\n'))
	return err
}

// The client side.

// errNoServer reports that no server listens on the admin socket.
var errNoServer = errors.New("no CAPF server is running")

// askServer sends req to the server listening in the store directory dir.
// It returns an error wrapping errNoServer if there is no socket or nobody
// listens on it.
func askServer(ctx context.Context, dir string, req *adminRequest) (*adminResponse, error) {
	path := filepath.Join(dir, socketFileName)
	if len(path) > maxSocketPath {
		return nil, fmt.Errorf("%w: %s is too long for a unix socket", errNoServer, path)
	}
	ctx, cancel := context.WithTimeout(ctx, adminTimeout)
	defer cancel()
	var d net.Dialer
	c, err := d.DialContext(ctx, "unix", path)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) || errors.Is(err, syscall.ECONNREFUSED) {
			return nil, fmt.Errorf("%w: %w", errNoServer, err)
		}
		return nil, fmt.Errorf("%s: %w", path, withoutPath(err))
	}
	defer c.Close()
	deadline, _ := ctx.Deadline()
	c.SetDeadline(deadline)
	stop := context.AfterFunc(ctx, func() { c.Close() })
	defer stop()
	if err := writeAdminLine(c, req); err != nil {
		return nil, fmt.Errorf("CAPF server on %s: %w", path, err)
	}
	resp, err := readAdminLine[adminResponse](c, maxAdminResponse)
	if err != nil {
		// The request may or may not have been carried out.
		return nil, fmt.Errorf("CAPF server on %s gave no answer: %w", path, err)
	}
	return resp.result()
}

// adminCall carries out req for the store in directory dir: through the
// server's socket if a server is running, else on the store file itself.
// create allows creating the directory and the store file.
func adminCall(ctx context.Context, dir string, req *adminRequest, create bool) (*adminResponse, error) {
	resp, err := askServer(ctx, dir, req)
	if !errors.Is(err, errNoServer) {
		return resp, err
	}
	resp, err = direct(ctx, dir, req, create)
	if !errors.Is(err, capf.ErrStoreLocked) {
		return resp, err
	}
	// A server may have been starting: it takes the lock first, then
	// opens the socket.
	resp, err = askServer(ctx, dir, req)
	if errors.Is(err, errNoServer) {
		return nil, fmt.Errorf("%s is in use by another process, but no CAPF server answers on %s",
			filepath.Join(dir, storeFileName), filepath.Join(dir, socketFileName))
	}
	return resp, err
}

// direct carries out req on the store file in dir, with no server running.
func direct(ctx context.Context, dir string, req *adminRequest, create bool) (*adminResponse, error) {
	path := filepath.Join(dir, storeFileName)
	if create {
		if err := os.MkdirAll(dir, 0o700); err != nil {
			return nil, &fileError{dir, withoutPath(err)}
		}
	} else if _, err := os.Stat(path); errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("no CAPF store in %s (schedule an operation or run 'ucsec capf serve --store %s' first)", dir, dir)
	}
	st, err := capf.OpenBoltStore(path, &capf.BoltOptions{Timeout: directOpenTimeout})
	if err != nil {
		return nil, err
	}
	resp := handleAdmin(ctx, st, req, time.Now())
	if err := st.Close(); err != nil && resp.OK {
		return nil, err
	}
	return resp.result()
}
