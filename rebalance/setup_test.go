package rebalance

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/ordo-pipeline/ordo/internal/pgtest"
	"github.com/ordo-pipeline/ordo/schema"
	"github.com/ordo-pipeline/ordo/shard"
)

// testBundle is a cluster of throwaway nodes; node 1 also holds the
// catalog.
type testBundle struct {
	nodes   []*pgtest.Cluster
	catalog string
}

func setup(t *testing.T, n int) *testBundle {
	t.Helper()
	nodes := pgtest.Start(t, n)
	return &testBundle{nodes: nodes, catalog: nodes[0].URL()}
}

// setupFilled starts n nodes, bootstraps shards on node 1 alone and
// writes perShard rows to every shard (see fill): a cluster to scale
// out. It returns the rows written.
func setupFilled(t *testing.T, n, shards, perShard int) (*testBundle, map[int][]string) {
	t.Helper()
	b := setup(t, n)
	b.run(t, b.config(t, shards, 1))
	return b, b.fill(t, perShard)
}

// nodesEnv returns ORDO_NODES for the nodes with the given 1-based
// numbers.
func (b *testBundle) nodesEnv(which ...int) string {
	var parts []string
	for _, i := range which {
		parts = append(parts, fmt.Sprintf("node%d=%s", i, b.nodes[i-1].URL()))
	}
	return strings.Join(parts, ",")
}

func (b *testBundle) config(t *testing.T, shards int, which ...int) *Config {
	t.Helper()
	cfg := &Config{CatalogURL: b.catalog, Nodes: b.nodesEnv(which...), Shards: shards}
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	return cfg
}

func (b *testBundle) run(t *testing.T, cfg *Config) string {
	t.Helper()
	var out strings.Builder
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	defer cancel()
	if err := Run(ctx, cfg, Options{Out: &out, Logger: testLogger(t)}); err != nil {
		t.Fatalf("Run: %v\noutput:\n%s", err, out.String())
	}
	return out.String()
}

func (b *testBundle) snapshot(t *testing.T) *shard.Snapshot {
	t.Helper()
	conn, err := pgx.Connect(t.Context(), b.catalog)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())
	snap, err := shard.Load(t.Context(), conn)
	if err != nil {
		t.Fatal(err)
	}
	return snap
}

// status returns the cluster's status report and its printed form.
func (b *testBundle) status(t *testing.T) (*Report, string) {
	t.Helper()
	r, err := Status(t.Context(), b.catalog)
	if err != nil {
		t.Fatal(err)
	}
	var sb strings.Builder
	if err := r.Print(&sb); err != nil {
		t.Fatal(err)
	}
	return r, sb.String()
}

func connect(t *testing.T, url string) *pgx.Conn {
	t.Helper()
	conn, err := pgx.Connect(t.Context(), url)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close(context.Background()) })
	return conn
}

// nodeShards is a node of the bundle, a session with it, and the shards
// a snapshot puts on it.
type nodeShards struct {
	name   string
	conn   *pgx.Conn
	shards []shard.Placement
}

// byNode returns every node of the bundle, in order, with the shards snap
// puts on it.
func (b *testBundle) byNode(t *testing.T, snap *shard.Snapshot) []nodeShards {
	t.Helper()
	out := make([]nodeShards, len(b.nodes))
	for i, c := range b.nodes {
		out[i] = nodeShards{name: fmt.Sprintf("node%d", i+1), conn: connect(t, c.URL())}
		for _, p := range snap.Shards {
			if p.Node == out[i].name {
				out[i].shards = append(out[i].shards, p)
			}
		}
	}
	return out
}

// checkPlacement checks the catalog against the tables on every node:
// each shard active, on exactly one node, whose table has the shard's
// epoch as its default, and spread ⌊S/N⌋..⌈S/N⌉ over the nodes listed.
func (b *testBundle) checkPlacement(t *testing.T, which ...int) *shard.Snapshot {
	t.Helper()
	snap := b.snapshot(t)
	s, n := snap.Count(), len(which)
	counts := map[string]int{}
	for _, p := range snap.Shards {
		if p.State != shard.StateActive {
			t.Errorf("shard %d is %s, want active", p.Shard, p.State)
		}
		counts[p.Node]++
	}
	for _, i := range which {
		name := fmt.Sprintf("node%d", i)
		if c := counts[name]; c < s/n || c > (s+n-1)/n {
			t.Errorf("%s holds %d shards, want %d..%d", name, c, s/n, (s+n-1)/n)
		}
		delete(counts, name)
	}
	for name, c := range counts {
		t.Errorf("unlisted node %s holds %d shards", name, c)
	}
	for _, node := range b.byNode(t, snap) {
		tables, err := schema.List(t.Context(), node.conn)
		if err != nil {
			if strings.Contains(err.Error(), "does not exist") {
				continue
			}
			t.Fatal(err)
		}
		for _, sh := range tables {
			if snap.Shards[sh].Node != node.name {
				t.Errorf("%s has a table for shard %d, which the catalog puts on %s", node.name, sh, snap.Shards[sh].Node)
			}
		}
		for _, p := range node.shards {
			var def string
			err := node.conn.QueryRow(t.Context(), `SELECT pg_get_expr(d.adbin, d.adrelid) FROM pg_attrdef d
				JOIN pg_attribute a ON a.attrelid = d.adrelid AND a.attnum = d.adnum
				WHERE d.adrelid = to_regclass($1) AND a.attname = 'epoch'`, schema.Table(p.Shard).Sanitize()).Scan(&def)
			if err != nil {
				t.Errorf("shard %d on %s: %v", p.Shard, node.name, err)
				continue
			}
			if def != fmt.Sprint(p.Epoch) {
				t.Errorf("shard %d on %s: table epoch default %s, want %d", p.Shard, node.name, def, p.Epoch)
			}
		}
	}
	return snap
}
