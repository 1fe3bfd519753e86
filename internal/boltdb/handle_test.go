package boltdb

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	bolt "go.etcd.io/bbolt"
	berrors "go.etcd.io/bbolt/errors"
)

// testSentinels stand for a store package's errors.
var testSentinels = Sentinels{
	Prefix:  "pkg",
	Locked:  errors.New("pkg: store in use"),
	Version: errors.New("pkg: store schema version not supported"),
	Corrupt: errors.New("pkg: store corrupt"),
	Invalid: errors.New("pkg: invalid argument"),
	Closed:  errors.New("pkg: store closed"),
}

func openHandle(t *testing.T, path string) *Handle {
	t.Helper()
	h, err := OpenHandle(path, 200*time.Millisecond, testSchema, testSentinels)
	require.NoError(t, err)
	return h
}

// requireOpenError checks that err is the store package's sentinel want,
// wrapping kind (if any) and reading "<want>: …" with path in it.
func requireOpenError(t *testing.T, err, want, kind error, path string) {
	t.Helper()
	require.ErrorIs(t, err, want)
	if kind != nil {
		require.ErrorIs(t, err, kind)
	}
	for _, other := range []error{testSentinels.Locked, testSentinels.Version, testSentinels.Corrupt, testSentinels.Invalid, testSentinels.Closed} {
		if other != want {
			require.NotErrorIs(t, err, other)
		}
	}
	require.True(t, strings.HasPrefix(err.Error(), want.Error()+": "), err.Error())
	require.Contains(t, err.Error(), path)
	t.Log(err)
}

func TestOpenHandle(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "x.db")
	h := openHandle(t, path)
	require.NoError(t, h.DB().Update(func(tx *bolt.Tx) error { return tx.Bucket([]byte("a")).Put([]byte("k"), []byte("v")) }))
	require.NoError(t, h.Close())
	require.NoError(t, h.Close(), "closing twice")

	// Reopened, contents kept.
	h = openHandle(t, path)
	done, err := h.Begin(ctx)
	require.NoError(t, err)
	require.NoError(t, h.DB().View(func(tx *bolt.Tx) error {
		require.Equal(t, "v", string(tx.Bucket([]byte("a")).Get([]byte("k"))))
		return nil
	}))
	done()
	require.NoError(t, h.Close())
	_, err = h.Begin(ctx)
	require.Equal(t, testSentinels.Closed, err)
}

func TestOpenHandleErrors(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "x.db")
	h := openHandle(t, path)

	// Locked, under the caller's sentinel.
	start := time.Now()
	_, err := OpenHandle(path, 100*time.Millisecond, testSchema, testSentinels)
	require.Less(t, time.Since(start), 2*time.Second)
	requireOpenError(t, err, testSentinels.Locked, ErrLocked, path)
	require.Contains(t, err.Error(), "gave up after 100ms")
	// A zero timeout is one second.
	start = time.Now()
	_, err = OpenHandle(path, 0, testSchema, testSentinels)
	require.GreaterOrEqual(t, time.Since(start), 900*time.Millisecond)
	requireOpenError(t, err, testSentinels.Locked, ErrLocked, path)
	require.Contains(t, err.Error(), "gave up after 1s")
	require.NoError(t, h.Close())
	require.NoError(t, openHandle(t, path).Close(), "unlocked by Close")

	// A negative timeout is the caller's invalid argument.
	_, err = OpenHandle(path, -time.Nanosecond, testSchema, testSentinels)
	require.ErrorIs(t, err, testSentinels.Invalid)
	require.Equal(t, "pkg: invalid argument: negative BoltOptions.Timeout -1ns", err.Error())

	// A newer schema version, or a file of another schema.
	_, err = OpenHandle(path, time.Second, &Schema{Name: "test store", Version: 1, Buckets: testSchema.Buckets}, testSentinels)
	requireOpenError(t, err, testSentinels.Version, ErrVersion, path)
	_, err = OpenHandle(path, time.Second, &Schema{Name: "test store", Version: 2, Buckets: [][]byte{[]byte("c")}}, testSentinels)
	requireOpenError(t, err, testSentinels.Corrupt, ErrCorrupt, path)
	require.Contains(t, err.Error(), `no "c" bucket`)
	junk := filepath.Join(dir, "junk.db")
	require.NoError(t, os.WriteFile(junk, []byte("hello, world\n"), 0o600))
	_, err = OpenHandle(junk, time.Second, testSchema, testSentinels)
	requireOpenError(t, err, testSentinels.Corrupt, ErrCorrupt, junk)

	// Other errors get the prefix.
	missing := filepath.Join(dir, "no", "such", "dir.db")
	_, err = OpenHandle(missing, time.Second, testSchema, testSentinels)
	require.ErrorIs(t, err, os.ErrNotExist)
	require.True(t, strings.HasPrefix(err.Error(), "pkg: open store: "), err.Error())
	require.Contains(t, err.Error(), missing)
	var e *Error
	require.False(t, errors.As(err, &e))
}

func TestHandleBegin(t *testing.T) {
	ctx := context.Background()
	h := openHandle(t, filepath.Join(t.TempDir(), "x.db"))

	// ctx is checked first.
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	_, err := h.Begin(cctx)
	require.ErrorIs(t, err, context.Canceled)
	dctx, cancel := context.WithDeadline(ctx, time.Now().Add(-time.Second))
	defer cancel()
	_, err = h.Begin(dctx)
	require.ErrorIs(t, err, context.DeadlineExceeded)

	// Calls run at once; Close waits for them.
	done1, err := h.Begin(ctx)
	require.NoError(t, err)
	done2, err := h.Begin(ctx)
	require.NoError(t, err)
	closed := make(chan error)
	go func() { closed <- h.Close() }()
	done1()
	select {
	case err := <-closed:
		t.Fatalf("Close returned %v during a call", err)
	case <-time.After(50 * time.Millisecond):
	}
	require.NoError(t, h.DB().View(func(*bolt.Tx) error { return nil }), "the file is still open")
	done2()
	require.NoError(t, <-closed)

	_, err = h.Begin(ctx)
	require.ErrorIs(t, err, testSentinels.Closed)
	_, err = h.Begin(cctx)
	require.ErrorIs(t, err, context.Canceled, "ctx before closed")
	require.NoError(t, h.Close())
}

func TestHandleWrap(t *testing.T) {
	path := filepath.Join(t.TempDir(), "x.db")
	h := openHandle(t, path)
	defer h.Close()
	require.NoError(t, h.Wrap(nil))
	err := h.Wrap(berrors.ErrTxNotWritable)
	require.Equal(t, "pkg: store "+path+": "+berrors.ErrTxNotWritable.Error(), err.Error())
	require.ErrorIs(t, err, berrors.ErrTxNotWritable)
	err = h.DB().View(func(tx *bolt.Tx) error { return tx.Bucket([]byte("a")).Put([]byte("k"), nil) })
	require.ErrorIs(t, h.Wrap(err), berrors.ErrTxNotWritable)
}
