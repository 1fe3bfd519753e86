// Package dbtest starts and stops throw-away PostgreSQL and Redis servers:
// a private instance of each engine in a temporary directory, on a free
// loopback port and a Unix socket, with a database, user and password made
// for the caller. The tests of the store backends use it, and so does
// examples/phonesim when it runs a cluster without given URLs.
//
// Start with [StartPostgres] and [StartRedis], which need no
// *testing.T and return an error, and stop the instance with Stop. In a
// test, [NewPostgres] and [NewRedis] do the same and stop the instance
// when the test ends; they skip the test when the engine is not installed
// ([ErrNotInstalled]), and fail it instead where the environment variable
// CI is true, because CI installs the engines (Debian's postgresql and
// redis-server packages).
//
// For fault tests an instance can be shut down (an outage: Shutdown), be
// killed with SIGKILL (a crash: Kill), and be started again on the same
// data directory, port and socket (Start, Restart). A restarted Redis has
// lost its data: it runs without persistence.
//
// # Engines
//
// PostgreSQL comes from the directory that `pg_config --bindir` names, or
// else the highest version in /usr/lib/postgresql/*/bin (Debian), or else
// the PATH. initdb and the server refuse to run as root: when the process
// runs as root, they run as the postgres user (which Debian's package
// creates), and the instance's directory belongs to that user. The server
// runs as a child of this process, not through pg_ctl, so that it can be
// signalled directly and dies with this process.
//
// Redis is redis-server from the PATH (Debian's /usr/bin/redis-server),
// run with `save ""` and `appendonly no`.
//
// Both servers get the parent-death signal SIGKILL on Linux: when the
// process that started them ends, even without calling Stop (a test
// binary that panics or times out), they end too.
//
// # Security
//
// The instances are for tests: they listen on 127.0.0.1 only, and their
// passwords (random unless given) appear in the URLs, in the instance's
// directory (mode 0700) and in the Redis configuration file in it.
package dbtest
