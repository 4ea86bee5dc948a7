package rebalance

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/ordo-pipeline/ordo/internal/dsn"
	"github.com/ordo-pipeline/ordo/migrations"
	"github.com/ordo-pipeline/ordo/shard"
)

// Options are the command-line choices of one rebalance run.
type Options struct {
	// DryRun prints the plan and changes nothing.
	DryRun bool
	// Out receives the plan and progress meant for the operator.
	Out io.Writer
	// Logger defaults to a logger that discards.
	Logger *slog.Logger
}

// Run converges the cluster to cfg's nodes: it bootstraps an empty
// catalog, and otherwise migrates the listed nodes and makes sure each
// shard's table exists on its node. It returns nil once the cluster is
// converged.
func Run(ctx context.Context, cfg *Config, opts Options) error {
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	out := opts.Out
	if out == nil {
		out = io.Discard
	}
	if !opts.DryRun {
		log.Info("migrating catalog", "url", dsn.Redact(cfg.CatalogURL))
		if err := migrations.Catalog(ctx, cfg.CatalogURL, log); err != nil {
			return fmt.Errorf("catalog: %w", err)
		}
	}
	pool, err := pgxpool.New(ctx, cfg.CatalogURL)
	if err != nil {
		return fmt.Errorf("catalog: %w", err)
	}
	defer pool.Close()
	return withCatalogLock(ctx, pool, func(conn *pgx.Conn) error {
		snap, err := shard.Load(ctx, conn)
		switch {
		case errors.Is(err, shard.ErrNotBootstrapped) || (opts.DryRun && isUndefinedTable(err)):
			if opts.DryRun {
				fmt.Fprintf(out, "plan: bootstrap a new cluster of %d shards on %d nodes:\n", cfg.Shards, len(cfg.DesiredNodes()))
				printBootstrapPlan(out, cfg)
				return nil
			}
			log.Info("bootstrapping cluster", "shards", cfg.Shards, "nodes", len(cfg.DesiredNodes()))
			if err := bootstrap(ctx, conn, cfg, log); err != nil {
				return fmt.Errorf("bootstrap: %w", err)
			}
			fmt.Fprintf(out, "bootstrapped: %d shards on %d nodes\n", cfg.Shards, len(cfg.DesiredNodes()))
			return nil
		case err != nil:
			return fmt.Errorf("loading shard map: %w", err)
		}
		if cfg.Shards != snap.Count() {
			log.Info("ORDO_SHARDS only counts at bootstrap; keeping the cluster's shard count", "ORDO_SHARDS", cfg.Shards, "cluster_shards", snap.Count())
		}
		added, removed := nodeDiff(cfg.DesiredNodes(), snap)
		if len(added) > 0 || len(removed) > 0 {
			return fmt.Errorf("%w: it %s; moving shards between nodes is not available yet", ErrNodesChanged, describeDiff(added, removed))
		}
		if opts.DryRun {
			fmt.Fprintln(out, "plan: nothing to move; the cluster is converged")
			return nil
		}
		if err := updateURLs(ctx, conn, cfg.DesiredNodes(), snap, log); err != nil {
			return err
		}
		if err := migrateNodes(ctx, cfg.DesiredNodes(), log); err != nil {
			return err
		}
		if err := ensureTables(ctx, snap, cfg.DesiredNodes()); err != nil {
			return err
		}
		fmt.Fprintf(out, "converged: %d shards on %d nodes\n", snap.Count(), len(cfg.DesiredNodes()))
		return nil
	})
}

// updateURLs records new URLs for known nodes (rotated credentials, a
// moved host).
func updateURLs(ctx context.Context, conn *pgx.Conn, nodes []dsn.Node, snap *shard.Snapshot, log *slog.Logger) error {
	for _, n := range nodes {
		if cur, ok := snap.Nodes[n.Name]; ok && cur.URL != n.URL {
			log.Info("updating node url", "node", n.Name, "url", dsn.Redact(n.URL))
			if _, err := conn.Exec(ctx, `UPDATE ordo_catalog.nodes SET url = $2, updated_at = now() WHERE name = $1`, n.Name, n.URL); err != nil {
				return fmt.Errorf("updating node %s: %w", n.Name, err)
			}
		}
	}
	return nil
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

func isUndefinedTable(err error) bool {
	var pgErr *pgconn.PgError
	return errors.As(err, &pgErr) && pgErr.Code == "42P01"
}
