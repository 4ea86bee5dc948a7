package worker

import (
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/ordo-pipeline/ordo/schema"
)

// This file holds the SQL a shard loop runs on its claim connection: reading
// rows in (epoch, seq) order and acknowledging them (deletes, dead-letter
// moves, retry bookkeeping). Table names come from schema.Table, built from
// the shard number only.

// rowColumns are the columns scanRow reads, in order.
const rowColumns = `epoch, seq, ordering_key, destination_id, message_id, received_at, event, attempts, next_attempt_at`

// queryRows runs sql, which selects rowColumns, and returns its rows; an
// error says what failed.
func queryRows(ctx context.Context, conn *pgx.Conn, what string, sql string, args ...any) ([]*row, error) {
	rows, err := conn.Query(ctx, sql, args...)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", what, err)
	}
	out, err := scanRows(rows)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", what, err)
	}
	return out, nil
}

func scanRows(rows pgx.Rows) ([]*row, error) {
	var out []*row
	for rows.Next() {
		r := &row{}
		var next *time.Time
		var event []byte
		if err := rows.Scan(&r.epoch, &r.seq, &r.key, &r.dest, &r.messageID, &r.receivedAt, &event, &r.attempts, &next); err != nil {
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

// readRows returns up to limit rows of shard after cursor, in order. Every
// writer holds the shard's write lock (schema.LockForWrite) until it
// commits, so rows become visible in this order: none can appear behind the
// cursor later.
func readRows(ctx context.Context, conn *pgx.Conn, shard int, after pos, limit int) ([]*row, error) {
	return queryRows(ctx, conn, fmt.Sprintf("reading shard %d", shard), `SELECT `+rowColumns+` FROM `+schema.Table(shard).Sanitize()+`
		WHERE (epoch, seq) > ($1, $2) ORDER BY epoch, seq LIMIT $3`, after.epoch, after.seq, limit)
}

// epochGroup is the sequence numbers of some rows of one epoch.
type epochGroup struct {
	epoch int64
	seqs  []int64
	idx   []int // the rows' indexes in the slice they came from
}

// byEpoch groups positions by epoch, epochs in order. Statements select
// rows by "epoch = $1 AND seq = ANY($2)", which the primary key index
// answers whatever the table's size and statistics.
func byEpoch(ps []pos) []epochGroup {
	var groups []epochGroup
	at := map[int64]int{}
	for i, p := range ps {
		g, ok := at[p.epoch]
		if !ok {
			g = len(groups)
			at[p.epoch] = g
			groups = append(groups, epochGroup{epoch: p.epoch})
		}
		groups[g].seqs = append(groups[g].seqs, p.seq)
		groups[g].idx = append(groups[g].idx, i)
	}
	slices.SortFunc(groups, func(a, b epochGroup) int { return cmp.Compare(a.epoch, b.epoch) })
	return groups
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
	return queryRows(ctx, conn, fmt.Sprintf("reloading shard %d lanes", shard), `SELECT r.* FROM
		unnest($1::text[], $2::text[], $3::bigint[], $4::bigint[], $5::bigint[], $6::bigint[]) AS l(dest, key, fe, fs, te, ts)
		CROSS JOIN LATERAL (
			SELECT `+rowColumns+` FROM `+schema.Table(shard).Sanitize()+` t
			WHERE t.destination_id = l.dest AND t.ordering_key = l.key
			  AND (t.epoch, t.seq) >= (l.fe, l.fs) AND (t.epoch, t.seq) <= (l.te, l.ts)
			ORDER BY t.epoch, t.seq LIMIT $7) r
		ORDER BY r.epoch, r.seq`, dests, keys, fe, fs, te, ts, limit)
}

// flush writes a in one transaction on the claim connection: delivered rows
// are deleted, dead letters moved to ordo.dead_letters, retry bookkeeping
// stored on the rows.
func flush(ctx context.Context, conn *pgx.Conn, shard int, a *acks) error {
	table := schema.Table(shard).Sanitize()
	b := &pgx.Batch{}
	b.Queue(`BEGIN`)
	for _, g := range byEpoch(a.delivered) {
		b.Queue(`DELETE FROM `+table+` WHERE epoch = $1 AND seq = ANY($2::bigint[])`, g.epoch, g.seqs)
	}
	dead := make([]pos, len(a.dead))
	for i, d := range a.dead {
		dead[i] = d.pos
	}
	for _, g := range byEpoch(dead) {
		n := len(g.seqs)
		attempts, statuses := make([]int32, n), make([]*int32, n)
		responses, reasons, keep := make([]string, n), make([]string, n), make([]bool, n)
		for j, i := range g.idx {
			d := a.dead[i]
			attempts[j], statuses[j] = int32(d.attempts), statusArg(d.status)
			responses[j], reasons[j], keep[j] = d.response, d.reason, d.keepLast
		}
		b.Queue(`WITH d AS (
				SELECT * FROM unnest($3::bigint[], $4::int[], $5::int[], $6::text[], $7::text[], $8::bool[])
					AS d(seq, attempts, status, response, reason, keep)),
			moved AS (
				DELETE FROM `+table+` WHERE epoch = $2 AND seq = ANY($3::bigint[])
				RETURNING epoch, seq, ordering_key, source_id, destination_id, message_id, received_at, event,
					last_status, last_response)
			INSERT INTO ordo.dead_letters (shard, epoch, seq, ordering_key, source_id, destination_id, message_id,
				received_at, event, attempts, last_status, last_response, reason)
			SELECT $1, m.epoch, m.seq, m.ordering_key, m.source_id, m.destination_id, m.message_id,
				m.received_at, m.event, d.attempts,
				CASE WHEN d.keep THEN m.last_status ELSE d.status END,
				CASE WHEN d.keep THEN m.last_response ELSE d.response END, d.reason
			FROM moved m JOIN d ON d.seq = m.seq
			ON CONFLICT (shard, epoch, seq) DO NOTHING`, shard, g.epoch, g.seqs, attempts, statuses, responses, reasons, keep)
	}
	retried := make([]pos, len(a.retries))
	for i, r := range a.retries {
		retried[i] = r.pos
	}
	for _, g := range byEpoch(retried) {
		n := len(g.seqs)
		attempts, statuses := make([]int32, n), make([]*int32, n)
		nexts, responses := make([]time.Time, n), make([]string, n)
		for j, i := range g.idx {
			r := a.retries[i]
			attempts[j], statuses[j], nexts[j], responses[j] = int32(r.attempts), statusArg(r.status), r.next, r.response
		}
		b.Queue(`UPDATE `+table+` t SET attempts = d.attempts, next_attempt_at = d.next,
				first_attempt_at = coalesce(t.first_attempt_at, now()), last_status = d.status, last_response = d.response
			FROM unnest($2::bigint[], $3::int[], $4::timestamptz[], $5::int[], $6::text[])
				AS d(seq, attempts, next, status, response)
			WHERE t.epoch = $1 AND t.seq = ANY($2::bigint[]) AND t.seq = d.seq`, g.epoch, g.seqs, attempts, nexts, statuses, responses)
	}
	b.Queue(`COMMIT`)
	if err := conn.SendBatch(ctx, b).Close(); err != nil {
		return fmt.Errorf("acknowledging shard %d: %w", shard, err)
	}
	return nil
}

func statusArg(status int) *int32 {
	if status == 0 {
		return nil
	}
	s := int32(status)
	return &s
}
