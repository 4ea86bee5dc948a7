package gateway

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ordo-pipeline/ordo/internal/cli/clitest"
	"github.com/ordo-pipeline/ordo/internal/pgtest"
	"github.com/ordo-pipeline/ordo/schema"
)

// check503 fails unless resp is a 503 with Retry-After and a message that
// is not a database's.
func check503(t *testing.T, resp response) {
	t.Helper()
	if resp.status != http.StatusServiceUnavailable {
		t.Fatalf("status %d (%s), want 503", resp.status, resp.body)
	}
	if s, err := strconv.Atoi(resp.header.Get("Retry-After")); err != nil || s < 1 {
		t.Errorf("Retry-After %q, want a number of seconds", resp.header.Get("Retry-After"))
	}
	msg := resp.errorMessage(t)
	for _, leak := range []string{"SQLSTATE", "dial", "connect", "127.0.0.1", "shard_", "pgx"} {
		if strings.Contains(msg, leak) {
			t.Errorf("503 message %q shows database detail %q", msg, leak)
		}
	}
}

// TestNodeDown stops node 2: requests for its users get 503 with
// Retry-After in bounded time, node 1's users keep getting 200, and once
// node 2 is back its users get 200 again.
func TestNodeDown(t *testing.T) {
	t.Parallel()
	c := newCluster(t)
	b := setup(t, c, func(cfg *Config) { cfg.WriteTimeout = 2 * time.Second })
	snap := c.placement(t)
	up, down := keyOnNode(t, snap, "up", "n1"), keyOnNode(t, snap, "down", "n2")
	track := func(user string) string { return fmt.Sprintf(`{"userId": %q, "event": "e"}`, user) }
	for _, u := range []string{up, down} {
		if resp := b.post(t, "/v1/track", track(u)); resp.status != 200 {
			t.Fatalf("before the stop, %s: status %d (%s)", u, resp.status, resp.body)
		}
	}

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := c.nodes[1].Stop(ctx); err != nil {
		t.Fatal(err)
	}

	// Both at once: node 2's failure must not hold up node 1.
	var wg sync.WaitGroup
	var downResp response
	var downTook time.Duration
	wg.Go(func() {
		began := time.Now()
		downResp = b.post(t, "/v1/track", track(down))
		downTook = time.Since(began)
	})
	for range 5 {
		began := time.Now()
		if resp := b.post(t, "/v1/track", track(up)); resp.status != 200 {
			t.Errorf("node 1 user while node 2 is down: status %d (%s), want 200", resp.status, resp.body)
		}
		if took := time.Since(began); took > time.Second {
			t.Errorf("node 1 user while node 2 is down took %v", took)
		}
	}
	// A batch that needs both nodes fails as a whole.
	resp := b.post(t, "/v1/batch", `{"batch": [{"type": "track", "userId": "`+up+`", "event": "both"}, {"type": "track", "userId": "`+down+`", "event": "both"}]}`)
	check503(t, resp)
	wg.Wait()
	check503(t, downResp)
	if downTook > 2*time.Second+3*time.Second {
		t.Errorf("503 took %v, want it within the write timeout and a little", downTook)
	}

	if err := c.nodes[1].Start(ctx); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 20*time.Second, "node 2 users to get 200 again", func() bool {
		return b.post(t, "/v1/track", track(down)).status == 200
	})
	rows := c.rows(t, b.prefix+"-web")
	for _, r := range rows {
		if r.key == down && r.event["event"] == "both" {
			t.Errorf("the 503'd batch stored its event on the down node")
		}
	}
}

// TestSlowNode holds a lock on a node-1 shard table so that writes to it
// hang: its requests get 503 once the write timeout passes, nothing of
// theirs is stored afterwards, and node 2's users keep getting 200.
func TestSlowNode(t *testing.T) {
	t.Parallel()
	c := newCluster(t)
	b := setup(t, c, func(cfg *Config) { cfg.WriteTimeout = time.Second })
	snap := c.placement(t)
	slow, fast := keyOnNode(t, snap, "slow", "n1"), keyOnNode(t, snap, "fast", "n2")
	slowShard := snap.Lookup(slow).Shard

	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	conn := pgtest.Connect(t, c.nodeURL("n1"))
	tx, err := conn.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tx.Exec(ctx, "LOCK TABLE "+schema.Table(slowShard).Sanitize()+" IN ACCESS EXCLUSIVE MODE"); err != nil {
		t.Fatal(err)
	}

	var wg sync.WaitGroup
	for i := range 4 {
		wg.Go(func() {
			began := time.Now()
			check503(t, b.post(t, "/v1/track", fmt.Sprintf(`{"userId": %q, "event": "slow", "messageId": "slow-%d"}`, slow, i)))
			if took := time.Since(began); took > 4*time.Second {
				t.Errorf("503 took %v with a 1s write timeout", took)
			}
		})
	}
	time.Sleep(100 * time.Millisecond)
	for range 5 {
		if resp := b.post(t, "/v1/track", fmt.Sprintf(`{"userId": %q, "event": "fast"}`, fast)); resp.status != 200 {
			t.Errorf("node 2 user while node 1 hangs: status %d (%s)", resp.status, resp.body)
		}
	}
	wg.Wait()
	if err := tx.Rollback(ctx); err != nil {
		t.Fatal(err)
	}
	if resp := b.post(t, "/v1/track", fmt.Sprintf(`{"userId": %q, "event": "after"}`, slow)); resp.status != 200 {
		t.Fatalf("after the lock is gone: status %d (%s)", resp.status, resp.body)
	}
	for _, r := range c.rows(t, b.prefix+"-web") {
		if r.event["event"] == "slow" {
			t.Errorf("request answered 503 stored its event %s", r.messageID)
		}
	}
}

// TestFenceRetry fences a node-1 shard by hand, as a move does, while
// requests for it and for other node-1 shards are in flight; then points
// the catalog to node 2. The fenced shard's requests are retried on node 2
// within the same request and answered 200; the others are answered 200
// from node 1 all along.
func TestFenceRetry(t *testing.T) {
	t.Parallel()
	c := newCluster(t)
	b := setup(t, c, func(cfg *Config) { cfg.WriteTimeout = 10 * time.Second })
	snap := c.placement(t)
	moving := keyOnNode(t, snap, "moving", "n1")
	p := snap.Lookup(moving)
	var staying string
	for i := range 1000 {
		k := fmt.Sprintf("staying-%d", i)
		if q := snap.Lookup(k); q.Node == "n1" && q.Shard != p.Shard {
			staying = k
			break
		}
	}
	if resp := b.post(t, "/v1/track", fmt.Sprintf(`{"userId": %q, "event": "before"}`, moving)); resp.status != 200 {
		t.Fatalf("before the fence: status %d (%s)", resp.status, resp.body)
	}

	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	n1 := pgtest.Connect(t, c.nodeURL("n1"))
	tx, err := n1.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := schema.Fence(ctx, tx, p.Shard); err != nil {
		t.Fatal(err)
	}
	if err := tx.Commit(ctx); err != nil {
		t.Fatal(err)
	}

	// Requests for the fenced shard now wait for the catalog to flip;
	// requests for other shards of node 1 go through meanwhile.
	var wg sync.WaitGroup
	results := make([]response, 6)
	for i := range results {
		wg.Go(func() {
			user := moving
			if i%2 == 1 {
				user = staying
			}
			results[i] = b.post(t, "/v1/track", fmt.Sprintf(`{"userId": %q, "event": "during", "messageId": "during-%d"}`, user, i))
		})
	}
	time.Sleep(300 * time.Millisecond)

	n2 := pgtest.Connect(t, c.nodeURL("n2"))
	if err := schema.Create(ctx, n2, p.Shard, p.Epoch+1); err != nil {
		t.Fatal(err)
	}
	cat := pgtest.Connect(t, c.catalogURL)
	if _, err := cat.Exec(ctx, `UPDATE ordo_catalog.shards SET node = 'n2', epoch = epoch + 1, state = 'moving' WHERE shard = $1`, p.Shard); err != nil {
		t.Fatal(err)
	}
	wg.Wait()
	for i, resp := range results {
		if resp.status != 200 {
			t.Errorf("request %d during the move: status %d (%s), want 200", i, resp.status, resp.body)
		}
	}
	if resp := b.post(t, "/v1/track", fmt.Sprintf(`{"userId": %q, "event": "after"}`, moving)); resp.status != 200 {
		t.Fatalf("after the move: status %d (%s)", resp.status, resp.body)
	}

	counts := map[string]int{}
	for _, r := range c.rows(t, b.prefix+"-web") {
		if r.key != moving {
			continue
		}
		ev := r.event["event"].(string)
		counts[ev]++
		wantNode, wantEpoch := "n2", p.Epoch+1
		if ev == "before" {
			wantNode, wantEpoch = "n1", p.Epoch
		}
		if r.node != wantNode || r.shard != p.Shard || r.epoch != wantEpoch {
			t.Errorf("%q event stored on %s shard %d epoch %d, want %s shard %d epoch %d", ev, r.node, r.shard, r.epoch, wantNode, p.Shard, wantEpoch)
		}
	}
	// Two destinations each: 1 before, 3 during, 1 after.
	if counts["before"] != 2 || counts["during"] != 6 || counts["after"] != 2 {
		t.Errorf("stored events of the moved key %v, want before:2 during:6 after:2", counts)
	}
	metrics := b.request(t, http.MethodGet, "/metrics", "", nil).body
	if !strings.Contains(metrics, "ordo_store_stale_retries_total ") || strings.Contains(metrics, "ordo_store_stale_retries_total 0\n") {
		t.Errorf("/metrics shows no stale retry")
	}
}

// noCatalogConfig is the config of a gateway whose catalog does not
// answer: nothing listens on its port.
func noCatalogConfig(t *testing.T) Config {
	t.Helper()
	port, err := pgtest.FreePort()
	if err != nil {
		t.Fatal(err)
	}
	return Config{
		CatalogURL:   fmt.Sprintf("postgres://postgres@127.0.0.1:%d/postgres?connect_timeout=1", port),
		BatchMaxRows: 100, BatchMaxWait: time.Millisecond, WriteTimeout: time.Second,
	}
}

// TestReadyWithoutCatalog starts a gateway whose catalog does not answer:
// /health is 200, /ready and writes are 503.
func TestReadyWithoutCatalog(t *testing.T) {
	t.Parallel()
	cfg := noCatalogConfig(t)
	g, err := New(cfg, testWorkspace(t, "nocatalog"), Options{MapPoll: 100 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	b := &testBundle{g: g, key: "nocatalog-key"}
	b.srv = newServer(t, g)
	if resp := b.request(t, http.MethodGet, "/health", "", nil); resp.status != 200 {
		t.Errorf("/health: status %d, want 200", resp.status)
	}
	if resp := b.request(t, http.MethodGet, "/ready", "", nil); resp.status != 503 {
		t.Errorf("/ready: status %d, want 503", resp.status)
	}
	check503(t, b.post(t, "/v1/track", `{"userId": "u", "event": "e"}`))
}

// TestClientHangUpIsNotAStoreFailure checks that a request whose client
// went away before its events were stored is not logged as the store
// failing, while a store failure is.
func TestClientHangUpIsNotAStoreFailure(t *testing.T) {
	t.Parallel()
	cfg := noCatalogConfig(t)
	var logs clitest.Buffer
	g, err := New(cfg, testWorkspace(t, "hangup"), Options{Logger: slog.New(slog.NewTextHandler(&logs, nil))})
	if err != nil {
		t.Fatal(err)
	}
	defer g.Close()
	h := g.Handler()
	post := func(ctx context.Context) int {
		req := httptest.NewRequestWithContext(ctx, http.MethodPost, "/v1/track", strings.NewReader(`{"userId": "u", "event": "e"}`))
		req.SetBasicAuth("hangup-key", "")
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		return rec.Code
	}
	const warning = "store could not take"

	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	if code := post(ctx); code != http.StatusServiceUnavailable {
		t.Errorf("request of a client that hung up: status %d, want 503", code)
	}
	if strings.Contains(logs.String(), warning) {
		t.Errorf("a client hanging up was logged as a store failure:\n%s", logs.String())
	}
	if code := post(t.Context()); code != http.StatusServiceUnavailable {
		t.Errorf("request without a catalog: status %d, want 503", code)
	}
	if !strings.Contains(logs.String(), warning) {
		t.Errorf("a store failure was not logged:\n%s", logs.String())
	}
}
