package postgres

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

// The tables of a schema are versioned per kind of store. The table
// ucsec_schema, which both kinds share and whose layout never changes,
// holds one row for each kind:
//
//	store       "capf" or "tvs"
//	version     the schema version of the store's tables
//	compatible  the oldest schema version whose code may use them as
//	            they are (a migration that only adds what older code
//	            ignores keeps it; one that changes what it reads raises it)
//	migrated    when the row was last written
//
// An open takes a transaction-scoped advisory lock on the schema, then
// creates or migrates the tables in the same transaction: stores opened at
// once, on one node or several, wait for each other, and a migration is
// committed whole or not at all.

// versionTable is the name of the table of schema versions.
const versionTable = "ucsec_schema"

// lockPrefix is hashed with the schema's name to the key of the advisory
// lock that serializes the opens on one schema.
const lockPrefix = "github.com/ucsec/ucsec/stores/postgres schema "

// minServerVersion is the oldest PostgreSQL this package runs on (12),
// as server_version_num gives it.
const minServerVersion = 120000

// A layout describes the tables of one kind of store.
type layout struct {
	store      string      // "capf" or "tvs": the key in ucsec_schema
	tables     []table     // as the newest migration leaves them
	migrations []migration // in order; the last one's version is the current version
	versionErr error       // the kind's ErrStoreVersion
	closedErr  error       // the kind's ErrStoreClosed
}

// A table is what the store needs of one of its tables: the columns it
// reads and writes, and the unique keys its guarantees rest on. Columns
// that others add are ignored.
type table struct {
	name    string
	columns []column
	unique  [][]string // column lists of unique indexes
}

type column struct{ name, typ string }

// A migration brings the tables to version from the version before it.
type migration struct {
	version    int
	compatible int
	// stmts run in order; %[1]s stands for the quoted schema name.
	stmts []string
}

// current returns the schema version this package writes.
func (l *layout) current() int { return l.migrations[len(l.migrations)-1].version }

// setup finds the schema, and creates or migrates the store's tables in
// it, holding the schema's advisory lock.
func (h *handle) setup(ctx context.Context, schema string, l *layout) error {
	conn, err := h.pool.Acquire(ctx)
	if err != nil {
		return fmt.Errorf("%w: %w", ErrConnect, err)
	}
	defer conn.Release()
	c := conn.Conn()
	fail := func(err error) error {
		var se *SchemaError
		if errors.As(err, &se) || errors.Is(err, ErrInvalid) || errors.Is(err, errors.ErrUnsupported) {
			return err
		}
		if ctx.Err() != nil && !errors.Is(err, ctx.Err()) {
			err = fmt.Errorf("%w (%w)", ctx.Err(), err)
		}
		return fmt.Errorf("postgres: setting up the %s store's tables: %w", l.store, err)
	}

	var serverVersion string
	if err := c.QueryRow(ctx, "SHOW server_version_num").Scan(&serverVersion); err != nil {
		return fail(err)
	}
	if v, err := strconv.Atoi(serverVersion); err == nil && v < minServerVersion {
		return fmt.Errorf("postgres: the server runs PostgreSQL %d.%d; this package needs 12 or later: %w", v/10000, v%10000, errors.ErrUnsupported)
	}
	if schema == "" {
		var cur *string
		if err := c.QueryRow(ctx, "SELECT current_schema()").Scan(&cur); err != nil {
			return fail(err)
		}
		if cur == nil {
			return fmt.Errorf("%w: no schema of the connection's search_path exists: name one in Options.Schema", ErrInvalid)
		}
		schema = *cur
	}
	h.schema = schema

	tx, err := c.Begin(ctx)
	if err != nil {
		return fail(err)
	}
	defer tx.Rollback(context.WithoutCancel(ctx))
	if _, err := tx.Exec(ctx, "SELECT pg_advisory_xact_lock(hashtextextended($1, 0))", lockPrefix+schema); err != nil {
		return fail(err)
	}
	if err := migrate(ctx, tx, h, schema, l); err != nil {
		return fail(err)
	}
	if err := checkLayout(ctx, tx, schema, l); err != nil {
		return fail(err)
	}
	if err := tx.Commit(ctx); err != nil {
		return fail(err)
	}
	return nil
}

// migrate creates the schema and the tables if they do not exist, or
// brings them to the current version, in tx, which holds the schema's
// lock.
func migrate(ctx context.Context, tx pgx.Tx, h *handle, schema string, l *layout) error {
	q := pgx.Identifier{schema}.Sanitize()
	schemaErr := func(version, compatible int, format string, args ...any) error {
		return &SchemaError{Schema: schema, Store: l.store, Version: version, Compatible: compatible,
			Supported: l.current(), Reason: fmt.Sprintf(format, args...), sentinel: l.versionErr}
	}

	var exists bool
	if err := tx.QueryRow(ctx, "SELECT EXISTS (SELECT FROM pg_namespace WHERE nspname = $1)", schema).Scan(&exists); err != nil {
		return err
	}
	if !exists {
		if _, err := tx.Exec(ctx, "CREATE SCHEMA IF NOT EXISTS "+q); err != nil {
			return err
		}
		h.log.Info("postgres: created schema", "schema", schema)
	}
	var hasVersions bool
	if err := tx.QueryRow(ctx, "SELECT to_regclass($1) IS NOT NULL", q+"."+versionTable).Scan(&hasVersions); err != nil {
		return err
	}
	if !hasVersions {
		if _, err := tx.Exec(ctx, fmt.Sprintf(`CREATE TABLE %s.%s (
	store      text PRIMARY KEY,
	version    integer NOT NULL,
	compatible integer NOT NULL,
	migrated   timestamptz NOT NULL DEFAULT now()
)`, q, versionTable)); err != nil {
			return err
		}
	}

	version, compatible := 0, 0
	err := tx.QueryRow(ctx, fmt.Sprintf("SELECT version, compatible FROM %s.%s WHERE store = $1", q, versionTable), l.store).
		Scan(&version, &compatible)
	switch {
	case errors.Is(err, pgx.ErrNoRows):
		// No version: the tables must not exist.
		var found []string
		for _, t := range l.tables {
			var ok bool
			if err := tx.QueryRow(ctx, "SELECT to_regclass($1) IS NOT NULL", q+"."+pgx.Identifier{t.name}.Sanitize()).Scan(&ok); err != nil {
				return err
			}
			if ok {
				found = append(found, t.name)
			}
		}
		if len(found) > 0 {
			return schemaErr(0, 0, "table %s exists, but %s.%s records no version for it: it was not made by this package, or its version row was removed",
				strings.Join(found, " and "), schema, versionTable)
		}
	case isSQLState(err, "42703", "42804", "22P02") || errors.As(err, new(pgx.ScanArgError)):
		// An undefined column, or one of another type.
		return schemaErr(0, 0, "table %s.%s has another layout than this package's version table: %v", schema, versionTable, err)
	case err != nil:
		return err
	case version < 1 || compatible < 1 || compatible > version:
		return schemaErr(version, compatible, "%s.%s records version %d, compatible with %d, which no version of this package writes", schema, versionTable, version, compatible)
	case version == l.current():
		return nil
	case version > l.current() && compatible <= l.current():
		// A newer version that this one may use as it is.
		h.log.Info("postgres: the store's tables are of a newer version, which this one may use", "store", l.store, "schema", schema, "version", version, "supported", l.current())
		return nil
	case version > l.current():
		return schemaErr(version, compatible, "schema version %d, which only code of schema version %d or later may use; this package's is %d: use a newer version of it", version, compatible, l.current())
	}

	// Create (version 0) or migrate to the current version.
	last := migration{}
	for _, m := range l.migrations {
		if m.version <= version {
			continue
		}
		for _, stmt := range m.stmts {
			if _, err := tx.Exec(ctx, fmt.Sprintf(stmt, q)); err != nil {
				return fmt.Errorf("migrating to schema version %d: %w", m.version, err)
			}
		}
		last = m
	}
	if _, err := tx.Exec(ctx, fmt.Sprintf(`INSERT INTO %s.%s (store, version, compatible) VALUES ($1, $2, $3)
ON CONFLICT (store) DO UPDATE SET version = EXCLUDED.version, compatible = EXCLUDED.compatible, migrated = now()`, q, versionTable),
		l.store, last.version, last.compatible); err != nil {
		return err
	}
	if version == 0 {
		h.log.Info("postgres: created the store's tables", "store", l.store, "schema", schema, "version", last.version)
	} else {
		h.log.Info("postgres: migrated the store's tables", "store", l.store, "schema", schema, "from", version, "to", last.version)
	}
	return nil
}

// checkLayout checks that the store's tables have the columns and unique
// keys it relies on.
func checkLayout(ctx context.Context, tx pgx.Tx, schema string, l *layout) error {
	names := make([]string, len(l.tables))
	for i, t := range l.tables {
		names[i] = t.name
	}
	type key struct{ table, name string }
	types := map[key]string{}
	rows, err := tx.Query(ctx, `SELECT c.relname, a.attname, format_type(a.atttypid, a.atttypmod)
FROM pg_attribute a
JOIN pg_class c ON c.oid = a.attrelid
JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE n.nspname = $1 AND c.relname = ANY($2) AND c.relkind IN ('r', 'p') AND a.attnum > 0 AND NOT a.attisdropped`, schema, names)
	if err != nil {
		return err
	}
	for rows.Next() {
		var t, name, typ string
		if err := rows.Scan(&t, &name, &typ); err != nil {
			return err
		}
		types[key{t, name}] = typ
	}
	if err := rows.Err(); err != nil {
		return err
	}
	uniques := map[key]bool{}
	rows, err = tx.Query(ctx, `SELECT c.relname, array_agg(a.attname::text ORDER BY k.ord)
FROM pg_index i
JOIN pg_class c ON c.oid = i.indrelid
JOIN pg_namespace n ON n.oid = c.relnamespace
CROSS JOIN LATERAL unnest(i.indkey::int2[]) WITH ORDINALITY AS k(attnum, ord)
JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = k.attnum
WHERE n.nspname = $1 AND c.relname = ANY($2) AND i.indisunique AND i.indisvalid AND i.indpred IS NULL
GROUP BY i.indexrelid, c.relname`, schema, names)
	if err != nil {
		return err
	}
	for rows.Next() {
		var t string
		var cols []string
		if err := rows.Scan(&t, &cols); err != nil {
			return err
		}
		uniques[key{t, strings.Join(cols, ",")}] = true
	}
	if err := rows.Err(); err != nil {
		return err
	}

	present := map[string]bool{}
	for k := range types {
		present[k.table] = true
	}
	var problems []string
	for _, t := range l.tables {
		if !present[t.name] {
			problems = append(problems, fmt.Sprintf("table %s does not exist", t.name))
			continue
		}
		for _, c := range t.columns {
			switch typ, ok := types[key{t.name, c.name}]; {
			case !ok:
				problems = append(problems, fmt.Sprintf("table %s lacks column %s", t.name, c.name))
			case typ != c.typ:
				problems = append(problems, fmt.Sprintf("column %s.%s is of type %s, not %s", t.name, c.name, typ, c.typ))
			}
		}
		for _, u := range t.unique {
			if !uniques[key{t.name, strings.Join(u, ",")}] {
				problems = append(problems, fmt.Sprintf("table %s has no unique key on (%s)", t.name, strings.Join(u, ", ")))
			}
		}
	}
	if len(problems) == 0 {
		return nil
	}
	var version, compatible int
	tx.QueryRow(ctx, fmt.Sprintf("SELECT version, compatible FROM %s.%s WHERE store = $1", pgx.Identifier{schema}.Sanitize(), versionTable), l.store).
		Scan(&version, &compatible)
	slices.Sort(problems)
	return &SchemaError{Schema: schema, Store: l.store, Version: version, Compatible: compatible, Supported: l.current(),
		Reason: "another layout than this package's: " + strings.Join(problems, "; "), sentinel: l.versionErr}
}

// isSQLState reports whether err is a PostgreSQL error with one of the
// codes.
func isSQLState(err error, codes ...string) bool {
	var pe *pgconn.PgError
	return errors.As(err, &pe) && slices.Contains(codes, pe.Code)
}
