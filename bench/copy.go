package main

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/ordo-pipeline/ordo/schema"
)

// measureCopy writes stored-event rows straight into shard tables with
// pgx CopyFrom, the way the gateway's batchers write but with nothing in
// between: n rows into one table in one COPY, then n rows split over one
// table on each node, copied at once over one connection per node. Like
// every writer, each COPY runs in a transaction holding the shard's write
// lock (schema.LockForWrite; one statement more). The second is the
// ceiling of a two-node cluster, the first the ceiling of one node. The
// rows are built before the clock starts and removed afterwards.
func measureCopy(ctx context.Context, st *stack, gen *events, n int) (one, both metric, err error) {
	targets, err := st.shardPerNode(ctx)
	if err != nil {
		return one, both, err
	}
	took, err := copyAll(ctx, targets[:1], storedRows(gen, n))
	if err != nil {
		return one, both, err
	}
	one = rateMetric(idCopyOne, "raw COPY into one shard table, 1 conn", "rows/s", int64(n), took)

	per := n / len(targets)
	sets := make([][][]any, len(targets))
	for i := range sets {
		sets[i] = storedRows(gen, per)
	}
	took, err = copyAll(ctx, targets, sets...)
	if err != nil {
		return one, both, err
	}
	both = rateMetric(idCopy, fmt.Sprintf("raw COPY, 1 table on each of %d nodes at once", len(targets)), "rows/s", int64(per*len(targets)), took)
	return one, both, nil
}

// copyTarget is a shard table on a node.
type copyTarget struct {
	shard int
	pool  *pgxpool.Pool
}

// storedRows returns n rows of schema.Columns.
func storedRows(gen *events, n int) [][]any {
	rows := make([][]any, n)
	for i := range rows {
		key, id, at, body := gen.stored()
		rows[i] = []any{key, "bench", "sink", id, at, body}
	}
	return rows
}

// copyAll copies rows[i] into targets[i], all at once, and returns how
// long the slowest took. It then empties the tables.
func copyAll(ctx context.Context, targets []copyTarget, rows ...[][]any) (time.Duration, error) {
	conns := make([]*pgxpool.Conn, len(rows))
	for i := range rows {
		c, err := targets[i].pool.Acquire(ctx)
		if err != nil {
			return 0, err
		}
		defer c.Release()
		conns[i] = c
	}
	errs := make([]error, len(rows))
	began := time.Now()
	var wg sync.WaitGroup
	for i := range rows {
		wg.Go(func() {
			s := targets[i].shard
			errs[i] = pgx.BeginFunc(ctx, conns[i].Conn(), func(tx pgx.Tx) error {
				if err := schema.LockForWrite(ctx, tx, []int{s}); err != nil {
					return err
				}
				_, err := tx.CopyFrom(ctx, schema.Table(s), schema.Columns, pgx.CopyFromRows(rows[i]))
				return err
			})
		})
	}
	wg.Wait()
	took := time.Since(began)
	for i, c := range conns {
		if errs[i] != nil {
			return 0, fmt.Errorf("copying into shard %d: %w", targets[i].shard, errs[i])
		}
		if _, err := c.Exec(ctx, "TRUNCATE "+schema.Table(targets[i].shard).Sanitize()); err != nil {
			return 0, fmt.Errorf("emptying shard %d: %w", targets[i].shard, err)
		}
	}
	return took, nil
}
