// Package postgres keeps the stores of a CAPF ([capf.Store]) and of a
// TVS ([tvs.Store]) in PostgreSQL, so that the CAPF and TVS servers of a
// cluster, each on its own node, share one state: a phone may enrol with
// any CAPF and ask any TVS, and the guarantees of package capf (one
// operation, at most one certificate; no certificate leaves a server
// unless the issued log holds it) hold across the nodes.
//
// It is a module of its own (github.com/ucsec/ucsec/stores/postgres), so
// that the core module does not depend on the PostgreSQL driver, pgx.
//
// # Where to start
//
// [OpenCAPFStore] opens the CAPF store; set it as the Store of every
// [capf.Server] of the cluster. [OpenTVSStore] opens the TVS store, for
// every [tvs.Server], and for [tvs.Put] and [tvs.LoadTrustList] on the
// node that manages the entries. Both take a connection string and
// [Options], and create their tables on first use:
//
//	st, err := postgres.OpenCAPFStore(ctx, "postgres://capf@db.example:5432/uc?sslmode=verify-full", nil)
//	if err != nil {
//		return err // ErrInvalid, ErrConnect, or a *SchemaError
//	}
//	defer st.Close()
//	srv := &capf.Server{Store: st, Issuer: ca, TLSConfig: cfg}
//
// The tests of this package run the conformance suites of package
// capf/capftest and tvs/tvstest against a real PostgreSQL, both on one
// handle and on two handles as two nodes would.
//
// # Connection string, TLS and password
//
// The connection string is what pgx and libpq take: a URL
// (postgres://user:password@host:port/database?sslmode=verify-full) or
// key=value pairs (host=db.example user=capf dbname=uc
// sslmode=verify-full). Missing parts come from the PG* environment
// variables (PGHOST, PGUSER, PGDATABASE, ...), as with libpq. TLS is set
// there too: sslmode (use verify-full across any network: it checks the
// server's certificate and name), sslrootcert, and sslcert with sslkey
// for a client certificate. The password may be in the string, in
// PGPASSWORD, or in a password file (PGPASSFILE, by default ~/.pgpass),
// which keeps it out of command lines and configuration files. The pool
// takes its settings from the string as well: pool_max_conns (16 by
// default, or the number of CPUs if larger), pool_max_conn_idle_time,
// and connect_timeout, which bounds each connection attempt.
//
// The store never logs the connection string. An error of an open names
// the host, port, user and database, never the password; a connection
// string that does not parse is quoted with its password masked (by pgx,
// which masks it in every form it recognizes). A pool of your own
// ([Options.Pool]) serves where the driver needs more: a tracer, a
// BeforeConnect hook that fetches a short-lived password (a cloud IAM
// token), or one pool for both stores of a node.
//
// # Schema and versions
//
// The tables are in the schema [Options.Schema] (namespace), or else in
// the connection's current schema (the first of its search_path that
// exists, usually public). Several clusters can share one database, each
// in a schema of its own. [CAPFSchemaVersion] and [TVSSchemaVersion]
// describe the tables:
//
//	ucsec_schema        store (capf or tvs), version, compatible, migrated
//	ucsec_capf_devices  device (primary key), data
//	ucsec_capf_issued   seq (identity: the log's order), serial (unique), device, data
//	ucsec_tvs_records   cert_sha256 (primary key, 32 bytes), data
//
// The data columns hold the records that packages capf and tvs encode
// and version; the store never reads them, so they change without a
// change of the tables.
//
// ucsec_schema records, for each kind of store, the schema version of its
// tables and the oldest version of this package's schema that may use
// them as they are. An open takes a transaction-scoped advisory lock on
// the schema, then, in that transaction, creates the tables or migrates
// older ones to the version this package writes, and checks that they
// have the columns and unique keys the store relies on: nodes that start
// together wait for each other and find the tables made once, and a
// migration is committed whole or not at all. Tables that a newer
// version of this package made and that this one may not use, tables it
// did not make, or tables changed by hand make the open fail with one
// error, a [*SchemaError] that wraps [ErrSchema] and the store package's
// ErrStoreVersion, and that says what is wrong. Creating the tables (and
// the schema, if it does not exist) needs the CREATE privilege; once they
// exist, a role with USAGE on the schema and SELECT, INSERT, UPDATE and
// DELETE on the tables runs the store.
//
// PostgreSQL 12 or later is needed; the tests run PostgreSQL 15.
//
// # Guarantees
//
// The stores keep the contracts of [capf.Store] and [tvs.Store]:
//
//   - [CAPFStore.Update] is an optimistic transaction, with neither a
//     lock nor a transaction held while fn runs: it reads the device's
//     row and its version (xmin, the transaction that wrote it), calls
//     fn, then writes with one statement, a transaction of its own, that
//     checks the version: UPDATE or DELETE … WHERE xmin is the version
//     read, or for a device that had no row, INSERT … ON CONFLICT DO
//     NOTHING. If another write of the row, from any node, committed
//     between the read and the write, the write changes nothing (one
//     that waited for the other's row lock finds the row changed, as
//     PostgreSQL checks the condition again on the newest version of the
//     row at READ COMMITTED); the call then reads the row again and runs
//     fn again on it. So concurrent updates of one device take effect one
//     after another, each on the record the one before left, and none is
//     lost; updates of different devices run in parallel. A write that
//     found its row changed, a serialization failure or a deadlock
//     (SQLSTATE 40001, 40P01; which only a server whose default
//     isolation level is stricter, or a trigger, would raise here) runs
//     the call again, with fn, up to 10 times in all with a growing pause
//     (2ms to 200ms), and then fails with an error that says so.
//   - [CAPFStore.RecordIssued] reads as Update does, and whether the
//     serial is logged already; then one statement inserts the log entry
//     and writes the device's row, with the same check of its version (a
//     data-modifying WITH: the entry is inserted only if the row was
//     written), so that both are committed or neither. The unique key on
//     the serial makes a second entry for a serial, from any node, fail
//     with [capf.ErrDuplicateSerial], and the statement with it; the
//     identity column orders the log. Its sequence is not cached per
//     session, so an entry recorded after another returned comes after
//     it.
//   - A write is durable once PostgreSQL reports its commit, with
//     synchronous_commit on (its default). With a standby that may take
//     over, make the commit wait for it (synchronous_standby_names): a
//     failover to an asynchronous standby may lose the last commits, and
//     with them the log entry of a certificate already sent.
//   - A call whose context is done does nothing; a context that ends
//     during a call ends the call, a wait for another write's row lock
//     included: pgx closes the connection and sends PostgreSQL a request
//     to cancel the statement, and PostgreSQL rolls back what was not
//     committed. A write whose statement was sent may or may not have
//     been committed; it is not run again.
//   - Close closes the pool, unless it is the caller's, once the calls
//     under way have finished; later calls return an error wrapping
//     ErrStoreClosed.
//
// # When PostgreSQL is down
//
// A cluster fails closed. Every call returns an error, at once when the
// server refuses connections, or when the call's context or
// connect_timeout ends when it does not answer; never an absent record.
// A CAPF session whose store call fails ends with a failure (END_SESSION
// reason 7) and sends no certificate whose log entry was not committed;
// a TVS gives a phone no answer, which the phone treats as an unreachable
// TVS, never as "not trusted". A session cut short after its certificate
// was recorded leaves the operation claimed; the next session for the
// device ends it once the claim has lapsed, as package capf describes.
//
// Once PostgreSQL is back, the same processes serve again, without a
// restart: the pool opens new connections, checks one that has been idle
// for more than a second before it hands it out, and a call that finds
// its connection dead before its write statement (its commit) was sent
// runs again on another.
// The tests stop PostgreSQL during enrolments against a running server
// and check that the server serves every enrolment once it is back, and
// kill one of two CAPF nodes (SIGKILL) during enrolments and check that
// every certificate a phone received is in the log, once, and that the
// other node serves on.
//
// # Sizing
//
// Round trips, each one query or one pipelined batch of statements:
//
//   - CAPF: Get, List and Issued take one. Update and RecordIssued take
//     two, each one statement: read; then write (with the log entry),
//     which commits. An Update of a device without a record that fn
//     leaves without one takes one. A write that finds its row changed by
//     another takes two more. An install scheduled ahead costs the server
//     one Get, two Updates and one RecordIssued: 7 round trips, 7
//     statements and 3 commits.
//   - TVS: Get (a phone's query, through [tvs.Lookup]), Put, Delete and
//     List take one.
//
// Space, measured on PostgreSQL 15 with 10000 rows: a device record with
// an RSA-2048 LSC installed is about 780 bytes of data, 950 bytes with
// the row's overhead and its index entry; an issued log entry of an
// RSA-2048 LSC about 710 bytes of data, 970 with its indexes; a TVS entry
// of an EC P-256 certificate about 460 bytes of data, 630 with its index.
// Each enrolment updates its device's row three times: autovacuum
// reclaims the old versions.
//
// Speed, measured on a 2-core virtual machine that runs the phones, the
// server and PostgreSQL 15 at once, in three runs each (go test -bench
// . with this package's benchmarks):
//
//   - Enrolments (BenchmarkEnroll: 64 phones at once, RSA-2048 keys made
//     ahead, the server in a process of its own and scheduling each new
//     device first, as in package capf's benchmark): 505 to 540 a second
//     with the bbolt store, at 2.7 to 2.9ms of the server's CPU time
//     each; 370 to 410 with this store and fsync on, at 3.8 to 4.2ms of
//     CPU time of the server (3.0 to 3.2ms) and PostgreSQL (0.8 to
//     1.0ms) together, 1.4 to 1.5 times bbolt's; 405 to 450 with fsync
//     off, at 3.4 to 3.8ms. Most of the server's time is the RSA
//     signatures of the handshake and the certificate.
//   - Store calls (BenchmarkCAPFStore, 64 goroutines): PostgreSQL spends
//     about 10 to 15µs of CPU time on a Get, 60 to 75µs (fsync off) to
//     120 to 135µs (on) on an Update and 110 to 140µs (off) to 175 to
//     210µs (on) on a RecordIssued.
//   - TVS lookups (BenchmarkLookup, tvs.Lookup from 64 goroutines, 1000
//     entries): about 35000 a second, at 26µs of PostgreSQL's CPU time
//     each, against 220000 a second from a memory store.
//
// The store's pool has 16 connections unless the connection string says
// otherwise: a call holds its connection across its round trips, and
// fn's run between them, so with the database across a network, or a
// disk that is slow to flush, more connections keep more calls, and more
// commits sharing one flush, under way. Connections are opened as calls
// need them; with many nodes, keep their sum below the server's
// max_connections (100 by default), or give both stores of a node one
// pool ([Options.Pool]).
//
// # Security
//
// Whoever can write the tables controls the CAPF: a device record
// schedules operations and holds their authentication strings, and the
// log says which certificates were issued. Give the servers' role the
// privileges above and no more, keep the database on a trusted network
// or behind TLS (sslmode=verify-full), and restrict who may read it.
// The store trusts PostgreSQL to keep serial numbers unique and to give
// each written row version a new xmin; a table changed by hand that lost
// its unique key is refused at open.
//
// # Compatibility
//
// The tables are versioned as described above: a later version of this
// package migrates them on open, and records whether older versions may
// still use them, so that nodes can be upgraded one at a time when they
// may. pgx v5 is the driver; its pool ([pgxpool.Pool]) is the only type
// of it in this package's API.
package postgres
