package worker_test

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/ordo-pipeline/ordo/schema"
	"github.com/ordo-pipeline/ordo/shard"
)

// TestLateCommitDelivered checks that a row whose transaction drew its
// sequence number first but committed after later rows were read (two
// gateways writing at once) is still delivered.
func TestLateCommitDelivered(t *testing.T) {
	t.Parallel()
	h := newHook(t, nil)
	b := setup(t, 4, workspaceJSON("hook|1|"+fastRetry), map[string]*hook{"hook": h})
	// Two keys of the same shard.
	late := "late"
	var early string
	for i := 0; ; i++ {
		early = fmt.Sprintf("early%d", i)
		if shard.For(early, 4) == shard.For(late, 4) {
			break
		}
	}
	s := shard.For(late, 4)
	url := b.nodeURLs[b.snap.Shards[s].Node]
	ctx := context.Background()
	slow := b.connect(url)
	tx, err := slow.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback(ctx) //nolint:errcheck // committed below
	insertRow(t, tx, s, event{Key: late, I: 0})

	b.startWorker()
	b.insert("web", []string{"hook"}, []event{{Key: early, I: 0}})
	eventually(t, 10*time.Second, "the later row delivered", func() bool { return h.distinct() == 1 })
	if err := tx.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	eventually(t, 10*time.Second, "the late-committed row delivered", func() bool { return h.distinct() == 2 })
}

func insertRow(t *testing.T, tx pgx.Tx, s int, e event) {
	t.Helper()
	now := time.Now().UTC()
	payload := fmt.Sprintf(`{"type":"track","event":"e","userId":%q,"messageId":%q,"properties":{"i":%d}}`, e.Key, e.messageID(), e.I)
	_, err := tx.CopyFrom(context.Background(), schema.Table(s), schema.Columns,
		pgx.CopyFromRows([][]any{{e.Key, "web", "hook", e.messageID(), now, payload}}))
	if err != nil {
		t.Fatal(err)
	}
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
	eventually(t, 10*time.Second, "rows deleted", func() bool { return b.pending() == 0 })
}

// TestRestartKeepsAttempts checks that attempts are stored on the row: a
// worker killed and replaced does not give events a fresh set of attempts.
func TestRestartKeepsAttempts(t *testing.T) {
	t.Parallel()
	var mu sync.Mutex
	tries := map[string]int{}
	h := newHook(t, func(events []event) (int, string) {
		mu.Lock()
		defer mu.Unlock()
		for _, e := range events {
			tries[e.messageID()]++
		}
		return 503, "down"
	})
	retry := `{"initialBackoff": "400ms", "maxBackoff": "400ms", "maxAttempts": 4, "maxAge": "1h"}`
	b := setup(t, 2, workspaceJSON("hook|1|"+retry), map[string]*hook{"hook": h})
	w := b.startWorker()
	events := stream(5, 1, "k")
	b.insert("web", []string{"hook"}, events)
	eventually(t, 10*time.Second, "two attempts each", func() bool {
		mu.Lock()
		defer mu.Unlock()
		for _, e := range events {
			if tries[e.messageID()] < 2 {
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
	mu.Lock()
	defer mu.Unlock()
	for id, n := range tries {
		if n > 5 {
			t.Errorf("event %s was sent %d times, want at most 4 (5 if a kill lost one)", id, n)
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
