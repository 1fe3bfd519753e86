package boltdb

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	bolt "go.etcd.io/bbolt"
)

var testSchema = &Schema{Name: "test store", Version: 2, Buckets: [][]byte{[]byte("a"), []byte("b")}}

// rawBolt runs fn in a write transaction on the bbolt file itself.
func rawBolt(t *testing.T, path string, fn func(tx *bolt.Tx) error) {
	t.Helper()
	db, err := bolt.Open(path, 0o600, &bolt.Options{Timeout: time.Second})
	require.NoError(t, err)
	require.NoError(t, db.Update(fn))
	require.NoError(t, db.Close())
}

func TestOpenCreate(t *testing.T) {
	path := filepath.Join(t.TempDir(), "x.db")
	db, err := Open(path, time.Second, testSchema)
	require.NoError(t, err)
	fi, err := os.Stat(path)
	require.NoError(t, err)
	require.Equal(t, os.FileMode(0o600), fi.Mode().Perm())
	require.False(t, db.NoSync)
	require.NoError(t, db.View(func(tx *bolt.Tx) error {
		require.Equal(t, "2", string(tx.Bucket([]byte("meta")).Get([]byte("version"))))
		require.NotNil(t, tx.Bucket([]byte("a")))
		require.NotNil(t, tx.Bucket([]byte("b")))
		return nil
	}))
	require.NoError(t, db.Update(func(tx *bolt.Tx) error { return tx.Bucket([]byte("a")).Put([]byte("k"), []byte("v")) }))
	require.NoError(t, db.Close())

	// Reopened as it is, contents kept; an older version is accepted.
	rawBolt(t, path, func(tx *bolt.Tx) error { return tx.Bucket([]byte("meta")).Put([]byte("version"), []byte("1")) })
	db, err = Open(path, time.Second, testSchema)
	require.NoError(t, err)
	require.NoError(t, db.View(func(tx *bolt.Tx) error {
		require.Equal(t, "1", string(tx.Bucket([]byte("meta")).Get([]byte("version"))))
		require.Equal(t, "v", string(tx.Bucket([]byte("a")).Get([]byte("k"))))
		return nil
	}))
	require.NoError(t, db.Close())

	// An empty bbolt file (no buckets) is set up.
	empty := filepath.Join(t.TempDir(), "empty.db")
	rawBolt(t, empty, func(*bolt.Tx) error { return nil })
	db, err = Open(empty, time.Second, testSchema)
	require.NoError(t, err)
	require.NoError(t, db.Close())

	_, err = Open(filepath.Join(t.TempDir(), "no", "such", "dir.db"), time.Second, testSchema)
	require.ErrorIs(t, err, os.ErrNotExist)
	var e *Error
	require.False(t, errors.As(err, &e))

	_, err = Open(path, 0, testSchema)
	require.Error(t, err)
	_, err = Open(path, time.Second, &Schema{Name: "x"})
	require.Error(t, err)
}

func TestOpenLocked(t *testing.T) {
	path := filepath.Join(t.TempDir(), "x.db")
	db, err := Open(path, time.Second, testSchema)
	require.NoError(t, err)
	start := time.Now()
	_, err = Open(path, 100*time.Millisecond, testSchema)
	require.ErrorIs(t, err, ErrLocked)
	require.Less(t, time.Since(start), 2*time.Second)
	require.Contains(t, err.Error(), path)
	t.Log(err)
	require.NoError(t, db.Close())
	db, err = Open(path, 100*time.Millisecond, testSchema)
	require.NoError(t, err)
	require.NoError(t, db.Close())
}

func TestOpenRefused(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "x.db")
	db, err := Open(path, time.Second, testSchema)
	require.NoError(t, err)
	require.NoError(t, db.Close())
	good, err := os.ReadFile(path)
	require.NoError(t, err)

	for _, tc := range []struct {
		name string
		edit func(tx *bolt.Tx) error
		want error
	}{
		{"newer", setVersion("3"), ErrVersion},
		{"much newer", setVersion("4000000000"), ErrVersion},
		{"too big", setVersion("40000000000"), ErrCorrupt},
		{"zero", setVersion("0"), ErrCorrupt},
		{"negative", setVersion("-1"), ErrCorrupt},
		{"not a number", setVersion("two"), ErrCorrupt},
		{"empty", setVersion(""), ErrCorrupt},
		{"missing", func(tx *bolt.Tx) error { return tx.Bucket([]byte("meta")).Delete([]byte("version")) }, ErrCorrupt},
		{"missing bucket", func(tx *bolt.Tx) error { return tx.DeleteBucket([]byte("b")) }, ErrCorrupt},
		{"no meta", func(tx *bolt.Tx) error { return tx.DeleteBucket([]byte("meta")) }, ErrCorrupt},
	} {
		t.Run(tc.name, func(t *testing.T) {
			require.NoError(t, os.WriteFile(path, good, 0o600))
			rawBolt(t, path, tc.edit)
			after, err := os.ReadFile(path)
			require.NoError(t, err)
			_, err = Open(path, time.Second, testSchema)
			require.ErrorIs(t, err, tc.want)
			var e *Error
			require.ErrorAs(t, err, &e)
			require.Equal(t, tc.want, e.Kind)
			require.Contains(t, err.Error(), path)
			t.Log(err)
			// The file was left alone and is not locked.
			now, err := os.ReadFile(path)
			require.NoError(t, err)
			require.Equal(t, after, now)
			rawBolt(t, path, func(*bolt.Tx) error { return nil })
		})
	}

	t.Run("other bbolt file", func(t *testing.T) {
		other := filepath.Join(dir, "other.db")
		rawBolt(t, other, func(tx *bolt.Tx) error {
			_, err := tx.CreateBucket([]byte("widgets"))
			return err
		})
		_, err := Open(other, time.Second, testSchema)
		require.ErrorIs(t, err, ErrCorrupt)
		require.Contains(t, err.Error(), "not a test store")
		t.Log(err)
	})

	t.Run("not bbolt", func(t *testing.T) {
		for i, data := range [][]byte{
			[]byte("hello, world\n"),
			[]byte("-----BEGIN CERTIFICATE-----\n"),
			bytes.Repeat([]byte{0x5a}, 16384),
		} {
			junk := filepath.Join(dir, fmt.Sprintf("junk%d.db", i))
			require.NoError(t, os.WriteFile(junk, data, 0o600))
			_, err := Open(junk, time.Second, testSchema)
			require.ErrorIs(t, err, ErrCorrupt)
			t.Log(err)
			now, err := os.ReadFile(junk)
			require.NoError(t, err)
			require.Equal(t, data, now)
		}
	})
}

func setVersion(v string) func(tx *bolt.Tx) error {
	return func(tx *bolt.Tx) error { return tx.Bucket([]byte("meta")).Put([]byte("version"), []byte(v)) }
}

func TestErrorWith(t *testing.T) {
	mine := errors.New("pkg: store corrupt")
	other := errors.New("pkg: other")
	e := &Error{ErrCorrupt, "/x.db: no \"a\" bucket"}
	require.Equal(t, "boltdb: file corrupt: /x.db: no \"a\" bucket", e.Error())
	err := fmt.Errorf("wrapped: %w", e.With(mine))
	require.Equal(t, "wrapped: pkg: store corrupt: /x.db: no \"a\" bucket", err.Error())
	require.ErrorIs(t, err, mine)
	require.ErrorIs(t, err, ErrCorrupt)
	require.NotErrorIs(t, err, ErrLocked)
	require.NotErrorIs(t, err, other)
	var got *Error
	require.ErrorAs(t, err, &got)
	require.Same(t, e, got)
}
