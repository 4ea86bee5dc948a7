package rebalance

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/ordo-pipeline/ordo/schema"
)

// shardColumns are every column of a shard table, copied as they are.
const shardColumns = "epoch, seq, ordering_key, source_id, destination_id, message_id, received_at, event, attempts, first_attempt_at, next_attempt_at, last_status, last_response"

// deadLetterColumns are every column of ordo.dead_letters.
const deadLetterColumns = "shard, epoch, seq, ordering_key, source_id, destination_id, message_id, received_at, event, attempts, last_status, last_response, reason, failed_at"

// checksumSQL sums a hash of each row's identity and content, so the copy
// can be verified without shipping the rows back. %s is the relation and
// %s a WHERE clause.
const checksumSQL = `SELECT count(*), coalesce(sum(hashtextextended(epoch::text || ':' || seq::text || ':' || message_id || ':' || destination_id || ':' || event::text || ':' || attempts::text, 0)::numeric), 0)::text FROM %s WHERE %s`

// copy moves the shard's pending rows and dead letters from the source to
// the target, behind the rows gateways already write there at the new
// epoch. It holds the shard's lock on both nodes: on the source so that
// no worker deletes rows while they are read, on the target so that no
// worker delivers the new epoch before the old one is in place. The copy
// is one target transaction that first removes what an interrupted copy
// left, so it can be repeated; it commits only if count and checksum
// match the source.
func (m *mover) copy(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, copyTimeout)
	defer cancel()
	// A move resumed after the flip may have stopped before the target was
	// opened.
	if err := m.openTarget(ctx); err != nil {
		return err
	}
	src, err := m.sourceConn(ctx)
	if err != nil {
		return err
	}
	dst, err := m.targetConn(ctx)
	if err != nil {
		return err
	}
	if !m.srcLocked {
		if err := m.lockShard(ctx, src, m.mv.Source); err != nil {
			return err
		}
		m.srcLocked = true
	}
	if !m.dstLocked {
		if err := m.lockShard(ctx, dst, m.mv.Target); err != nil {
			return err
		}
		m.dstLocked = true
	}
	exists, err := schema.Exists(ctx, src, m.mv.Shard)
	if err != nil {
		return err
	}
	if !exists {
		return fmt.Errorf("shard %d has no table on source %s: cannot copy", m.mv.Shard, m.mv.Source)
	}
	table := schema.Table(m.mv.Shard).Sanitize()
	old := fmt.Sprintf("epoch < %d", m.mv.ToEpoch)
	deadWhere := fmt.Sprintf("shard = %d", m.mv.Shard)

	var rows int64
	err = pgx.BeginFunc(ctx, dst, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, "DELETE FROM "+table+" WHERE "+old); err != nil {
			return fmt.Errorf("clearing an earlier copy: %w", err)
		}
		if _, err := tx.Exec(ctx, "DELETE FROM ordo.dead_letters WHERE "+deadWhere+" AND "+old); err != nil {
			return fmt.Errorf("clearing an earlier copy of dead letters: %w", err)
		}
		n, err := pipe(ctx, src.PgConn(), tx.Conn().PgConn(),
			// The copies are marked copied: the target's table takes rows
			// of older epochs only so (see package schema).
			fmt.Sprintf("COPY (SELECT %s, true FROM %s ORDER BY epoch, seq) TO STDOUT", shardColumns, table),
			fmt.Sprintf("COPY %s (%s, copied) FROM STDIN", table, shardColumns))
		if err != nil {
			return fmt.Errorf("copying rows: %w", err)
		}
		rows = n
		if _, err := pipe(ctx, src.PgConn(), tx.Conn().PgConn(),
			fmt.Sprintf("COPY (SELECT %s FROM ordo.dead_letters WHERE %s) TO STDOUT", deadLetterColumns, deadWhere),
			fmt.Sprintf("COPY ordo.dead_letters (%s) FROM STDIN", deadLetterColumns)); err != nil {
			return fmt.Errorf("copying dead letters: %w", err)
		}
		if err := verify(ctx, src, tx, fmt.Sprintf(checksumSQL, table, "true"), fmt.Sprintf(checksumSQL, table, old)); err != nil {
			return fmt.Errorf("verifying rows: %w", err)
		}
		return verify(ctx, src, tx,
			fmt.Sprintf(checksumSQL, "ordo.dead_letters", deadWhere),
			fmt.Sprintf(checksumSQL, "ordo.dead_letters", deadWhere+" AND "+old))
	})
	if err != nil {
		return fmt.Errorf("shard %d %s→%s: %w", m.mv.Shard, m.mv.Source, m.mv.Target, err)
	}
	if _, err := m.catalog.Exec(ctx, `UPDATE ordo_catalog.moves SET rows_copied = $2 WHERE id = $1`, m.mv.ID, rows); err != nil {
		return fmt.Errorf("recording rows copied: %w", err)
	}
	m.log.Info("copied shard", "shard", m.mv.Shard, "rows", rows)
	if m.metrics != nil {
		m.metrics.rowsCopied.Add(float64(rows))
	}
	return m.setStep(ctx, StepCopied)
}

// pipe streams the output of COPY ... TO STDOUT on src into COPY ... FROM
// STDIN on dst, in text format, and returns the rows written.
func pipe(ctx context.Context, src, dst *pgconn.PgConn, out, in string) (int64, error) {
	r, w := io.Pipe()
	done := make(chan error, 1)
	go func() {
		_, err := src.CopyTo(ctx, w, out)
		w.CloseWithError(err) //nolint:errcheck // always nil
		done <- err
	}()
	tag, err := dst.CopyFrom(ctx, r, in)
	r.CloseWithError(errTargetDone) //nolint:errcheck // always nil
	srcErr := <-done
	switch {
	case err != nil:
		// The source then fails on the closed pipe: the target's error is
		// the one that says what went wrong.
		return 0, fmt.Errorf("writing target: %w", err)
	case srcErr != nil:
		return 0, fmt.Errorf("reading source: %w", srcErr)
	}
	return tag.RowsAffected(), nil
}

// errTargetDone closes the pipe once the target's COPY has ended.
var errTargetDone = errors.New("copy target finished")

// verify compares count and checksum of srcSQL on src with dstSQL on dst.
// The two sides are summed at once, on their own connections: each is a
// scan of the shard's rows.
func verify(ctx context.Context, src *pgx.Conn, dst pgx.Tx, srcSQL, dstSQL string) error {
	var sn, dn int64
	var ss, ds string
	srcErr := make(chan error, 1)
	go func() { srcErr <- src.QueryRow(ctx, srcSQL).Scan(&sn, &ss) }()
	dstErr := dst.QueryRow(ctx, dstSQL).Scan(&dn, &ds)
	if err := <-srcErr; err != nil {
		return fmt.Errorf("source checksum: %w", err)
	}
	if dstErr != nil {
		return fmt.Errorf("target checksum: %w", dstErr)
	}
	if sn != dn || ss != ds {
		return fmt.Errorf("source has %d rows (checksum %s), target %d (checksum %s)", sn, ss, dn, shorten(ds))
	}
	return nil
}

func shorten(s string) string {
	if len(s) > 24 {
		return s[:24] + "…"
	}
	return strings.TrimSpace(s)
}

// dropSource removes the shard's table and dead letters from the source,
// in one transaction. Gateways with an old map that still write there get
// an undefined-table error, which they treat like the fence.
func (m *mover) dropSource(ctx context.Context) error {
	src, err := m.sourceConn(ctx)
	if err != nil {
		return err
	}
	err = pgx.BeginFunc(ctx, src, func(tx pgx.Tx) error {
		if err := schema.Drop(ctx, tx, m.mv.Shard); err != nil {
			return err
		}
		_, err := tx.Exec(ctx, "DELETE FROM ordo.dead_letters WHERE shard = $1", m.mv.Shard)
		return err
	})
	if err != nil {
		return fmt.Errorf("cleaning up shard %d on %s: %w", m.mv.Shard, m.mv.Source, err)
	}
	return m.setStep(ctx, StepSourceDropped)
}

// finish marks the shard active on the target and the move done, in one
// catalog transaction. Workers then claim the shard there and deliver the
// copied epoch before the new one.
func (m *mover) finish(ctx context.Context) error {
	err := pgx.BeginFunc(ctx, m.catalog, func(tx pgx.Tx) error {
		tag, err := tx.Exec(ctx, `UPDATE ordo_catalog.shards SET state = 'active', updated_at = now() WHERE shard = $1 AND node = $2 AND epoch = $3`, m.mv.Shard, m.mv.Target, m.mv.ToEpoch)
		if err != nil {
			return fmt.Errorf("activating shard %d: %w", m.mv.Shard, err)
		}
		if tag.RowsAffected() != 1 {
			return fmt.Errorf("activating shard %d: it is no longer on %s at epoch %d", m.mv.Shard, m.mv.Target, m.mv.ToEpoch)
		}
		if _, err := tx.Exec(ctx, `UPDATE ordo_catalog.moves SET state = 'done', finished_at = now() WHERE id = $1`, m.mv.ID); err != nil {
			return fmt.Errorf("finishing move: %w", err)
		}
		return recordStep(ctx, tx, m.mv.ID, StepDone)
	})
	if err != nil {
		return err
	}
	m.reached(StepDone)
	return nil
}

// rollback undoes a move that, as the catalog says, has not flipped: it
// lifts the source's fence, drops the target table (which, fenced until
// the flip, took no row), and only then marks the move failed. Interrupted
// before that, the move stays open, and resuming it makes the target
// table and the fence again.
func (m *mover) rollback(ctx context.Context, cause error) error {
	if flippedAlready(m.mv.Step) {
		return fmt.Errorf("move %d is past the cut-over and cannot roll back", m.mv.ID)
	}
	src, err := m.sourceConn(ctx)
	if err != nil {
		return err
	}
	if err := schema.Unfence(ctx, src, m.mv.Shard); err != nil {
		return err
	}
	dst, err := m.targetConn(ctx)
	if err != nil {
		return err
	}
	n, err := schema.Pending(ctx, dst, m.mv.Shard)
	if err != nil {
		return err
	}
	if n > 0 {
		return fmt.Errorf("the target table of shard %d holds %d rows written before the flip; the move cannot roll back", m.mv.Shard, n)
	}
	if err := schema.Drop(ctx, dst, m.mv.Shard); err != nil {
		return err
	}
	tag, err := m.catalog.Exec(ctx, `UPDATE ordo_catalog.moves SET state = 'failed', error = $2, updated_at = now(), finished_at = now()
		WHERE id = $1 AND step IN ('planned', 'target_ready', 'fenced')`, m.mv.ID, cause.Error())
	if err != nil {
		return fmt.Errorf("recording failed move: %w", err)
	}
	if tag.RowsAffected() != 1 {
		return fmt.Errorf("recording failed move: move %d is no longer before the cut-over", m.mv.ID)
	}
	m.log.Warn("move rolled back", "move", m.mv.ID, "shard", m.mv.Shard, "error", cause)
	return nil
}

func isLockTimeout(err error) bool {
	var pgErr *pgconn.PgError
	return errors.As(err, &pgErr) && pgErr.Code == "55P03"
}
