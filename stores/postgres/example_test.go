package postgres_test

import (
	"context"
	"crypto/tls"
	"log"
	"os"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/ucsec/ucsec/capf"
	"github.com/ucsec/ucsec/ctl"
	"github.com/ucsec/ucsec/stores/postgres"
	"github.com/ucsec/ucsec/tvs"
)

// A CAPF server of a cluster on the shared database. Every node runs the
// same: the first to start creates the tables.
func ExampleOpenCAPFStore() {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	// The password comes from PGPASSWORD or ~/.pgpass; TLS checks the
	// database server's certificate and name.
	st, err := postgres.OpenCAPFStore(ctx, "postgres://capf@db.example:5432/uc?sslmode=verify-full&sslrootcert=/etc/uc/db-ca.pem", nil)
	if err != nil {
		log.Fatal(err) // wraps postgres.ErrInvalid, ErrConnect, or ErrSchema and capf.ErrStoreVersion
	}
	defer st.Close()

	var ca *capf.LocalCA // the cluster's CA
	var cert tls.Certificate
	srv := &capf.Server{Store: st, Issuer: ca, TLSConfig: &tls.Config{Certificates: []tls.Certificate{cert}}}
	_ = srv // srv.Serve(ctx, listener)
}

// The TVS servers of a cluster share one table of entries; one node loads
// them.
func ExampleOpenTVSStore() {
	ctx := context.Background()
	st, err := postgres.OpenTVSStore(ctx, os.Getenv("DATABASE_URL"), &postgres.Options{Schema: "cluster1"})
	if err != nil {
		log.Fatal(err)
	}
	defer st.Close()
	data, err := os.ReadFile("ITLFile.tlv")
	if err != nil {
		log.Fatal(err)
	}
	itl, err := ctl.Parse(data)
	if err != nil {
		log.Fatal(err)
	}
	if _, err := tvs.LoadTrustList(ctx, st, itl, 0); err != nil {
		log.Fatal(err)
	}
	srv := &tvs.Server{Store: st}
	_ = srv // with its TLSConfig: srv.Serve(ctx, listener)
}

// Both stores of a node on one pool of the caller's, which the stores do
// not close.
func ExampleOptions_pool() {
	ctx := context.Background()
	pool, err := pgxpool.New(ctx, "host=db.example user=uc dbname=uc sslmode=verify-full pool_max_conns=16")
	if err != nil {
		log.Fatal(err)
	}
	defer pool.Close()
	opts := &postgres.Options{Pool: pool}
	capfStore, err := postgres.OpenCAPFStore(ctx, "", opts)
	if err != nil {
		log.Fatal(err)
	}
	defer capfStore.Close()
	tvsStore, err := postgres.OpenTVSStore(ctx, "", opts)
	if err != nil {
		log.Fatal(err)
	}
	defer tvsStore.Close()
}
