// Package capftest checks implementations of [capf.Store], as
// testing/fstest checks file systems: a store for PostgreSQL, or any
// other engine, runs [TestStore] in its tests, and passes if it keeps the
// contract that package capf documents for Store. A store whose handles
// share their state through the engine, as the handles of several CAPF
// servers on one database do, runs [TestSharedStore] too.
//
// # Where to start
//
// In the store's tests, call [TestStore] with a function that returns a
// new, empty store for each subtest (a new schema or database, or
// emptied tables) and closes it when the subtest ends; for
// [TestSharedStore], two handles opened separately on it. The suite
// checks records kept as opaque bytes (large and binary ones too),
// absent records and deletes, read-modify-write transactions that lose
// no update under concurrency and that a failing function leaves
// unwritten, the issued log with its unique serial numbers, its order
// and its filter by device, log entries written together with their
// record, copies in and out, context cancellation and Close. It then runs
// two [capf.Server]s on the store, each on its own handle, and checks
// what a cluster relies on: one scheduled operation, taken up by sessions
// on both servers at once, yields exactly one certificate, also when a
// session's claim lapses while it waits for its CA.
//
// The suite makes a few hundred store calls, one at a time or eight at
// once; it takes a fraction of a second against a store in memory and
// two against the bbolt store, whose writes wait for the disk. It waits
// for servers and phones without a fixed timeout, within the test's
// deadline. Its failures name the call and the bytes that were wrong.
//
// # Security
//
// A CAPF issues certificates on the strength of what its store says:
// that an operation is pending and unclaimed, that a serial is new. The
// suite checks the guarantees that keep two servers from issuing twice
// for one operation or sending a certificate the log does not hold. It
// cannot check that a store reports its own failures as errors rather
// than as absent records, that what it reported written survives a
// crash, nor that its transactions stay serializable under every
// interleaving the engine allows: test those against the engine itself.
// Passing the suite is necessary, not sufficient.
//
// # Compatibility
//
// Later versions may check more of the contract, never more than it
// says: a store that keeps the contract keeps passing.
package capftest
