package postgres

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/ucsec/ucsec/capf"
	"github.com/ucsec/ucsec/internal/testnet"
	"github.com/ucsec/ucsec/tvs"
)

// withoutPassword returns the URL without its password, and the password.
func withoutPassword(t testing.TB, raw string) (string, string) {
	t.Helper()
	u, err := url.Parse(raw)
	if err != nil {
		t.Fatal(err)
	}
	pw, _ := u.User.Password()
	u.User = url.User(u.User.Username())
	return u.String(), pw
}

// closedPort returns a port of 127.0.0.1 where nothing listens.
func closedPort(t testing.TB) int {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := l.Addr().(*net.TCPAddr).Port
	l.Close()
	return port
}

// TestOpenErrors checks the errors of an open that cannot connect: each
// one clear, wrapping ErrConnect or ErrInvalid, and never holding the
// password.
func TestOpenErrors(t *testing.T) {
	pg := sharedPostgres(t, false)
	bare, password := withoutPassword(t, pg.URL())
	const secret = "Sw0rdf1sh-not-the-password"
	u, _ := url.Parse(bare)
	u.User = url.UserPassword(u.User.Username(), secret)
	wrong := u.String()
	u.Host = fmt.Sprintf("127.0.0.1:%d", closedPort(t))
	unreachable := u.String()

	// A server that accepts connections and never answers.
	silent, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer silent.Close()
	go func() {
		for {
			c, err := silent.Accept()
			if err != nil {
				return
			}
			defer c.Close()
		}
	}()
	u.Host = silent.Addr().String()
	hanging := u.String()

	for _, tc := range []struct {
		name, conn string
		timeout    time.Duration
		want       []error
		says       string
	}{
		{"WrongPassword", wrong, 0, []error{ErrConnect}, "password authentication failed"},
		{"Unreachable", unreachable, 0, []error{ErrConnect}, "connection refused"},
		{"NoAnswer", hanging, 500 * time.Millisecond, []error{ErrConnect, context.DeadlineExceeded}, "127.0.0.1"},
		{"NoTLS", pg.URL() + "&sslmode=require", 0, []error{ErrConnect}, "TLS"},
		{"UnknownDatabase", strings.Replace(pg.URL(), "/ucsec?", "/nosuchdb?", 1), 0, []error{ErrConnect}, "nosuchdb"},
		{"MalformedURL", "postgres://ucsec:" + secret + "@127.0.0.1:notaport/ucsec", 0, []error{ErrInvalid}, "cannot parse"},
		{"MalformedEscape", "postgres://ucsec:" + secret + "%zz@127.0.0.1/ucsec", 0, []error{ErrInvalid}, "cannot parse"},
		{"MalformedDSN", "host=127.0.0.1 password=" + secret + " port=abc", 0, []error{ErrInvalid}, "cannot parse"},
		{"MalformedQuotedDSN", "host=127.0.0.1 password='" + secret + "' sslmode=sometimes", 0, []error{ErrInvalid}, "sslmode"},
		{"BadPoolSetting", strings.Replace(wrong, "?", "?pool_max_conns=many&", 1), 0, []error{ErrInvalid}, "pool_max_conns"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx := testContext(t)
			if tc.timeout > 0 {
				var cancel context.CancelFunc
				ctx, cancel = context.WithTimeout(ctx, tc.timeout)
				defer cancel()
			}
			var logs bytes.Buffer
			opts := &Options{Logger: slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))}
			start := time.Now()
			_, err := OpenCAPFStore(ctx, tc.conn, opts)
			if err == nil {
				t.Fatal("open succeeded")
			}
			t.Logf("after %s: %v", since(start), err)
			for _, want := range tc.want {
				if !errors.Is(err, want) {
					t.Errorf("the error does not wrap %v", want)
				}
			}
			if !strings.Contains(err.Error(), tc.says) {
				t.Errorf("the error does not say %q", tc.says)
			}
			for _, pw := range []string{secret, password} {
				if strings.Contains(err.Error(), pw) || strings.Contains(logs.String(), pw) {
					t.Errorf("the error or the log holds the password %q", pw)
				}
			}
			// The TVS store opens alike.
			ctx = testContext(t)
			if tc.timeout > 0 {
				var cancel context.CancelFunc
				ctx, cancel = context.WithTimeout(ctx, tc.timeout)
				defer cancel()
			}
			if _, err := OpenTVSStore(ctx, tc.conn, nil); !errors.Is(err, tc.want[0]) || strings.Contains(fmt.Sprint(err), secret) {
				t.Errorf("OpenTVSStore: %v", err)
			}
		})
	}

	t.Run("Done", func(t *testing.T) {
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		if _, err := OpenCAPFStore(ctx, pg.URL(), nil); !errors.Is(err, context.Canceled) {
			t.Fatalf("open with a cancelled context: %v", err)
		}
	})
	t.Run("PoolAndString", func(t *testing.T) {
		pool, err := pgxpool.New(testContext(t), pg.URL())
		if err != nil {
			t.Fatal(err)
		}
		defer pool.Close()
		if _, err := OpenCAPFStore(testContext(t), pg.URL(), &Options{Pool: pool}); !errors.Is(err, ErrInvalid) {
			t.Fatalf("open with a pool and a connection string: %v", err)
		}
	})
	t.Run("BadSchemaName", func(t *testing.T) {
		if _, err := OpenCAPFStore(testContext(t), pg.URL(), &Options{Schema: strings.Repeat("s", 64)}); !errors.Is(err, ErrInvalid) {
			t.Fatalf("open with a schema name of 64 bytes: %v", err)
		}
	})
}

// TestOpenPassword checks the other ways of giving the password: the
// PGPASSWORD variable and a password file, as libpq reads them.
func TestOpenPassword(t *testing.T) {
	pg := sharedPostgres(t, false)
	bare, password := withoutPassword(t, pg.URL())
	u, _ := url.Parse(bare)

	t.Run("PGPASSWORD", func(t *testing.T) {
		t.Setenv("PGPASSWORD", password)
		openCAPF(t, bare, newSchema())
	})
	t.Run("PGPASSFILE", func(t *testing.T) {
		path := filepath.Join(t.TempDir(), "pgpass")
		line := fmt.Sprintf("127.0.0.1:%s:%s:%s:%s\n", u.Port(), strings.TrimPrefix(u.Path, "/"), u.User.Username(), password)
		if err := os.WriteFile(path, []byte(line), 0o600); err != nil {
			t.Fatal(err)
		}
		t.Setenv("PGPASSWORD", "")
		t.Setenv("PGPASSFILE", path)
		openTVS(t, bare, newSchema())
	})
	t.Run("KeyValue", func(t *testing.T) {
		dsn := fmt.Sprintf("host=127.0.0.1 port=%s dbname=%s user=%s password='%s' sslmode=disable",
			u.Port(), strings.TrimPrefix(u.Path, "/"), u.User.Username(), password)
		openCAPF(t, dsn, newSchema())
	})
}

// TestCallerPool checks a store on the caller's pool: Close leaves the
// pool open.
func TestCallerPool(t *testing.T) {
	pg := sharedPostgres(t, false)
	ctx := testContext(t)
	pool, err := pgxpool.New(ctx, pg.URL())
	if err != nil {
		t.Fatal(err)
	}
	defer pool.Close()
	schema := newSchema()
	c, err := OpenCAPFStore(ctx, "", &Options{Pool: pool, Schema: schema})
	if err != nil {
		t.Fatal(err)
	}
	v, err := OpenTVSStore(ctx, "", &Options{Pool: pool, Schema: schema})
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Update(ctx, "SEP1", func([]byte) ([]byte, error) { return []byte{1}, nil }); err != nil {
		t.Fatal(err)
	}
	c.Close()
	if _, err := c.Get(ctx, "SEP1"); !errors.Is(err, capf.ErrStoreClosed) {
		t.Fatalf("Get after Close: %v", err)
	}
	if err := v.Put(ctx, [32]byte{1}, []byte{1}); err != nil {
		t.Fatalf("the TVS store on the same pool after the CAPF store's Close: %v", err)
	}
	v.Close()
	if err := pool.Ping(ctx); err != nil {
		t.Fatalf("the caller's pool after the stores' Close: %v", err)
	}
}

// TestContextDuringCall checks that a context that ends while a call's
// write waits for a row lock (held by another transaction, as another
// node's write holds it until its commit) ends the call, with the
// context's error, and writes nothing; and that the store works on
// afterwards.
func TestContextDuringCall(t *testing.T) {
	pg := sharedPostgres(t, false)
	ctx := testContext(t)
	schema := newSchema()
	a := openCAPF(t, pg.URL(), schema)
	const dev, absent = "SEP001122334455", "SEP2"
	if err := a.Update(ctx, dev, func([]byte) ([]byte, error) { return []byte("first"), nil }); err != nil {
		t.Fatal(err)
	}
	// Another session locks the device's row, and inserts the absent
	// device's without committing.
	other, err := pgx.Connect(ctx, pg.URL())
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close(context.Background())
	q := pgx.Identifier{schema}.Sanitize()
	tx, err := other.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tx.Exec(ctx, "SELECT FROM "+q+".ucsec_capf_devices WHERE device = $1 FOR UPDATE", dev); err != nil {
		t.Fatal(err)
	}
	if _, err := tx.Exec(ctx, "INSERT INTO "+q+".ucsec_capf_devices (device, data) VALUES ($1, 'other')", absent); err != nil {
		t.Fatal(err)
	}
	set := func([]byte) ([]byte, error) { return []byte("second"), nil }
	del := func([]byte) ([]byte, error) { return nil, nil }
	for _, call := range []struct {
		name string
		do   func(ctx context.Context) error
	}{
		{"Update", func(ctx context.Context) error { return a.Update(ctx, dev, set) }},
		{"Update that deletes", func(ctx context.Context) error { return a.Update(ctx, dev, del) }},
		{"Update of an absent record", func(ctx context.Context) error { return a.Update(ctx, absent, set) }},
		{"RecordIssued", func(ctx context.Context) error {
			return a.RecordIssued(ctx, capf.IssuedRecord{Serial: "0a", Device: dev, Data: []byte{1}}, set)
		}},
		{"RecordIssued that deletes", func(ctx context.Context) error {
			return a.RecordIssued(ctx, capf.IssuedRecord{Serial: "0b", Device: dev, Data: []byte{1}}, del)
		}},
		{"RecordIssued of an absent record", func(ctx context.Context) error {
			return a.RecordIssued(ctx, capf.IssuedRecord{Serial: "0c", Device: absent, Data: []byte{1}}, set)
		}},
	} {
		cctx, cancel := context.WithTimeout(ctx, 300*time.Millisecond)
		start := time.Now()
		err := call.do(cctx)
		cancel()
		if !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("%s waiting for a locked row past its deadline: %v", call.name, err)
		}
		if d := time.Since(start); d > testnet.Patience(t)/2 {
			t.Fatalf("%s returned %v after its deadline", call.name, d)
		}
		t.Logf("%s: %v", call.name, err)
	}
	// A context cancelled by fn: nothing is written.
	cctx, cancel := context.WithCancel(ctx)
	err = a.Update(cctx, "SEP3", func([]byte) ([]byte, error) {
		cancel()
		return []byte("never"), nil
	})
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("Update whose context ended in fn: %v", err)
	}
	// pgx closed the connections of the calls that timed out, and sent
	// PostgreSQL a cancel request for their statements, which were still
	// waiting: they end, and write nothing once the locks are released.
	waitFor(t, ctx, "the statements that waited for the locks to be cancelled", func() bool {
		rows := querySQL(t, pg.URL(), "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock'")
		return rows[0] == "0"
	})
	if err := tx.Rollback(ctx); err != nil {
		t.Fatal(err)
	}
	for dev, want := range map[string]string{dev: "first", absent: "", "SEP3": ""} {
		if got, err := a.Get(ctx, dev); err != nil || string(got) != want {
			t.Fatalf("Get(%s) = %q, %v; want %q", dev, got, err, want)
		}
	}
	if log, err := a.Issued(ctx, ""); err != nil || len(log) != 0 {
		t.Fatalf("the log after RecordIssued calls that timed out: %v, %v", log, err)
	}
	if err := a.Update(ctx, dev, set); err != nil {
		t.Fatal(err)
	}
}

// The write cases of Update and RecordIssued: what the device has when
// the call reads it, and what fn returns.
var writeCases = []struct {
	name        string
	existing    bool // the device has a record
	deletes     bool // fn returns nil
	recordIssue bool // RecordIssued, not Update
}{
	{"Update/insert", false, false, false},
	{"Update/update", true, false, false},
	{"Update/delete", true, true, false},
	{"RecordIssued/insert", false, false, true},
	{"RecordIssued/update", true, false, true},
	{"RecordIssued/delete", true, true, true},
	{"RecordIssued/absent", false, true, true},
}

// TestRetry injects serialization failures and deadlocks with a trigger
// on the device table, in each kind of write: the call runs again, fn
// with it, and what its last run returned is stored, with one log entry;
// a conflict that does not go away ends in an error after a bounded
// number of runs.
func TestRetry(t *testing.T) {
	pg := sharedPostgres(t, false)
	ctx := testContext(t)
	schema := newSchema()
	var logs testnet.Log
	s, err := OpenCAPFStore(ctx, pg.URL(), &Options{Schema: schema, Logger: slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	q := pgx.Identifier{schema}.Sanitize()
	// fail(n, code) makes the next n writes of a device row fail with code.
	fail := func(n int, code string) {
		execSQL(t, pg.URL(),
			"DROP TRIGGER IF EXISTS inject ON "+q+".ucsec_capf_devices",
			"DROP SEQUENCE IF EXISTS "+q+".inject_seq",
			"CREATE SEQUENCE "+q+".inject_seq",
			fmt.Sprintf(`CREATE OR REPLACE FUNCTION %[1]s.inject() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
	IF nextval('%[1]s.inject_seq') <= %[2]d THEN
		RAISE EXCEPTION 'injected conflict' USING ERRCODE = '%[3]s';
	END IF;
	IF TG_OP = 'DELETE' THEN
		RETURN OLD;
	END IF;
	RETURN NEW;
END $$`, q, n, code),
			"CREATE TRIGGER inject BEFORE INSERT OR UPDATE OR DELETE ON "+q+".ucsec_capf_devices FOR EACH ROW EXECUTE FUNCTION "+q+".inject()")
	}
	serial := 0
	for _, code := range []string{"40001", "40P01"} {
		for _, wc := range writeCases {
			if wc.name == "RecordIssued/absent" {
				continue // writes no device row
			}
			dev := "SEP" + code + "/" + wc.name
			if wc.existing {
				execSQL(t, pg.URL(), "DROP TRIGGER IF EXISTS inject ON "+q+".ucsec_capf_devices")
				if err := s.Update(ctx, dev, func([]byte) ([]byte, error) { return []byte("old"), nil }); err != nil {
					t.Fatal(err)
				}
			}
			fail(3, code)
			calls := 0
			fn := func(old []byte) ([]byte, error) {
				calls++
				if string(old) != map[bool]string{true: "old"}[wc.existing] {
					return nil, fmt.Errorf("fn called with %q", old)
				}
				if wc.deletes {
					return nil, nil
				}
				return fmt.Appendf(nil, "call %d", calls), nil
			}
			want := "call 4"
			if wc.deletes {
				want = ""
			}
			serial++
			if wc.recordIssue {
				err = s.RecordIssued(ctx, capf.IssuedRecord{Serial: fmt.Sprintf("%02x", serial), Device: dev, Data: []byte{1}}, fn)
			} else {
				err = s.Update(ctx, dev, fn)
			}
			if err != nil || calls != 4 {
				t.Fatalf("%s with 3 injected %s: %v, fn called %d times, want 4", wc.name, code, err, calls)
			}
			if got, _ := s.Get(ctx, dev); string(got) != want {
				t.Fatalf("%s: record after the retries: %q, want %q", wc.name, got, want)
			}
			if log, _ := s.Issued(ctx, dev); len(log) != map[bool]int{true: 1}[wc.recordIssue] {
				t.Fatalf("%s: %d log entries after the retries", wc.name, len(log))
			}
		}
	}
	if !strings.Contains(logs.String(), "transaction conflict") {
		t.Errorf("no debug record of the retries:\n%s", logs.String())
	}

	fail(1000, "40001")
	calls := 0
	start := time.Now()
	err = s.Update(ctx, "SEP1", func([]byte) ([]byte, error) { calls++; return []byte{1}, nil })
	var pe *pgconn.PgError
	if !errors.As(err, &pe) || pe.Code != "40001" || calls != maxAttempts || !strings.Contains(err.Error(), fmt.Sprintf("%d of %d attempts", maxAttempts, maxAttempts)) {
		t.Fatalf("Update with a lasting conflict: %v after %d calls of fn, want SQLSTATE 40001 after %d", err, calls, maxAttempts)
	}
	t.Logf("gave up after %s: %v", since(start), err)
	if got, _ := s.Get(ctx, "SEP1"); got != nil {
		t.Fatalf("a failed Update stored %q", got)
	}
	// No empty row is left behind by updates that failed or stored nothing.
	execSQL(t, pg.URL(), "DROP TRIGGER inject ON "+q+".ucsec_capf_devices")
	boom := errors.New("boom")
	if err := s.Update(ctx, "SEP3", func([]byte) ([]byte, error) { return nil, boom }); !errors.Is(err, boom) {
		t.Fatal(err)
	}
	if err := s.Update(ctx, "SEP4", func([]byte) ([]byte, error) { return nil, nil }); err != nil {
		t.Fatal(err)
	}
	if rows := querySQL(t, pg.URL(), "SELECT device FROM "+q+".ucsec_capf_devices WHERE octet_length(data) = 0"); len(rows) != 0 {
		t.Fatalf("empty rows left: %v", rows)
	}
}

// TestOptimistic checks the version check of each kind of write: a
// write committed by another session between a call's read and its write
// makes the call write nothing and run again, fn with it, on the newer
// record; also when the call's write waits for the other session's lock
// and finds the row changed once it commits (PostgreSQL's recheck of the
// newest row version at READ COMMITTED). A serial logged meanwhile fails
// the whole write with ErrDuplicateSerial; a call that keeps losing gives
// up with an error, having written nothing.
func TestOptimistic(t *testing.T) {
	pg := sharedPostgres(t, false)
	ctx := testContext(t)
	schema := newSchema()
	s := openCAPF(t, pg.URL(), schema)
	q := pgx.Identifier{schema}.Sanitize()
	other, err := pgx.Connect(ctx, pg.URL())
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close(context.Background())
	watcher, err := pgx.Connect(ctx, pg.URL())
	if err != nil {
		t.Fatal(err)
	}
	defer watcher.Close(context.Background())
	// change writes the device's record as another node would: an
	// upsert, or a delete for nil.
	change := func(ctx context.Context, db interface {
		Exec(context.Context, string, ...any) (pgconn.CommandTag, error)
	}, dev string, data []byte) error {
		var err error
		if data == nil {
			_, err = db.Exec(ctx, "DELETE FROM "+q+".ucsec_capf_devices WHERE device = $1", dev)
		} else {
			_, err = db.Exec(ctx, "INSERT INTO "+q+".ucsec_capf_devices (device, data) VALUES ($1, $2) ON CONFLICT (device) DO UPDATE SET data = EXCLUDED.data", dev, data)
		}
		return err
	}
	serial := 0
	for _, wc := range writeCases {
		// The other session's write: a record for a device without one,
		// another record for one with; or it deletes the record; or it
		// deletes it and writes the same record again.
		for _, mode := range []string{"committed", "waited", "deleted", "replaced"} {
			name := wc.name + "/" + mode
			dev := "SEP/" + name
			if wc.existing {
				if err := s.Update(ctx, dev, func([]byte) ([]byte, error) { return []byte("old"), nil }); err != nil {
					t.Fatal(err)
				}
			}
			theirs := []byte("theirs")
			switch {
			case mode == "waited" && wc.name == "RecordIssued/absent":
				// A row inserted but not committed is not seen, and not
				// waited for: the call comes first.
				continue
			case mode != "committed" && mode != "waited" && !wc.existing:
				continue
			case mode == "deleted":
				theirs = nil
			case mode == "replaced":
				theirs = []byte("old")
			}
			calls := 0
			var seen [][]byte
			var done chan error
			fn := func(old []byte) ([]byte, error) {
				calls++
				seen = append(seen, old)
				if calls == 1 {
					switch mode {
					case "committed", "deleted":
						if err := change(ctx, other, dev, theirs); err != nil {
							return nil, err
						}
					case "replaced":
						if err := change(ctx, other, dev, nil); err != nil {
							return nil, err
						}
						if err := change(ctx, other, dev, theirs); err != nil {
							return nil, err
						}
					case "waited":
						// The other session writes the row and commits once
						// the call's write waits for its lock.
						tx, err := other.Begin(ctx)
						if err != nil {
							return nil, err
						}
						if err := change(ctx, tx, dev, theirs); err != nil {
							return nil, err
						}
						done = make(chan error, 1)
						go func() {
							for {
								var n int
								err := watcher.QueryRow(ctx, "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND datname = current_database() AND query LIKE '%ucsec_capf_devices%'").Scan(&n)
								if err != nil || n > 0 {
									if err == nil {
										err = tx.Commit(ctx)
									}
									done <- err
									return
								}
								time.Sleep(5 * time.Millisecond)
							}
						}()
					}
				}
				if wc.deletes {
					return nil, nil
				}
				return fmt.Appendf(nil, "call %d after %q", calls, old), nil
			}
			serial++
			if wc.recordIssue {
				err = s.RecordIssued(ctx, capf.IssuedRecord{Serial: fmt.Sprintf("%02x", serial), Device: dev, Data: []byte{1}}, fn)
			} else {
				err = s.Update(ctx, dev, fn)
			}
			if done != nil {
				if err := <-done; err != nil {
					t.Fatalf("%s: the other session: %v", name, err)
				}
			}
			if err != nil || calls != 2 || !bytes.Equal(seen[1], theirs) {
				t.Fatalf("%s: %v; fn called %d times, with %q; want twice, the second time with the other session's record", name, err, calls, seen)
			}
			want := fmt.Sprintf("call 2 after %q", theirs)
			if wc.deletes {
				want = ""
			}
			if got, err := s.Get(ctx, dev); err != nil || string(got) != want {
				t.Fatalf("%s: record %q, %v; want %q", name, got, err, want)
			}
			if log, _ := s.Issued(ctx, dev); len(log) != map[bool]int{true: 1}[wc.recordIssue] {
				t.Fatalf("%s: %d log entries", name, len(log))
			}
		}
	}

	// A serial logged by another session between the read and the
	// write: the write fails whole.
	for _, wc := range writeCases {
		if !wc.recordIssue {
			continue
		}
		dev := "SEP/logged/" + wc.name
		if wc.existing {
			if err := s.Update(ctx, dev, func([]byte) ([]byte, error) { return []byte("old"), nil }); err != nil {
				t.Fatal(err)
			}
		}
		serial++
		rec := capf.IssuedRecord{Serial: fmt.Sprintf("%02x", serial), Device: dev, Data: []byte{1}}
		calls := 0
		err := s.RecordIssued(ctx, rec, func(old []byte) ([]byte, error) {
			calls++
			if _, err := other.Exec(ctx, "INSERT INTO "+q+".ucsec_capf_issued (serial, device, data) VALUES ($1, 'SEP/other', '\\x02')", rec.Serial); err != nil {
				return nil, err
			}
			if wc.deletes {
				return nil, nil
			}
			return []byte("mine"), nil
		})
		if !errors.Is(err, capf.ErrDuplicateSerial) || calls != 1 {
			t.Fatalf("%s of a serial logged meanwhile: %v after %d calls of fn, want ErrDuplicateSerial after 1", wc.name, err, calls)
		}
		want := map[bool]string{true: "old"}[wc.existing]
		if got, _ := s.Get(ctx, dev); string(got) != want {
			t.Fatalf("%s of a serial logged meanwhile: record %q, want %q", wc.name, got, want)
		}
		if log, _ := s.Issued(ctx, dev); len(log) != 0 {
			t.Fatalf("%s of a serial logged meanwhile: %d log entries", wc.name, len(log))
		}
	}

	// A device whose record changes between every read and write.
	const dev = "SEP/lasting"
	calls := 0
	err = s.RecordIssued(ctx, capf.IssuedRecord{Serial: "ff", Device: dev, Data: []byte{1}}, func([]byte) ([]byte, error) {
		calls++
		if err := change(ctx, other, dev, fmt.Appendf(nil, "theirs %d", calls)); err != nil {
			return nil, err
		}
		return []byte("mine"), nil
	})
	if !errors.Is(err, errChanged) || calls != maxAttempts || !strings.Contains(err.Error(), fmt.Sprintf("%d of %d attempts", maxAttempts, maxAttempts)) {
		t.Fatalf("RecordIssued whose record keeps changing: %v after %d calls of fn, want errChanged after %d", err, calls, maxAttempts)
	}
	t.Logf("RecordIssued whose record keeps changing: %v", err)
	if got, _ := s.Get(ctx, dev); string(got) != fmt.Sprintf("theirs %d", maxAttempts) {
		t.Fatalf("record %q", got)
	}
	if log, _ := s.Issued(ctx, dev); len(log) != 0 {
		t.Fatalf("%d log entries", len(log))
	}
	// The serial was not taken.
	if err := s.RecordIssued(ctx, capf.IssuedRecord{Serial: "ff", Device: dev, Data: []byte{1}}, func([]byte) ([]byte, error) { return []byte("mine"), nil }); err != nil {
		t.Fatal(err)
	}
}

// TestBadInput checks what the stores refuse before any query.
func TestBadInput(t *testing.T) {
	pg := sharedPostgres(t, false)
	ctx := testContext(t)
	s := openCAPF(t, pg.URL(), newSchema())
	keep := func(old []byte) ([]byte, error) { return old, nil }
	for _, dev := range []string{"", strings.Repeat("A", 65), "SEP 1", "SEP\x00", "SEP\xff"} {
		if err := s.Update(ctx, dev, keep); !errors.Is(err, capf.ErrInvalid) {
			t.Errorf("Update(%q): %v, want capf.ErrInvalid", dev, err)
		}
	}
	for _, rec := range []capf.IssuedRecord{
		{Serial: "", Device: "SEP1", Data: []byte{1}},
		{Serial: "0A", Device: "SEP1", Data: []byte{1}},
		{Serial: strings.Repeat("a", 129), Device: "SEP1", Data: []byte{1}},
		{Serial: "0a", Device: "SEP1"},
		{Serial: "0a", Device: "SEP1", Data: make([]byte, 1<<20+1)},
		{Serial: "0a", Device: "", Data: []byte{1}},
	} {
		if err := s.RecordIssued(ctx, rec, keep); !errors.Is(err, capf.ErrInvalid) {
			t.Errorf("RecordIssued(%q, %q, %d bytes): %v, want capf.ErrInvalid", rec.Serial, rec.Device, len(rec.Data), err)
		}
	}
	big := func([]byte) ([]byte, error) { return make([]byte, 1<<20+1), nil }
	if err := s.Update(ctx, "SEP1", big); !errors.Is(err, capf.ErrInvalid) {
		t.Errorf("Update storing more than 1 MiB: %v", err)
	}
	// Names of devices never stored read as absent.
	if data, err := s.Get(ctx, "SEP 1"); data != nil || err != nil {
		t.Errorf("Get of an invalid name: %q, %v", data, err)
	}
	v := openTVS(t, pg.URL(), newSchema())
	if err := v.Put(ctx, [32]byte{}, nil); err != nil {
		t.Fatal(err)
	}
	if got, err := v.Get(ctx, [32]byte{}); err != nil || got == nil || len(got) != 0 {
		t.Fatalf("Get of an empty record: %v, %v", got, err)
	}
}

// TestFailClosed checks that a store whose server is down reports errors,
// never an absent record, and works again once the server is back, with
// what was written before: nothing committed is lost to a crash.
func TestFailClosed(t *testing.T) {
	pg := newPostgres(t, false)
	ctx := testContext(t)
	c := openCAPF(t, pg.URL(), "")
	v := openTVS(t, pg.URL(), "")
	if err := c.RecordIssued(ctx, capf.IssuedRecord{Serial: "01", Device: "SEP1", Data: []byte("cert")},
		func([]byte) ([]byte, error) { return []byte("record"), nil }); err != nil {
		t.Fatal(err)
	}
	if err := v.Put(ctx, [32]byte{1}, []byte("entry")); err != nil {
		t.Fatal(err)
	}
	if err := pg.Kill(); err != nil {
		t.Fatal(err)
	}
	calls := map[string]func(context.Context) error{
		"capf Get":    func(ctx context.Context) error { _, err := c.Get(ctx, "SEP1"); return err },
		"capf List":   func(ctx context.Context) error { _, err := c.List(ctx); return err },
		"capf Issued": func(ctx context.Context) error { _, err := c.Issued(ctx, ""); return err },
		"capf Update": func(ctx context.Context) error {
			return c.Update(ctx, "SEP1", func([]byte) ([]byte, error) { return []byte("lost"), nil })
		},
		"capf RecordIssued": func(ctx context.Context) error {
			return c.RecordIssued(ctx, capf.IssuedRecord{Serial: "02", Device: "SEP1", Data: []byte("c")}, func(b []byte) ([]byte, error) { return b, nil })
		},
		"tvs Get":    func(ctx context.Context) error { _, err := v.Get(ctx, [32]byte{1}); return err },
		"tvs Lookup": func(ctx context.Context) error { _, err := tvs.Lookup(ctx, v, [32]byte{2}); return err },
		"tvs Put":    func(ctx context.Context) error { return v.Put(ctx, [32]byte{3}, []byte{1}) },
		"tvs Delete": func(ctx context.Context) error { return v.Delete(ctx, [32]byte{1}) },
		"tvs List":   func(ctx context.Context) error { _, err := v.List(ctx); return err },
	}
	for name, call := range calls {
		start := time.Now()
		err := call(ctx)
		if err == nil || errors.Is(err, tvs.ErrNotFound) || !strings.HasPrefix(err.Error(), "postgres: ") {
			t.Errorf("%s with the server down: %v, want an error of this package (not ErrNotFound)", name, err)
		}
		t.Logf("%s, server down, after %s: %v", name, since(start), err)
	}
	if err := pg.Start(ctx); err != nil {
		t.Fatal(err)
	}
	if got, err := c.Get(ctx, "SEP1"); err != nil || string(got) != "record" {
		t.Fatalf("capf Get after the restart: %q, %v", got, err)
	}
	if log, err := c.Issued(ctx, ""); err != nil || len(log) != 1 || log[0].Serial != "01" {
		t.Fatalf("capf Issued after the restart: %v, %v", log, err)
	}
	if got, err := v.Get(ctx, [32]byte{1}); err != nil || string(got) != "entry" {
		t.Fatalf("tvs Get after the restart: %q, %v", got, err)
	}
	if _, err := v.Get(ctx, [32]byte{3}); !errors.Is(err, tvs.ErrNotFound) {
		t.Fatalf("tvs Get of the entry put while the server was down: %v", err)
	}
}

// countingStore counts the calls of a capf.Store, for the sizing notes.
type countingStore struct {
	capf.Store
	gets, updates, records atomic.Int64
}

func (c *countingStore) Get(ctx context.Context, d string) ([]byte, error) {
	c.gets.Add(1)
	return c.Store.Get(ctx, d)
}

func (c *countingStore) Update(ctx context.Context, d string, fn func([]byte) ([]byte, error)) error {
	c.updates.Add(1)
	return c.Store.Update(ctx, d, fn)
}

func (c *countingStore) RecordIssued(ctx context.Context, r capf.IssuedRecord, fn func([]byte) ([]byte, error)) error {
	c.records.Add(1)
	return c.Store.RecordIssued(ctx, r, fn)
}

// TestReconnect restarts PostgreSQL under a store whose pool hands out
// its idle connections without checking them: every call right after the
// restart gets a dead connection first, and runs again on a new one.
func TestReconnect(t *testing.T) {
	pg := newPostgres(t, false)
	ctx := testContext(t)
	cfg, err := pgxpool.ParseConfig(pg.URL())
	if err != nil {
		t.Fatal(err)
	}
	cfg.ShouldPing = func(context.Context, pgxpool.ShouldPingParams) bool { return false }
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer pool.Close()
	var logs testnet.Log
	opts := &Options{Pool: pool, Logger: slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))}
	c, err := OpenCAPFStore(ctx, "", opts)
	if err != nil {
		t.Fatal(err)
	}
	v, err := OpenTVSStore(ctx, "", opts)
	if err != nil {
		t.Fatal(err)
	}
	// Fill the pool with connections.
	errs := make(chan error, 16)
	for i := range 16 {
		go func() {
			errs <- c.Update(ctx, fmt.Sprintf("SEP%d", i), func([]byte) ([]byte, error) { return []byte{1}, nil })
		}()
	}
	for range 16 {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
	if n := pool.Stat().IdleConns(); n < 2 {
		t.Fatalf("%d idle connections", n)
	}
	if err := pg.Restart(ctx); err != nil {
		t.Fatal(err)
	}
	for i, call := range []func() error{
		func() error { _, err := c.Get(ctx, "SEP1"); return err },
		func() error { return c.Update(ctx, "SEP2", func([]byte) ([]byte, error) { return []byte{2}, nil }) },
		func() error {
			return c.RecordIssued(ctx, capf.IssuedRecord{Serial: "01", Device: "SEP3", Data: []byte{1}}, func(b []byte) ([]byte, error) { return b, nil })
		},
		func() error { _, err := v.Get(ctx, [32]byte{1}); return err },
		func() error { return v.Put(ctx, [32]byte{1}, []byte{1}) },
	} {
		if err := call(); err != nil && !errors.Is(err, tvs.ErrNotFound) {
			t.Fatalf("call %d after the restart: %v", i, err)
		}
	}
	if !strings.Contains(logs.String(), "connection lost") {
		t.Fatalf("no call ran again after the restart:\n%s", logs.String())
	}
	t.Logf("%d calls ran again on a new connection", strings.Count(logs.String(), "connection lost"))
}

// TestUpdateChurn runs updates of one device that delete its record every
// fifth time, from goroutines on two handles: the record comes and goes,
// and no update is lost, on the path of an absent record as on that of an
// existing one.
func TestUpdateChurn(t *testing.T) {
	pg := sharedPostgres(t, false)
	ctx := testContext(t)
	schema := newSchema()
	a, b := openCAPF(t, pg.URL(), schema), openCAPF(t, pg.SocketURL(), schema)
	const dev, workers, rounds = "SEP1", 8, 26
	step := func(old []byte) ([]byte, error) {
		n := 0
		if old != nil {
			n, _ = strconv.Atoi(string(old))
		}
		if n+1 == 5 {
			return nil, nil
		}
		return []byte(strconv.Itoa(n + 1)), nil
	}
	errs := make(chan error, workers*rounds)
	var wg sync.WaitGroup
	for w := range workers {
		s := a
		if w%2 == 1 {
			s = b
		}
		wg.Go(func() {
			for range rounds {
				errs <- s.Update(ctx, dev, step)
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
	want := ""
	if n := workers * rounds % 5; n != 0 {
		want = strconv.Itoa(n)
	}
	if got, err := a.Get(ctx, dev); err != nil || string(got) != want {
		t.Fatalf("record after %d updates: %q, %v; want %q", workers*rounds, got, err, want)
	}
}
