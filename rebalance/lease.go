package rebalance

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

// A move's executor holds the move's lock in the catalog, and refreshes
// the move's lease (moves.heartbeat_at) every leaseBeat on another
// session. An executor that stops refreshing it while its lock is held is
// silent: cut off from the catalog by the network, or frozen. Its catalog
// session would live on until the catalog's keepalives end it, and the
// move, with a shard fenced or undelivered, would wait; so once the lease
// is leaseTimeout old, any process that executes moves ends that session
// (pg_terminate_backend), which frees the move's lock, and resumes the
// move. The silent executor may still reach the nodes: the next executor
// ends its sessions there too (see claimNode) before it changes anything,
// and redoes every step that such an executor could have undone.
var (
	leaseBeat    = time.Second
	leaseTimeout = 3 * time.Second
)

// keepLease refreshes move id's lease until the returned function is
// called.
func keepLease(ctx context.Context, pool *pgxpool.Pool, id int64, log *slog.Logger) (stop func()) {
	ctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	done := make(chan struct{})
	go func() {
		defer close(done)
		tick := time.NewTicker(leaseBeat)
		defer tick.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-tick.C:
			}
			bctx, bcancel := context.WithTimeout(ctx, leaseBeat)
			_, err := pool.Exec(bctx, `UPDATE ordo_catalog.moves SET heartbeat_at = now() WHERE id = $1`, id)
			bcancel()
			if err != nil && ctx.Err() == nil {
				log.Warn("refreshing the move's lease failed", "move", id, "error", err)
			}
		}
	}()
	return func() {
		cancel()
		<-done
	}
}

// expireLeases ends the catalog session of every move executor whose lease
// is older than leaseTimeout while it holds the move's lock, and returns
// how many it ended.
func expireLeases(ctx context.Context, pool *pgxpool.Pool, log *slog.Logger) (int, error) {
	rows, err := pool.Query(ctx, `SELECT m.id, m.shard, l.pid, extract(epoch FROM now() - m.heartbeat_at)::float8
		FROM ordo_catalog.moves m
		JOIN pg_locks l ON l.locktype = 'advisory' AND l.granted
			AND l.classid = $1::int::oid AND l.objid = m.id::int::oid AND l.objsubid = 2
			AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database())
		WHERE m.state IN ('pending', 'running') AND m.heartbeat_at < now() - make_interval(secs => $2)`,
		moveLockClass, leaseTimeout.Seconds())
	if err != nil {
		return 0, fmt.Errorf("looking for silent move executors: %w", err)
	}
	type silent struct {
		id    int64
		shard int
		pid   int32
		age   float64
	}
	var found []silent
	var s silent
	if _, err := pgx.ForEachRow(rows, []any{&s.id, &s.shard, &s.pid, &s.age}, func() error {
		found = append(found, s)
		return nil
	}); err != nil {
		return 0, fmt.Errorf("looking for silent move executors: %w", err)
	}
	ended := 0
	for _, s := range found {
		var ok bool
		if err := pool.QueryRow(ctx, `SELECT pg_terminate_backend($1)`, s.pid).Scan(&ok); err != nil {
			return ended, fmt.Errorf("ending the session of move %d's silent executor: %w", s.id, err)
		}
		if ok {
			ended++
			log.Warn("ended the catalog session of a silent move executor, to resume its move", "move", s.id, "shard", s.shard,
				"pid", s.pid, "lease_age", time.Duration(s.age*float64(time.Second)).Round(time.Millisecond))
		}
	}
	return ended, nil
}
