// Package digesttest checks implementations of [digest.ReplayStore], as
// testing/fstest checks file systems: a store for Redis, a database, or
// any other engine, runs [TestReplayStore] in its tests, and passes if it
// keeps the contract that package digest documents for ReplayStore.
//
// # Where to start
//
// In the store's tests, call [TestReplayStore] with a function that
// returns a new store for each subtest: one that remembers no use, and
// has started by the time it is returned (a [digest.MemoryReplayStore]
// with Start set, a Redis database emptied). A store that several
// servers share calls [TestSharedReplayStore] too, with a function that
// opens two handles on one new store, as two servers would. The suite
// runs in well under a second against a store in memory; its failures
// name the nonce, the count and the answer that was wrong.
//
// # Security
//
// A replay store is what stops a captured request from being accepted
// again. The suite checks that each count of a nonce is accepted once,
// under concurrent use too, within the window the contract sets; that a
// nonce without qop is used once; that nonces issued before the store
// started are refused, to the nanosecond, which is how a store that lost
// its state (a restart without persistence) refuses what it may have
// seen; and that uses are kept past a nonce's expiry. It cannot make a
// store lose its state in an engine-specific way (a restart, a failover):
// test that against the engine itself, for instance by emptying the
// engine in the function given to TestReplayStore while returning the
// store already in use. Passing the suite is necessary, not sufficient.
//
// # Compatibility
//
// Later versions may check more of the contract, never more than it
// says: a store that keeps the contract keeps passing.
package digesttest
