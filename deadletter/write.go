package deadletter

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"slices"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/ordo-pipeline/ordo/schema"
	"github.com/ordo-pipeline/ordo/shard"
)

// lockTimeout bounds how long replay and purge wait for a lock on a node
// (a move fencing a shard, a long transaction) before giving the node up.
const lockTimeout = "10s"

// Replay moves the dead letters matching f back into their shard tables,
// on every node, for workers to deliver again. With dryRun it only counts
// what it would replay. Each node is one transaction: its Outcome says
// whether it was done. logger (nil: none) gets a line per node changed.
func (c *Cluster) Replay(ctx context.Context, f Filter, dryRun bool, logger *slog.Logger) *Outcome {
	return c.write(ctx, "replay", f, dryRun, logger)
}

// Purge deletes the dead letters matching f on every node. With dryRun
// it only counts what it would delete.
func (c *Cluster) Purge(ctx context.Context, f Filter, dryRun bool, logger *slog.Logger) *Outcome {
	return c.write(ctx, "purge", f, dryRun, logger)
}

func (c *Cluster) write(ctx context.Context, action string, f Filter, dryRun bool, logger *slog.Logger) *Outcome {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	o := &Outcome{Action: action, DryRun: dryRun}
	for _, n := range c.nodes {
		if ctx.Err() != nil {
			o.Nodes = append(o.Nodes, NodeOutcome{Node: n.Name, Err: fmt.Errorf("not visited: %w", context.Cause(ctx))})
			continue
		}
		no := c.writeNode(ctx, n, action, f, dryRun)
		if no.Err != nil {
			logger.Warn(action+" failed on node; nothing changed there", "node", n.Name, "error", no.Err)
		} else if !dryRun && no.Done > 0 {
			logger.Info(action+" done on node", "node", n.Name, "dead_letters", no.Done, "shards", no.Shards, "filter", f.Values())
		}
		o.Nodes = append(o.Nodes, no)
	}
	return o
}

func (c *Cluster) writeNode(ctx context.Context, n shard.Node, action string, f Filter, dryRun bool) NodeOutcome {
	no := NodeOutcome{Node: n.Name}
	conn, err := connect(ctx, n)
	if err != nil {
		no.Err = err
		return no
	}
	defer conn.Close(context.WithoutCancel(ctx))
	err = pgx.BeginFunc(ctx, conn, func(tx pgx.Tx) error {
		no = NodeOutcome{Node: n.Name} // a retried function starts afresh
		if _, err := tx.Exec(ctx, "SET LOCAL lock_timeout = '"+lockTimeout+"'"); err != nil {
			return err
		}
		counts, err := perShard(ctx, tx, f)
		if err != nil {
			return err
		}
		var here []int
		for _, s := range slices.Sorted(maps.Keys(counts)) {
			if why := c.placementProblem(n.Name, s); why != "" {
				no.Left = append(no.Left, Left{Shard: s, Count: counts[s], Why: why})
				continue
			}
			here = append(here, s)
		}
		if len(here) == 0 {
			return nil
		}
		if action == "replay" && !dryRun {
			if err := schema.LockForWrite(ctx, tx, here); err != nil {
				return err
			}
		}
		var held []int
		for _, s := range here {
			ok, why, err := c.hold(ctx, tx, s, dryRun)
			if err != nil {
				return err
			}
			if !ok {
				no.Left = append(no.Left, Left{Shard: s, Count: counts[s], Why: why})
				continue
			}
			held = append(held, s)
		}
		if dryRun {
			for _, s := range held {
				no.Done += counts[s]
				no.Shards = append(no.Shards, s)
			}
			return nil
		}
		if action == "purge" {
			if len(held) == 0 {
				return nil
			}
			deleted, err := purge(ctx, tx, held, f)
			if err != nil {
				return err
			}
			for _, s := range slices.Sorted(maps.Keys(deleted)) {
				no.Done += deleted[s]
				no.Shards = append(no.Shards, s)
			}
			return nil
		}
		for _, s := range held {
			moved, err := replayShard(ctx, tx, s, f)
			if err != nil {
				return err
			}
			if moved > 0 {
				no.Done += moved
				no.Shards = append(no.Shards, s)
			}
		}
		return nil
	})
	if err != nil {
		no = NodeOutcome{Node: n.Name, Err: fmt.Errorf("node %s: %w (rolled back)", n.Name, err)}
		if isUndefinedTable(err) && action != "" {
			no.Err = fmt.Errorf("node %s has no ordo.dead_letters table: is it migrated? (rebalance migrates nodes)", n.Name)
		}
	}
	return no
}

// hold checks, and unless dryRun keeps until the transaction ends, that
// shard s's table on the node takes rows.
func (c *Cluster) hold(ctx context.Context, tx pgx.Tx, s int, dryRun bool) (bool, string, error) {
	if !dryRun {
		return intoShard(ctx, tx, s, nil)
	}
	exists, err := schema.Exists(ctx, tx, s)
	if err != nil || !exists {
		return false, fmt.Sprintf("shard %d has no table on this node", s), err
	}
	fenced, err := schema.IsFencedTable(ctx, tx, s)
	if err != nil || fenced {
		return false, fmt.Sprintf("shard %d is fenced for a move; run rebalance to finish or roll back the move, then try again", s), err
	}
	return true, "", nil
}

// replayShard moves shard s's dead letters matching f into its table, in
// (epoch, seq) order, batch by batch, in tx.
func replayShard(ctx context.Context, tx pgx.Tx, s int, f Filter) (int64, error) {
	var moved int64
	var epoch, seq int64 = -1, -1
	for {
		rows, err := take(ctx, tx, s, f, epoch, seq)
		if err != nil || len(rows) == 0 {
			return moved, err
		}
		ok, why, err := intoShard(ctx, tx, s, rows)
		if err != nil {
			return moved, err
		}
		if !ok {
			return moved, errors.New(why)
		}
		if err := remove(ctx, tx, s, rows); err != nil {
			return moved, err
		}
		moved += int64(len(rows))
		last := rows[len(rows)-1]
		epoch, seq = last.epoch, last.seq
	}
}

func isUndefinedTable(err error) bool {
	var pgErr *pgconn.PgError
	return errors.As(err, &pgErr) && pgErr.Code == "42P01"
}
