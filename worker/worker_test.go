package worker_test

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/ordo-pipeline/ordo/migrations"
)

// workspaceJSON is a workspace with one source "web" sending to dests, each
// a webhook to {{id}} with the given batch size and retry object.
func workspaceJSON(dests ...string) string {
	ids := make([]string, len(dests))
	for i, d := range dests {
		ids[i] = fmt.Sprintf("%q", strings.SplitN(d, "|", 2)[0])
	}
	var ds []string
	for _, d := range dests {
		parts := strings.SplitN(d, "|", 3)
		ds = append(ds, fmt.Sprintf(`{"id": %q, "type": "webhook", "config": {"url": "{{%s}}", "maxBatchSize": %s, "timeout": "5s"}, "retry": %s}`,
			parts[0], parts[0], parts[1], parts[2]))
	}
	return fmt.Sprintf(`{"sources": [{"id": "web", "writeKey": "wk", "destinations": [%s]}], "destinations": [%s]}`,
		strings.Join(ids, ", "), strings.Join(ds, ", "))
}

const fastRetry = `{"initialBackoff": "10ms", "maxBackoff": "100ms", "maxAttempts": 1000, "maxAge": "1h"}`

// TestOrderUnderRandomFailures delivers a stream of many keys through two
// workers to two destinations (one single-event, one batched) that each
// fail 30% of requests: every event arrives, and each key's events are
// first delivered in order.
func TestOrderUnderRandomFailures(t *testing.T) {
	t.Parallel()
	single := newHook(t, randomFailures(0.3))
	batched := newHook(t, randomFailures(0.3))
	hooks := map[string]*hook{"single": single, "batched": batched}
	b := setup(t, 8, workspaceJSON("single|1|"+fastRetry, "batched|20|"+fastRetry), hooks)
	b.startWorker()
	b.startWorker()
	events := stream(40, 25, "user")
	// In two parts, so that some rows arrive while others are retried.
	b.insert("web", []string{"single", "batched"}, events[:500])
	time.Sleep(200 * time.Millisecond)
	b.insert("web", []string{"single", "batched"}, events[500:])
	eventually(t, 60*time.Second, "every event delivered to both", func() bool {
		return single.distinct() == len(events) && batched.distinct() == len(events)
	})
	single.checkOrder(t)
	batched.checkOrder(t)
	eventually(t, 10*time.Second, "acknowledged rows deleted", func() bool { return b.pending() == 0 })
	if dl := b.deadLetters(); len(dl) != 0 {
		t.Errorf("%d dead letters, want none", len(dl))
	}
	if batched.batches == 0 {
		t.Errorf("the batched destination got no request with more than one event")
	}
}

// TestFailingDestinationIsolated checks that a destination that always
// fails, and whose blocked rows overflow the shard buffer, does not hold up
// another destination of the same events.
func TestFailingDestinationIsolated(t *testing.T) {
	t.Parallel()
	good := newHook(t, nil)
	bad := newHook(t, func([]event) (int, string) { return 503, "down" })
	hooks := map[string]*hook{"good": good, "bad": bad}
	retry := `{"initialBackoff": "50ms", "maxBackoff": "200ms", "maxAttempts": 1000, "maxAge": "1h"}`
	b := setup(t, 4, workspaceJSON("bad|1|"+retry, "good|1|"+retry), hooks)
	// A small buffer: the bad destination's rows must be spilled for the
	// good one's to be read.
	b.startWorker("ORDO_WORKER_BUFFER=200", "ORDO_WORKER_WINDOW=50")
	events := stream(100, 20, "k")
	b.insert("web", []string{"bad", "good"}, events)
	took := eventually(t, 30*time.Second, "good destination got every event", func() bool {
		return good.distinct() == len(events)
	})
	t.Logf("good destination done in %s while the other failed every request", took)
	good.checkOrder(t)
	if n := good.deliveries(); n != len(events) {
		t.Errorf("good destination got %d deliveries of %d events, want each once", n, len(events))
	}
	if got := bad.distinct(); got != 0 {
		t.Errorf("bad destination delivered %d events, want 0", got)
	}
	// The good destination's rows are deleted, the bad one's stay.
	eventually(t, 10*time.Second, "only the bad destination's rows pending", func() bool { return b.pending() == int64(len(events)) })
}

// TestRejectedKeyDeadLettered checks that a key whose events all get 400 is
// dead-lettered at once without holding up other keys, that a key failing
// with 503 is dead-lettered after maxAttempts, and that dead letters keep
// the last status and response; with batches of several keys too, where
// the other keys' events must neither be dead-lettered nor delayed.
func TestRejectedKeyDeadLettered(t *testing.T) {
	t.Parallel()
	for _, batch := range []string{"1", "10"} {
		t.Run("maxBatchSize="+batch, func(t *testing.T) {
			t.Parallel()
			testRejectedKey(t, batch)
		})
	}
}

func testRejectedKey(t *testing.T, batch string) {
	h := newHook(t, func(events []event) (int, string) {
		for _, e := range events {
			if e.Key == "poison" {
				return 400, `{"error":"bad event for poison"}`
			}
		}
		for _, e := range events {
			if e.Key == "doomed" {
				return 503, "unavailable for doomed"
			}
		}
		return 200, "ok"
	})
	retry := `{"initialBackoff": "10ms", "maxBackoff": "20ms", "maxAttempts": 3, "maxAge": "1h"}`
	b := setup(t, 4, workspaceJSON("hook|"+batch+"|"+retry), map[string]*hook{"hook": h})
	b.startWorker()
	var events []event
	for i := range 30 {
		events = append(events, event{Key: "poison", I: i}, event{Key: "doomed", I: i})
		for k := range 5 {
			events = append(events, event{Key: fmt.Sprintf("fine%d", k), I: i})
		}
	}
	b.insert("web", []string{"hook"}, events)
	eventually(t, 30*time.Second, "fine keys delivered", func() bool { return h.distinct() == 150 })
	eventually(t, 30*time.Second, "every row settled", func() bool { return b.pending() == 0 })
	h.checkOrder(t)
	dls := b.deadLetters()
	counts := map[string]int{}
	for _, d := range dls {
		key := strings.SplitN(d.MessageID, "#", 2)[0]
		counts[key]++
		switch key {
		case "poison":
			if d.Status == nil || *d.Status != 400 || d.Response != `{"error":"bad event for poison"}` || d.Attempts != 1 {
				t.Errorf("poison dead letter = status %v, response %q, attempts %d; want 400, the body, 1", d.Status, d.Response, d.Attempts)
			}
		case "doomed":
			if d.Status == nil || *d.Status != 503 || d.Response != "unavailable for doomed" || d.Attempts != 3 || !strings.Contains(d.Reason, "max attempts") {
				t.Errorf("doomed dead letter = status %v, response %q, attempts %d, reason %q; want 503, the body, 3, max attempts", d.Status, d.Response, d.Attempts, d.Reason)
			}
		default:
			t.Errorf("unexpected dead letter %+v", d)
		}
	}
	if counts["poison"] != 30 || counts["doomed"] != 30 {
		t.Errorf("dead letters per key = %v, want 30 poison and 30 doomed", counts)
	}
}

// TestMaxAgeReachedBehindBarrier checks that an event whose maxAge passes
// while it waits behind its barrier is dead-lettered without another
// request, keeping the status and response of its last attempt, and that
// an event past maxAge that was never attempted still gets its attempt.
// The last attempt's bookkeeping is either flushed already or, with a long
// flush interval, still waiting to be.
func TestMaxAgeReachedBehindBarrier(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name, retry string
		env         []string
	}{
		{"bookkeeping flushed", `{"initialBackoff": "1s", "maxBackoff": "1s", "maxAttempts": 1000, "maxAge": "600ms"}`, nil},
		{"bookkeeping pending", `{"initialBackoff": "500ms", "maxBackoff": "500ms", "maxAttempts": 1000, "maxAge": "300ms"}`,
			[]string{"ORDO_WORKER_FLUSH_INTERVAL=10s"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			testMaxAgeBehindBarrier(t, tc.retry, tc.env)
		})
	}
}

func testMaxAgeBehindBarrier(t *testing.T, retry string, env []string) {
	h, tries := downHook(t)
	// The first retry is due after maxAge.
	b := setup(t, 4, workspaceJSON("hook|1|"+retry), map[string]*hook{"hook": h})
	w := b.startWorker(env...)
	eventually(t, 10*time.Second, "worker holds every shard", func() bool { return w.owned() == 4 })
	events := stream(3, 2, "k")
	b.insert("web", []string{"hook"}, events)
	eventually(t, 20*time.Second, "every event dead-lettered", func() bool { return b.pending() == 0 })
	for _, e := range events {
		if n := tries(e.messageID()); n != 1 {
			t.Errorf("event %s was sent %d times, want once", e.messageID(), n)
		}
	}
	dls := b.deadLetters()
	if len(dls) != len(events) {
		t.Errorf("%d dead letters, want %d", len(dls), len(events))
	}
	for _, d := range dls {
		if d.Attempts != 1 || d.Status == nil || *d.Status != 503 || d.Response != "down" || !strings.Contains(d.Reason, "max age") {
			t.Errorf("dead letter %s = attempts %d, status %v, response %q, reason %q; want 1, 503, down, max age",
				d.MessageID, d.Attempts, d.Status, d.Response, d.Reason)
		}
		// The first event of each key expired behind its barrier, the
		// second (already past maxAge when its turn came) failed once.
		before := strings.Contains(d.Reason, "before the next attempt")
		if first := strings.HasSuffix(d.MessageID, "#0"); before != first {
			t.Errorf("dead letter %s: reason %q", d.MessageID, d.Reason)
		}
	}
}

// productionTimers are the default heartbeat and liveness, for the tests
// of the contract's 10 seconds.
var productionTimers = []string{"ORDO_WORKER_HEARTBEAT=1s", "ORDO_WORKER_LIVENESS=5s"}

// TestFailoverAfterKill checks that the shards of a SIGKILLed worker are
// delivered by the other within 10 seconds, with the default heartbeat
// and liveness.
func TestFailoverAfterKill(t *testing.T) {
	t.Parallel()
	h := newHook(t, nil)
	b := setup(t, 8, workspaceJSON("hook|1|"+fastRetry), map[string]*hook{"hook": h})
	w1 := b.startWorker(productionTimers...)
	w2 := b.startWorker(productionTimers...)
	eventually(t, 10*time.Second, "shards split between the workers", func() bool {
		return w1.owned() == 4 && w2.owned() == 4
	})
	w1.kill()
	killed := time.Now()
	events := stream(50, 4, "u")
	b.insert("web", []string{"hook"}, events)
	eventually(t, 10*time.Second, "every event delivered after the kill", func() bool { return h.distinct() == len(events) })
	t.Logf("all events delivered %s after the kill", time.Since(killed).Round(time.Millisecond))
	if got := w2.owned(); got != 8 {
		t.Errorf("survivor owns %d shards, want 8", got)
	}
	h.checkOrder(t)
}

// TestFairShare checks that shards spread as workers come and go: one
// worker holds all 8, three hold at most ⌈8/3⌉ = 3 each, and when two
// leave with SIGTERM (exiting 0) the last takes all 8 again.
func TestFairShare(t *testing.T) {
	t.Parallel()
	h := newHook(t, nil)
	b := setup(t, 8, workspaceJSON("hook|1|"+fastRetry), map[string]*hook{"hook": h})
	w1 := b.startWorker(productionTimers...)
	eventually(t, 10*time.Second, "one worker holds every shard", func() bool { return w1.owned() == 8 })
	w2 := b.startWorker(productionTimers...)
	w3 := b.startWorker(productionTimers...)
	all := []*proc{w1, w2, w3}
	took := eventually(t, 10*time.Second, "three workers share the shards", func() bool {
		total := 0
		for _, w := range all {
			n := w.owned()
			if n < 0 || n > 3 {
				return false
			}
			total += n
		}
		return total == 8
	})
	t.Logf("1 → 3 workers converged in %s", took)
	if n := b.shardLocks(); n != 8 {
		t.Errorf("nodes show %d shard locks held, want 8", n)
	}
	// Events keep flowing while shards change hands.
	events := stream(30, 5, "u")
	b.insert("web", []string{"hook"}, events)
	for _, w := range []*proc{w2, w3} {
		if code := w.terminate(); code != 0 {
			t.Errorf("worker exited %d after SIGTERM, want 0", code)
		}
	}
	took = eventually(t, 10*time.Second, "the last worker holds every shard", func() bool { return w1.owned() == 8 })
	t.Logf("3 → 1 workers converged in %s", took)
	eventually(t, 10*time.Second, "every event delivered", func() bool { return h.distinct() == len(events) })
	h.checkOrder(t)
	if code := w1.terminate(); code != 0 {
		t.Errorf("worker exited %d after SIGTERM, want 0", code)
	}
	conn := b.connect(b.catalogURL)
	var n int
	if err := conn.QueryRow(t.Context(), `SELECT count(*) FROM ordo_catalog.workers`).Scan(&n); err != nil {
		t.Fatal(err)
	}
	if n != 0 {
		t.Errorf("%d heartbeat rows left after every worker exited, want 0", n)
	}
}

// TestHeartbeatNotStalledByClaims checks that a worker whose claims stall
// (dialling a node that accepts connections and never answers) keeps its
// heartbeat fresh: /ready, which fails once the last beat is older than the
// liveness, stays 200.
func TestHeartbeatNotStalledByClaims(t *testing.T) {
	t.Parallel()
	h := newHook(t, nil)
	b := setup(t, 4, workspaceJSON("hook|1|"+fastRetry), map[string]*hook{"hook": h})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var silent []net.Conn
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			silent = append(silent, c)
			mu.Unlock()
		}
	}()
	t.Cleanup(func() {
		ln.Close()
		mu.Lock()
		defer mu.Unlock()
		for _, c := range silent {
			c.Close()
		}
	})
	conn := b.connect(b.catalogURL)
	if _, err := conn.Exec(t.Context(), `UPDATE ordo_catalog.nodes SET url = $1 WHERE name = 'n2'`,
		"postgres://ordo@"+ln.Addr().String()+"/n2"); err != nil {
		t.Fatal(err)
	}
	w := b.startWorker()
	ready := func() int {
		resp, err := http.Get("http://" + w.admin + "/ready")
		if err != nil {
			return 0
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	eventually(t, 10*time.Second, "worker ready", func() bool { return ready() == 200 })
	eventually(t, 10*time.Second, "a claim dialling the silent node", func() bool {
		mu.Lock()
		defer mu.Unlock()
		return len(silent) > 0
	})
	// Twice the liveness (1.5s), well within the 10s a dial may take.
	for end := time.Now().Add(3 * time.Second); time.Now().Before(end); time.Sleep(100 * time.Millisecond) {
		if code := ready(); code != 200 {
			t.Fatalf("/ready answered %d while a claim was dialling a silent node, want 200", code)
		}
	}
}

// TestSettingErrors checks that a missing or malformed setting exits 2 with
// a message naming the variable.
func TestSettingErrors(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		env  []string
		want string
	}{
		{[]string{"ORDO_WORKSPACE_CONFIG=/nonexistent"}, "ORDO_CATALOG_URL"},
		{[]string{"ORDO_CATALOG_URL=postgres://x@127.0.0.1:1/x"}, "ORDO_WORKSPACE_CONFIG"},
		{[]string{"ORDO_CATALOG_URL=postgres://x@127.0.0.1:1/x", "ORDO_WORKSPACE_CONFIG=/nonexistent", "ORDO_WORKER_POLL=soon"}, "ORDO_WORKER_POLL"},
		{[]string{"ORDO_CATALOG_URL=postgres://x@127.0.0.1:1/x", "ORDO_WORKSPACE_CONFIG=/nonexistent", "ORDO_LOG_LEVEL=loud"}, "ORDO_LOG_LEVEL"},
		{[]string{"ORDO_CATALOG_URL=postgres://x@127.0.0.1:1/x", "ORDO_WORKSPACE_CONFIG=/nonexistent"}, "ORDO_WORKSPACE_CONFIG"},
		{[]string{"ORDO_CATALOG_URL=postgres://x@127.0.0.1:1/x", "ORDO_WORKSPACE_CONFIG=/nonexistent", "ORDO_ADMIN_ADDR=nonsense"}, "ORDO_ADMIN_ADDR"},
		{[]string{"ORDO_CATALOG_URL=postgres://x@127.0.0.1:1/x", "ORDO_WORKSPACE_CONFIG=/nonexistent", "ORDO_ADMIN_ADDR=:99999"}, "ORDO_ADMIN_ADDR"},
	} {
		cmd := exec.Command(workerBin)
		cmd.Env = append([]string{"PATH=/usr/bin:/bin"}, tc.env...)
		out, err := cmd.CombinedOutput()
		code := -1
		if cmd.ProcessState != nil {
			code = cmd.ProcessState.ExitCode()
		}
		if code != 2 || !strings.Contains(string(out), tc.want) {
			t.Errorf("worker with %v: exit %d (%v), output %q; want exit 2 naming %s", tc.env, code, err, out, tc.want)
		}
		if lines := strings.Count(strings.TrimSpace(string(out)), "\n"); lines != 0 {
			t.Errorf("worker with %v printed %d lines, want one: %q", tc.env, lines+1, out)
		}
	}
}

// TestStopBeforeMapLoads checks that a worker told to stop while it still
// waits for the shard map (the catalog unreachable, or not bootstrapped)
// exits 0 at once.
func TestStopBeforeMapLoads(t *testing.T) {
	t.Parallel()
	ws := filepath.Join(t.TempDir(), "workspace.json")
	if err := os.WriteFile(ws, []byte(strings.ReplaceAll(workspaceJSON("hook|1|"+fastRetry), "{{hook}}", "http://127.0.0.1:1")), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Run("catalog unreachable", func(t *testing.T) {
		t.Parallel()
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		closed := ln.Addr().String()
		ln.Close()
		testStopBeforeMap(t, "postgres://ordo@"+closed+"/catalog?connect_timeout=2", ws, "waiting for the catalog")
	})
	t.Run("catalog not bootstrapped", func(t *testing.T) {
		t.Parallel()
		c := nodes(t)[0]
		conn, err := pgx.Connect(t.Context(), c.URL())
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close(context.Background())
		db := fmt.Sprintf("w%d_empty", os.Getpid())
		if _, err := conn.Exec(t.Context(), "CREATE DATABASE "+db); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() {
			conn, err := pgx.Connect(context.Background(), c.URL())
			if err != nil {
				return
			}
			defer conn.Close(context.Background())
			conn.Exec(context.Background(), "DROP DATABASE "+db+" WITH (FORCE)") //nolint:errcheck // best effort
		})
		url := c.DatabaseURL(db)
		if err := migrations.Catalog(t.Context(), url, nil); err != nil {
			t.Fatal(err)
		}
		testStopBeforeMap(t, url, ws, "waiting for the cluster to be bootstrapped")
	})
}

// testStopBeforeMap starts a worker on catalogURL, waits until it logs
// waiting, sends SIGTERM and expects exit 0.
func testStopBeforeMap(t *testing.T, catalogURL, ws, waiting string) {
	cmd := exec.Command(workerBin)
	cmd.Env = append(append(os.Environ(), "ORDO_CATALOG_URL="+catalogURL, "ORDO_WORKSPACE_CONFIG="+ws), testEnv...)
	var out syncBuffer
	cmd.Stderr = writerFunc(out.WriteString)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() {
		cmd.Wait() //nolint:errcheck // the exit code is checked
		close(done)
	}()
	t.Cleanup(func() {
		cmd.Process.Kill() //nolint:errcheck // may have exited
		<-done
	})
	for start := time.Now(); !strings.Contains(out.String(), waiting); time.Sleep(50 * time.Millisecond) {
		if time.Since(start) > 10*time.Second {
			t.Fatalf("worker did not log %q within 10s\n%s", waiting, out.String())
		}
	}
	time.Sleep(time.Second)
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatalf("worker did not exit within 10s of SIGTERM\n%s", out.String())
	}
	if code := cmd.ProcessState.ExitCode(); code != 0 {
		t.Errorf("worker exited %d after SIGTERM while waiting for the map, want 0\n%s", code, out.String())
	}
}

// TestAdminEndpoints checks /health, /ready and /metrics, and that an
// empty ORDO_ADMIN_ADDR disables the server.
func TestAdminEndpoints(t *testing.T) {
	t.Parallel()
	h := newHook(t, nil)
	b := setup(t, 4, workspaceJSON("hook|1|"+fastRetry), map[string]*hook{"hook": h})
	w := b.startWorker()
	b.insert("web", []string{"hook"}, stream(3, 3, "u"))
	eventually(t, 10*time.Second, "events delivered", func() bool { return h.distinct() == 9 })
	for _, path := range []string{"/health", "/ready"} {
		eventually(t, 5*time.Second, path+" answers 200", func() bool {
			resp, err := http.Get("http://" + w.admin + path)
			if err != nil {
				return false
			}
			resp.Body.Close()
			return resp.StatusCode == 200
		})
	}
	m := w.metrics()
	for _, want := range []string{
		`ordo_worker_events_delivered_total{destination="hook"} 9`,
		`ordo_worker_delivery_latency_seconds_count{destination="hook"} 9`,
		`ordo_worker_shard_lag_seconds{shard="0"}`,
		`ordo_worker_shards_owned 4`,
		`ordo_worker_live_workers 1`,
	} {
		if !strings.Contains(m, want) {
			t.Errorf("metrics lack %q", want)
		}
	}

	cmd := exec.Command(workerBin)
	cmd.Env = append(append([]string{"PATH=/usr/bin:/bin", "ORDO_CATALOG_URL=" + b.catalogURL, "ORDO_WORKSPACE_CONFIG=" + b.wsPath}, testEnv...), "ORDO_ADMIN_ADDR=")
	var out syncBuffer
	cmd.Stderr = writerFunc(out.WriteString)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	eventually(t, 10*time.Second, "worker without admin server started", func() bool { return strings.Contains(out.String(), "worker started") })
	cmd.Process.Signal(syscall.SIGTERM) //nolint:errcheck // checked by Wait
	if err := cmd.Wait(); err != nil {
		t.Errorf("worker: %v", err)
	}
	if strings.Contains(out.String(), "admin server listening") {
		t.Errorf("ORDO_ADMIN_ADDR= started an admin server:\n%s", out.String())
	}
}

type writerFunc func(string)

func (f writerFunc) Write(p []byte) (int, error) {
	f(string(p))
	return len(p), nil
}
