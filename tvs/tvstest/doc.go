// Package tvstest checks implementations of [tvs.Store], as
// testing/fstest checks file systems: a store for PostgreSQL, or any
// other engine, runs [TestStore] in its tests, and passes if it keeps the
// contract that package tvs documents for Store.
//
// # Where to start
//
// In the store's tests, call [TestStore] with a function that returns a
// new, empty store for each subtest (emptying a table, say) and closes
// it when the subtest ends. A store that several servers share (in a
// database) calls [TestSharedStore] too, with a function that opens two
// handles on one new store, as two servers would. The suite runs in well under a second
// against a store in memory; its failures name the call and the bytes
// that were wrong.
//
// # Security
//
// A TVS vouches for what its store holds, and answers a phone "not
// trusted" only when the store reports a certificate absent: the suite
// checks that a store gives back exactly what was put, never reports a
// record absent while it is only being replaced, and reports absent keys
// with [tvs.ErrNotFound] and nothing else. It cannot check that a store
// reports its own failures as errors rather than as absent keys, nor
// that what it reported written survives a crash: test those against the
// engine itself. Passing the suite is necessary, not sufficient.
//
// # Compatibility
//
// Later versions may check more of the contract, never more than it
// says: a store that keeps the contract keeps passing.
package tvstest
