package worker_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/ordo-pipeline/ordo/schema"
	"github.com/ordo-pipeline/ordo/shard"
)

// TestRowsOfARemovedDestinationAreDeadLettered stores rows for a
// destination the workspace no longer has, some received long ago and
// some just now, beside rows for one it has: the old ones must be
// dead-lettered (they would otherwise stay pending for good: lag that
// never clears, rows copied on every move), the recent ones kept for a
// worker that may know the destination, and the known destination's rows
// delivered as usual. With a small buffer, the removed destination's rows
// are spilled first, and must be read back to be dead-lettered.
func TestRowsOfARemovedDestinationAreDeadLettered(t *testing.T) {
	t.Parallel()
	for name, env := range map[string][]string{
		"in memory": nil,
		"spilled":   {"ORDO_WORKER_BUFFER=40", "ORDO_WORKER_WINDOW=20"},
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			removedDestination(t, env)
		})
	}
}

func removedDestination(t *testing.T, env []string) {
	h := newHook(t, nil)
	b := setup(t, 2, workspaceJSON("hook|1|"+fastRetry), map[string]*hook{"hook": h})
	ctx := context.Background()
	old := time.Now().Add(-4 * time.Hour).UTC()
	var oldGone, newGone int
	byNode := map[string][]int{}
	for s, p := range b.snap.Shards {
		byNode[p.Node] = append(byNode[p.Node], s)
	}
	for node, shards := range byNode {
		conn := b.connect(b.nodeURLs[node])
		err := pgx.BeginFunc(ctx, conn, func(tx pgx.Tx) error {
			if err := schema.LockForWrite(ctx, tx, shards); err != nil {
				return err
			}
			for _, s := range shards {
				var rows [][]any
				for i := range 120 {
					key := fmt.Sprintf("k%d", i%3)
					if shard.For(key, 2) != s {
						key = fmt.Sprintf("s%d-%d", s, i%3)
					}
					at, id := old, fmt.Sprintf("gone-old-%d-%d", s, i)
					if i%2 == 1 {
						at, id = time.Now().UTC(), fmt.Sprintf("gone-new-%d-%d", s, i)
						newGone++
					} else {
						oldGone++
					}
					rows = append(rows, []any{key, "web", "gone", id, at, `{"type":"track"}`})
				}
				if _, err := tx.CopyFrom(ctx, schema.Table(s), schema.Columns, pgx.CopyFromRows(rows)); err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	events := stream(10, 3, "u")
	b.insert("web", []string{"hook"}, events)
	b.startWorker(env...)
	eventually(t, 10*time.Second, "the known destination's events delivered", func() bool { return h.distinct() == len(events) })
	eventually(t, 10*time.Second, "old rows of the removed destination dead-lettered", func() bool {
		return len(b.deadLetters()) == oldGone
	})
	for _, d := range b.deadLetters() {
		if d.Destination != "gone" || !strings.HasPrefix(d.MessageID, "gone-old-") || !strings.Contains(d.Reason, "unknown destination") {
			t.Errorf("dead letter %+v, want only old rows of the removed destination, with the reason", d)
		}
	}
	time.Sleep(1500 * time.Millisecond) // another round of the sweep
	if n := b.pending(); n != int64(newGone) {
		t.Errorf("%d rows pending, want the %d recent rows of the removed destination", n, newGone)
	}
	h.checkOrder(t)
}
