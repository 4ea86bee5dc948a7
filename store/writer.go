package store

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/ordo-pipeline/ordo/schema"
)

// flush writes batch and answers each of its requests. A stale shard
// fails only the requests that touched it; the others are written again
// at once. A data exception splits the batch so that only the request
// at fault fails.
//
// The batch's transaction is bounded by the latest deadline of its
// requests, not the earliest, so a request short of time cannot fail the
// others: its own waiter gives up on it instead (see request.wait).
func (b *batcher) flush(batch []*request) {
	deadline := batch[0].deadline
	for _, r := range batch[1:] {
		if r.deadline.After(deadline) {
			deadline = r.deadline
		}
	}
	budget := time.Until(deadline)
	ctx, cancel := context.WithDeadline(context.Background(), deadline)
	defer cancel()

	retried := false
	for len(batch) > 0 {
		staleShard, err := b.write(ctx, batch)
		switch {
		case err == nil:
			b.lastOK.Store(time.Now().UnixNano())
			for _, r := range batch {
				r.answer(nil)
			}
			return
		case pgconn.SafeToRetry(err) && !retried && ctx.Err() == nil:
			// Nothing reached the server (a pooled connection had died,
			// say): try once more on a fresh connection.
			retried = true
		case schema.IsStale(err) && staleShard >= 0:
			b.metrics.errors.WithLabelValues(b.node, "stale").Inc()
			b.log.Debug("shard table fenced or missing: re-routing its requests", "shard", staleShard, "error", err)
			batch = slices.DeleteFunc(batch, func(r *request) bool {
				if r.touches(staleShard) {
					r.answer(fmt.Errorf("%w: shard %d on node %s: %w", errStale, staleShard, b.node, err))
					return true
				}
				return false
			})
		case isDataError(err) && len(batch) > 1:
			b.log.Warn("node refused a batch's data: writing its requests one by one", "error", err)
			for _, r := range batch {
				b.flush([]*request{r})
			}
			return
		default:
			kind, answer := "unavailable", fmt.Errorf("%w: writing to node %s: %w", ErrUnavailable, b.node, err)
			if isDataError(err) {
				kind, answer = "rejected", fmt.Errorf("%w: %w", ErrRejected, err)
			}
			b.metrics.errors.WithLabelValues(b.node, kind).Inc()
			if kind == "unavailable" && b.nodeAtFault(ctx, budget) {
				b.failed()
			}
			b.log.Warn("batch failed", "requests", len(batch), "error", err)
			for _, r := range batch {
				r.answer(answer)
			}
			return
		}
	}
}

// nodeAtFault reports whether a batch that failed as unavailable says the
// node is failing. A batch that ran out of time says so only when it had
// at least half the write timeout: a batch of requests already close to
// their deadlines, timing out, says nothing about the node.
func (b *batcher) nodeAtFault(ctx context.Context, budget time.Duration) bool {
	return ctx.Err() == nil || budget >= b.cfg.WriteTimeout/2
}

// write writes batch in one transaction, as one COPY into the node's
// parent table whatever shards it touches. When the node refuses a shard
// as stale (fenced, gone, or at another epoch), it returns that shard,
// else -1.
func (b *batcher) write(ctx context.Context, batch []*request) (int, error) {
	began := time.Now()
	shards, n := shardsOf(batch)
	conn, err := b.pool.Acquire(ctx)
	if err != nil {
		return -1, fmt.Errorf("connecting: %w", err)
	}
	// A connection released inside a transaction (a failed ROLLBACK) is
	// closed by the pool, not reused.
	defer conn.Release()
	// Lock the shards written, in order, for the rest of the transaction,
	// so that writes to one shard commit in the order they draw sequence
	// numbers: a row committed after a worker read the shard always sorts
	// after every row it has read. Without this, a row could commit behind
	// a newer row of the same key that a worker had already delivered.
	// BEGIN goes in the same round trip.
	if _, err := conn.Exec(ctx, schema.BeginWriteSQL(shards)); err != nil {
		rollback(ctx, conn.Conn())
		return -1, fmt.Errorf("beginning and locking shards: %w", err)
	}
	if _, err := conn.Conn().PgConn().CopyFrom(ctx, bytes.NewReader(encodeRows(batch)), copySQL); err != nil {
		rollback(ctx, conn.Conn())
		if s, ok := schema.StaleShard(err); ok {
			return s, fmt.Errorf("copying into shard %d: %w", s, err)
		}
		return -1, fmt.Errorf("copying: %w", err)
	}
	tag, err := conn.Exec(ctx, "COMMIT")
	if err != nil {
		return -1, fmt.Errorf("committing: %w", err)
	}
	if tag.String() != "COMMIT" {
		// An aborted transaction "commits" as ROLLBACK.
		return -1, fmt.Errorf("committing: %w", pgx.ErrTxCommitRollback)
	}
	b.metrics.commitSeconds.WithLabelValues(b.node).Observe(time.Since(began).Seconds())
	b.metrics.batchRows.Observe(float64(n))
	b.metrics.batchRequests.Observe(float64(len(batch)))
	return -1, nil
}

// rollback ends the transaction on conn after a failure, if the
// connection still works.
func rollback(ctx context.Context, conn *pgx.Conn) {
	if conn.PgConn().TxStatus() != 'I' {
		conn.Exec(context.WithoutCancel(ctx), "ROLLBACK") //nolint:errcheck // the pool closes a connection left in a transaction
	}
}

// shardsOf returns the shards batch touches, each once, and its rows.
func shardsOf(batch []*request) ([]int, int) {
	seen := map[int]struct{}{}
	var shards []int
	rows := 0
	for _, r := range batch {
		rows += r.rows
		for i := range r.events {
			if s := r.events[i].shard; !has(seen, s) {
				seen[s] = struct{}{}
				shards = append(shards, s)
			}
		}
	}
	return shards, rows
}

func has(m map[int]struct{}, k int) bool { _, ok := m[k]; return ok }

// touches reports whether r has an event in shard.
func (r *request) touches(shard int) bool {
	for _, ev := range r.events {
		if ev.shard == shard {
			return true
		}
	}
	return false
}

// isDataError reports whether err is Postgres refusing the data itself (a
// data exception, or JSON nested too deeply for its parser), not the
// node's state.
func isDataError(err error) bool {
	var pgErr *pgconn.PgError
	if !errors.As(err, &pgErr) {
		return false
	}
	return strings.HasPrefix(pgErr.Code, "22") || pgErr.Code == "54001" // data_exception, statement_too_complex
}
