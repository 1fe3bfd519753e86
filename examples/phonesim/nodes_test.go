package main

// Tests of a cluster of several nodes: the SIP side with in-memory shared
// state (no PostgreSQL or Redis needed), the configuration's node list,
// the throw-away servers, and a whole -nodes 3 run on PostgreSQL and
// Redis.

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"os"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/ucsec/ucsec/digest"
	"github.com/ucsec/ucsec/internal/dbtest"
	"github.com/ucsec/ucsec/secstatus"
)

// startNodesTest starts n registrars for ids as the nodes of one cluster:
// one directory, one digest nonce key and one replay store (in memory,
// standing in for Redis).
func startNodesTest(t *testing.T, k *sipTestPKI, n int, ids ...sipIdentity) []*registrar {
	t.Helper()
	dir := &directory{}
	secret := []byte(randomHex(32))
	replay := &digest.MemoryReplayStore{Start: time.Now()}
	var regs []*registrar
	for i := range n {
		cfg := registrarConfigFor(k.clusterPKI(), ids, "phonesim.test", nil)
		cfg.Secrets, cfg.Replay, cfg.Directory, cfg.Node = [][]byte{secret}, replay, dir, strconv.Itoa(i+1)
		r, err := startRegistrar(testContext(t), cfg)
		require.NoError(t, err)
		t.Cleanup(func() { r.Close() })
		regs = append(regs, r)
	}
	return regs
}

// withNodes returns id with the SIP servers of regs (TLS or TCP, as id
// registers), in that order, as its configuration would list them.
func withNodes(id sipIdentity, regs ...*registrar) sipIdentity {
	id.SIPServers = nil
	for _, r := range regs {
		ap := r.server().TCP
		if id.Secure {
			ap = r.server().TLS
		}
		id.SIPServers = append(id.SIPServers, ap.String())
	}
	return id
}

func TestSIPAcrossNodes(t *testing.T) {
	k := newSIPTestPKI(t)
	a, b := k.identity(t, 1, true), k.identity(t, 2, true)
	regs := startNodesTest(t, k, 2, a, b)
	r1, r2 := regs[0], regs[1]
	// a starts at node 1, b at node 2, each with the other as its next.
	pa := newRegisteredPhone(t, r1, withNodes(a, r1, r2))
	pb := newRegisteredPhone(t, r2, withNodes(b, r2, r1))
	_, ok := r1.registered(b.Device)
	require.False(t, ok, "b registered with node 2 only")
	ctx := testContext(t)

	// A call each way across the nodes: both controllers pass the SDES
	// offer and answer on, and both phones show the lock.
	for _, c := range [][2]*sipPhone{{pa, pb}, {pb, pa}} {
		rep, err := placeCall(ctx, c[0], c[1])
		require.NoError(t, err)
		assert.True(t, rep.SRTP)
		assert.Equal(t, secstatus.Encrypted, rep.Level)
		assert.Equal(t, secstatus.IconLock, rep.CallerIcon)
		assert.Equal(t, secstatus.IconLock, rep.CalleeIcon)
		assert.True(t, rep.mediaOK())
	}
	assert.Zero(t, r1.activeCalls())
	assert.Zero(t, r2.activeCalls())

	// a's REGISTER, on a nonce of node 1, replayed to node 2: refused by
	// the shared replay store.
	require.NoError(t, negReplayedRegister(ctx, r2, pa))
	assert.EqualValues(t, 1, r2.refusals().Replay)
	assert.Zero(t, r1.refusals().Replay)

	// Node 2 dies: b notices at its keepalive and registers with node 1;
	// a stays where it is.
	r2.kill()
	moved, err := pb.keepalive(ctx)
	require.NoError(t, err)
	assert.True(t, moved)
	assert.Equal(t, r1.server().TLS, pb.registrar())
	moved, err = pa.keepalive(ctx)
	require.NoError(t, err)
	assert.False(t, moved)
	_, ok = r1.registered(b.Device)
	assert.True(t, ok)
	rep, err := placeCall(ctx, pb, pa)
	require.NoError(t, err)
	assert.Equal(t, secstatus.IconLock, rep.CallerIcon)
	assert.Equal(t, secstatus.IconLock, rep.CalleeIcon)

	// With no node left, the keepalive fails.
	r1.kill()
	_, err = pa.keepalive(ctx)
	assert.ErrorContains(t, err, "no other took it")
}

// A killed registrar is gone at once: its phone's next request fails
// without waiting for a timer, and the registration is forgotten.
func TestSIPKillClosesConnections(t *testing.T) {
	k := newSIPTestPKI(t)
	a := k.identity(t, 1, true)
	regs := startNodesTest(t, k, 1, a)
	p := newRegisteredPhone(t, regs[0], a)
	regs[0].kill()
	start := time.Now()
	err := p.register(testContext(t))
	require.Error(t, err)
	assert.Less(t, time.Since(start), 5*time.Second)
	_, ok := regs[0].registered(a.Device)
	assert.False(t, ok)
}

func TestConfigNodes(t *testing.T) {
	nodes := []configNode{
		{Name: "127.0.0.1", SIPPort: 5060, SIPSPort: 5061, TVSPort: 2445, CAPFPort: 3804},
		{Name: "127.0.0.1", SIPPort: 6060, SIPSPort: 6061, TVSPort: 3445, CAPFPort: 4804},
		{Name: "127.0.0.1", SIPPort: 7060, SIPSPort: 7061, TVSPort: 4445, CAPFPort: 5804},
	}
	data, err := fullConfig(configData{Device: "SEP001122334455", Extension: "1001", SecurityMode: securityModeEncrypted,
		Nodes: nodes, LinePort: 5061, AuthName: "1001", Password: "pw", CAPFAuthMode: capfAuthModeString, Load: phoneLoad})
	require.NoError(t, err)
	assert.Equal(t, 3, strings.Count(string(data), "<capf>"))
	s, err := parseFullConfig(data, "SEP001122334455")
	require.NoError(t, err)
	assert.Equal(t, []string{"127.0.0.1:5061", "127.0.0.1:6061", "127.0.0.1:7061"}, s.SIPServers)
	assert.Equal(t, "127.0.0.1:5061", s.SIPServer)
	assert.Equal(t, []string{"127.0.0.1:2445", "127.0.0.1:3445", "127.0.0.1:4445"}, s.TVSServers)

	// The phone goes by the members' priorities, not their order in the
	// file.
	swapped := bytes.Replace(data, []byte(`priority="0"`), []byte(`priority="9"`), 1)
	s, err = parseFullConfig(swapped, "SEP001122334455")
	require.NoError(t, err)
	assert.Equal(t, []string{"127.0.0.1:6061", "127.0.0.1:7061", "127.0.0.1:5061"}, s.SIPServers)
}

func TestListNodes(t *testing.T) {
	assert.Equal(t, "1", listNodes([]int{0}))
	assert.Equal(t, "1 and 3", listNodes([]int{0, 2}))
	assert.Equal(t, "1, 2 and 3", listNodes([]int{0, 1, 2}))
}

func TestPairFailedOver(t *testing.T) {
	node := map[int]int{0: 0, 1: 1, 2: 0, 3: 0, 4: 0}
	// 2 and 4 failed over to node 0: each calls a phone of another node,
	// 1, the only one there.
	groups := pairFailedOver([]int{2, 4}, []int{0, 1, 3}, func(i int) int { return node[i] })
	assert.Equal(t, map[int][]int{1: {2, 4}}, groups)
	// No phone elsewhere: any other.
	groups = pairFailedOver([]int{2}, []int{0, 3}, func(i int) int { return node[i] })
	assert.Equal(t, map[int][]int{0: {2}}, groups)
	assert.Empty(t, pairFailedOver([]int{2}, nil, func(i int) int { return node[i] }))
}

// Without the engines a cluster of several nodes cannot start, and says
// how to install them.
func TestStartBackendsNotInstalled(t *testing.T) {
	dir := t.TempDir()
	b, err := startBackends(t.Context(), "", "", engines{
		Postgres: &dbtest.PostgresOptions{BinDir: dir},
		Redis:    &dbtest.RedisOptions{Binary: dir + "/redis-server"},
	})
	b.stop()
	require.ErrorIs(t, err, dbtest.ErrNotInstalled)
	var missing *missingEnginesError
	require.ErrorAs(t, err, &missing)
	assert.Len(t, missing.missing, 2)
	assert.Contains(t, err.Error(), "apt-get install postgresql redis-server")
	assert.Contains(t, err.Error(), "-postgres URL and -redis URL")

	// A server given by URL is not started.
	b, err = startBackends(t.Context(), "postgres://given", "", engines{Redis: &dbtest.RedisOptions{Binary: dir + "/redis-server"}})
	b.stop()
	require.ErrorAs(t, err, &missing)
	assert.Len(t, missing.missing, 1)
	assert.Contains(t, err.Error(), "apt-get install redis-server")
	assert.NotContains(t, err.Error(), "PostgreSQL is not installed")
}

// TestRunNodes runs a cluster of three nodes on throw-away PostgreSQL and
// Redis, as `go run ./examples/phonesim -nodes 3 -json` does, with three
// phones (one per node; the third calls the first, and after node 3 is
// killed fails over to node 1 and calls the second). It skips without
// PostgreSQL and Redis, and fails without them where CI is true.
func TestRunNodes(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	b, err := startBackends(ctx, "", "", engines{})
	t.Cleanup(b.stop)
	if errors.Is(err, dbtest.ErrNotInstalled) {
		if ci, _ := strconv.ParseBool(os.Getenv("CI")); !ci {
			t.Skip(err)
		}
	}
	require.NoError(t, err)

	var stdout, stderr bytes.Buffer
	code := run(ctx, []string{"-phones", "3", "-nodes", "3", "-postgres", b.Postgres, "-redis", b.Redis, "-json"}, &stdout, &stderr)
	var rep report
	if err := json.Unmarshal(stdout.Bytes(), &rep); err != nil {
		t.Fatalf("exit %d, output not JSON: %v\n%s\n%s", code, err, stdout.String(), stderr.String())
	}
	if code != exitOK || !rep.OK {
		t.Fatalf("exit %d, verdict %q\n%s\n%s", code, rep.Verdict, stdout.String(), stderr.String())
	}
	assert.Equal(t, 3, rep.Nodes)
	assert.Contains(t, rep.Verdict, "on 3 nodes")
	require.Len(t, rep.Phones, 3)
	for i, p := range rep.Phones {
		if !p.OK || !p.Secure || p.Config != "encrypted" || p.ITL != "P1 P4" || !p.Registered || p.Calls == 0 ||
			p.Icon != "lock" || p.Sent != p.Calls*callPackets || p.Received != p.Calls*callPackets ||
			!strings.HasPrefix(p.Media, "AEAD_AES_256_GCM") {
			t.Errorf("phone %+v", p)
		}
		assert.Equal(t, i+1, p.Node, p.Phone)
	}
	// Node 3's phone failed over to node 1, its next, and called again.
	assert.Zero(t, rep.Phones[0].FailedOverTo)
	assert.Zero(t, rep.Phones[1].FailedOverTo)
	assert.Equal(t, 1, rep.Phones[2].FailedOverTo)
	assert.Equal(t, "→1001 →1002", rep.Phones[2].Call)

	negative := []string{"rollover predicted by the planner for 3 phones", "tampered configuration", "wrong authentication string", "rogue CAPF", "replayed REGISTER", "SIP trunk", "non-secure phone"}
	cluster := []struct {
		name  string
		nodes []int
	}{
		{"calls between phones on different nodes (1→2, 3→1) completed with the lock", []int{1, 2, 3}},
		{"REGISTER captured on node 1 and replayed on node 2 refused", []int{1, 2}},
		{"CAPF operation scheduled on node 1 completed by enrolment at node 3", []int{1, 3}},
		{"TVS entry added on node 3 answered by nodes 1, 2 and 3", []int{1, 2, 3}},
		{"node 3 killed: its phones failed over to node 1, registered again and called with the lock", []int{3, 1}},
	}
	require.Len(t, rep.Checks, len(negative)+len(cluster))
	for i, c := range rep.Checks {
		assert.True(t, c.OK, "check %+v", c)
		if i < len(negative) {
			assert.Contains(t, c.Name, negative[i])
			assert.Nil(t, c.Nodes)
			continue
		}
		want := cluster[i-len(negative)]
		assert.Equal(t, want.name, c.Name)
		assert.Equal(t, want.nodes, c.Nodes)
	}

	// In the JSON, each check is an object with name and ok.
	var raw struct {
		Checks []map[string]any `json:"checks"`
	}
	require.NoError(t, json.Unmarshal(stdout.Bytes(), &raw))
	var names []string
	for _, c := range raw.Checks {
		assert.Equal(t, true, c["ok"], c["name"])
		name, _ := c["name"].(string)
		names = append(names, name)
	}
	for _, want := range cluster {
		assert.True(t, slices.Contains(names, want.name), want.name)
	}
	assert.Contains(t, stderr.String(), "killing node 3")
}
