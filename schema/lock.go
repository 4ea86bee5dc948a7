package schema

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

// WriteLockClass is the first key of the transaction-level lock a writer
// takes on each shard it inserts into (the second key is the shard).
// Holding it from before the first sequence number is drawn until commit
// makes rows of one shard commit in (epoch, seq) order, so a reader that
// moves a cursor along the table never has a row appear behind it.
const WriteLockClass int32 = 0x6f727772 // "orwr"
