package redis

import (
	"context"
	"errors"
	"log/slog"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/ucsec/ucsec/digest"
)

// fakeClient answers every script with a canned reply, and counts the
// calls; any other method panics (the embedded interface is nil).
type fakeClient struct {
	goredis.UniversalClient
	evalSha, eval func(ctx context.Context) *goredis.Cmd
	calls         int
}

func (c *fakeClient) EvalSha(ctx context.Context, _ string, _ []string, _ ...any) *goredis.Cmd {
	c.calls++
	return c.evalSha(ctx)
}

func (c *fakeClient) Eval(ctx context.Context, _ string, _ []string, _ ...any) *goredis.Cmd {
	c.calls++
	if c.eval == nil {
		return c.evalSha(ctx)
	}
	return c.eval(ctx)
}

func reply(v any) func(ctx context.Context) *goredis.Cmd {
	return func(ctx context.Context) *goredis.Cmd {
		cmd := goredis.NewCmd(ctx)
		cmd.SetVal(v)
		return cmd
	}
}

func replyErr(err error) func(ctx context.Context) *goredis.Cmd {
	return func(ctx context.Context) *goredis.Cmd {
		cmd := goredis.NewCmd(ctx)
		cmd.SetErr(err)
		return cmd
	}
}

// redisError is an error as Redis returns it.
type redisError string

func (e redisError) Error() string { return string(e) }
func (redisError) RedisError()     {}

func fakeStore(c *fakeClient) *ReplayStore {
	return &ReplayStore{client: c, shards: []string{"t:{0}:"}, skew: time.Millisecond, log: slog.New(slog.DiscardHandler)}
}

// TestReplies: Use reports true only for the reply of a recorded first
// use; any other reply, or an error, is false with an error.
func TestReplies(t *testing.T) {
	ctx := context.Background()
	issued := time.Now()
	for _, tc := range []struct {
		name          string
		evalSha, eval func(ctx context.Context) *goredis.Cmd
		ok            bool
		err           error // nil: any error; ok false and errNone: no error
	}{
		{name: "accepted", evalSha: reply(int64(1)), ok: true},
		{name: "accepted-start-moved", evalSha: reply(int64(3)), ok: true},
		{name: "refused", evalSha: reply(int64(0)), err: errNone},
		{name: "refused-start-moved", evalSha: reply(int64(2)), err: errNone},
		{name: "string-1", evalSha: reply("1"), err: ErrReply},
		{name: "int-4", evalSha: reply(int64(4)), err: ErrReply},
		{name: "int-minus-1", evalSha: reply(int64(-1)), err: ErrReply},
		{name: "true", evalSha: reply(true), err: ErrReply},
		{name: "array", evalSha: reply([]any{int64(1)}), err: ErrReply},
		{name: "nil", evalSha: reply(nil), err: ErrReply},
		{name: "redis-nil", evalSha: replyErr(goredis.Nil), err: goredis.Nil},
		{name: "error", evalSha: replyErr(redisError("ERR ucsec: malformed replay entry"))},
		{name: "oom", evalSha: replyErr(redisError("OOM command not allowed when used memory > 'maxmemory'."))},
		{name: "readonly", evalSha: replyErr(redisError("READONLY You can't write against a read only replica."))},
		{name: "noscript-then-1", evalSha: replyErr(redisError("NOSCRIPT No matching script.")), eval: reply(int64(1)), ok: true},
		{name: "noscript-twice", evalSha: replyErr(redisError("NOSCRIPT No matching script.")), eval: replyErr(redisError("NOSCRIPT No matching script."))},
		{name: "noscript-then-error", evalSha: replyErr(redisError("NOSCRIPT No matching script.")), eval: replyErr(redisError("ERR boom"))},
		{name: "timeout", evalSha: replyErr(context.DeadlineExceeded), err: context.DeadlineExceeded},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := &fakeClient{evalSha: tc.evalSha, eval: tc.eval}
			ok, err := fakeStore(c).Use(ctx, digest.NonceID{1}, 1, issued, issued.Add(time.Minute))
			switch {
			case ok != tc.ok:
				t.Errorf("Use = %v, %v; want %v", ok, err, tc.ok)
			case tc.ok || tc.err == errNone:
				if err != nil {
					t.Errorf("Use = %v, %v; want no error", ok, err)
				}
			case err == nil:
				t.Errorf("Use = false, nil; want an error")
			case tc.err != nil && !errors.Is(err, tc.err):
				t.Errorf("Use error %v, want %v", err, tc.err)
			}
			if c.calls > 2 {
				t.Errorf("%d calls to Redis for one use", c.calls)
			}
		})
	}
}

var errNone = errors.New("no error")

// TestStartReplies: Start fails on any reply but three integers.
func TestStartReplies(t *testing.T) {
	for _, v := range []any{int64(1), []any{int64(1), int64(2)}, []any{int64(1), "2", int64(0)}, []any{int64(1), int64(1e9), int64(0)}, []any{int64(1), int64(-1), int64(0)}} {
		c := &fakeClient{evalSha: reply(v)}
		if st, err := fakeStore(c).Start(context.Background()); !errors.Is(err, ErrReply) {
			t.Errorf("reply %v: %v, %v; want ErrReply", v, st, err)
		}
	}
	c := &fakeClient{evalSha: reply([]any{int64(1800000000), int64(5), int64(0)})}
	if st, err := fakeStore(c).Start(context.Background()); err != nil || !st.Equal(time.Unix(1800000000, 5)) {
		t.Errorf("Start = %v, %v", st, err)
	}
}

// TestDoneContext: a use whose context is done does not reach Redis.
func TestDoneContext(t *testing.T) {
	c := &fakeClient{evalSha: reply(int64(1))}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	issued := time.Now()
	if ok, err := fakeStore(c).Use(ctx, digest.NonceID{1}, 1, issued, issued.Add(time.Minute)); ok || !errors.Is(err, context.Canceled) || c.calls != 0 {
		t.Errorf("Use with a canceled context: %v, %v, %d calls", ok, err, c.calls)
	}
}

// TestZeroStore: a ReplayStore that OpenReplayStore did not make fails
// closed rather than panicking.
func TestZeroStore(t *testing.T) {
	var s ReplayStore
	issued := time.Now()
	if ok, err := s.Use(context.Background(), digest.NonceID{}, 1, issued, issued.Add(time.Minute)); ok || err == nil {
		t.Errorf("Use on a zero ReplayStore: %v, %v", ok, err)
	}
	if _, err := s.Start(context.Background()); err == nil {
		t.Error("Start on a zero ReplayStore: no error")
	}
}
