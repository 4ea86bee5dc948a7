package deadletter

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/ordo-pipeline/ordo/internal/cli"
	"github.com/ordo-pipeline/ordo/internal/pgtest"
	"github.com/ordo-pipeline/ordo/rebalance"
	"github.com/ordo-pipeline/ordo/schema"
	"github.com/ordo-pipeline/ordo/shard"
)

// testCluster is a bootstrapped cluster of two throwaway nodes; node1
// also holds the catalog.
type testCluster struct {
	catalog string
	urls    map[string]string // node name → url
	conns   map[string]*pgx.Conn
	snap    *shard.Snapshot
}

func bootstrap(t *testing.T, shards int) *testCluster {
	t.Helper()
	nodes := pgtest.Start(t, 2)
	tc := &testCluster{catalog: nodes[0].URL(), urls: map[string]string{"node1": nodes[0].URL(), "node2": nodes[1].URL()}, conns: map[string]*pgx.Conn{}}
	cfg, err := cli.ParseEnv[rebalance.Config](map[string]string{
		"ORDO_CATALOG_URL": tc.catalog, "ORDO_SHARDS": fmt.Sprint(shards),
		"ORDO_NODES": "node1=" + tc.urls["node1"] + ",node2=" + tc.urls["node2"],
	})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	var out strings.Builder
	if err := rebalance.Run(ctx, &cfg, rebalance.Options{Out: &out, Logger: slog.New(slog.DiscardHandler)}); err != nil {
		t.Fatalf("bootstrap: %v\n%s", err, out.String())
	}
	for name, url := range tc.urls {
		tc.conns[name] = pgtest.Connect(t, url)
	}
	tc.reload(t)
	return tc
}

func (tc *testCluster) reload(t *testing.T) {
	t.Helper()
	c, err := Open(t.Context(), tc.catalog)
	if err != nil {
		t.Fatal(err)
	}
	tc.snap = c.snap
}

func (tc *testCluster) open(t *testing.T) *Cluster {
	t.Helper()
	c, err := Open(t.Context(), tc.catalog)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// shardOn returns the shards node holds.
func (tc *testCluster) shardsOn(node string) []int {
	var out []int
	for _, p := range tc.snap.Shards {
		if p.Node == node {
			out = append(out, p.Shard)
		}
	}
	return out
}

// keyFor returns an ordering key that hashes to shard s.
func (tc *testCluster) keyFor(t *testing.T, s int, prefix string) string {
	t.Helper()
	for i := range 10000 {
		k := fmt.Sprintf("%s-%d", prefix, i)
		if shard.For(k, tc.snap.Count()) == s {
			return k
		}
	}
	t.Fatalf("no key for shard %d", s)
	return ""
}

// pend writes a pending row for key into its shard's table on node.
func (tc *testCluster) pend(t *testing.T, node, key, dest, msg string) {
	t.Helper()
	s := shard.For(key, tc.snap.Count())
	if _, err := tc.conns[node].Exec(t.Context(), `INSERT INTO `+schema.Table(s).Sanitize()+`
		(ordering_key, source_id, destination_id, message_id, received_at, event) VALUES ($1, 'web', $2, $3, now(), $4)`,
		key, dest, msg, fmt.Sprintf(`{"messageId":%q,"userId":%q}`, msg, key)); err != nil {
		t.Fatal(err)
	}
}

// dead writes a dead letter for key on node, as a worker would: with its
// row's (epoch, seq), its last status and response.
func (tc *testCluster) dead(t *testing.T, node, key, dest, msg string, status *int, reason string, failedAgo time.Duration) {
	t.Helper()
	s := shard.For(key, tc.snap.Count())
	if _, err := tc.conns[node].Exec(t.Context(), `INSERT INTO ordo.dead_letters (shard, epoch, seq, ordering_key, source_id,
		destination_id, message_id, received_at, event, attempts, last_status, last_response, reason, failed_at)
		VALUES ($1, 1, nextval('ordo.event_seq'), $2, 'web', $3, $4, now() - interval '1 day', $5, 3, $6, 'bad request: no', $7, now() - $8::interval)`,
		s, key, dest, msg, fmt.Sprintf(`{"messageId":%q,"userId":%q}`, msg, key), status, reason, failedAgo.String()); err != nil {
		t.Fatal(err)
	}
}

// pending returns the message ids waiting in shard s's table on node, in
// delivery order, and their attempts.
func (tc *testCluster) pending(t *testing.T, node string, s int) []string {
	t.Helper()
	rows, err := tc.conns[node].Query(t.Context(), `SELECT message_id || ':' || attempts || ':' || (received_at > now() - interval '1 minute')
		FROM `+schema.Table(s).Sanitize()+` ORDER BY epoch, seq`)
	if err != nil {
		t.Fatal(err)
	}
	ids, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		t.Fatal(err)
	}
	return ids
}

func (tc *testCluster) deadCount(t *testing.T, node string) int {
	t.Helper()
	var n int
	if err := tc.conns[node].QueryRow(t.Context(), `SELECT count(*) FROM ordo.dead_letters`).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

func intp(n int) *int { return &n }
