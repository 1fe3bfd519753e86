package redis_test

import (
	"context"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/ucsec/ucsec/digest"
	"github.com/ucsec/ucsec/digest/digesttest"
	"github.com/ucsec/ucsec/stores/redis"
)

// startCluster starts redis-server as a Redis Cluster of one node that
// serves every slot, and returns its address. A one-node cluster checks
// what matters to the store: a script whose keys are in different slots
// fails (CROSSSLOT) there as on a cluster of many.
func startCluster(t *testing.T) string {
	t.Helper()
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		if _, err2 := os.Stat("/usr/bin/redis-server"); err2 == nil {
			bin, err = "/usr/bin/redis-server", nil
		}
	}
	if err != nil {
		if ci, _ := strconv.ParseBool(os.Getenv("CI")); ci {
			t.Fatal(err)
		}
		t.Skip("redis-server is not installed:", err)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	_, port, _ := net.SplitHostPort(addr)
	dir := t.TempDir()
	cmd := exec.Command(bin, "--port", port, "--bind", "127.0.0.1", "--cluster-enabled", "yes",
		"--cluster-config-file", filepath.Join(dir, "nodes.conf"), "--dir", dir,
		"--save", "", "--appendonly", "no", "--logfile", filepath.Join(dir, "redis.log"))
	// The parent-death signal, so that the server ends with the test
	// binary; Linux sends it when the starting thread ends, so that
	// thread stays locked until the server has exited.
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	started, done := make(chan error, 1), make(chan struct{})
	go func() {
		runtime.LockOSThread()
		defer close(done)
		if err := cmd.Start(); err != nil {
			started <- err
			return
		}
		started <- nil
		cmd.Wait()
	}()
	if err := <-started; err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cmd.Process.Kill()
		<-done
		if t.Failed() {
			b, _ := os.ReadFile(filepath.Join(dir, "redis.log"))
			t.Logf("cluster node log:\n%s", b)
		}
	})

	c := goredis.NewClient(&goredis.Options{Addr: addr})
	defer c.Close()
	ctx := context.Background()
	wait := func(what string, ok func() bool) {
		t.Helper()
		for deadline := time.Now().Add(30 * time.Second); !ok(); time.Sleep(20 * time.Millisecond) {
			if time.Now().After(deadline) {
				t.Fatalf("the cluster node: %s", what)
			}
		}
	}
	wait("no answer", func() bool { return c.Ping(ctx).Err() == nil })
	if err := c.Do(ctx, "CLUSTER", "ADDSLOTSRANGE", "0", "16383").Err(); err != nil {
		t.Fatal(err)
	}
	wait("cluster_state not ok", func() bool {
		info, err := c.ClusterInfo(ctx).Result()
		return err == nil && strings.Contains(info, "cluster_state:ok")
	})
	return addr
}

func newClusterClient(t testing.TB, addr string) *goredis.ClusterClient {
	t.Helper()
	c := goredis.NewClusterClient(&goredis.ClusterOptions{Addrs: []string{addr}, ContextTimeoutEnabled: true})
	t.Cleanup(func() { c.Close() })
	return c
}

// TestCluster runs both suites on a Redis Cluster client with several
// shards: each call's keys share a slot.
func TestCluster(t *testing.T) {
	addr := startCluster(t)
	// The node refuses a script over keys of two slots: the test would
	// catch a store that mixes them.
	c := newClusterClient(t, addr)
	if err := c.Eval(context.Background(), "return 1", []string{"ucsec:digest:{0}:start", "ucsec:digest:{1}:start"}).Err(); err == nil || !strings.Contains(err.Error(), "CROSSSLOT") {
		t.Fatalf("a script over two slots: %v, want CROSSSLOT", err)
	}
	opts := func(c goredis.UniversalClient, prefix string) redis.Options {
		return redis.Options{Client: c, KeyPrefix: prefix, Shards: 16}
	}
	t.Run("One", func(t *testing.T) {
		digesttest.TestReplayStore(t, func(t *testing.T) digest.ReplayStore {
			s := open(t, nil, opts(c, newPrefix()))
			started(t, s)
			return s
		})
	})
	t.Run("Shared", func(t *testing.T) {
		digesttest.TestSharedReplayStore(t, func(t *testing.T) (a, b digest.ReplayStore) {
			prefix := newPrefix()
			s1 := open(t, nil, opts(newClusterClient(t, addr), prefix))
			s2 := open(t, nil, opts(newClusterClient(t, addr), prefix))
			started(t, s1)
			started(t, s2)
			return s1, s2
		})
	})
}
