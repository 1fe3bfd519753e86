package postgres

import (
	"context"
	"crypto"
	"crypto/x509"
	"fmt"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/ucsec/ucsec/capf"
	"github.com/ucsec/ucsec/ctl"
	"github.com/ucsec/ucsec/internal/testpki"
	"github.com/ucsec/ucsec/tvs"
)

// roundTrips counts the queries and batches sent on a pool's
// connections: each is one round trip (a batch's statements go
// together), but for a statement's first preparation on a connection.
type roundTrips struct{ queries, batches atomic.Int64 }

func (r *roundTrips) TraceQueryStart(ctx context.Context, _ *pgx.Conn, _ pgx.TraceQueryStartData) context.Context {
	r.queries.Add(1)
	return ctx
}
func (r *roundTrips) TraceQueryEnd(context.Context, *pgx.Conn, pgx.TraceQueryEndData) {}
func (r *roundTrips) TraceBatchStart(ctx context.Context, _ *pgx.Conn, _ pgx.TraceBatchStartData) context.Context {
	r.batches.Add(1)
	return ctx
}
func (r *roundTrips) TraceBatchQuery(context.Context, *pgx.Conn, pgx.TraceBatchQueryData) {}
func (r *roundTrips) TraceBatchEnd(context.Context, *pgx.Conn, pgx.TraceBatchEndData)     {}

func (r *roundTrips) total() int64 { return r.queries.Load() + r.batches.Load() }

// tracedPool returns a pool on url whose round trips rt counts.
func tracedPool(t testing.TB, url string, rt *roundTrips) *pgxpool.Pool {
	t.Helper()
	cfg, err := pgxpool.ParseConfig(url)
	if err != nil {
		t.Fatal(err)
	}
	cfg.ConnConfig.Tracer = rt
	pool, err := pgxpool.NewWithConfig(testContext(t), cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close)
	return pool
}

// TestSizing measures what the package documentation states: the store
// calls and round trips of an enrolment and of a TVS lookup, and the
// bytes a device record, a log entry and a TVS entry take in the
// database.
func TestSizing(t *testing.T) {
	pg := sharedPostgres(t, false)
	ctx := testContext(t)
	var rt roundTrips
	schema := newSchema()
	st, err := OpenCAPFStore(ctx, "", &Options{Pool: tracedPool(t, pg.URL(), &rt), Schema: schema})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	counted := &countingStore{Store: st}
	caKey := testpki.Key(t, testpki.EC256)
	ca := testpki.SelfSigned(t, testpki.CA("pgstore sizing CAPF"), caKey)
	addr := serve(t, newServer(counted, ca, caKey))
	key := testpki.Key(t, testpki.RSA2048)

	const n = 20
	for i := range n {
		dev := fmt.Sprintf("SEP%012X", i)
		if err := capf.ScheduleOperation(ctx, st, dev, capf.Schedule{Operation: capf.OpInstall, Key: capf.RSA2048}, time.Now()); err != nil {
			t.Fatal(err)
		}
	}
	enroll := func(i int) {
		c := &capf.Client{Device: fmt.Sprintf("SEP%012X", i), CAPFCertificates: []*x509.Certificate{ca},
			GenerateKey: func(capf.KeySpec) (crypto.Signer, error) { return key, nil }}
		if _, err := c.Enroll(ctx, addr); err != nil {
			t.Fatal(err)
		}
	}
	enroll(0) // prepares the statements on a connection
	counted.gets.Store(0)
	counted.updates.Store(0)
	counted.records.Store(0)
	rt0 := rt.total()
	for i := 1; i < n; i++ {
		enroll(i)
	}
	per := func(v int64) string { return strconv.FormatFloat(float64(v)/float64(n-1), 'f', 1, 64) }
	t.Logf("per enrolment (install, scheduled ahead): %s Get, %s Update, %s RecordIssued; %s round trips",
		per(counted.gets.Load()), per(counted.updates.Load()), per(counted.records.Load()), per(rt.total()-rt0))

	q := pgx.Identifier{schema}.Sanitize()
	avg := func(table string) int {
		rows := querySQL(t, pg.URL(), "SELECT avg(octet_length(data))::int FROM "+q+"."+table)
		n, err := strconv.Atoi(rows[0])
		if err != nil {
			t.Fatal(rows, err)
		}
		return n
	}
	// perRow fills a copy of table with 10000 rows whose data has the
	// length of its rows', and returns the bytes it takes per row, with
	// its indexes.
	perRow := func(table, columns, values string) (data, total int) {
		data = avg(table)
		execSQL(t, pg.URL(),
			fmt.Sprintf("CREATE TABLE %s.sizing_%s (LIKE %s.%s INCLUDING ALL)", q, table, q, table),
			fmt.Sprintf("INSERT INTO %s.sizing_%s (%s) SELECT %s FROM generate_series(1, 10000) AS i", q, table, columns,
				strings.ReplaceAll(values, "DATA", fmt.Sprintf("substr(decode(repeat(md5(i::text), %d), 'hex'), 1, %d)", data/16+1, data))),
			fmt.Sprintf("VACUUM ANALYZE %s.sizing_%s", q, table))
		rows := querySQL(t, pg.URL(), fmt.Sprintf("SELECT pg_total_relation_size('%s.sizing_%s') / 10000", q, table))
		total, _ = strconv.Atoi(rows[0])
		return data, total
	}
	data, total := perRow("ucsec_capf_devices", "device, data", "'SEP' || lpad(to_hex(i), 12, '0'), DATA")
	t.Logf("device record (RSA-2048 LSC installed): %d bytes of data, %d bytes a row with its index", data, total)
	data, total = perRow("ucsec_capf_issued", "serial, device, data", "md5(i::text), 'SEP' || lpad(to_hex(i), 12, '0'), DATA")
	t.Logf("issued log entry (RSA-2048 LSC): %d bytes of data, %d bytes a row with its indexes", data, total)

	var trt roundTrips
	v, err := OpenTVSStore(ctx, "", &Options{Pool: tracedPool(t, pg.URL(), &trt), Schema: schema})
	if err != nil {
		t.Fatal(err)
	}
	defer v.Close()
	const entries = 200
	var sums [][32]byte
	for i := range entries {
		e := &tvs.Entry{Certificate: testpki.Issue(t, testpki.Server(fmt.Sprintf("tvs-%d", i)), ca, caKey.Public(), caKey), Roles: []ctl.Role{ctl.RoleCCM}}
		if err := tvs.Put(ctx, v, e); err != nil {
			t.Fatal(err)
		}
		sums = append(sums, e.Sum())
	}
	tvs.Lookup(ctx, v, sums[0])
	rt0 = trt.total()
	for _, s := range sums {
		if _, err := tvs.Lookup(ctx, v, s); err != nil {
			t.Fatal(err)
		}
	}
	t.Logf("TVS lookup: %s round trips", strconv.FormatFloat(float64(trt.total()-rt0)/entries, 'f', 1, 64))
	data, total = perRow("ucsec_tvs_records", "cert_sha256, data", "sha256(int4send(i)), DATA")
	t.Logf("TVS entry (EC P-256 certificate): %d bytes of data, %d bytes a row with its index", data, total)
}
