package rebalance

import (
	"context"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ordo-pipeline/ordo/schema"
)

// TestFailedMoveRollsBack blocks the fence with a transaction that never
// ends, as a stuck writer would: the move gives up before the cut-over and
// is rolled back, the shard stays where it was and takes writes, rebalance
// says so and exits with an error, and once the blocker is gone a re-run
// finishes the work.
//
// Not parallel: it shortens the package's retry settings while it runs.
func TestFailedMoveRollsBack(t *testing.T) {
	defer func(a, b int, c time.Duration) { moveMaxAttempts, fenceAttempts, fenceLockTimeout = a, b, c }(moveMaxAttempts, fenceAttempts, fenceLockTimeout)
	moveMaxAttempts, fenceAttempts, fenceLockTimeout = 2, 2, 100*time.Millisecond

	b, written := setupFilled(t, 2, 2, 5)

	blocker := connect(t, b.nodes[0].URL())
	tx, err := blocker.Begin(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tx.Exec(t.Context(), "LOCK TABLE ordo.shard_0, ordo.shard_1 IN ROW EXCLUSIVE MODE"); err != nil {
		t.Fatal(err)
	}
	var out strings.Builder
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	err = Run(ctx, b.config(t, 2, 1, 2), Options{Out: &out, Logger: testLogger(t)})
	if err == nil || !strings.Contains(err.Error(), "rolled back") {
		t.Fatalf("Run = %v, want a failed move that was rolled back\n%s", err, out.String())
	}
	t.Log(err)

	snap := b.snapshot(t)
	for _, p := range snap.Shards {
		if p.Node != "node1" || p.Epoch != 1 || p.State != "active" {
			t.Errorf("shard %d after a rolled-back move: %+v, want active on node1 at epoch 1", p.Shard, p)
		}
	}
	if err := tx.Rollback(t.Context()); err != nil {
		t.Fatal(err)
	}
	for sh := range 2 {
		if fenced, err := schema.IsFencedTable(t.Context(), blocker, sh); err != nil || fenced {
			t.Errorf("shard %d still fenced after rollback (err %v)", sh, err)
		}
	}
	target := connect(t, b.nodes[1].URL())
	if tables, err := schema.List(t.Context(), target); err != nil || len(tables) != 0 {
		t.Errorf("target kept tables %v after rollback (err %v)", tables, err)
	}
	_, status := b.status(t)
	if !strings.Contains(status, "moves in progress: none") || !strings.Contains(status, "rolled back in the last day: 1") {
		t.Errorf("status after a rolled-back move:\n%s", status)
	}

	b.run(t, b.config(t, 2, 1, 2))
	b.checkPlacement(t, 1, 2)
	b.checkRows(t, written)
}

// TestConcurrentRuns starts two rebalance runs at once: both succeed, each
// shard moves once, and every row is in place once.
func TestConcurrentRuns(t *testing.T) {
	t.Parallel()
	b, written := setupFilled(t, 3, 12, 10)

	var wg sync.WaitGroup
	errs := make([]error, 2)
	for i := range errs {
		wg.Go(func() {
			ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
			defer cancel()
			errs[i] = Run(ctx, b.config(t, 12, 1, 2, 3), Options{Logger: testLogger(t), Concurrency: 2, PerSource: 2})
		})
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Errorf("run %d: %v", i+1, err)
		}
	}
	b.checkPlacement(t, 1, 2, 3)
	b.checkRows(t, written)
	conn := connect(t, b.catalog)
	var moves, shards int
	if err := conn.QueryRow(t.Context(), `SELECT count(*), count(DISTINCT shard) FROM ordo_catalog.moves WHERE state = 'done'`).Scan(&moves, &shards); err != nil {
		t.Fatal(err)
	}
	if moves != 8 || shards != 8 {
		t.Errorf("%d moves done for %d shards, want 8 moves of 8 different shards", moves, shards)
	}
}
