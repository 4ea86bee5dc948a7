package worker_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/ordo-pipeline/ordo/rebalance"
	"github.com/ordo-pipeline/ordo/schema"
	"github.com/ordo-pipeline/ordo/shard"
)

// noPoll makes the safety-net poll too slow to matter: whatever these
// tests see delivered was read because a notification woke its shard, or
// because the loop read when it began.
const noPoll = "ORDO_WORKER_POLL=1h"

// startListening starts a worker and waits until it holds every shard and
// listens on both nodes.
func (b *testBundle) startListening(env ...string) *proc {
	b.t.Helper()
	p := b.startWorker(env...)
	eventually(b.t, 15*time.Second, "worker holds every shard", func() bool { return p.owned() == b.snap.Count() })
	eventually(b.t, 15*time.Second, "worker listens on both nodes", func() bool { return b.listeners() == 2 })
	return p
}

// listeners counts the nodes on which a worker's listening connection is
// up.
func (b *testBundle) listeners() int {
	b.t.Helper()
	n := 0
	b.eachNode(func(ctx context.Context, conn *pgx.Conn) error {
		var c int
		err := conn.QueryRow(ctx, `SELECT count(*) FROM pg_stat_activity
			WHERE datname = current_database() AND application_name LIKE 'ordo-worker % listener'`).Scan(&c)
		if c > 0 {
			n++
		}
		return err
	})
	return n
}

// insertUnannounced stores events like insert, but without the
// notification: a wake-up lost on the way.
func (b *testBundle) insertUnannounced(dest string, events []event) {
	b.t.Helper()
	ctx := context.Background()
	for _, e := range events {
		s := shard.For(e.Key, b.snap.Count())
		conn := b.connect(b.nodeURLs[b.snap.Shards[s].Node])
		payload := fmt.Sprintf(`{"type":"track","event":"e","userId":%q,"properties":{"i":%d}}`, e.Key, e.I)
		err := pgx.BeginFunc(ctx, conn, func(tx pgx.Tx) error {
			if _, err := tx.Exec(ctx, "SELECT pg_advisory_xact_lock($1::int, $2::int)", schema.WriteLockClass, s); err != nil {
				return err
			}
			_, err := tx.Exec(ctx, "INSERT INTO "+schema.Table(s).Sanitize()+` (ordering_key, source_id, destination_id, message_id, received_at, event)
				VALUES ($1, 'web', $2, $3, now(), $4)`, e.Key, dest, e.messageID(), payload)
			return err
		})
		if err != nil {
			b.t.Fatal(err)
		}
		conn.Close(ctx)
	}
}

// TestWakeOnCommit checks that rows are delivered as they commit, with no
// poll to find them: each of a series of events, written one at a time,
// reaches the webhook within a fraction of a second.
func TestWakeOnCommit(t *testing.T) {
	t.Parallel()
	h := newHook(t, nil)
	b := setup(t, 8, workspaceJSON("hook|1|"+fastRetry), map[string]*hook{"hook": h})
	b.startListening(noPoll)
	var worst time.Duration
	for i := range 10 {
		b.insert("web", []string{"hook"}, []event{{Key: fmt.Sprintf("u%d", i%4), I: i}})
		took := eventually(t, 5*time.Second, "event delivered", func() bool { return h.distinct() == i+1 })
		worst = max(worst, took)
	}
	t.Logf("slowest of 10 events from commit to webhook: %s (poll 1h)", worst)
	h.checkOrder(t)
}

// TestWakeAfterListenerLost checks that rows committed while a worker's
// listening connections are down (their notifications are lost for it)
// are delivered once they are back, not after a poll.
func TestWakeAfterListenerLost(t *testing.T) {
	t.Parallel()
	h := newHook(t, nil)
	b := setup(t, 8, workspaceJSON("hook|1|"+fastRetry), map[string]*hook{"hook": h})
	p := b.startListening(noPoll)
	b.eachNode(func(ctx context.Context, conn *pgx.Conn) error {
		_, err := conn.Exec(ctx, `SELECT pg_terminate_backend(pid) FROM pg_stat_activity
			WHERE datname = current_database() AND application_name LIKE 'ordo-worker % listener'`)
		return err
	})
	// The listeners come back after listenRetry: these rows commit while
	// they are away.
	events := stream(20, 3, "k")
	b.insert("web", []string{"hook"}, events)
	took := eventually(t, 10*time.Second, "rows written while the listeners were down delivered", func() bool { return h.distinct() == len(events) })
	t.Logf("delivered %s after the listeners were cut (poll 1h)", took)
	h.checkOrder(t)
	if m := p.metrics(); !containsMetric(m, "ordo_worker_listener_errors_total") {
		t.Errorf("no listener error counted:\n%s", m)
	}
}

// TestPendingAtClaimDelivered checks that rows committed before a worker
// claimed their shard, whose notifications nobody heard, are read when
// the loop begins.
func TestPendingAtClaimDelivered(t *testing.T) {
	t.Parallel()
	h := newHook(t, nil)
	b := setup(t, 8, workspaceJSON("hook|1|"+fastRetry), map[string]*hook{"hook": h})
	events := stream(20, 3, "k")
	b.insert("web", []string{"hook"}, events)
	b.startWorker(noPoll)
	eventually(t, 15*time.Second, "rows pending at the claim delivered", func() bool { return h.distinct() == len(events) })
	h.checkOrder(t)
}

// TestLostWakeupCostsAPoll checks the safety net: rows whose notification
// never came are delivered at the next poll, in order.
func TestLostWakeupCostsAPoll(t *testing.T) {
	t.Parallel()
	h := newHook(t, nil)
	b := setup(t, 8, workspaceJSON("hook|1|"+fastRetry), map[string]*hook{"hook": h})
	b.startListening("ORDO_WORKER_POLL=2s")
	events := stream(10, 2, "k")
	b.insertUnannounced("hook", events)
	took := eventually(t, 10*time.Second, "unannounced rows delivered", func() bool { return h.distinct() == len(events) })
	t.Logf("rows without a notification delivered within %s (poll 2s)", took)
	h.checkOrder(t)
}

// containsMetric reports whether text, in Prometheus format, has a
// series of name with a value other than 0.
func containsMetric(text, name string) bool {
	for line := range strings.SplitSeq(text, "\n") {
		if strings.HasPrefix(line, name+"{") && !strings.HasSuffix(line, " 0") {
			return true
		}
	}
	return false
}

// TestMovedIdleShardLetGo is the regression test of moves that waited for
// an idle shard's poll: a loop with nothing to deliver noticed that its
// shard moved only at its next poll (a minute by default), so each move
// of an idle shard waited that long for the worker to let go of it. With
// the poll at an hour, draining a node of idle shards must still take
// seconds.
func TestMovedIdleShardLetGo(t *testing.T) {
	t.Parallel()
	h := newHook(t, nil)
	b := setup(t, 8, workspaceJSON("hook|1|"+fastRetry), map[string]*hook{"hook": h})
	b.startListening(noPoll)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cfg := rebalance.Config{CatalogURL: b.catalogURL, Nodes: "n1=" + b.nodeURLs["n1"], Shards: 8}
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	began := time.Now()
	if err := rebalance.Run(ctx, &cfg, rebalance.Options{}); err != nil {
		t.Fatalf("draining n2 of idle shards: %v (after %s)", err, time.Since(began).Round(time.Millisecond))
	}
	if took := time.Since(began); took > 20*time.Second {
		t.Errorf("draining n2 of 4 idle shards took %s: the worker let go of them late", took.Round(time.Millisecond))
	} else {
		t.Logf("drained n2 of 4 idle shards in %s (poll 1h)", took.Round(time.Millisecond))
	}
}
