package rebalance

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

// catalogLockKey is the catalog advisory lock that serialises bootstrap
// and planning between concurrent rebalance runs.
const catalogLockKey int64 = 0x6f72646f_706c616e // "ordoplan"

// catalogLockPoll is how often a run waiting for the planning lock tries
// it again.
const catalogLockPoll = 250 * time.Millisecond

// withCatalogLock runs fn while holding the catalog planning lock on a
// dedicated connection. It waits for another run holding it, as long as
// ctx allows: by trying the lock again and again rather than in one
// statement, which the session's lock and statement timeouts would end.
func withCatalogLock(ctx context.Context, pool *pgxpool.Pool, fn func(conn *pgx.Conn) error) error {
	c, err := pool.Acquire(ctx)
	if err != nil {
		return fmt.Errorf("connecting to catalog: %w", err)
	}
	defer c.Release()
	for {
		var ok bool
		if err := c.QueryRow(ctx, "SELECT pg_try_advisory_lock($1)", catalogLockKey).Scan(&ok); err != nil {
			return fmt.Errorf("taking the catalog lock: %w", err)
		}
		if ok {
			break
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("waiting for the catalog lock (another rebalance is planning): %w", ctx.Err())
		case <-time.After(catalogLockPoll):
		}
	}
	defer c.Exec(context.WithoutCancel(ctx), "SELECT pg_advisory_unlock($1)", catalogLockKey) //nolint:errcheck // released with the session anyway
	return fn(c.Conn())
}
