package deadletter

import (
	"context"
	"encoding/json"
	"fmt"

	"github.com/jackc/pgx/v5"
)

// The SQL on ordo.dead_letters. The SQL on shard tables is in
// shard_table.go.

// querier is a connection or a transaction.
type querier interface {
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
}

const letterColumns = `shard, epoch, seq, message_id, destination_id, source_id, ordering_key, received_at, failed_at,
	attempts, last_status, coalesce(last_response, ''), reason, event`

func scanLetter(row pgx.CollectableRow, node string) (Letter, error) {
	l := Letter{Node: node}
	var status *int32
	var event []byte
	err := row.Scan(&l.Shard, &l.Epoch, &l.Seq, &l.MessageID, &l.Destination, &l.Source, &l.OrderingKey,
		&l.ReceivedAt, &l.FailedAt, &l.Attempts, &status, &l.LastResponse, &l.Reason, &event)
	if status != nil {
		s := int(*status)
		l.LastStatus = &s
	}
	l.Event = json.RawMessage(event)
	return l, err
}

// newest returns up to limit dead letters matching f on the node, newest
// first; limit 0 means all.
func newest(ctx context.Context, q querier, node string, f Filter, limit int) ([]Letter, error) {
	var args []any
	sql := `SELECT ` + letterColumns + ` FROM ordo.dead_letters WHERE ` + f.where(&args) +
		` ORDER BY failed_at DESC, shard, epoch DESC, seq DESC`
	if limit > 0 {
		args = append(args, limit)
		sql += fmt.Sprintf(" LIMIT $%d", len(args))
	}
	rows, err := q.Query(ctx, sql, args...)
	if err != nil {
		return nil, fmt.Errorf("listing dead letters: %w", err)
	}
	letters, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (Letter, error) { return scanLetter(r, node) })
	if err != nil {
		return nil, fmt.Errorf("listing dead letters: %w", err)
	}
	return letters, nil
}

// groups counts the dead letters matching f on the node by destination,
// reason and last status.
func groups(ctx context.Context, q querier, node string, f Filter) ([]Group, error) {
	var args []any
	rows, err := q.Query(ctx, `SELECT destination_id, reason, last_status, count(*), min(failed_at), max(failed_at)
		FROM ordo.dead_letters WHERE `+f.where(&args)+` GROUP BY 1, 2, 3 ORDER BY 4 DESC, 1, 2, 3`, args...)
	if err != nil {
		return nil, fmt.Errorf("counting dead letters: %w", err)
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (Group, error) {
		g := Group{Node: node}
		var status *int32
		err := r.Scan(&g.Destination, &g.Reason, &status, &g.Count, &g.Oldest, &g.Newest)
		if status != nil {
			s := int(*status)
			g.LastStatus = &s
		}
		return g, err
	})
	if err != nil {
		return nil, fmt.Errorf("counting dead letters: %w", err)
	}
	return out, nil
}

// perShard counts the dead letters matching f on the node, by shard.
func perShard(ctx context.Context, q querier, f Filter) (map[int]int64, error) {
	var args []any
	rows, err := q.Query(ctx, `SELECT shard, count(*) FROM ordo.dead_letters WHERE `+f.where(&args)+` GROUP BY shard`, args...)
	out, err := countsByShard(rows, err)
	if err != nil {
		return nil, fmt.Errorf("counting dead letters: %w", err)
	}
	return out, nil
}

// countsByShard collects rows of (shard, count), the answer to a query
// that returned err.
func countsByShard(rows pgx.Rows, err error) (map[int]int64, error) {
	if err != nil {
		return nil, err
	}
	out := map[int]int64{}
	var s int
	var n int64
	if _, err := pgx.ForEachRow(rows, []any{&s, &n}, func() error {
		out[s] = n
		return nil
	}); err != nil {
		return nil, err
	}
	return out, nil
}

// replayRow is what replay moves of a dead letter into its shard's table.
type replayRow struct {
	epoch, seq  int64
	orderingKey string
	source      string
	destination string
	messageID   string
	event       []byte
}

// replayBatch is how many dead letters replay moves per statement.
const replayBatch = 500

// take locks and returns, in their original order, up to replayBatch dead
// letters of shard s matching f that come after (epoch, seq).
func take(ctx context.Context, tx pgx.Tx, s int, f Filter, epoch, seq int64) ([]replayRow, error) {
	args := []any{s, epoch, seq, replayBatch}
	rows, err := tx.Query(ctx, `SELECT epoch, seq, ordering_key, source_id, destination_id, message_id, event
		FROM ordo.dead_letters WHERE shard = $1 AND (epoch, seq) > ($2, $3) AND `+f.where(&args)+`
		ORDER BY epoch, seq LIMIT $4 FOR UPDATE`, args...)
	if err != nil {
		return nil, fmt.Errorf("reading dead letters of shard %d: %w", s, err)
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (replayRow, error) {
		var x replayRow
		err := r.Scan(&x.epoch, &x.seq, &x.orderingKey, &x.source, &x.destination, &x.messageID, &x.event)
		return x, err
	})
	if err != nil {
		return nil, fmt.Errorf("reading dead letters of shard %d: %w", s, err)
	}
	return out, nil
}

// remove deletes the dead letters rows of shard s.
func remove(ctx context.Context, tx pgx.Tx, s int, rows []replayRow) error {
	epochs, seqs := make([]int64, len(rows)), make([]int64, len(rows))
	for i, r := range rows {
		epochs[i], seqs[i] = r.epoch, r.seq
	}
	tag, err := tx.Exec(ctx, `DELETE FROM ordo.dead_letters
		WHERE shard = $1 AND (epoch, seq) IN (SELECT * FROM unnest($2::bigint[], $3::bigint[]))`, s, epochs, seqs)
	if err != nil {
		return fmt.Errorf("deleting replayed dead letters of shard %d: %w", s, err)
	}
	if tag.RowsAffected() != int64(len(rows)) {
		return fmt.Errorf("deleting replayed dead letters of shard %d: %d deleted, want %d", s, tag.RowsAffected(), len(rows))
	}
	return nil
}

// purge deletes the dead letters of shards matching f, and returns how
// many it deleted per shard.
func purge(ctx context.Context, tx pgx.Tx, shards []int, f Filter) (map[int]int64, error) {
	args := []any{shards}
	rows, err := tx.Query(ctx, `WITH d AS (DELETE FROM ordo.dead_letters WHERE shard = ANY($1::int[]) AND `+f.where(&args)+`
		RETURNING shard) SELECT shard, count(*) FROM d GROUP BY shard`, args...)
	out, err := countsByShard(rows, err)
	if err != nil {
		return nil, fmt.Errorf("deleting dead letters: %w", err)
	}
	return out, nil
}
