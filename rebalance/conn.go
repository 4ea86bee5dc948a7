package rebalance

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/ordo-pipeline/ordo/internal/keepalive"
)

// Every connection rebalance opens notices a silent peer within seconds
// (package keepalive), on both ends: a rebalance cut off from the network
// must not keep, for the kernel's two hours, the sessions that hold a
// move's lock in the catalog or a shard's lock on a node. They are named,
// so that an operator (and a worker taking over an abandoned move) can
// tell them in pg_stat_activity.
const (
	// AppName is the application_name of rebalance's sessions.
	AppName = "ordo-rebalance"

	catalogStatementTimeout = time.Minute
	catalogLockTimeout      = 30 * time.Second
	nodeLockTimeout         = 10 * time.Second
	idleInTransaction       = 5 * time.Minute
)

// catalogOptions are the settings of catalog sessions: no statement of
// rebalance's needs a minute, so one that takes that long is stuck.
func catalogOptions() keepalive.Options {
	return keepalive.Options{
		App:                      AppName,
		LockTimeout:              catalogLockTimeout,
		StatementTimeout:         catalogStatementTimeout,
		IdleInTransactionTimeout: idleInTransaction,
	}
}

// nodeOptions are the settings of node sessions. A copy may stream for
// long, so statements are bounded by their context, not by the server.
func nodeOptions() keepalive.Options {
	return keepalive.Options{
		App:                      AppName,
		LockTimeout:              nodeLockTimeout,
		IdleInTransactionTimeout: idleInTransaction,
	}
}

// catalogPool opens a pool on the catalog whose sessions are configured
// by catalogOptions.
func catalogPool(ctx context.Context, url string) (*pgxpool.Pool, error) {
	cfg, err := pgxpool.ParseConfig(url)
	if err != nil {
		return nil, fmt.Errorf("catalog: %w", err)
	}
	keepalive.Configure(&cfg.ConnConfig.Config, catalogOptions())
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("catalog: %w", err)
	}
	return pool, nil
}

// openSession opens one session with o's settings.
func openSession(ctx context.Context, url string, o keepalive.Options) (*pgx.Conn, error) {
	cfg, err := pgx.ParseConfig(url)
	if err != nil {
		return nil, err
	}
	keepalive.Configure(&cfg.Config, o)
	return pgx.ConnectConfig(ctx, cfg)
}

// connectNode opens a session on a storage node.
func connectNode(ctx context.Context, url string) (*pgx.Conn, error) {
	return openSession(ctx, url, nodeOptions())
}

// connectCatalog opens a session on the catalog.
func connectCatalog(ctx context.Context, url string) (*pgx.Conn, error) {
	return openSession(ctx, url, catalogOptions())
}
