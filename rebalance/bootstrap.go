package rebalance

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"sync"

	"github.com/jackc/pgx/v5"
	"github.com/ordo-pipeline/ordo/internal/dsn"
	"github.com/ordo-pipeline/ordo/migrations"
	"github.com/ordo-pipeline/ordo/schema"
	"github.com/ordo-pipeline/ordo/shard"
)

// initialPlacement spreads count shards over nodes round-robin, so every
// node holds ⌊count/N⌋ or ⌈count/N⌉ of them.
func initialPlacement(count int, nodes []dsn.Node) []string {
	out := make([]string, count)
	for i := range out {
		out[i] = nodes[i%len(nodes)].Name
	}
	return out
}

// nodeMigrator applies the node migrations, to each node at most once in
// a run: the run's rounds and its moves to a node all ask for them.
type nodeMigrator struct {
	log  *slog.Logger
	done sync.Map // URLs migrated
}

// all migrates every node of nodes.
func (nm *nodeMigrator) all(ctx context.Context, nodes []dsn.Node) error {
	for _, n := range nodes {
		if err := nm.one(ctx, n.Name, n.URL); err != nil {
			return err
		}
	}
	return nil
}

// one migrates the node name at url, unless this run did already.
func (nm *nodeMigrator) one(ctx context.Context, name, url string) error {
	if _, ok := nm.done.Load(url); ok {
		return nil
	}
	nm.log.Info("migrating node", "node", name, "url", dsn.Redact(url))
	if err := migrations.Node(ctx, url); err != nil {
		return fmt.Errorf("node %s: %w", name, err)
	}
	nm.done.Store(url, true)
	return nil
}

// ensureTables creates the table of every shard placed on each node, at
// the shard's epoch. Tables that exist are left alone.
func ensureTables(ctx context.Context, snap *shard.Snapshot, nodes []dsn.Node) error {
	for _, n := range nodes {
		conn, err := connectNode(ctx, n.URL)
		if err != nil {
			return fmt.Errorf("connecting to node %s: %w", n.Name, err)
		}
		for _, p := range snap.Shards {
			if p.Node != n.Name {
				continue
			}
			if err := schema.Create(ctx, conn, p.Shard, p.Epoch); err != nil {
				conn.Close(ctx)
				return fmt.Errorf("node %s: %w", n.Name, err)
			}
		}
		conn.Close(ctx)
	}
	return nil
}

// bootstrap creates the cluster in an empty catalog: it migrates every
// node, creates each shard's table on its node, then records nodes and
// shards in one catalog transaction. Killed before that commit, a re-run
// starts again; the tables already made are reused.
func bootstrap(ctx context.Context, conn *pgx.Conn, cfg *Config, nm *nodeMigrator, log *slog.Logger) error {
	nodes := cfg.DesiredNodes()
	if err := nm.all(ctx, nodes); err != nil {
		return err
	}
	placement := initialPlacement(cfg.Shards, nodes)
	snap := &shard.Snapshot{Shards: make([]shard.Placement, cfg.Shards)}
	for i, n := range placement {
		snap.Shards[i] = shard.Placement{Shard: i, Node: n, Epoch: 1, State: shard.StateActive}
	}
	log.Info("creating shard tables", "shards", cfg.Shards, "nodes", len(nodes))
	if err := ensureTables(ctx, snap, nodes); err != nil {
		return err
	}
	return pgx.BeginFunc(ctx, conn, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `INSERT INTO ordo_catalog.cluster (shard_count) VALUES ($1)`, cfg.Shards); err != nil {
			return fmt.Errorf("recording cluster: %w", err)
		}
		for _, n := range nodes {
			if _, err := tx.Exec(ctx, `INSERT INTO ordo_catalog.nodes (name, url) VALUES ($1, $2)`, n.Name, n.URL); err != nil {
				return fmt.Errorf("recording node %s: %w", n.Name, err)
			}
		}
		rows := make([][]any, len(placement))
		for i, n := range placement {
			rows[i] = []any{int32(i), n}
		}
		if _, err := tx.CopyFrom(ctx, pgx.Identifier{"ordo_catalog", "shards"}, []string{"shard", "node"}, pgx.CopyFromRows(rows)); err != nil {
			return fmt.Errorf("recording shards: %w", err)
		}
		return nil
	})
}

func printBootstrapPlan(out io.Writer, cfg *Config) {
	counts := map[string]int{}
	for _, n := range initialPlacement(cfg.Shards, cfg.DesiredNodes()) {
		counts[n]++
	}
	for _, n := range cfg.DesiredNodes() {
		fmt.Fprintf(out, "  %-20s %5d shards  %s\n", n.Name, counts[n.Name], dsn.Redact(n.URL))
	}
}
