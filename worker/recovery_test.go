package worker_test

import (
	"context"
	"fmt"
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
