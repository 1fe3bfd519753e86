package postgres

import (
	"context"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgtype"
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
	get, list, issuedAll, issuedBy string
	// Update: read the row and its version; write it if it is still
	// that version.
	read, insert, update, del string
	// RecordIssued: read the row, its version and whether the serial is
	// logged; log the entry and write the row in one statement.
	readLogged, logInsert, logUpdate, logDelete, logAbsent string
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
	// The version of a row is its xmin, the id of the transaction that
	// wrote it, which every insert or update of the row sets. A row that
	// was updated, or deleted and inserted again, since it was read has
	// another: the transaction that wrote the version read had committed,
	// and writes no more. (Ids come round again only after 2^32
	// transactions; freezing keeps the xmin that the column shows.) A
	// write conditioned on it writes nothing if the row changed since it
	// was read, also if it waited for the lock of the transaction that
	// changed it: at READ COMMITTED, PostgreSQL checks the conditions of
	// an UPDATE or a DELETE again on the newest version of a row it
	// waited for; and an INSERT … ON CONFLICT DO NOTHING waits for an
	// uncommitted row of its key, then inserts nothing if it committed.
	logEntry := "INSERT INTO " + issued + " (serial, device, data) SELECT $1, $2, $3"
	return &CAPFStore{h: h, sql: capfSQL{
		get:       "SELECT data FROM " + devices + " WHERE device = $1",
		list:      "SELECT device, data FROM " + devices + " WHERE octet_length(data) > 0 ORDER BY device",
		issuedAll: "SELECT serial, device, data FROM " + issued + " ORDER BY seq",
		issuedBy:  "SELECT serial, device, data FROM " + issued + " WHERE device = $1 ORDER BY seq",

		read:   "SELECT data, xmin FROM " + devices + " WHERE device = $1",
		insert: "INSERT INTO " + devices + " (device, data) VALUES ($1, $2) ON CONFLICT (device) DO NOTHING",
		update: "UPDATE " + devices + " SET data = $2 WHERE device = $1 AND xmin = $3::xid",
		del:    "DELETE FROM " + devices + " WHERE device = $1 AND xmin = $2::xid",

		readLogged: "SELECT d.data, d.xmin, EXISTS (SELECT FROM " + issued + " WHERE serial = $2) FROM (VALUES (0)) AS one LEFT JOIN " + devices + " AS d ON d.device = $1",
		// $1 serial, $2 device, $3 the log entry, $4 the record or the
		// version, $5 the version. The log entry is inserted for the row
		// the first part wrote, if it wrote one.
		logInsert: "WITH dev AS (INSERT INTO " + devices + " (device, data) VALUES ($2, $4) ON CONFLICT (device) DO NOTHING RETURNING 1) " + logEntry + " FROM dev",
		logUpdate: "WITH dev AS (UPDATE " + devices + " SET data = $4 WHERE device = $2 AND xmin = $5::xid RETURNING 1) " + logEntry + " FROM dev",
		logDelete: "WITH dev AS (DELETE FROM " + devices + " WHERE device = $2 AND xmin = $4::xid RETURNING 1) " + logEntry + " FROM dev",
		logAbsent: logEntry + " WHERE NOT EXISTS (SELECT FROM " + devices + " WHERE device = $2)",
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

// Update implements [capf.Store]: two round trips, each a statement of
// its own (one for a device without a record that fn leaves without
// one). The first reads the record and its version, the second, after fn,
// writes it if its version is still the one read: the write and its
// check are one statement, committed by itself. If another write came
// between, nothing is written, and the record is read again and fn run
// again on it, up to 10 times in all, with a growing pause.
func (s *CAPFStore) Update(ctx context.Context, device string, fn func(old []byte) ([]byte, error)) error {
	if err := checkDevice(device); err != nil {
		return err
	}
	return s.write(ctx, "capf: update "+quote(device), device, nil, fn)
}

// RecordIssued implements [capf.Store]: two round trips, as Update's.
// The first also finds whether the serial is logged already; the second
// inserts the log entry and writes the device's record in one statement,
// so both are committed or neither. The unique key on the serial number
// makes a second entry for a serial fail with [capf.ErrDuplicateSerial],
// whichever server writes it.
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

// errChanged is the failure of an attempt whose write found the device's
// row changed since it was read, by a write that committed meanwhile:
// it wrote nothing, and is run again as a serialization failure is.
var errChanged = errors.New("the device's record changed while the call ran")

// write runs Update, or RecordIssued if rec is not nil, as optimistic
// transactions: it reads the device's row and its version (xmin), calls
// fn, and writes in one statement that checks the version, with neither
// an explicit transaction nor a lock held while fn runs.
//
// Each write statement is a transaction of its own (implicit): it
// commits, or has no effect, before PostgreSQL answers it. Once it has
// been sent, a connection lost before the answer may have committed it,
// so the attempt is then not run again (committing is true).
func (s *CAPFStore) write(ctx context.Context, what, device string, rec *capf.IssuedRecord, fn func(old []byte) ([]byte, error)) error {
	return s.h.run(ctx, what, func(ctx context.Context, conn *pgx.Conn) (bool, error) {
		var old []byte
		var version pgtype.Uint32 // the row's xmin; not Valid without a row
		if rec == nil {
			err := conn.QueryRow(ctx, s.sql.read, device).Scan(&old, &version)
			if err != nil && !errors.Is(err, pgx.ErrNoRows) {
				return false, err
			}
		} else {
			logged := false
			if err := conn.QueryRow(ctx, s.sql.readLogged, device, rec.Serial).Scan(&old, &version, &logged); err != nil {
				return false, err
			}
			if logged {
				return false, callerError{duplicate(rec)}
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
		if err := ctx.Err(); err != nil {
			return false, err
		}
		var stmt string
		var args []any
		found, v := version.Valid, version.Uint32
		switch {
		case rec == nil && !found && len(data) == 0:
			return false, nil // no record, and none to store
		case rec == nil && !found:
			stmt, args = s.sql.insert, []any{device, data}
		case rec == nil && len(data) == 0:
			stmt, args = s.sql.del, []any{device, v}
		case rec == nil:
			stmt, args = s.sql.update, []any{device, data, v}
		case !found && len(data) == 0:
			stmt, args = s.sql.logAbsent, []any{rec.Serial, device, rec.Data}
		case !found:
			stmt, args = s.sql.logInsert, []any{rec.Serial, device, rec.Data, data}
		case len(data) == 0:
			stmt, args = s.sql.logDelete, []any{rec.Serial, device, rec.Data, v}
		default:
			stmt, args = s.sql.logUpdate, []any{rec.Serial, device, rec.Data, data, v}
		}
		ct, err := conn.Exec(ctx, stmt, args...)
		switch {
		case err != nil && rec != nil && duplicateSerial(err):
			// The whole statement failed: neither the entry nor the
			// record was written.
			return true, callerError{duplicate(rec)}
		case err != nil:
			return true, err
		case ct.RowsAffected() == 0:
			return true, errChanged
		}
		return true, nil
	})
}

// duplicate returns the error of a RecordIssued whose serial is logged.
func duplicate(rec *capf.IssuedRecord) error {
	return fmt.Errorf("%w: %s", capf.ErrDuplicateSerial, rec.Serial)
}

// duplicateSerial reports whether err is the unique violation of a log
// entry's serial number: in the log, the unique key other than the
// primary key (seq, an identity, which does not repeat).
func duplicateSerial(err error) bool {
	var pe *pgconn.PgError
	return errors.As(err, &pe) && pe.Code == "23505" && pe.TableName == "ucsec_capf_issued" && pe.ConstraintName != "ucsec_capf_issued_pkey"
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
