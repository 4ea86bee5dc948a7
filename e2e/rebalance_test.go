package e2e

import (
	"context"
	"fmt"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/ordo-pipeline/ordo/internal/checker"
	"github.com/ordo-pipeline/ordo/internal/pgtest"
	"github.com/ordo-pipeline/ordo/internal/proctest"
	"github.com/ordo-pipeline/ordo/schema"
)

const writeKey = "wk_e2e"

// workspaceFor writes a workspace file with one source, of write key
// writeKey, and one destination "hook", a webhook at hook + "/events".
func workspaceFor(t *testing.T, hook string) string {
	return proctest.WriteJSON(t, t.TempDir(), "workspace.json", map[string]any{
		"sources": []any{map[string]any{"id": "web", "writeKey": writeKey, "destinations": []string{"hook"}}},
		"destinations": []any{map[string]any{
			"id": "hook", "type": "webhook",
			"config": map[string]any{"url": hook + "/events", "timeout": "5s"},
			"retry":  map[string]any{"initialBackoff": "50ms", "maxBackoff": "500ms", "maxAttempts": 1000, "maxAge": "1h"},
		}},
	})
}

// workspaceWith writes a workspace file with one source, of write key
// writeKey, whose destinations are hooks.
func workspaceWith(t *testing.T, hooks ...*webhook) string {
	var ids []string
	var dests []any
	for _, h := range hooks {
		ids = append(ids, h.id)
		dests = append(dests, h.destination())
	}
	return proctest.WriteJSON(t, t.TempDir(), "workspace.json", map[string]any{
		"sources":      []any{map[string]any{"id": "web", "writeKey": writeKey, "destinations": ids}},
		"destinations": dests,
	})
}

// hooked is where the tests under traffic start: Postgres nodes, the
// first holding the catalog, and a workspace whose one destination is
// hook, a webhook that fails 5% of its requests and records what it is
// sent in h.
type hooked struct {
	nodes   []*pgtest.Cluster
	catalog string // the ORDO_CATALOG_URL setting
	ws      string // the ORDO_WORKSPACE_CONFIG setting
	h       *checker.History
	hook    *webhook
}

// newHooked starts n nodes and the webhook.
func newHooked(t *testing.T, n int) *hooked {
	c := &hooked{nodes: pgtest.Start(t, n), h: checker.NewHistory()}
	c.catalog = "ORDO_CATALOG_URL=" + c.nodes[0].URL()
	c.hook = newWebhook(t, c.h, "hook", 5*time.Second, 0.05)
	c.ws = "ORDO_WORKSPACE_CONFIG=" + workspaceWith(t, c.hook)
	return c
}

func nodesEnv(nodes []*pgtest.Cluster, which ...int) string {
	var parts []string
	for _, i := range which {
		parts = append(parts, fmt.Sprintf("node%d=%s", i, nodes[i-1].URL()))
	}
	return "ORDO_NODES=" + strings.Join(parts, ",")
}

// TestRebalanceUnderTraffic is the mission in one test: 2 nodes → 3 nodes
// → 2 nodes (a different one removed) while two gateways take continuous
// traffic from many keys and two workers deliver to a webhook that fails
// some requests; the scale-down's rebalance is SIGKILLed at every fail
// point and re-run, and a worker is SIGKILLed and restarted. Then every
// acknowledged event must have been delivered, first deliveries in order
// per key, no request failed, and the removed node empty.
func TestRebalanceUnderTraffic(t *testing.T) {
	c := newHooked(t, 3)
	base := []string{c.catalog, "ORDO_SHARDS=24", "ORDO_LOG_LEVEL=info"}

	runRebalance(t, "bootstrap", append(base, nodesEnv(c.nodes, 1, 2)))
	// The workers execute no moves, so that rebalance executes them and its
	// fail points are reached (workers healing moves: worker's tests).
	workerEnv := []string{c.catalog, c.ws, "ORDO_ADMIN_ADDR=127.0.0.1:0", "ORDO_WORKER_MOVES=0"}
	w1 := start(t, "worker-1", "worker", workerEnv)
	start(t, "worker-2", "worker", workerEnv)
	gateways := startGateways(t, 2, []string{c.catalog, c.ws}).urls

	tr := newTraffic(c.h, gateways, writeKey, c.hook.id)
	tr.start(40, 5*time.Millisecond)
	time.Sleep(3 * time.Second)

	// Scale out.
	t.Logf("scale out starts at %s", time.Now().Format("15:04:05.000"))
	tr.phase.Store("moving")
	out := runRebalance(t, "scale out", append(base, nodesEnv(c.nodes, 1, 2, 3)))
	t.Logf("scale out:\n%s", proctest.LastLines(out, 3))
	tr.phase.Store("between")

	// A worker dies and comes back.
	t.Logf("worker-1 killed at %s", time.Now().Format("15:04:05.000"))
	w1.Kill()
	time.Sleep(500 * time.Millisecond)
	start(t, "worker-1b", "worker", workerEnv)
	time.Sleep(2 * time.Second)

	// Scale in, removing node1, with rebalance killed at every step.
	tr.phase.Store("moving")
	down := append(base, nodesEnv(c.nodes, 2, 3))
	for _, fp := range []string{"rebalance.after_plan", "move.after_target_ready", "move.after_fenced", "move.after_flipped", "move.after_copied", "move.after_source_dropped", "move.after_done"} {
		t.Logf("rebalance with %s starts at %s", fp, time.Now().Format("15:04:05.000"))
		out, ps := runOnce(t, "rebalance", append(down, "ORDO_FAILPOINTS="+fp))
		ws, _ := ps.Sys().(syscall.WaitStatus)
		switch {
		case ws.Signaled() && ws.Signal() == syscall.SIGKILL:
			t.Logf("rebalance killed at %s", fp)
		case ps.ExitCode() == 0:
			t.Logf("rebalance finished before reaching %s", fp)
		default:
			t.Fatalf("rebalance with %s: %v\n%s", fp, ps, out)
		}
	}
	out = runRebalance(t, "scale in", down)
	t.Logf("scale in:\n%s", proctest.LastLines(out, 3))
	tr.phase.Store("after")
	time.Sleep(2 * time.Second)
	tr.finish()

	// Every acknowledged event arrives, first deliveries in order per key.
	// Redeliveries come only from the killed worker's last moments.
	checkGuarantees(t, c.h, c.nodes, 90*time.Second, checker.Limits{MaxNotTimeoutDuplicates: 0.01})

	// No request failed because of the moves.
	if n, errs := tr.failures(5); n > 0 {
		t.Errorf("%d requests failed, e.g.:\n%s", n, strings.Join(errs, "\n"))
	}
	for _, phase := range []string{"baseline", "moving", "between", "after"} {
		n, p50, p99, worst := tr.latencies(phase)
		t.Logf("request latency %-8s n=%5d p50=%v p99=%v max=%v", phase, n, p50.Round(time.Microsecond), p99.Round(time.Microsecond), worst.Round(time.Millisecond))
	}

	// The removed node holds nothing and is detached.
	out, ps := runOnce(t, "rebalance", []string{c.catalog}, "status")
	t.Logf("status:\n%s", out)
	if ps.ExitCode() != 0 || !strings.Contains(out, "moves in progress: none") {
		t.Errorf("status: exit %d\n%s", ps.ExitCode(), out)
	}
	for _, line := range strings.Split(out, "\n") {
		if strings.HasPrefix(line, "node1 ") && !strings.Contains(line, "detached") {
			t.Errorf("node1 is not detached: %q", line)
		}
	}
	conn, err := pgx.Connect(context.Background(), c.nodes[0].URL())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())
	if tables, err := schema.List(context.Background(), conn); err != nil || len(tables) != 0 {
		t.Errorf("node1 still holds shard tables %v (err %v)", tables, err)
	}
	var dead int
	if err := conn.QueryRow(context.Background(), `SELECT count(*) FROM ordo.dead_letters`).Scan(&dead); err != nil || dead != 0 {
		t.Errorf("node1 still holds %d dead letters (err %v)", dead, err)
	}
}
