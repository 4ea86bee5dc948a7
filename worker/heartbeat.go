package worker

import (
	"context"
	"time"
)

// The worker's heartbeat row in the catalog, and the count of live workers
// it gives (see share.go).

// pruneAfter is how stale a heartbeat row must be before any worker
// deletes it.
const pruneAfter = 10 * time.Minute

// heartbeat beats every Heartbeat until ctx ends, then closes done. It has
// a goroutine of its own so that claiming (dialling a node, waiting for a
// lock) cannot hold the heartbeat past the liveness, which would make the
// other workers count this one dead and claim beyond their share.
func (m *manager) heartbeat(ctx context.Context, done chan<- struct{}) {
	defer close(done)
	tick := time.NewTicker(m.cfg.Heartbeat)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
			m.beat(ctx)
		}
	}
}

// beat refreshes the heartbeat row (inserting it if it is missing) and
// counts the live workers. An UPDATE does not wake the other workers; the
// INSERT, and the DELETE at exit, do.
func (m *manager) beat(ctx context.Context) {
	ctx, cancel := context.WithTimeout(ctx, m.cfg.DBTimeout)
	defer cancel()
	tag, err := m.catalog.Exec(ctx, `UPDATE ordo_catalog.workers SET heartbeat_at = now() WHERE id = $1`, m.id)
	if err == nil && tag.RowsAffected() == 0 {
		_, err = m.catalog.Exec(ctx, `INSERT INTO ordo_catalog.workers (id) VALUES ($1)
			ON CONFLICT (id) DO UPDATE SET heartbeat_at = now()`, m.id)
	}
	if err != nil {
		m.log.Warn("heartbeat failed", "error", err)
		return
	}
	m.lastBeat.Store(time.Now().UnixNano())
	m.count(ctx)
}

// count updates the number of live workers, and deletes heartbeat rows
// long dead (workers killed without a chance to delete theirs).
func (m *manager) count(ctx context.Context) {
	ctx, cancel := context.WithTimeout(ctx, m.cfg.DBTimeout)
	defer cancel()
	var live, dead int
	err := m.catalog.QueryRow(ctx, `SELECT
			count(*) FILTER (WHERE heartbeat_at > now() - make_interval(secs => $1)),
			count(*) FILTER (WHERE heartbeat_at < now() - make_interval(secs => $2))
		FROM ordo_catalog.workers`, m.cfg.Liveness.Seconds(), pruneAfter.Seconds()).Scan(&live, &dead)
	if err != nil {
		m.log.Warn("counting workers failed", "error", err)
		return
	}
	if dead > 0 {
		_, err := m.catalog.Exec(ctx, `DELETE FROM ordo_catalog.workers WHERE heartbeat_at < now() - make_interval(secs => $1)`, pruneAfter.Seconds())
		if err != nil {
			m.log.Warn("pruning dead workers failed", "error", err)
		}
	}
	if live < 1 {
		live = 1 // this worker, whose heartbeat may just have failed
	}
	if was := m.live.Swap(int64(live)); was != int64(live) {
		m.log.Info("live workers changed", "live", live, "was", was)
	}
	m.metrics.liveWorkers.Set(float64(live))
}
