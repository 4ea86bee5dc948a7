package schema

import (
	"context"
	"fmt"

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
func LockForWrite(ctx context.Context, tx pgx.Tx, shards []int) error {
	if _, err := tx.Exec(ctx, lockForWriteSQL, WriteLockClass, shards); err != nil {
		return fmt.Errorf("locking shards for writing: %w", err)
	}
	return nil
}

const lockForWriteSQL = `SELECT pg_advisory_xact_lock($1::int, s) FROM (SELECT DISTINCT s FROM unnest($2::int[]) s ORDER BY s OFFSET 0) q`

// WriteLockClass is the first key of the transaction-level lock a writer
// takes on each shard it inserts into (the second key is the shard).
// Holding it from before the first sequence number is drawn until commit
// makes rows of one shard commit in (epoch, seq) order, so a reader that
// moves a cursor along the table never has a row appear behind it.
const WriteLockClass int32 = 0x6f727772 // "orwr"
