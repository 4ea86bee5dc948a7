package worker_test

import (
	"context"
	"os"
	"os/exec"
	"syscall"
	"testing"
	"time"

	"github.com/ordo-pipeline/ordo/internal/buildtest"
	"github.com/ordo-pipeline/ordo/schema"
	"github.com/ordo-pipeline/ordo/shard"
)

// TestWorkersHealAbandonedMoves kills rebalance with SIGKILL in the middle
// of a move, between the fence and the flip, and after the flip: nobody
// runs rebalance again, and still the move must finish (workers execute
// moves too), the shard take writes and be delivered, every event in
// order. The worker running at the time executes no moves, so that the
// move is rebalance's; a second one, as every worker by default, does.
func TestWorkersHealAbandonedMoves(t *testing.T) {
	t.Parallel()
	for _, step := range []string{"fenced", "flipped"} {
		t.Run(step, func(t *testing.T) {
			t.Parallel()
			h := newHook(t, nil)
			b := setupOn(t, 2, workspaceJSON("hook|1|"+fastRetry), map[string]*hook{"hook": h}, "n1")
			b.startWorker("ORDO_WORKER_MOVES=0")
			first := stream(10, 3, "a")
			b.insert("web", []string{"hook"}, first)
			eventually(t, 10*time.Second, "events delivered before the move", func() bool { return h.distinct() == len(first) })

			cmd := exec.Command(buildtest.Program(t, "rebalance"))
			cmd.Env = append(os.Environ(), "ORDO_CATALOG_URL="+b.catalogURL,
				"ORDO_NODES=n1="+b.nodeURLs["n1"]+",n2="+b.nodeURLs["n2"], "ORDO_LOG_LEVEL=warn",
				"ORDO_FAILPOINTS=move.after_"+step)
			out, _ := cmd.CombinedOutput()
			if ws, ok := cmd.ProcessState.Sys().(syscall.WaitStatus); !ok || !ws.Signaled() || ws.Signal() != syscall.SIGKILL {
				t.Fatalf("rebalance with a fail point: %v, want killed\n%s", cmd.ProcessState, out)
			}
			b.startWorker()
			catalog := b.connect(b.catalogURL)
			healed := eventually(t, 15*time.Second, "the abandoned move finished by the worker", func() bool {
				var open int
				err := catalog.QueryRow(context.Background(), `SELECT count(*) FROM ordo_catalog.moves WHERE state <> 'done'`).Scan(&open)
				return err == nil && open == 0
			})
			t.Logf("move abandoned at %s finished %s after rebalance died", step, healed.Round(time.Millisecond))

			snap, err := shard.Load(context.Background(), catalog)
			if err != nil {
				t.Fatal(err)
			}
			b.snap = snap
			for _, p := range snap.Shards {
				if p.State != shard.StateActive {
					t.Errorf("shard %d is %s after the move, want active", p.Shard, p.State)
				}
				conn := b.connect(b.nodeURLs[p.Node])
				if fenced, err := schema.IsFencedTable(context.Background(), conn, p.Shard); err != nil || fenced {
					t.Errorf("shard %d on %s is fenced after the move (err %v)", p.Shard, p.Node, err)
				}
			}
			second := stream(10, 3, "b")
			b.insert("web", []string{"hook"}, second)
			eventually(t, 10*time.Second, "events written after the move delivered", func() bool {
				return h.distinct() == len(first)+len(second)
			})
			h.checkOrder(t)
		})
	}
}

// TestIdleShardIsLetGoOfWhenItMoves flips an idle shard to 'moving', as a
// move's flip does: the worker must let go of its lock at once (the move's
// copy waits for it), not at its loop's next poll, which is long.
func TestIdleShardIsLetGoOfWhenItMoves(t *testing.T) {
	t.Parallel()
	h := newHook(t, nil)
	b := setup(t, 2, workspaceJSON("hook|1|"+fastRetry), map[string]*hook{"hook": h})
	w := b.startWorker("ORDO_WORKER_POLL=30s")
	eventually(t, 10*time.Second, "the worker holds both shards", func() bool { return w.owned() == 2 && b.shardLocks() == 2 })
	catalog := b.connect(b.catalogURL)
	if _, err := catalog.Exec(context.Background(), `UPDATE ordo_catalog.shards SET state = 'moving' WHERE shard = 0`); err != nil {
		t.Fatal(err)
	}
	took := eventually(t, 5*time.Second, "the moving shard's lock released", func() bool { return b.shardLocks() == 1 })
	t.Logf("let go %s after the flip", took.Round(time.Millisecond))
}
