package rebalance

import (
	"context"
	"errors"
	"fmt"
	"io"
	"text/tabwriter"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/ordo-pipeline/ordo/internal/dsn"
	"github.com/ordo-pipeline/ordo/schema"
	"github.com/ordo-pipeline/ordo/shard"
)

// dryRun prints what Run would do, reading but changing nothing.
func dryRun(ctx context.Context, pool *pgxpool.Pool, cfg *Config, out io.Writer) error {
	snap, err := shard.Load(ctx, pool)
	if errors.Is(err, shard.ErrNotBootstrapped) || isUndefinedTable(err) {
		fmt.Fprintf(out, "plan: bootstrap a new cluster of %d shards on %d nodes:\n", cfg.Shards, len(cfg.DesiredNodes()))
		printBootstrapPlan(out, cfg)
		return nil
	}
	if err != nil {
		return fmt.Errorf("loading shard map: %w", err)
	}
	open, err := loadOpenMoves(ctx, pool)
	if err != nil {
		return err
	}
	for _, n := range cfg.DesiredNodes() {
		if _, ok := snap.Nodes[n.Name]; !ok {
			fmt.Fprintf(out, "add node %s (%s): migrate it, then move shards to it\n", n.Name, dsn.Redact(n.URL))
		}
	}
	plan := Plan(effectivePlacement(snap, open), names(cfg.DesiredNodes()))
	if len(open) > 0 {
		fmt.Fprintf(out, "%d moves in progress will be finished first\n", len(open))
	}
	if len(plan) == 0 {
		if len(open) == 0 {
			fmt.Fprintln(out, "plan: nothing to move; the cluster is converged")
		}
		return nil
	}
	pending := pendingByShard(ctx, snap, plan)
	fmt.Fprintf(out, "plan: %d moves\n", len(plan))
	tw := tabwriter.NewWriter(out, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "SHARD\tFROM\tTO\tPENDING EVENTS")
	var total int64
	for _, m := range plan {
		p := "unknown"
		if n, ok := pending[m.Shard]; ok {
			p = fmt.Sprint(n)
			total += n
		}
		fmt.Fprintf(tw, "%d\t%s\t%s\t%s\n", m.Shard, m.Source, m.Target, p)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	fmt.Fprintf(out, "total pending events to copy: %d\n", total)
	return nil
}

// pendingByShard counts the rows of every planned shard on its source
// node; shards on unreachable nodes are left out.
func pendingByShard(ctx context.Context, snap *shard.Snapshot, plan []Move) map[int]int64 {
	out := map[int]int64{}
	bySource := map[string][]int{}
	for _, m := range plan {
		bySource[m.Source] = append(bySource[m.Source], m.Shard)
	}
	for node, shards := range bySource {
		n, ok := snap.Nodes[node]
		if !ok {
			continue
		}
		cctx, cancel := context.WithTimeout(ctx, NodeTimeout)
		conn, err := connectNode(cctx, n.URL)
		if err != nil {
			cancel()
			continue
		}
		if counts, err := schema.PendingAll(cctx, conn); err == nil {
			for _, s := range shards {
				out[s] = counts[s]
			}
		}
		conn.Close(cctx)
		cancel()
	}
	return out
}
