package worker

import (
	"cmp"
	"context"
	"slices"
	"strconv"
	"time"

	"github.com/ordo-pipeline/ordo/shard"
)

// Orphans are active shards that no worker holds. Fair share counts the
// workers whose heartbeat is fresh, and a worker claims only up to its
// share; so a shard whose holder cannot reach its node (cut off from the
// nodes but not from the catalog), or was ended as silent, would wait for
// as long as the cut lasts while every other worker sits at its share. A
// worker therefore also claims, above its share, every shard its watchers
// see free for longer than the liveness window (Liveness: a shard being
// handed over is free for less), and at once every shard whose silent
// holder they just ended.
//
// A shard so claimed above the share is kept for a while (keepFirst,
// doubling up to keepMost each time it comes back as an orphan) before it
// may be released for the share again: released, it would find no taker
// if the workers below their share are the ones that cannot reach it, and
// come back as an orphan after another liveness window. Once another
// worker is seen holding it, the hand-over worked and the doubling starts
// over.
const (
	keepFirst = 30 * time.Second
	keepMost  = 5 * time.Minute
)

// nodeWatch is what the manager knows of a node from its watcher.
type nodeWatch struct {
	cancel  context.CancelFunc
	lastOK  time.Time
	lastErr string
}

// orphanState is the manager's view of free shards. Only the manager's
// run goroutine touches it.
type orphanState struct {
	unheldSince map[int]time.Time
	freed       map[int]bool // their silent holder was ended: claim at once
	reported    map[int]bool // recorded in shard_owners for this episode
	keepUntil   map[int]time.Time
	keepFor     map[int]time.Duration
}

func newOrphanState() orphanState {
	return orphanState{
		unheldSince: map[int]time.Time{},
		freed:       map[int]bool{},
		reported:    map[int]bool{},
		keepUntil:   map[int]time.Time{},
		keepFor:     map[int]time.Duration{},
	}
}

// syncWatchers runs one watcher per node of the map that is not detached.
func (m *manager) syncWatchers(ctx context.Context) {
	snap := m.smap.Current()
	if snap == nil {
		return
	}
	for name, n := range snap.Nodes {
		if n.State == "detached" || m.watches[name] != nil {
			continue
		}
		wctx, cancel := context.WithCancel(ctx)
		m.watches[name] = &nodeWatch{cancel: cancel}
		w := &watcher{node: name, url: n.URL, self: appPrefix + m.id, tuning: &m.cfg.Tuning, log: m.log, metrics: m.metrics, reports: m.reports}
		m.watchWG.Go(func() { w.run(wctx) })
	}
	for name, nw := range m.watches {
		if n, ok := snap.Nodes[name]; !ok || n.State == "detached" {
			nw.cancel()
			delete(m.watches, name)
		}
	}
}

// reachable reports whether node's watcher reaches it: false once a look
// failed and none succeeded within the silence.
func (m *manager) reachable(node string) bool {
	nw := m.watches[node]
	return nw == nil || nw.lastErr == "" || time.Since(nw.lastOK) < m.cfg.Silence
}

// onWatch takes a watcher's report and says whether an orphan may now be
// claimed.
func (m *manager) onWatch(r watchReport) bool {
	nw := m.watches[r.node]
	if nw == nil {
		return false // a node no longer watched
	}
	if r.err != nil {
		if nw.lastErr == "" {
			m.log.Warn("cannot watch node", "node", r.node, "error", r.err)
		}
		nw.lastErr = r.err.Error()
		return false
	}
	if nw.lastErr != "" {
		m.log.Info("watching node again", "node", r.node)
	}
	nw.lastErr, nw.lastOK = "", r.at
	snap := m.smap.Current()
	if snap == nil {
		return false
	}
	o := &m.orph
	wake := false
	for _, p := range snap.Shards {
		if p.Node != r.node {
			continue
		}
		s := p.Shard
		if p.State != shard.StateActive || m.claims[s] != nil {
			m.clearUnheld(s)
			continue
		}
		if h, ok := r.held[s]; ok {
			m.clearUnheld(s)
			if workerOf(h.app) != m.id {
				delete(o.keepFor, s) // another worker took it: hand-over works
			}
			continue
		}
		if h, ok := r.ended[s]; ok {
			since := r.at.Add(-h.silent)
			if o.unheldSince[s].IsZero() || since.Before(o.unheldSince[s]) {
				o.unheldSince[s] = since
			}
			o.freed[s] = true
			if !o.reported[s] {
				o.reported[s] = true
				m.owners.note(ownerChange{shard: s, node: p.Node, kind: "freed", holder: workerOf(h.app), age: h.silent})
			}
			wake = true
		} else if o.unheldSince[s].IsZero() {
			o.unheldSince[s] = r.at
		}
		age := r.at.Sub(o.unheldSince[s])
		m.metrics.shardUnowned.WithLabelValues(strconv.Itoa(s)).Set(age.Seconds())
		if age >= m.cfg.Liveness {
			wake = true
			if !o.reported[s] {
				o.reported[s] = true
				m.owners.note(ownerChange{shard: s, node: p.Node, kind: "unheld", age: age})
			}
		}
	}
	return wake
}

// clearUnheld forgets that shard s was seen free.
func (m *manager) clearUnheld(s int) {
	o := &m.orph
	if _, ok := o.unheldSince[s]; !ok {
		return
	}
	delete(o.unheldSince, s)
	delete(o.freed, s)
	delete(o.reported, s)
	m.metrics.shardUnowned.DeleteLabelValues(strconv.Itoa(s))
}

// kept reports whether c was claimed as an orphan recently enough that it
// is not released for the fair share yet.
func (m *manager) kept(c *claim, now time.Time) bool {
	return now.Before(m.orph.keepUntil[c.shard])
}

// claimOrphans claims, whatever the fair share, every shard that is free
// past the liveness window or whose silent holder was just ended. share
// is how many shards of its share the worker holds: those claimed beyond
// the target are kept a while (see keepFirst).
func (m *manager) claimOrphans(ctx context.Context, snap *shard.Snapshot, now time.Time, share, target int) {
	o := &m.orph
	var due []shard.Placement
	for s, since := range o.unheldSince {
		if s >= snap.Count() || m.claims[s] != nil || now.Before(m.cooldown[s]) {
			continue
		}
		p := snap.Shards[s]
		if p.State != shard.StateActive || !m.reachable(p.Node) {
			continue
		}
		if o.freed[s] || now.Sub(since) >= m.cfg.Liveness {
			due = append(due, p)
		}
	}
	slices.SortFunc(due, func(a, b shard.Placement) int { return cmp.Compare(m.rank(a.Shard), m.rank(b.Shard)) })
	for _, p := range due {
		if ctx.Err() != nil {
			return
		}
		unowned := now.Sub(o.unheldSince[p.Shard])
		c := m.claim(ctx, snap, p)
		m.clearUnheld(p.Shard)
		if c == nil {
			continue // another worker took it first, or the node failed us
		}
		m.metrics.orphansClaimed.Inc()
		if share < target {
			share++ // within the share: released like any other
			m.log.Info("claimed a shard nobody held", "shard", p.Shard, "node", p.Node, "unowned", unowned.Round(time.Millisecond))
			continue
		}
		keep := min(2*o.keepFor[p.Shard], keepMost)
		if keep == 0 {
			keep = keepFirst
		}
		o.keepFor[p.Shard], o.keepUntil[p.Shard] = keep, now.Add(keep)
		m.log.Info("claimed a shard nobody held, above the fair share", "shard", p.Shard, "node", p.Node,
			"unowned", unowned.Round(time.Millisecond), "target", target, "kept_for", keep)
	}
}
