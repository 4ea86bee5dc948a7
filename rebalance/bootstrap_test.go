package rebalance

import (
	"strings"
	"testing"

	"github.com/ordo-pipeline/ordo/migrations"
)

func TestBootstrapThreeNodes(t *testing.T) {
	t.Parallel()
	b := setup(t, 3)
	cfg := b.config(t, 16, 1, 2, 3)

	out := b.run(t, cfg)
	if !strings.Contains(out, "bootstrapped: 16 shards on 3 nodes") {
		t.Errorf("first run said %q", out)
	}
	before := b.checkPlacement(t, 1, 2, 3)

	// Re-running with the same nodes changes nothing.
	out = b.run(t, cfg)
	if !strings.Contains(out, "converged") {
		t.Errorf("second run said %q", out)
	}
	after := b.checkPlacement(t, 1, 2, 3)
	for i := range before.Shards {
		if before.Shards[i] != after.Shards[i] {
			t.Errorf("re-run changed shard %d: %+v → %+v", i, before.Shards[i], after.Shards[i])
		}
	}

	// A different ORDO_SHARDS after bootstrap is ignored.
	cfg.Shards = 64
	b.run(t, cfg)
	if got := b.snapshot(t).Count(); got != 16 {
		t.Errorf("shard count = %d after re-run with ORDO_SHARDS=64, want 16", got)
	}
}

func TestStatus(t *testing.T) {
	t.Parallel()
	b := setup(t, 2)
	b.run(t, b.config(t, 8, 1, 2))

	// Two pending rows on the node holding shard 0.
	snap := b.snapshot(t)
	p := snap.Shards[0]
	node := b.nodes[0]
	if p.Node == "node2" {
		node = b.nodes[1]
	}
	conn := connect(t, node.URL())
	for range 2 {
		if _, err := conn.Exec(t.Context(), `INSERT INTO ordo.shard_0 (ordering_key, source_id, destination_id, message_id, received_at, event)
			VALUES ('k', 's', 'd', gen_random_uuid()::text, now(), '{}')`); err != nil {
			t.Fatal(err)
		}
	}

	r, out := b.status(t)
	t.Log(out)
	if !strings.Contains(out, "cluster: 8 shards on 2 nodes") {
		t.Errorf("status lacks the cluster line:\n%s", out)
	}
	for _, n := range r.Nodes {
		if n.Shards != 4 || n.State != "active" {
			t.Errorf("node %s: %d shards, state %s; want 4, active", n.Name, n.Shards, n.State)
		}
		want := int64(0)
		if n.Name == p.Node {
			want = 2
		}
		if n.Pending != want {
			t.Errorf("node %s: pending %d, want %d", n.Name, n.Pending, want)
		}
		if strings.Contains(n.URL, "password") {
			t.Errorf("status shows a password: %s", n.URL)
		}
	}
	if !strings.Contains(out, "moves in progress: none") {
		t.Errorf("status lacks the moves line:\n%s", out)
	}
}

func TestMigrationsTwice(t *testing.T) {
	t.Parallel()
	b := setup(t, 1)
	ctx := t.Context()
	for i := range 2 {
		if err := migrations.Catalog(ctx, b.catalog, nil); err != nil {
			t.Fatalf("catalog migration %d: %v", i+1, err)
		}
		if err := migrations.Node(ctx, b.catalog); err != nil {
			t.Fatalf("node migration %d: %v", i+1, err)
		}
	}
	conn := connect(t, b.catalog)
	for _, catalog := range []bool{true, false} {
		want, err := migrations.Latest(catalog)
		if err != nil || want < 1 {
			t.Fatalf("Latest(catalog=%v) = %d, %v", catalog, want, err)
		}
		v, dirty, err := migrations.Versions(ctx, conn, catalog)
		if err != nil || v != want || dirty {
			t.Errorf("Versions(catalog=%v) = %d, %v, %v; want %d, false, nil", catalog, v, dirty, err, want)
		}
	}
	var riverTables int
	if err := conn.QueryRow(ctx, `SELECT count(*) FROM pg_tables WHERE schemaname = $1 AND tablename = 'river_job'`, migrations.RiverSchema).Scan(&riverTables); err != nil || riverTables != 1 {
		t.Errorf("river_job in %s: count %d, err %v; want 1", migrations.RiverSchema, riverTables, err)
	}
}
