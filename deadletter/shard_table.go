package deadletter

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/ordo-pipeline/ordo/schema"
)

// This file holds all the SQL of this package that touches shard tables.

// intoShard puts rows, dead letters of shard s in their original order,
// back into the shard's table on the node tx is on, and reports whether
// it could; when it could not, why says why and nothing was written.
//
// The caller holds the shard's write lock (schema.LockForWrite). intoShard
// first takes the table lock that a move's fence waits for, then checks
// that the table exists and is not fenced, so no move can fence it before
// tx ends. With rows nil it only checks, and holds that lock.
//
// The rows get the table's current epoch and new sequence numbers, so they
// come after every row pending in the shard, in the order given. They keep
// their messageId and event; attempts start again from 0 and received_at
// is now, so maxAge counts from the replay.
func intoShard(ctx context.Context, tx pgx.Tx, s int, rows []replayRow) (ok bool, why string, err error) {
	exists, err := schema.Exists(ctx, tx, s)
	if err != nil {
		return false, "", err
	}
	if !exists {
		return false, fmt.Sprintf("shard %d has no table on this node", s), nil
	}
	if _, err := tx.Exec(ctx, "LOCK TABLE "+schema.Table(s).Sanitize()+" IN ROW EXCLUSIVE MODE"); err != nil {
		return false, "", fmt.Errorf("locking shard %d table: %w", s, err)
	}
	fenced, err := schema.IsFencedTable(ctx, tx, s)
	if err != nil {
		return false, "", err
	}
	if fenced {
		return false, fmt.Sprintf("shard %d is fenced for a move; run rebalance to finish or roll back the move, then try again", s), nil
	}
	if len(rows) == 0 {
		return true, "", nil
	}
	now := time.Now()
	src := pgx.CopyFromSlice(len(rows), func(i int) ([]any, error) {
		r := rows[i]
		byName := map[string]any{"ordering_key": r.orderingKey, "source_id": r.source, "destination_id": r.destination,
			"message_id": r.messageID, "received_at": now, "event": string(r.event)}
		vals := make([]any, len(schema.Columns))
		for j, col := range schema.Columns {
			v, ok := byName[col]
			if !ok {
				return nil, fmt.Errorf("replay has no value for shard table column %s", col)
			}
			vals[j] = v
		}
		return vals, nil
	})
	n, err := tx.CopyFrom(ctx, schema.Table(s), schema.Columns, src)
	if err != nil {
		return false, "", fmt.Errorf("writing into shard %d table: %w", s, err)
	}
	if n != int64(len(rows)) {
		return false, "", fmt.Errorf("writing into shard %d table: %d rows written, want %d", s, n, len(rows))
	}
	return true, "", nil
}
