package worker

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/ordo-pipeline/ordo/shard"
)

// manager keeps the worker's heartbeat and its fair share of claims. Only
// its run goroutine touches its maps; the heartbeat runs on a goroutine of
// its own.
type manager struct {
	cfg       *Config
	id        string
	log       *slog.Logger
	catalog   *pgxpool.Pool
	smap      *shard.Map
	metrics   *metrics
	dests     map[string]*destination
	destOrder []*destination

	sessions map[string][]*session
	nodeDown map[string]time.Time
	claims   map[int]*claim
	cooldown map[int]time.Time
	live     atomic.Int64 // live workers, this one included
	done     chan *claim

	vacuum *vacuumer // nil when VacuumRows is 0
	waker  *waker    // nil in tests that run loops without listening

	lastBeat atomic.Int64 // unix nanos of the last successful heartbeat

	// Failover (watch.go, orphans.go, pinger.go, owners.go).
	watches map[string]*nodeWatch
	watchWG sync.WaitGroup
	reports chan watchReport
	orph    orphanState
	pinger  *pinger
	owners  *owners
}

// vacuumFor returns the function a claim's loop calls to have its table
// vacuumed, or nil.
func (m *manager) vacuumFor(c *claim) func() {
	if m.vacuum == nil {
		return nil
	}
	snap := m.smap.Current()
	url := snap.Nodes[c.node].URL
	return func() { m.vacuum.request(c.node, url, c.shard) }
}

// placement returns shard's placement in the current map.
func (m *manager) placement(s int) shard.Placement {
	snap := m.smap.Current()
	if snap == nil || s >= snap.Count() {
		return shard.Placement{Shard: s}
	}
	return snap.Shards[s]
}

// ready reports whether the worker is fit to deliver: the map is loaded and
// its heartbeat is fresh.
func (m *manager) ready() bool {
	last := m.lastBeat.Load()
	return m.smap.Current() != nil && last != 0 && time.Since(time.Unix(0, last)) < m.cfg.Liveness
}

// run keeps the heartbeat and the claims until ctx ends, then drains:
// every loop finishes its requests in flight and releases its shard, and
// the heartbeat row is deleted.
func (m *manager) run(ctx context.Context) error {
	sub := m.smap.Subscribe()
	m.beat(ctx)
	beating := make(chan struct{})
	go m.heartbeat(ctx, beating)
	// The watchers, the pinger and the ownership record outlive ctx until
	// the drain is over: pings keep the claims of a draining worker from
	// looking silent.
	bg, stopBG := context.WithCancel(context.WithoutCancel(ctx))
	var bgWG sync.WaitGroup
	bgWG.Go(func() { m.pinger.run(bg) })
	bgWG.Go(func() { m.owners.run(bg) })
	defer func() {
		stopBG()
		m.watchWG.Wait()
		bgWG.Wait()
	}()
	m.syncWatchers(bg)
	tick := time.NewTicker(m.cfg.Heartbeat)
	defer tick.Stop()
	m.balance(ctx)
	for {
		select {
		case <-ctx.Done():
			<-beating // a late beat would insert the row again
			return m.shutdown()
		case <-tick.C:
			m.balance(ctx)
		case <-sub:
			// A placement change, or a worker came or went.
			m.releaseMoved()
			m.syncWatchers(bg)
			m.count(ctx)
			m.balance(ctx)
		case r := <-m.reports:
			if m.onWatch(r) {
				m.balance(ctx)
			}
		case c := <-m.done:
			m.finished(c)
			m.balance(ctx)
		}
	}
}

// shutdown releases every claim after its requests in flight, closes the
// claim connections and deletes the heartbeat row.
func (m *manager) shutdown() error {
	m.log.Info("draining", "shards", len(m.claims))
	for _, c := range m.claims {
		c.release()
	}
	for len(m.claims) > 0 {
		m.finished(<-m.done)
	}
	for _, list := range m.sessions {
		for _, s := range list {
			s.close()
		}
	}
	m.publishSessions()
	ctx, cancel := context.WithTimeout(context.Background(), m.cfg.DBTimeout)
	defer cancel()
	if _, err := m.catalog.Exec(ctx, `UPDATE ordo_catalog.shard_owners SET worker = NULL, since = now() WHERE worker = $1`, m.id); err != nil {
		m.log.Warn("recording the release of every shard failed", "error", err)
	}
	if _, err := m.catalog.Exec(ctx, `DELETE FROM ordo_catalog.workers WHERE id = $1`, m.id); err != nil {
		return fmt.Errorf("deleting heartbeat: %w", err)
	}
	m.log.Info("drained")
	return nil
}
