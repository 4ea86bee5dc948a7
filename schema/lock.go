package schema

import (
	"context"
	"fmt"
	"strconv"
	"strings"

	"github.com/jackc/pgx/v5"
)

// LockClass is the first key of every shard advisory lock: "ordo" in ASCII.
const LockClass int32 = 0x6f72646f

// LockSQL and TryLockSQL take shard's session-level advisory lock on the
// node that holds it, with the shard as the only argument. The worker that
// delivers a shard holds it; so does rebalance while it copies the shard,
// on the source and on the target. UnlockSQL releases it.
const (
	LockSQL    = "SELECT pg_advisory_lock(1869767791, $1::int)"
	TryLockSQL = "SELECT pg_try_advisory_lock(1869767791, $1::int)"
	UnlockSQL  = "SELECT pg_advisory_unlock(1869767791, $1::int)"
)

// LockForWrite takes, in tx, the write lock of every shard in shards, in
// ascending order so that two writers never wait for each other in a
// cycle. Every insert into a shard table must hold it: see WriteLockClass.
//
// In the same statement it queues a notification on RowsChannel naming
// the shards (NotifyPayload), which Postgres delivers to the node's
// listeners when tx commits, and never if it does not: workers learn of
// the new rows at once instead of polling for them.
func LockForWrite(ctx context.Context, tx pgx.Tx, shards []int) error {
	if _, err := tx.Exec(ctx, lockForWriteSQL, WriteLockClass, shards, RowsChannel, NotifyPayload(shards)); err != nil {
		return fmt.Errorf("locking shards for writing: %w", err)
	}
	return nil
}

// BeginWriteSQL returns one simple-protocol statement that begins a
// transaction and does what LockForWrite does in it, so that a writer
// saves a round trip: BEGIN, the write locks of shards, the notification.
// It holds only integers and the payload (digits, commas or "*").
func BeginWriteSQL(shards []int) string {
	var b strings.Builder
	b.WriteString("BEGIN; SELECT pg_notify('")
	b.WriteString(RowsChannel)
	b.WriteString("', '")
	b.WriteString(NotifyPayload(shards))
	b.WriteString("') FROM (SELECT count(*) FROM (SELECT pg_advisory_xact_lock(")
	b.WriteString(strconv.Itoa(int(WriteLockClass)))
	b.WriteString(", s) FROM (SELECT DISTINCT s FROM unnest('{")
	for i, s := range shards {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString(strconv.Itoa(s))
	}
	b.WriteString("}'::int[]) s ORDER BY s OFFSET 0) q) l) c")
	return b.String()
}

const lockForWriteSQL = `SELECT pg_notify($3, $4) FROM (
	SELECT count(*) FROM (SELECT pg_advisory_xact_lock($1::int, s) FROM (SELECT DISTINCT s FROM unnest($2::int[]) s ORDER BY s OFFSET 0) q) l
) c`

// RowsChannel is the channel on which a node announces committed rows:
// each payload names the shards that got rows (see NotifyPayload).
const RowsChannel = "ordo_rows"

// maxPayload keeps a payload under Postgres's limit of 8000 bytes.
const maxPayload = 7900

// NotifyPayload is the payload announcing new rows in shards: their
// numbers, comma-separated, or "*" (every shard of the node) when they
// would not fit in one notification.
func NotifyPayload(shards []int) string {
	b := make([]byte, 0, 4*len(shards))
	for i, s := range shards {
		if i > 0 {
			b = append(b, ',')
		}
		b = strconv.AppendInt(b, int64(s), 10)
		if len(b) > maxPayload {
			return "*"
		}
	}
	return string(b)
}

// ParsePayload reads a payload made by NotifyPayload: the shards it names,
// or all when it names every shard of the node. A payload it cannot read
// counts as all, so that no announcement is lost.
func ParsePayload(payload string) (shards []int, all bool) {
	if payload == "" || payload == "*" {
		return nil, true
	}
	for part := range strings.SplitSeq(payload, ",") {
		s, err := strconv.Atoi(part)
		if err != nil || s < 0 {
			return nil, true
		}
		shards = append(shards, s)
	}
	return shards, false
}

// WriteLockClass is the first key of the transaction-level lock a writer
// takes on each shard it inserts into (the second key is the shard).
// Holding it from before the first sequence number is drawn until commit
// makes rows of one shard commit in (epoch, seq) order, so a reader that
// moves a cursor along the table never has a row appear behind it.
const WriteLockClass int32 = 0x6f727772 // "orwr"
