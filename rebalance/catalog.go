package rebalance

import (
	"context"
	"fmt"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

// catalogLockKey is the catalog advisory lock that serialises bootstrap
// and planning between concurrent rebalance runs.
const catalogLockKey int64 = 0x6f72646f_706c616e // "ordoplan"

// withCatalogLock runs fn while holding the catalog planning lock on a
// dedicated connection. It waits for another run holding it.
func withCatalogLock(ctx context.Context, pool *pgxpool.Pool, fn func(conn *pgx.Conn) error) error {
	c, err := pool.Acquire(ctx)
	if err != nil {
		return fmt.Errorf("connecting to catalog: %w", err)
	}
	defer c.Release()
	if _, err := c.Exec(ctx, "SELECT pg_advisory_lock($1)", catalogLockKey); err != nil {
		return fmt.Errorf("taking the catalog lock: %w", err)
	}
	defer c.Exec(context.WithoutCancel(ctx), "SELECT pg_advisory_unlock($1)", catalogLockKey) //nolint:errcheck // released with the session anyway
	return fn(c.Conn())
}
