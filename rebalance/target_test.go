package rebalance

import (
	"testing"

	"github.com/ordo-pipeline/ordo/schema"
)

// TestTargetRefusesWritesBeforeTheFlip kills a move once its target table
// is made: a gateway whose map predates an earlier move of the shard away
// from the target node, and so still places the shard there, must be
// refused by the target table as stale. Had it been taken, its rows (epoch
// e+1) would be delivered after newer rows written on the source at epoch
// e, and a rollback would drop them although they were answered 200.
func TestTargetRefusesWritesBeforeTheFlip(t *testing.T) {
	t.Parallel()
	b := setup(t, 2)
	// Shard 1 starts on node2 and moves to node1: a gateway that still has
	// a map from before shard 1 last left node1 would write it there.
	b.run(t, b.config(t, 2, 1, 2))
	snap := b.snapshot(t)
	s := 1 // on node2 after the round-robin bootstrap
	if snap.Shards[s].Node != "node2" {
		t.Fatalf("shard %d is on %s, want node2", s, snap.Shards[s].Node)
	}
	written := b.fill(t, 3)
	env := []string{"ORDO_CATALOG_URL=" + b.catalog, "ORDO_NODES=" + b.nodesEnv(1), "ORDO_LOG_LEVEL=warn"}
	runKilled(t, env, "move.after_"+StepTargetReady)
	target := connect(t, b.nodes[0].URL())
	_, err := target.Exec(t.Context(), "INSERT INTO "+schema.Table(s).Sanitize()+
		` (ordering_key, source_id, destination_id, message_id, received_at, event) VALUES ('k', 'web', 'hook', 'stale', now(), '{}')`)
	if !schema.IsStale(err) {
		t.Fatalf("insert into the target before the flip: %v, want it refused as stale (fenced)", err)
	}
	out, ps := runProcess(t, env)
	if ps.ExitCode() != 0 {
		t.Fatalf("re-run: exit %d\n%s", ps.ExitCode(), out)
	}
	b.checkPlacement(t, 1)
	b.checkRows(t, written)
	// Once flipped, the target takes rows.
	if _, err := target.Exec(t.Context(), "INSERT INTO "+schema.Table(s).Sanitize()+
		` (ordering_key, source_id, destination_id, message_id, received_at, event) VALUES ('k', 'web', 'hook', 'fresh', now(), '{}')`); err != nil {
		t.Errorf("insert into shard %d after the move: %v", s, err)
	}
	for sh := range 2 {
		if fenced, err := schema.IsFencedTable(t.Context(), target, sh); err != nil || fenced {
			t.Errorf("shard %d on node1 fenced after the move (err %v)", sh, err)
		}
	}
}
