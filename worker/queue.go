package worker

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/ordo-pipeline/ordo/schema"
)

// This file holds the SQL a shard loop runs on its claim connection: reading
// rows in (epoch, seq) order and acknowledging them (deletes, dead-letter
// moves, retry bookkeeping). Table names come from schema.Table, built from
// the shard number only.

// pos is a row's place in its shard's delivery order.
type pos struct{ epoch, seq int64 }

func (p pos) less(q pos) bool {
	return p.epoch < q.epoch || (p.epoch == q.epoch && p.seq < q.seq)
}

// row is one pending delivery: one event for one destination.
type row struct {
	pos
	key         string
	source      string
	dest        string
	messageID   string
	receivedAt  time.Time
	event       json.RawMessage
	attempts    int
	nextAttempt time.Time // zero when none is recorded
}

// rowColumns are the columns scanRow reads, in order.
const rowColumns = `epoch, seq, ordering_key, source_id, destination_id, message_id, received_at, event, attempts, next_attempt_at`

func scanRows(rows pgx.Rows) ([]*row, error) {
	var out []*row
	for rows.Next() {
		r := &row{}
		var next *time.Time
		var event []byte
		if err := rows.Scan(&r.epoch, &r.seq, &r.key, &r.source, &r.dest, &r.messageID, &r.receivedAt, &event, &r.attempts, &next); err != nil {
			rows.Close()
			return nil, err
		}
		r.event = json.RawMessage(event)
		if next != nil {
			r.nextAttempt = *next
		}
		out = append(out, r)
	}
	return out, rows.Err()
}

// readRows returns up to limit rows of shard after cursor, in order, and the
// transactions that were in progress when they were read: rows those
// transactions commit later may sit before the new cursor (their sequence
// numbers were drawn before they committed), so the caller rescans the range
// once they have ended. Both come from one snapshot.
func readRows(ctx context.Context, conn *pgx.Conn, shard int, after pos, limit int) ([]*row, []int64, error) {
	b := &pgx.Batch{}
	b.Queue(`BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY`)
	b.Queue(`SELECT array(SELECT x::text::bigint FROM pg_snapshot_xip(pg_current_snapshot()) x)`)
	b.Queue(`SELECT `+rowColumns+` FROM `+schema.Table(shard).Sanitize()+`
		WHERE (epoch, seq) > ($1, $2) ORDER BY epoch, seq LIMIT $3`, after.epoch, after.seq, limit)
	b.Queue(`COMMIT`)
	br := conn.SendBatch(ctx, b)
	defer br.Close()
	if _, err := br.Exec(); err != nil {
		return nil, nil, fmt.Errorf("reading shard %d: %w", shard, err)
	}
	var xip []int64
	if err := br.QueryRow().Scan(&xip); err != nil {
		return nil, nil, fmt.Errorf("reading shard %d snapshot: %w", shard, err)
	}
	rs, err := br.Query()
	if err != nil {
		return nil, nil, fmt.Errorf("reading shard %d: %w", shard, err)
	}
	out, err := scanRows(rs)
	if err != nil {
		return nil, nil, fmt.Errorf("reading shard %d: %w", shard, err)
	}
	if _, err := br.Exec(); err != nil {
		return nil, nil, fmt.Errorf("reading shard %d: %w", shard, err)
	}
	return out, xip, br.Close()
}

// stillRunning returns those of xids that the current snapshot does not see
// as finished.
func stillRunning(ctx context.Context, conn *pgx.Conn, xids []int64) (map[int64]bool, error) {
	rows, err := conn.Query(ctx, `SELECT x FROM unnest($1::bigint[]) x
		WHERE NOT pg_visible_in_snapshot(x::text::xid8, pg_current_snapshot())`, xids)
	if err != nil {
		return nil, fmt.Errorf("checking transactions: %w", err)
	}
	running, err := pgx.CollectRows(rows, pgx.RowTo[int64])
	if err != nil {
		return nil, fmt.Errorf("checking transactions: %w", err)
	}
	m := make(map[int64]bool, len(running))
	for _, x := range running {
		m[x] = true
	}
	return m, nil
}

// positionsBetween returns the positions of shard's rows in (from, to].
func positionsBetween(ctx context.Context, conn *pgx.Conn, shard int, from, to pos) ([]pos, error) {
	rows, err := conn.Query(ctx, `SELECT epoch, seq FROM `+schema.Table(shard).Sanitize()+`
		WHERE (epoch, seq) > ($1, $2) AND (epoch, seq) <= ($3, $4) ORDER BY epoch, seq`,
		from.epoch, from.seq, to.epoch, to.seq)
	if err != nil {
		return nil, fmt.Errorf("rescanning shard %d: %w", shard, err)
	}
	var out []pos
	var p pos
	_, err = pgx.ForEachRow(rows, []any{&p.epoch, &p.seq}, func() error {
		out = append(out, p)
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("rescanning shard %d: %w", shard, err)
	}
	return out, nil
}

// fetchRows returns the rows of shard at ps that still exist, in order.
func fetchRows(ctx context.Context, conn *pgx.Conn, shard int, ps []pos) ([]*row, error) {
	epochs, seqs := split(ps)
	rows, err := conn.Query(ctx, `SELECT `+rowColumns+` FROM `+schema.Table(shard).Sanitize()+`
		WHERE (epoch, seq) IN (SELECT * FROM unnest($1::bigint[], $2::bigint[])) ORDER BY epoch, seq`, epochs, seqs)
	if err != nil {
		return nil, fmt.Errorf("fetching shard %d rows: %w", shard, err)
	}
	out, err := scanRows(rows)
	if err != nil {
		return nil, fmt.Errorf("fetching shard %d rows: %w", shard, err)
	}
	return out, nil
}

// reload is a request for the next rows of one spilled lane: rows of the
// lane in [from, to].
type reload struct {
	dest, key string
	from, to  pos
}

// reloadRows returns up to limit rows per request, in order.
func reloadRows(ctx context.Context, conn *pgx.Conn, shard int, reqs []reload, limit int) ([]*row, error) {
	n := len(reqs)
	dests, keys := make([]string, n), make([]string, n)
	fe, fs, te, ts := make([]int64, n), make([]int64, n), make([]int64, n), make([]int64, n)
	for i, r := range reqs {
		dests[i], keys[i] = r.dest, r.key
		fe[i], fs[i], te[i], ts[i] = r.from.epoch, r.from.seq, r.to.epoch, r.to.seq
	}
	rows, err := conn.Query(ctx, `SELECT r.* FROM
		unnest($1::text[], $2::text[], $3::bigint[], $4::bigint[], $5::bigint[], $6::bigint[]) AS l(dest, key, fe, fs, te, ts)
		CROSS JOIN LATERAL (
			SELECT `+rowColumns+` FROM `+schema.Table(shard).Sanitize()+` t
			WHERE t.destination_id = l.dest AND t.ordering_key = l.key
			  AND (t.epoch, t.seq) >= (l.fe, l.fs) AND (t.epoch, t.seq) <= (l.te, l.ts)
			ORDER BY t.epoch, t.seq LIMIT $7) r
		ORDER BY r.epoch, r.seq`, dests, keys, fe, fs, te, ts, limit)
	if err != nil {
		return nil, fmt.Errorf("reloading shard %d lanes: %w", shard, err)
	}
	out, err := scanRows(rows)
	if err != nil {
		return nil, fmt.Errorf("reloading shard %d lanes: %w", shard, err)
	}
	return out, nil
}

// retry is the bookkeeping of a failed attempt that will be retried.
type retry struct {
	pos
	attempts int
	next     time.Time
	status   int // 0 when no response came
	response string
}

// deadLetter is an event that will not be retried.
type deadLetter struct {
	pos
	attempts int
	status   int // 0 when no response came
	response string
	reason   string
}

// acks is what one flush writes, in one transaction.
type acks struct {
	delivered []pos
	dead      []deadLetter
	retries   []retry
}

func (a *acks) empty() bool {
	return len(a.delivered) == 0 && len(a.dead) == 0 && len(a.retries) == 0
}

func (a *acks) reset() {
	a.delivered = a.delivered[:0]
	a.dead = a.dead[:0]
	a.retries = a.retries[:0]
}

// flush writes a in one transaction on the claim connection: delivered rows
// are deleted, dead letters moved to ordo.dead_letters, retry bookkeeping
// stored on the rows.
func flush(ctx context.Context, conn *pgx.Conn, shard int, a *acks) error {
	table := schema.Table(shard).Sanitize()
	b := &pgx.Batch{}
	b.Queue(`BEGIN`)
	if len(a.delivered) > 0 {
		epochs, seqs := split(a.delivered)
		b.Queue(`DELETE FROM `+table+` WHERE (epoch, seq) IN (SELECT * FROM unnest($1::bigint[], $2::bigint[]))`, epochs, seqs)
	}
	if n := len(a.dead); n > 0 {
		epochs, seqs := make([]int64, n), make([]int64, n)
		attempts, statuses := make([]int32, n), make([]*int32, n)
		responses, reasons := make([]string, n), make([]string, n)
		for i, d := range a.dead {
			epochs[i], seqs[i], attempts[i] = d.epoch, d.seq, int32(d.attempts)
			statuses[i] = statusArg(d.status)
			responses[i], reasons[i] = d.response, d.reason
		}
		b.Queue(`WITH d AS (
				SELECT * FROM unnest($2::bigint[], $3::bigint[], $4::int[], $5::int[], $6::text[], $7::text[])
					AS d(epoch, seq, attempts, status, response, reason)),
			moved AS (
				DELETE FROM `+table+` t USING d WHERE t.epoch = d.epoch AND t.seq = d.seq
				RETURNING t.epoch, t.seq, t.ordering_key, t.source_id, t.destination_id, t.message_id,
					t.received_at, t.event, d.attempts, d.status, d.response, d.reason)
			INSERT INTO ordo.dead_letters (shard, epoch, seq, ordering_key, source_id, destination_id, message_id,
				received_at, event, attempts, last_status, last_response, reason)
			SELECT $1, * FROM moved
			ON CONFLICT (shard, epoch, seq) DO NOTHING`, shard, epochs, seqs, attempts, statuses, responses, reasons)
	}
	if n := len(a.retries); n > 0 {
		epochs, seqs := make([]int64, n), make([]int64, n)
		attempts, statuses := make([]int32, n), make([]*int32, n)
		nexts, responses := make([]time.Time, n), make([]string, n)
		for i, r := range a.retries {
			epochs[i], seqs[i], attempts[i] = r.epoch, r.seq, int32(r.attempts)
			statuses[i], nexts[i], responses[i] = statusArg(r.status), r.next, r.response
		}
		b.Queue(`UPDATE `+table+` t SET attempts = d.attempts, next_attempt_at = d.next,
				first_attempt_at = coalesce(t.first_attempt_at, now()), last_status = d.status, last_response = d.response
			FROM unnest($1::bigint[], $2::bigint[], $3::int[], $4::timestamptz[], $5::int[], $6::text[])
				AS d(epoch, seq, attempts, next, status, response)
			WHERE t.epoch = d.epoch AND t.seq = d.seq`, epochs, seqs, attempts, nexts, statuses, responses)
	}
	b.Queue(`COMMIT`)
	if err := conn.SendBatch(ctx, b).Close(); err != nil {
		return fmt.Errorf("acknowledging shard %d: %w", shard, err)
	}
	return nil
}

// pendingRows counts shard's rows; for tests and the soak.
func pendingRows(ctx context.Context, conn *pgx.Conn, shard int) (int64, error) {
	var n int64
	err := conn.QueryRow(ctx, `SELECT count(*) FROM `+schema.Table(shard).Sanitize()).Scan(&n)
	return n, err
}

func statusArg(status int) *int32 {
	if status == 0 {
		return nil
	}
	s := int32(status)
	return &s
}

func split(ps []pos) (epochs, seqs []int64) {
	epochs, seqs = make([]int64, len(ps)), make([]int64, len(ps))
	for i, p := range ps {
		epochs[i], seqs[i] = p.epoch, p.seq
	}
	return epochs, seqs
}
