package postgres

import (
	"context"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/ucsec/ucsec/capf"
)

// CAPFSchemaVersion is the schema version of the CAPF store's tables that
// this package creates and uses.
//
// Version 1:
//
//	ucsec_capf_devices  device text COLLATE "C" PRIMARY KEY,  -- 1 to 64 bytes
//	                    data   bytea NOT NULL                 -- the record, never empty
//	ucsec_capf_issued   seq    bigint GENERATED ALWAYS AS IDENTITY (CACHE 1) PRIMARY KEY,
//	                    serial text COLLATE "C" NOT NULL UNIQUE,
//	                    device text COLLATE "C" NOT NULL,
//	                    data   bytea NOT NULL
//	                    and an index on (device, seq)
const CAPFSchemaVersion = 1

// Limits of what a CAPF store keeps, as package capf documents them.
const (
	maxDeviceName = 64
	maxSerial     = 128
	maxCAPFRecord = 1 << 20
)

var capfLayout = &layout{
	store: "capf",
	tables: []table{
		{name: "ucsec_capf_devices",
			columns: []column{{"device", "text"}, {"data", "bytea"}},
			unique:  [][]string{{"device"}}},
		{name: "ucsec_capf_issued",
			columns: []column{{"seq", "bigint"}, {"serial", "text"}, {"device", "text"}, {"data", "bytea"}},
			unique:  [][]string{{"seq"}, {"serial"}}},
	},
	migrations: []migration{{
		version: 1, compatible: 1,
		stmts: []string{
			`CREATE TABLE %[1]s.ucsec_capf_devices (
	device text COLLATE "C" PRIMARY KEY CHECK (octet_length(device) BETWEEN 1 AND 64),
	data   bytea NOT NULL
)`,
			// The sequence is not cached per session (CACHE 1), so that
			// seq grows in the order of the inserts, from every session:
			// the order of the log.
			`CREATE TABLE %[1]s.ucsec_capf_issued (
	seq    bigint GENERATED ALWAYS AS IDENTITY (CACHE 1) PRIMARY KEY,
	serial text COLLATE "C" NOT NULL CONSTRAINT ucsec_capf_issued_serial_key UNIQUE
	       CHECK (octet_length(serial) BETWEEN 1 AND 128),
	device text COLLATE "C" NOT NULL,
	data   bytea NOT NULL
)`,
			`CREATE INDEX ucsec_capf_issued_device_seq ON %[1]s.ucsec_capf_issued (device, seq)`,
		},
	}},
	versionErr: capf.ErrStoreVersion,
	closedErr:  capf.ErrStoreClosed,
}

// A CAPFStore is a [capf.Store] in PostgreSQL, which the CAPF servers of
// a cluster share: see the package documentation. It is safe for
// concurrent use.
type CAPFStore struct {
	h   *handle
	sql capfSQL
}

var _ capf.Store = (*CAPFStore)(nil)

// capfSQL holds the store's statements, with the schema's name in them.
type capfSQL struct {
	get, list, issuedAll, issuedBy  string
	reserve, lock, update, del, log string
}

// OpenCAPFStore opens the CAPF store in the PostgreSQL database that
// connString names, a URL (postgres://user@host:5432/db?sslmode=verify-full)
// or key=value pairs (host=db.example user=capf dbname=ucsec), as libpq and
// pgx take them; the password may come from the string, PGPASSWORD or the
// password file (PGPASSFILE, ~/.pgpass). Give an empty connString and
// Options.Pool to use a pool of your own.
//
// OpenCAPFStore connects, creates the store's tables if they do not exist,
// or migrates older ones, and checks that they are what this package
// needs. It fails with an error wrapping [ErrInvalid] if connString does
// not parse, [ErrConnect] if the server cannot be reached or refuses the
// login, and [ErrSchema] and [capf.ErrStoreVersion] (a [*SchemaError]) if
// the tables are of a newer version this one may not use or of another
// layout. ctx bounds the whole open, connection included: give it a
// deadline (or set connect_timeout in connString).
func OpenCAPFStore(ctx context.Context, connString string, opts *Options) (*CAPFStore, error) {
	h, err := open(ctx, connString, opts, capfLayout)
	if err != nil {
		return nil, err
	}
	q := pgx.Identifier{h.schema}.Sanitize()
	devices, issued := q+".ucsec_capf_devices", q+".ucsec_capf_issued"
	return &CAPFStore{h: h, sql: capfSQL{
		get:       "SELECT data FROM " + devices + " WHERE device = $1",
		list:      "SELECT device, data FROM " + devices + " WHERE octet_length(data) > 0 ORDER BY device",
		issuedAll: "SELECT serial, device, data FROM " + issued + " ORDER BY seq",
		issuedBy:  "SELECT serial, device, data FROM " + issued + " WHERE device = $1 ORDER BY seq",
		reserve:   "INSERT INTO " + devices + " AS d (device, data) VALUES ($1, '') ON CONFLICT (device) DO UPDATE SET data = d.data RETURNING d.data",
		lock:      "SELECT data FROM " + devices + " WHERE device = $1 FOR UPDATE",
		update:    "UPDATE " + devices + " SET data = $2 WHERE device = $1",
		del:       "DELETE FROM " + devices + " WHERE device = $1",
		log:       "INSERT INTO " + issued + " (serial, device, data) VALUES ($1, $2, $3) ON CONFLICT (serial) DO NOTHING",
	}}, nil
}

// Get implements [capf.Store]: one query.
func (s *CAPFStore) Get(ctx context.Context, device string) ([]byte, error) {
	var data []byte
	err := s.h.read(ctx, "capf: get "+quote(device), func(ctx context.Context, conn *pgx.Conn) error {
		data = nil
		err := conn.QueryRow(ctx, s.sql.get, device).Scan(&data)
		if errors.Is(err, pgx.ErrNoRows) {
			return nil
		}
		return err
	})
	if err != nil || len(data) == 0 {
		return nil, err
	}
	return data, nil
}

// List implements [capf.Store]: one query.
func (s *CAPFStore) List(ctx context.Context) ([]capf.DeviceRecord, error) {
	var recs []capf.DeviceRecord
	err := s.h.read(ctx, "capf: list", func(ctx context.Context, conn *pgx.Conn) error {
		recs = nil
		rows, err := conn.Query(ctx, s.sql.list)
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			var r capf.DeviceRecord
			if err := rows.Scan(&r.Device, &r.Data); err != nil {
				return err
			}
			recs = append(recs, r)
		}
		return rows.Err()
	})
	return recs, err
}

// Issued implements [capf.Store]: one query.
func (s *CAPFStore) Issued(ctx context.Context, device string) ([]capf.IssuedRecord, error) {
	var recs []capf.IssuedRecord
	err := s.h.read(ctx, "capf: issued log of "+quote(device), func(ctx context.Context, conn *pgx.Conn) error {
		recs = nil
		var rows pgx.Rows
		var err error
		if device == "" {
			rows, err = conn.Query(ctx, s.sql.issuedAll)
		} else {
			rows, err = conn.Query(ctx, s.sql.issuedBy, device)
		}
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			var r capf.IssuedRecord
			if err := rows.Scan(&r.Serial, &r.Device, &r.Data); err != nil {
				return err
			}
			recs = append(recs, r)
		}
		return rows.Err()
	})
	return recs, err
}

// Update implements [capf.Store]: one transaction of two round trips
// (three for a device without a record), run again on a serialization
// failure or deadlock. fn runs while the
// device's row is locked.
func (s *CAPFStore) Update(ctx context.Context, device string, fn func(old []byte) ([]byte, error)) error {
	if err := checkDevice(device); err != nil {
		return err
	}
	return s.write(ctx, "capf: update "+quote(device), device, nil, fn)
}

// RecordIssued implements [capf.Store]: one transaction of two round
// trips (three for a device without a record), which inserts the log
// entry and updates the device's record.
// The unique key on the serial number makes a second entry for a serial
// fail with [capf.ErrDuplicateSerial], whichever server writes it.
func (s *CAPFStore) RecordIssued(ctx context.Context, rec capf.IssuedRecord, fn func(old []byte) ([]byte, error)) error {
	if err := checkDevice(rec.Device); err != nil {
		return err
	}
	if !validSerial(rec.Serial) {
		return fmt.Errorf("%w: serial number %q", capf.ErrInvalid, rec.Serial)
	}
	if len(rec.Data) == 0 || len(rec.Data) > maxCAPFRecord {
		return fmt.Errorf("%w: log entry of %d bytes", capf.ErrInvalid, len(rec.Data))
	}
	return s.write(ctx, "capf: record issued "+rec.Serial+" for "+quote(rec.Device), rec.Device, &rec, fn)
}

// write runs Update, or RecordIssued if rec is not nil.
//
// The first round trip begins the transaction, inserts the log entry
// unless its serial is logged already, and locks the device's row; for a
// device without a row, another inserts an empty one, locked. The last,
// after fn, writes or deletes the row and commits.
func (s *CAPFStore) write(ctx context.Context, what, device string, rec *capf.IssuedRecord, fn func(old []byte) ([]byte, error)) error {
	return s.h.run(ctx, what, func(ctx context.Context, conn *pgx.Conn) (bool, error) {
		b := &pgx.Batch{}
		b.Queue("BEGIN ISOLATION LEVEL READ COMMITTED READ WRITE")
		duplicate := false
		if rec != nil {
			b.Queue(s.sql.log, rec.Serial, rec.Device, rec.Data).Exec(func(ct pgconn.CommandTag) error {
				duplicate = ct.RowsAffected() == 0
				return nil
			})
		}
		var old []byte
		found := false
		b.Queue(s.sql.lock, device).QueryRow(func(row pgx.Row) error {
			err := row.Scan(&old)
			found = err == nil
			if errors.Is(err, pgx.ErrNoRows) {
				return nil
			}
			return err
		})
		if err := conn.SendBatch(ctx, b).Close(); err != nil {
			return false, err
		}
		if duplicate {
			return false, callerError{fmt.Errorf("%w: %s", capf.ErrDuplicateSerial, rec.Serial)}
		}
		if !found {
			// A device without a row gets an empty one, locked as it is
			// inserted; if a transaction inserted one meanwhile, the
			// insert waits for it, then locks and reads its row instead
			// (an upsert is atomic).
			if err := conn.QueryRow(ctx, s.sql.reserve, device).Scan(&old); err != nil {
				return false, err
			}
		}
		if len(old) == 0 {
			old = nil
		}
		data, err := fn(old)
		if err != nil {
			return false, callerError{err}
		}
		if len(data) > maxCAPFRecord {
			return false, callerError{fmt.Errorf("%w: record of device %s is %d bytes (at most %d)", capf.ErrInvalid, quote(device), len(data), maxCAPFRecord)}
		}
		b = &pgx.Batch{}
		if len(data) == 0 {
			b.Queue(s.sql.del, device)
		} else {
			b.Queue(s.sql.update, device, data)
		}
		committed := false
		b.Queue("COMMIT").Exec(func(ct pgconn.CommandTag) error {
			committed = ct.String() == "COMMIT"
			return nil
		})
		if err := conn.SendBatch(ctx, b).Close(); err != nil {
			return true, err
		}
		if !committed {
			return true, errors.New("the transaction did not commit")
		}
		return true, nil
	})
}

// Close implements [capf.Store]. It closes the pool, unless it is the
// caller's (Options.Pool), once calls under way have finished.
func (s *CAPFStore) Close() error {
	s.h.close()
	return nil
}

// checkDevice checks a device name as package capf documents them.
func checkDevice(device string) error {
	if device == "" || len(device) > maxDeviceName {
		return fmt.Errorf("%w: device name of %d bytes", capf.ErrInvalid, len(device))
	}
	for i := 0; i < len(device); i++ {
		if c := device[i]; c <= ' ' || c > '~' {
			return fmt.Errorf("%w: device name %q has byte 0x%02x", capf.ErrInvalid, device, c)
		}
	}
	return nil
}

// validSerial reports whether s is 1 to 128 lowercase hexadecimal digits.
func validSerial(s string) bool {
	if s == "" || len(s) > maxSerial {
		return false
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return false
		}
	}
	return true
}

// quote quotes a device name for a message.
func quote(device string) string {
	if device == "" {
		return "every device"
	}
	return fmt.Sprintf("%q", device)
}
