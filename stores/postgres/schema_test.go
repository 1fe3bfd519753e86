package postgres

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"strings"
	"sync"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/ucsec/ucsec/capf"
	"github.com/ucsec/ucsec/tvs"
)

// execSQL runs statements on the database at url, as its user.
func execSQL(t testing.TB, url string, stmts ...string) {
	t.Helper()
	ctx := testContext(t)
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())
	for _, s := range stmts {
		if _, err := conn.Exec(ctx, s); err != nil {
			t.Fatalf("%s: %v", s, err)
		}
	}
}

// querySQL returns the rows of a query, one string a row, columns joined
// by "|".
func querySQL(t testing.TB, url, query string, args ...any) []string {
	t.Helper()
	ctx := testContext(t)
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())
	rows, err := conn.Query(ctx, query, args...)
	if err != nil {
		t.Fatalf("%s: %v", query, err)
	}
	var out []string
	for rows.Next() {
		vals, err := rows.Values()
		if err != nil {
			t.Fatal(err)
		}
		var cols []string
		for _, v := range vals {
			cols = append(cols, fmt.Sprint(v))
		}
		out = append(out, strings.Join(cols, "|"))
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

func versions(t testing.TB, url, schema string) string {
	t.Helper()
	return strings.Join(querySQL(t, url, fmt.Sprintf("SELECT store, version, compatible FROM %s.ucsec_schema ORDER BY store", pgx.Identifier{schema}.Sanitize())), " ")
}

// TestSchemaCreate checks that the first open creates the schema and the
// tables and records their versions, and that later opens, of either
// kind, find them and keep what was written.
func TestSchemaCreate(t *testing.T) {
	pg := sharedPostgres(t, false)
	ctx := testContext(t)
	schema := "A schema; with \"quotes\" and spaces"
	c := openCAPF(t, pg.URL(), schema)
	if got := versions(t, pg.URL(), schema); got != "capf|1|1" {
		t.Fatalf("versions after the first open: %q", got)
	}
	if err := c.Update(ctx, "SEP1", func([]byte) ([]byte, error) { return []byte("kept"), nil }); err != nil {
		t.Fatal(err)
	}
	c.Close()
	for range 2 {
		openTVS(t, pg.URL(), schema).Close()
		c = openCAPF(t, pg.URL(), schema)
	}
	if got := versions(t, pg.URL(), schema); got != "capf|1|1 tvs|1|1" {
		t.Fatalf("versions after more opens: %q", got)
	}
	if data, err := c.Get(ctx, "SEP1"); err != nil || string(data) != "kept" {
		t.Fatalf("Get after reopening: %q, %v", data, err)
	}
	tables := querySQL(t, pg.URL(), "SELECT tablename FROM pg_tables WHERE schemaname = $1 ORDER BY tablename", schema)
	if got := strings.Join(tables, " "); got != "ucsec_capf_devices ucsec_capf_issued ucsec_schema ucsec_tvs_records" {
		t.Fatalf("tables: %s", got)
	}
}

// TestSchemaDefault checks that without Options.Schema the tables go to
// the connection's current schema.
func TestSchemaDefault(t *testing.T) {
	pg := sharedPostgres(t, false)
	schema := newSchema()
	execSQL(t, pg.URL(), "CREATE SCHEMA "+schema)
	url := pg.URL() + "&search_path=" + schema
	s, err := OpenCAPFStore(testContext(t), url, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if got := versions(t, pg.URL(), schema); got != "capf|1|1" {
		t.Fatalf("versions in the search_path's schema: %q", got)
	}
	// A search_path of schemas that do not exist names none.
	_, err = OpenCAPFStore(testContext(t), pg.URL()+"&search_path=nosuchschema", nil)
	if !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), "Options.Schema") {
		t.Fatalf("open with no current schema: %v", err)
	}
}

// TestSchemaConcurrentOpens opens stores of both kinds on a new schema at
// once, as the nodes of a cluster starting together: the advisory lock
// lets one create the tables, and the others find them.
func TestSchemaConcurrentOpens(t *testing.T) {
	pg := sharedPostgres(t, false)
	ctx := testContext(t)
	for round := range 3 {
		schema := newSchema()
		const n = 8
		var wg sync.WaitGroup
		errs := make([]error, n)
		start := make(chan struct{})
		for i := range n {
			wg.Go(func() {
				<-start
				var err error
				if i%2 == 0 {
					var s *CAPFStore
					if s, err = OpenCAPFStore(ctx, pg.URL(), &Options{Schema: schema}); err == nil {
						err = s.Update(ctx, fmt.Sprintf("SEP%d", i), func([]byte) ([]byte, error) { return []byte{1}, nil })
						s.Close()
					}
				} else {
					var s *TVSStore
					if s, err = OpenTVSStore(ctx, pg.URL(), &Options{Schema: schema}); err == nil {
						err = s.Put(ctx, [32]byte{byte(i)}, []byte{1})
						s.Close()
					}
				}
				errs[i] = err
			})
		}
		close(start)
		wg.Wait()
		for i, err := range errs {
			if err != nil {
				t.Fatalf("round %d, open %d of %d at once: %v", round, i, n, err)
			}
		}
		if got := versions(t, pg.URL(), schema); got != "capf|1|1 tvs|1|1" {
			t.Fatalf("versions: %q", got)
		}
	}
}

// TestSchemaNewer checks the versions a newer package may record: one
// this package may not use is refused with one clear error, one it may
// use is accepted.
func TestSchemaNewer(t *testing.T) {
	pg := sharedPostgres(t, false)
	ctx := testContext(t)
	schema := newSchema()
	openCAPF(t, pg.URL(), schema).Close()
	openTVS(t, pg.URL(), schema).Close()
	q := pgx.Identifier{schema}.Sanitize()

	execSQL(t, pg.URL(), "UPDATE "+q+".ucsec_schema SET version = 3, compatible = 2")
	_, err := OpenCAPFStore(ctx, pg.URL(), &Options{Schema: schema})
	var se *SchemaError
	if !errors.As(err, &se) || !errors.Is(err, ErrSchema) || !errors.Is(err, capf.ErrStoreVersion) {
		t.Fatalf("open of a newer schema: %v, want a *SchemaError wrapping ErrSchema and capf.ErrStoreVersion", err)
	}
	if se.Version != 3 || se.Compatible != 2 || se.Supported != CAPFSchemaVersion || se.Store != "capf" || se.Schema != schema {
		t.Fatalf("SchemaError %+v", se)
	}
	t.Logf("newer schema: %v", err)
	if !strings.Contains(err.Error(), "schema version 3") || !strings.Contains(err.Error(), "use a newer version") {
		t.Errorf("the error does not say what to do: %v", err)
	}
	_, err = OpenTVSStore(ctx, pg.URL(), &Options{Schema: schema})
	if !errors.Is(err, ErrSchema) || !errors.Is(err, tvs.ErrStoreVersion) || errors.Is(err, capf.ErrStoreVersion) {
		t.Fatalf("open of a newer TVS schema: %v, want ErrSchema and tvs.ErrStoreVersion", err)
	}

	// A newer version that keeps this one's compatible.
	execSQL(t, pg.URL(), "UPDATE "+q+".ucsec_schema SET version = 3, compatible = 1")
	s := openCAPF(t, pg.URL(), schema)
	if err := s.Update(ctx, "SEP1", func([]byte) ([]byte, error) { return []byte("x"), nil }); err != nil {
		t.Fatal(err)
	}
	openTVS(t, pg.URL(), schema)
	if got := versions(t, pg.URL(), schema); got != "capf|3|1 tvs|3|1" {
		t.Fatalf("an older package changed the newer versions: %q", got)
	}

	// Versions no package writes.
	for _, set := range []string{"version = 0, compatible = 0", "version = 2, compatible = 3", "version = -1, compatible = 1"} {
		execSQL(t, pg.URL(), "UPDATE "+q+".ucsec_schema SET "+set)
		if _, err := OpenCAPFStore(ctx, pg.URL(), &Options{Schema: schema}); !errors.As(err, &se) {
			t.Fatalf("open with %s: %v, want a *SchemaError", set, err)
		}
	}
}

// TestSchemaOtherLayout checks tables this package did not make, or that
// were changed, are refused at open with one clear error.
func TestSchemaOtherLayout(t *testing.T) {
	pg := sharedPostgres(t, false)
	ctx := testContext(t)
	for _, tc := range []struct {
		name  string
		setup func(q string) []string // run on a schema with the CAPF store's tables
		fresh bool                    // run on an empty schema instead
		want  string                  // in the error; "" for no error
	}{
		{"TableWithoutVersion", func(q string) []string {
			return []string{"CREATE SCHEMA " + q, "CREATE TABLE " + q + ".ucsec_capf_devices (id int)"}
		}, true, "records no version"},
		{"OtherVersionTable", func(q string) []string {
			return []string{"CREATE SCHEMA " + q, "CREATE TABLE " + q + ".ucsec_schema (name text, v text)"}
		}, true, "another layout than this package's version table"},
		{"VersionTableOfOtherTypes", func(q string) []string {
			return []string{"CREATE SCHEMA " + q, "CREATE TABLE " + q + ".ucsec_schema (store text, version text, compatible text)",
				"INSERT INTO " + q + ".ucsec_schema VALUES ('capf', 'one', 'one')"}
		}, true, "another layout than this package's version table"},
		{"NoUniqueSerial", func(q string) []string {
			return []string{"ALTER TABLE " + q + ".ucsec_capf_issued DROP CONSTRAINT ucsec_capf_issued_serial_key"}
		}, false, "table ucsec_capf_issued has no unique key on (serial)"},
		{"ColumnType", func(q string) []string {
			return []string{"ALTER TABLE " + q + ".ucsec_capf_devices ALTER COLUMN data TYPE text"}
		}, false, "column ucsec_capf_devices.data is of type text, not bytea"},
		{"MissingColumn", func(q string) []string {
			return []string{"ALTER TABLE " + q + ".ucsec_capf_issued DROP COLUMN device"}
		}, false, "table ucsec_capf_issued lacks column device"},
		{"MissingTable", func(q string) []string {
			return []string{"DROP TABLE " + q + ".ucsec_capf_issued"}
		}, false, "table ucsec_capf_issued does not exist"},
		{"ExtraColumn", func(q string) []string {
			return []string{"ALTER TABLE " + q + ".ucsec_capf_issued ADD COLUMN note text"}
		}, false, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			schema := newSchema()
			q := pgx.Identifier{schema}.Sanitize()
			if !tc.fresh {
				openCAPF(t, pg.URL(), schema).Close()
			}
			execSQL(t, pg.URL(), tc.setup(q)...)
			s, err := OpenCAPFStore(ctx, pg.URL(), &Options{Schema: schema})
			if tc.want == "" {
				if err != nil {
					t.Fatal(err)
				}
				s.Close()
				return
			}
			var se *SchemaError
			if !errors.As(err, &se) || !errors.Is(err, capf.ErrStoreVersion) || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("open: %v, want a *SchemaError saying %q", err, tc.want)
			}
			t.Log(err)
		})
	}
}

// TestSchemaMigrate migrates a made-up store through versions: an older
// schema is brought up to date in one transaction, and an older package
// may keep using a newer schema only as far as compatible says.
func TestSchemaMigrate(t *testing.T) {
	pg := sharedPostgres(t, false)
	ctx := testContext(t)
	v1 := migration{version: 1, compatible: 1, stmts: []string{"CREATE TABLE %[1]s.ucsec_test_t (k text PRIMARY KEY)"}}
	v2 := migration{version: 2, compatible: 1, stmts: []string{"ALTER TABLE %[1]s.ucsec_test_t ADD COLUMN v bytea"}}
	v3 := migration{version: 3, compatible: 3, stmts: []string{"ALTER TABLE %[1]s.ucsec_test_t RENAME COLUMN v TO w"}}
	bad := migration{version: 4, compatible: 4, stmts: []string{"ALTER TABLE %[1]s.ucsec_test_t ADD COLUMN x int", "SELECT 1/0"}}
	mk := func(ms ...migration) *layout {
		cols := []column{{"k", "text"}}
		switch ms[len(ms)-1].version {
		case 2:
			cols = append(cols, column{"v", "bytea"})
		case 3, 4:
			cols = append(cols, column{"w", "bytea"})
		}
		return &layout{store: "test", migrations: ms, versionErr: capf.ErrStoreVersion, closedErr: capf.ErrStoreClosed,
			tables: []table{{name: "ucsec_test_t", columns: cols, unique: [][]string{{"k"}}}}}
	}
	schema := newSchema()
	opts := &Options{Schema: schema}
	openWith := func(l *layout) error {
		h, err := open(ctx, pg.URL(), opts, l)
		if err == nil {
			h.close()
		}
		return err
	}
	if err := openWith(mk(v1)); err != nil {
		t.Fatal(err)
	}
	if err := openWith(mk(v1, v2)); err != nil {
		t.Fatal(err)
	}
	if got := versions(t, pg.URL(), schema); got != "test|2|1" {
		t.Fatalf("after the migration to 2: %q", got)
	}
	// Version 1 may use version 2's tables, which only add a column.
	if err := openWith(mk(v1)); err != nil {
		t.Fatalf("version 1 on a schema of version 2, compatible with 1: %v", err)
	}
	if err := openWith(mk(v1, v2, v3)); err != nil {
		t.Fatal(err)
	}
	var se *SchemaError
	if err := openWith(mk(v1, v2)); !errors.As(err, &se) || se.Version != 3 || se.Compatible != 3 || se.Supported != 2 {
		t.Fatalf("version 2 on a schema of version 3, compatible with 3 only: %v", err)
	}
	// A migration that fails leaves the tables as they were.
	if err := openWith(mk(v1, v2, v3, bad)); err == nil || !strings.Contains(err.Error(), "migrating to schema version 4") {
		t.Fatalf("a failing migration: %v", err)
	}
	if got := versions(t, pg.URL(), schema); got != "test|3|3" {
		t.Fatalf("after a failed migration: %q", got)
	}
	cols := querySQL(t, pg.URL(), "SELECT column_name FROM information_schema.columns WHERE table_schema = $1 AND table_name = 'ucsec_test_t' ORDER BY column_name", schema)
	if got := strings.Join(cols, " "); got != "k w" {
		t.Fatalf("columns after a failed migration: %s", got)
	}
	// Several opens at once migrate once.
	schema2 := newSchema()
	if _, err := open(ctx, pg.URL(), &Options{Schema: schema2}, mk(v1)); err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	errs := make(chan error, 6)
	for range 6 {
		wg.Go(func() {
			h, err := open(ctx, pg.URL(), &Options{Schema: schema2}, mk(v1, v2, v3))
			if err == nil {
				h.close()
			}
			errs <- err
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatalf("concurrent migrations: %v", err)
		}
	}
	if got := versions(t, pg.URL(), schema2); got != "test|3|3" {
		t.Fatalf("after concurrent migrations: %q", got)
	}
}

// TestRestrictedRole checks the privileges the documentation names: once
// the tables exist, a role that may only read and write their rows runs
// the stores.
func TestRestrictedRole(t *testing.T) {
	pg := sharedPostgres(t, false)
	ctx := testContext(t)
	schema := newSchema()
	openCAPF(t, pg.URL(), schema).Close()
	openTVS(t, pg.URL(), schema).Close()
	role := "srv_" + schema
	q := pgx.Identifier{schema}.Sanitize()
	execSQL(t, pg.AdminURL(),
		"CREATE ROLE "+role+" LOGIN PASSWORD 'role-password'",
		"GRANT USAGE ON SCHEMA "+q+" TO "+role,
		"GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA "+q+" TO "+role)
	u, _ := url.Parse(pg.URL())
	u.User = url.UserPassword(role, "role-password")
	c := openCAPF(t, u.String(), schema)
	v := openTVS(t, u.String(), schema)
	if err := c.RecordIssued(ctx, capf.IssuedRecord{Serial: "01", Device: "SEP1", Data: []byte{1}},
		func([]byte) ([]byte, error) { return []byte{2}, nil }); err != nil {
		t.Fatal(err)
	}
	if err := v.Put(ctx, [32]byte{1}, []byte{1}); err != nil {
		t.Fatal(err)
	}
	// Without them, the open says so.
	execSQL(t, pg.AdminURL(), "REVOKE SELECT ON ALL TABLES IN SCHEMA "+q+" FROM "+role)
	if _, err := OpenCAPFStore(ctx, u.String(), &Options{Schema: schema}); err == nil || !strings.Contains(err.Error(), "permission denied") {
		t.Fatalf("open without SELECT: %v", err)
	} else {
		t.Log(err)
	}
	// Nor may it create tables in a new schema.
	if _, err := OpenCAPFStore(ctx, u.String(), &Options{Schema: newSchema()}); err == nil || !strings.Contains(err.Error(), "permission denied") {
		t.Fatalf("open of a new schema without CREATE: %v", err)
	} else {
		t.Log(err)
	}
}
