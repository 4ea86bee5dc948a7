package worker_test

import (
	"context"
	"fmt"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/ordo-pipeline/ordo/schema"
	"github.com/ordo-pipeline/ordo/shard"
)

// TestWriteLockKeepsCommitOrder checks the premise the worker's reads rely
// on (there is no rescan behind the cursor): a writer holding a shard's
// write lock with a row inserted makes a second writer of the shard wait
// until it commits, so the second row cannot become visible first; and the
// worker, reading all along, delivers both rows, in order.
func TestWriteLockKeepsCommitOrder(t *testing.T) {
	t.Parallel()
	h := newHook(t, nil)
	b := setup(t, 4, workspaceJSON("hook|1|"+fastRetry), map[string]*hook{"hook": h})
	const key = "k"
	s := shard.For(key, 4)
	url := b.nodeURLs[b.snap.Shards[s].Node]
	ctx := context.Background()
	b.startWorker()

	first := b.connect(url)
	tx, err := first.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback(ctx) //nolint:errcheck // committed below
	if err := writeRow(ctx, tx, s, event{Key: key, I: 0}); err != nil {
		t.Fatal(err)
	}

	second := b.connect(url)
	secondDone := make(chan error, 1)
	go func() {
		secondDone <- pgx.BeginFunc(ctx, second, func(tx pgx.Tx) error { return writeRow(ctx, tx, s, event{Key: key, I: 1}) })
	}()
	watch := b.connect(url)
	eventually(t, 10*time.Second, "the second writer waits for the shard's write lock", func() bool {
		var n int
		err := watch.QueryRow(ctx, `SELECT count(*) FROM pg_locks
			WHERE locktype = 'advisory' AND NOT granted AND classid = $1::oid AND objid = $2::oid AND objsubid = 2
			  AND database = (SELECT oid FROM pg_database WHERE datname = current_database())`, schema.WriteLockClass, s).Scan(&n)
		if err != nil {
			t.Fatal(err)
		}
		return n == 1
	})
	time.Sleep(300 * time.Millisecond) // several polls of the worker
	select {
	case err := <-secondDone:
		t.Fatalf("the second writer finished (%v) while the first held the shard's write lock", err)
	default:
	}
	if n := h.distinct(); n != 0 {
		t.Fatalf("%d events delivered before either writer committed, want 0", n)
	}

	if err := tx.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-secondDone:
		if err != nil {
			t.Fatalf("second writer: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the second writer still waits after the first committed")
	}
	eventually(t, 10*time.Second, "both rows delivered", func() bool { return h.distinct() == 2 })
	h.checkOrder(t)
}

// writeRow stores e for the hook destination in shard s as a gateway
// writes: holding the shard's write lock.
func writeRow(ctx context.Context, tx pgx.Tx, s int, e event) error {
	if err := schema.LockForWrite(ctx, tx, []int{s}); err != nil {
		return err
	}
	now := time.Now().UTC()
	payload := fmt.Sprintf(`{"type":"track","event":"e","userId":%q,"messageId":%q,"properties":{"i":%d}}`, e.Key, e.messageID(), e.I)
	_, err := tx.CopyFrom(ctx, schema.Table(s), schema.Columns,
		pgx.CopyFromRows([][]any{{e.Key, "web", "hook", e.messageID(), now, payload}}))
	return err
}

// TestClaimConnectionLost checks that a worker whose claim connections are
// cut (as by a network failure or a node restart) claims its shards again
// and delivers what arrives afterwards.
func TestClaimConnectionLost(t *testing.T) {
	t.Parallel()
	h := newHook(t, nil)
	b := setup(t, 8, workspaceJSON("hook|1|"+fastRetry), map[string]*hook{"hook": h})
	w := b.startWorker()
	eventually(t, 10*time.Second, "worker holds every shard", func() bool { return w.owned() == 8 })
	ctx := context.Background()
	for _, url := range b.nodeURLs {
		conn := b.connect(url)
		var n int
		err := conn.QueryRow(ctx, `SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity
			WHERE application_name LIKE 'ordo-worker%' AND datname = current_database()`).Scan(&n)
		if err != nil {
			t.Fatal(err)
		}
		if n == 0 {
			t.Fatalf("no worker connection on node %s", url)
		}
	}
	events := stream(20, 5, "u")
	b.insert("web", []string{"hook"}, events)
	eventually(t, 10*time.Second, "every event delivered after the cut", func() bool { return h.distinct() == len(events) })
	eventually(t, 10*time.Second, "worker holds every shard again", func() bool { return w.owned() == 8 })
	h.checkOrder(t)
}

// TestSpilledLanesRecover checks that lanes blocked long enough to be
// spilled out of a small buffer are read back, in order, once their
// destination recovers.
func TestSpilledLanesRecover(t *testing.T) {
	t.Parallel()
	var recovered atomic.Bool
	h := newHook(t, func([]event) (int, string) {
		if !recovered.Load() {
			return 503, "down"
		}
		return 200, "ok"
	})
	retry := `{"initialBackoff": "50ms", "maxBackoff": "300ms", "maxAttempts": 1000, "maxAge": "1h"}`
	b := setup(t, 2, workspaceJSON("hook|5|"+retry), map[string]*hook{"hook": h})
	w := b.startWorker("ORDO_WORKER_BUFFER=100", "ORDO_WORKER_WINDOW=40", "ORDO_LOG_LEVEL=debug")
	events := stream(30, 40, "k")
	b.insert("web", []string{"hook"}, events)
	eventually(t, 10*time.Second, "rows spilled", func() bool { return strings.Contains(w.log.String(), "spilled stalled lanes") })
	recovered.Store(true)
	eventually(t, 30*time.Second, "every event delivered", func() bool { return h.distinct() == len(events) })
	h.checkOrder(t)
	// Spills and reloads never put a row in memory twice.
	if n := h.deliveries(); n != len(events) {
		t.Errorf("%d deliveries of %d events, want each delivered once", n, len(events))
	}
	eventually(t, 10*time.Second, "rows deleted", func() bool { return b.pending() == 0 })
}

// TestRestartKeepsAttempts checks that attempts are stored on the row: a
// worker killed and replaced does not give events a fresh set of attempts.
func TestRestartKeepsAttempts(t *testing.T) {
	t.Parallel()
	h, tries := downHook(t)
	retry := `{"initialBackoff": "400ms", "maxBackoff": "400ms", "maxAttempts": 4, "maxAge": "1h"}`
	b := setup(t, 2, workspaceJSON("hook|1|"+retry), map[string]*hook{"hook": h})
	w := b.startWorker()
	events := stream(5, 1, "k")
	b.insert("web", []string{"hook"}, events)
	eventually(t, 10*time.Second, "two attempts each", func() bool {
		for _, e := range events {
			if tries(e.messageID()) < 2 {
				return false
			}
		}
		return true
	})
	time.Sleep(100 * time.Millisecond) // let the bookkeeping flush
	w.kill()
	b.startWorker()
	eventually(t, 20*time.Second, "every event dead-lettered", func() bool { return b.pending() == 0 })
	for _, d := range b.deadLetters() {
		if d.Attempts != 4 {
			t.Errorf("dead letter %s has %d attempts, want 4", d.MessageID, d.Attempts)
		}
	}
	for _, e := range events {
		if n := tries(e.messageID()); n > 5 {
			t.Errorf("event %s was sent %d times, want at most 4 (5 if a kill lost one)", e.messageID(), n)
		}
	}
}

// TestChurn writes events while workers are killed, started and stopped,
// to a destination failing 10% of requests: every event is delivered, and
// each key's in order.
func TestChurn(t *testing.T) {
	t.Parallel()
	h := newHook(t, randomFailures(0.1))
	b := setup(t, 8, workspaceJSON("hook|3|"+fastRetry), map[string]*hook{"hook": h})
	w1 := b.startWorker()
	w2 := b.startWorker()
	b.startWorker()
	events := stream(60, 40, "c")
	chunks := 20
	per := len(events) / chunks
	for i := range chunks {
		b.insert("web", []string{"hook"}, events[i*per:(i+1)*per])
		switch i {
		case 5:
			w1.kill()
		case 10:
			b.startWorker()
		case 15:
			if code := w2.terminate(); code != 0 {
				t.Errorf("worker exited %d after SIGTERM, want 0", code)
			}
		}
		time.Sleep(150 * time.Millisecond)
	}
	eventually(t, 30*time.Second, "every event delivered", func() bool { return h.distinct() == len(events) })
	h.checkOrder(t)
	eventually(t, 10*time.Second, "rows deleted", func() bool { return b.pending() == 0 })
}

// TestFencedTable checks that a worker keeps retrying, delivering and
// deleting the rows of a table a move has fenced against new rows, until
// the map says the shard moved.
func TestFencedTable(t *testing.T) {
	t.Parallel()
	var up atomic.Bool
	h := newHook(t, func([]event) (int, string) {
		if !up.Load() {
			return 503, "down"
		}
		return 200, "ok"
	})
	b := setup(t, 1, workspaceJSON("hook|1|"+fastRetry), map[string]*hook{"hook": h})
	w := b.startWorker()
	events := stream(5, 4, "f")
	b.insert("web", []string{"hook"}, events)
	ctx := context.Background()
	conn := b.connect(b.nodeURLs[b.snap.Shards[0].Node])
	eventually(t, 10*time.Second, "attempts recorded", func() bool {
		var n int
		conn.QueryRow(ctx, `SELECT count(*) FROM ordo.shard_0 WHERE attempts > 0`).Scan(&n) //nolint:errcheck // polled
		return n > 0
	})
	if err := pgx.BeginFunc(ctx, conn, func(tx pgx.Tx) error { return schema.Fence(ctx, tx, 0) }); err != nil {
		t.Fatal(err)
	}
	time.Sleep(300 * time.Millisecond) // a few more retries, on the fenced table
	up.Store(true)
	eventually(t, 10*time.Second, "every event delivered", func() bool { return h.distinct() == len(events) })
	eventually(t, 10*time.Second, "rows deleted from the fenced table", func() bool { return b.pending() == 0 })
	h.checkOrder(t)
	if strings.Contains(w.log.String(), "shard loop failed") {
		t.Errorf("the shard loop failed on the fenced table:\n%s", w.log.String())
	}
}
