package postgres

import (
	"context"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"
	"github.com/ucsec/ucsec/tvs"
)

// TVSSchemaVersion is the schema version of the TVS store's table that
// this package creates and uses.
//
// Version 1:
//
//	ucsec_tvs_records  cert_sha256 bytea PRIMARY KEY,  -- 32 bytes
//	                   data        bytea NOT NULL      -- the record
const TVSSchemaVersion = 1

var tvsLayout = &layout{
	store: "tvs",
	tables: []table{
		{name: "ucsec_tvs_records",
			columns: []column{{"cert_sha256", "bytea"}, {"data", "bytea"}},
			unique:  [][]string{{"cert_sha256"}}},
	},
	migrations: []migration{{
		version: 1, compatible: 1,
		stmts: []string{
			`CREATE TABLE %[1]s.ucsec_tvs_records (
	cert_sha256 bytea PRIMARY KEY CHECK (octet_length(cert_sha256) = 32),
	data        bytea NOT NULL
)`,
		},
	}},
	versionErr: tvs.ErrStoreVersion,
	closedErr:  tvs.ErrStoreClosed,
}

// A TVSStore is a [tvs.Store] in PostgreSQL, which the TVS servers of a
// cluster share: see the package documentation. It is safe for concurrent
// use.
type TVSStore struct {
	h                   *handle
	get, put, del, list string
}

var _ tvs.Store = (*TVSStore)(nil)

// OpenTVSStore opens the TVS store in the PostgreSQL database that
// connString names, as [OpenCAPFStore] opens the CAPF store: it connects,
// creates or migrates the store's table and checks it, and fails with an
// error wrapping [ErrInvalid], [ErrConnect], or [ErrSchema] and
// [tvs.ErrStoreVersion] (a [*SchemaError]).
func OpenTVSStore(ctx context.Context, connString string, opts *Options) (*TVSStore, error) {
	h, err := open(ctx, connString, opts, tvsLayout)
	if err != nil {
		return nil, err
	}
	t := pgx.Identifier{h.schema}.Sanitize() + ".ucsec_tvs_records"
	return &TVSStore{h: h,
		get:  "SELECT data FROM " + t + " WHERE cert_sha256 = $1",
		put:  "INSERT INTO " + t + " (cert_sha256, data) VALUES ($1, $2) ON CONFLICT (cert_sha256) DO UPDATE SET data = EXCLUDED.data",
		del:  "DELETE FROM " + t + " WHERE cert_sha256 = $1",
		list: "SELECT cert_sha256, data FROM " + t,
	}, nil
}

// Get implements [tvs.Store]: one query, what a phone's request costs.
func (s *TVSStore) Get(ctx context.Context, sum [32]byte) ([]byte, error) {
	var data []byte
	found := false
	err := s.h.read(ctx, "tvs: get", func(ctx context.Context, conn *pgx.Conn) error {
		err := conn.QueryRow(ctx, s.get, sum[:]).Scan(&data)
		found = err == nil
		if errors.Is(err, pgx.ErrNoRows) {
			return nil
		}
		return err
	})
	switch {
	case err != nil:
		return nil, err
	case !found:
		return nil, fmt.Errorf("%w: SHA-256 %x", tvs.ErrNotFound, sum)
	case data == nil:
		data = []byte{}
	}
	return data, nil
}

// Put implements [tvs.Store]: one statement, which inserts or replaces.
func (s *TVSStore) Put(ctx context.Context, sum [32]byte, record []byte) error {
	if record == nil {
		record = []byte{} // NOT NULL
	}
	return s.h.run(ctx, "tvs: put", func(ctx context.Context, conn *pgx.Conn) (bool, error) {
		_, err := conn.Exec(ctx, s.put, sum[:], record)
		return true, err
	})
}

// Delete implements [tvs.Store]: one statement.
func (s *TVSStore) Delete(ctx context.Context, sum [32]byte) error {
	deleted := false
	err := s.h.run(ctx, "tvs: delete", func(ctx context.Context, conn *pgx.Conn) (bool, error) {
		ct, err := conn.Exec(ctx, s.del, sum[:])
		deleted = err == nil && ct.RowsAffected() > 0
		return true, err
	})
	switch {
	case err != nil:
		return err
	case !deleted:
		return fmt.Errorf("%w: SHA-256 %x", tvs.ErrNotFound, sum)
	}
	return nil
}

// List implements [tvs.Store]: one query.
func (s *TVSStore) List(ctx context.Context) (map[[32]byte][]byte, error) {
	var m map[[32]byte][]byte
	err := s.h.read(ctx, "tvs: list", func(ctx context.Context, conn *pgx.Conn) error {
		m = make(map[[32]byte][]byte)
		rows, err := conn.Query(ctx, s.list)
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			var key, data []byte
			if err := rows.Scan(&key, &data); err != nil {
				return err
			}
			if len(key) != 32 {
				return fmt.Errorf("%w: a key of %d bytes", tvs.ErrCorrupt, len(key))
			}
			if data == nil {
				data = []byte{}
			}
			m[[32]byte(key)] = data
		}
		return rows.Err()
	})
	if err != nil {
		return nil, err
	}
	return m, nil
}

// Close implements [tvs.Store]. It closes the pool, unless it is the
// caller's (Options.Pool), once calls under way have finished.
func (s *TVSStore) Close() error {
	s.h.close()
	return nil
}
