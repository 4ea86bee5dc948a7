package rebalance

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/ordo-pipeline/ordo/internal/buildtest"

	"github.com/ordo-pipeline/ordo/schema"
)

// fill writes perShard rows to every shard through the placement map, and
// one dead letter per shard; it returns each shard's message ids in the
// order written.
func (b *testBundle) fill(t *testing.T, perShard int) map[int][]string {
	t.Helper()
	written := map[int][]string{}
	for _, node := range b.byNode(t, b.snapshot(t)) {
		for _, p := range node.shards {
			for j := range perShard {
				id := fmt.Sprintf("m-%d-%d", p.Shard, j)
				_, err := node.conn.Exec(t.Context(), "INSERT INTO "+schema.Table(p.Shard).Sanitize()+
					` (ordering_key, source_id, destination_id, message_id, received_at, event) VALUES ($1, 'web', 'hook', $2, now(), $3)`,
					fmt.Sprintf("user-%d", j%3), id, fmt.Sprintf(`{"n": %d, "messageId": %q}`, j, id))
				if err != nil {
					t.Fatal(err)
				}
				written[p.Shard] = append(written[p.Shard], id)
			}
			_, err := node.conn.Exec(t.Context(), `INSERT INTO ordo.dead_letters (shard, epoch, seq, ordering_key, source_id, destination_id, message_id, received_at, event, attempts, last_status, last_response, reason)
				VALUES ($1, $2, 0, 'k', 'web', 'hook', $3, now(), '{}', 1, 400, 'bad', 'status 400')`, p.Shard, p.Epoch, fmt.Sprintf("dead-%d", p.Shard))
			if err != nil {
				t.Fatal(err)
			}
		}
	}
	return written
}

// checkRows checks that every shard's rows are on its node, each exactly
// once, in the order written, with its dead letter beside them.
func (b *testBundle) checkRows(t *testing.T, written map[int][]string) {
	t.Helper()
	for _, node := range b.byNode(t, b.snapshot(t)) {
		name, conn := node.name, node.conn
		for _, p := range node.shards {
			rows, err := conn.Query(t.Context(), "SELECT message_id FROM "+schema.Table(p.Shard).Sanitize()+" ORDER BY epoch, seq")
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for rows.Next() {
				var id string
				if err := rows.Scan(&id); err != nil {
					t.Fatal(err)
				}
				got = append(got, id)
			}
			if !slices.Equal(got, written[p.Shard]) {
				t.Errorf("shard %d on %s holds %v, want %v", p.Shard, name, got, written[p.Shard])
			}
			var dead int
			if err := conn.QueryRow(t.Context(), `SELECT count(*) FROM ordo.dead_letters WHERE shard = $1 AND message_id = $2`, p.Shard, fmt.Sprintf("dead-%d", p.Shard)).Scan(&dead); err != nil || dead != 1 {
				t.Errorf("shard %d on %s: %d dead letters (err %v), want 1", p.Shard, name, dead, err)
			}
		}
		var strays int
		if err := conn.QueryRow(t.Context(), `SELECT count(*) FROM ordo.dead_letters`).Scan(&strays); err == nil && strays != len(node.shards) {
			t.Errorf("%s holds %d dead letters, want %d (one per shard it holds)", name, strays, len(node.shards))
		}
	}
}

func TestMoveUpAndDown(t *testing.T) {
	t.Parallel()
	b := setup(t, 3)
	b.run(t, b.config(t, 12, 1, 2))
	written := b.fill(t, 20)

	// Scale out to three nodes.
	out := b.run(t, b.config(t, 12, 1, 2, 3))
	t.Log(out)
	if !strings.Contains(out, "plan: 4 moves") {
		t.Errorf("scale out printed %q, want 4 moves", out)
	}
	b.checkPlacement(t, 1, 2, 3)
	b.checkRows(t, written)

	// Scale in, removing node1 (which also holds the catalog).
	b.run(t, b.config(t, 12, 2, 3))
	b.checkPlacement(t, 2, 3)
	b.checkRows(t, written)

	r, _ := b.status(t)
	for _, n := range r.Nodes {
		if n.Name == "node1" && (n.State != "detached" || n.Shards != 0) {
			t.Errorf("node1 after scale-in: %+v, want detached with 0 shards", n)
		}
	}
	conn := connect(t, b.nodes[0].URL())
	tables, err := schema.List(t.Context(), conn)
	if err != nil || len(tables) != 0 {
		t.Errorf("node1 still has shard tables %v (err %v)", tables, err)
	}

	// Converged: a re-run moves nothing; dry run says so.
	var dry strings.Builder
	if err := Run(t.Context(), b.config(t, 12, 2, 3), Options{DryRun: true, Out: &dry}); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(dry.String(), "nothing to move") {
		t.Errorf("dry run on a converged cluster said %q", dry.String())
	}
}

func TestDryRunChangesNothing(t *testing.T) {
	t.Parallel()
	b, _ := setupFilled(t, 2, 8, 3)
	before := b.snapshot(t)
	var out strings.Builder
	if err := Run(t.Context(), b.config(t, 8, 1, 2), Options{DryRun: true, Out: &out}); err != nil {
		t.Fatal(err)
	}
	t.Log(out.String())
	for _, want := range []string{"add node node2", "plan: 4 moves", "PENDING EVENTS", "total pending events to copy: 12"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("dry run output lacks %q:\n%s", want, out.String())
		}
	}
	after := b.snapshot(t)
	if len(after.Nodes) != 1 || !slices.Equal(before.Shards, after.Shards) {
		t.Errorf("dry run changed the catalog: %+v → %+v", before, after)
	}
}

// runProcess runs the rebalance binary with env and returns how it ended.
func runProcess(t *testing.T, env []string, args ...string) (string, *os.ProcessState) {
	t.Helper()
	bin := buildtest.Program(t, "rebalance")
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, args...)
	cmd.Env = append(os.Environ(), env...)
	out, _ := cmd.CombinedOutput()
	return string(out), cmd.ProcessState
}

// runKilled runs the rebalance binary with env and the fail point fp,
// which must kill it.
func runKilled(t *testing.T, env []string, fp string) {
	t.Helper()
	out, ps := runProcess(t, append(slices.Clip(env), "ORDO_FAILPOINTS="+fp))
	if ws, ok := ps.Sys().(syscall.WaitStatus); !ok || !ws.Signaled() || ws.Signal() != syscall.SIGKILL {
		t.Fatalf("rebalance with fail point %s: %v, want killed by SIGKILL\n%s", fp, ps, out)
	}
}

// TestFailPoints kills rebalance at every step boundary of a move, runs it
// again, and checks that the work finishes with every row in place once
// and in order.
func TestFailPoints(t *testing.T) {
	t.Parallel()
	points := []string{
		"rebalance.after_plan",
		"move.after_" + StepTargetReady,
		"move.after_" + StepFenced,
		"move.after_" + StepFlipped,
		"move.after_" + StepCopied,
		"move.after_" + StepSourceDropped,
		"move.after_" + StepDone,
	}
	for _, fp := range points {
		t.Run(fp, func(t *testing.T) {
			t.Parallel()
			b, written := setupFilled(t, 2, 6, 10)
			env := []string{"ORDO_CATALOG_URL=" + b.catalog, "ORDO_NODES=" + b.nodesEnv(1, 2), "ORDO_SHARDS=6", "ORDO_LOG_LEVEL=warn"}

			runKilled(t, env, fp)
			out, ps := runProcess(t, env)
			if ps.ExitCode() != 0 {
				t.Fatalf("re-run after %s: exit %d\n%s", fp, ps.ExitCode(), out)
			}
			b.checkPlacement(t, 1, 2)
			b.checkRows(t, written)

			out, ps = runProcess(t, env, "status")
			if ps.ExitCode() != 0 || !strings.Contains(out, "moves in progress: none") {
				t.Errorf("status after %s: exit %d\n%s", fp, ps.ExitCode(), out)
			}
		})
	}
}

// TestOpenMoveToRemovedNode kills a scale-out mid-move, then asks for the
// new node to be removed again: the open move finishes first, then its
// shard is planned back, and the run converges with every row in place.
func TestOpenMoveToRemovedNode(t *testing.T) {
	t.Parallel()
	b, written := setupFilled(t, 2, 4, 5)
	base := []string{"ORDO_CATALOG_URL=" + b.catalog, "ORDO_SHARDS=4", "ORDO_LOG_LEVEL=warn"}

	runKilled(t, append(base, "ORDO_NODES="+b.nodesEnv(1, 2)), "move.after_"+StepFlipped)
	out, ps := runProcess(t, append(base, "ORDO_NODES="+b.nodesEnv(1)))
	if ps.ExitCode() != 0 {
		t.Fatalf("scale back in: exit %d\n%s", ps.ExitCode(), out)
	}
	b.checkPlacement(t, 1)
	b.checkRows(t, written)
}
