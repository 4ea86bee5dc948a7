package worker

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"log/slog"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/ordo-pipeline/ordo/shard"
)

// Pauses of the claim manager that need no knob.
const (
	// shardCooldown keeps a shard whose loop failed (not for a lost
	// connection) from being claimed again at once.
	shardCooldown = 2 * time.Second
	// nodeCooldown keeps a node that refused a connection from being
	// dialled again at once.
	nodeCooldown = 2 * time.Second
	// pruneAfter is how stale a heartbeat row must be before any worker
	// deletes it.
	pruneAfter = 10 * time.Minute
)

// claim is one shard this worker holds the lock of.
type claim struct {
	shard     int
	node      string
	sess      *session
	stop      chan struct{}
	releasing bool
	err       error // why the loop ended, set before it is reported done
}

// release asks the claim's loop to let the shard go after the requests in
// flight.
func (c *claim) release() {
	if !c.releasing {
		c.releasing = true
		close(c.stop)
	}
}

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

	// Failover (watch.go, orphans.go, liveness.go, owners.go).
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

// releaseMoved lets go of every claimed shard that the map no longer has
// active on the claim's node, at once: a move waits for that (the copy
// takes the shard's lock), and an idle shard's loop would only see it at
// its next poll.
func (m *manager) releaseMoved() {
	for _, c := range m.claims {
		if c.releasing {
			continue
		}
		if p := m.placement(c.shard); p.Node != c.node || p.State != shard.StateActive {
			m.log.Info("letting go of a shard that moves", "shard", c.shard, "node", c.node, "now_on", p.Node, "state", p.State)
			c.release()
		}
	}
}

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

// rank orders shards by this worker's preference (rendezvous hashing):
// each worker prefers different shards, so they seldom race for one.
func (m *manager) rank(s int) uint64 {
	h := fnv.New64a()
	h.Write([]byte(m.id + "/" + strconv.Itoa(s))) //nolint:errcheck // hash writes never fail
	return h.Sum64()
}

// balance moves the worker toward its fair share, ⌈S/W⌉ shards, and
// claims the orphans (orphans.go) whatever the share.
func (m *manager) balance(ctx context.Context) {
	snap := m.smap.Current()
	if snap == nil || ctx.Err() != nil {
		return
	}
	live := int(m.live.Load())
	target := (snap.Count() + live - 1) / max(1, live)
	m.metrics.shardTarget.Set(float64(target))
	m.metrics.shardCount.Set(float64(snap.Count()))
	now := time.Now()
	var loose []*claim
	for _, c := range m.claims {
		if !c.releasing && !m.kept(c, now) {
			loose = append(loose, c)
		}
	}
	// Orphans claimed lately are kept beside the share, not in it.
	share := len(loose)
	if share > target {
		// Let go of the least preferred first.
		slices.SortFunc(loose, func(a, b *claim) int { return cmp.Compare(m.rank(b.shard), m.rank(a.shard)) })
		for _, c := range loose[:share-target] {
			m.log.Info("releasing shard above fair share", "shard", c.shard, "target", target, "live_workers", live)
			c.release()
		}
		share = target
	}
	if share < target {
		var candidates []shard.Placement
		for _, p := range snap.Shards {
			if p.State != shard.StateActive || m.claims[p.Shard] != nil || now.Before(m.cooldown[p.Shard]) || !m.reachable(p.Node) {
				continue
			}
			candidates = append(candidates, p)
		}
		slices.SortFunc(candidates, func(a, b shard.Placement) int { return cmp.Compare(m.rank(a.Shard), m.rank(b.Shard)) })
		for _, p := range candidates {
			if share >= target || ctx.Err() != nil {
				break
			}
			if c := m.claim(ctx, snap, p); c != nil {
				share++
				m.clearUnheld(p.Shard)
			}
		}
	}
	m.claimOrphans(ctx, snap, now, share, target)
	m.metrics.shardsOwned.Set(float64(len(m.claims)))
}

// claim tries to take p's lock and, if it gets it and the catalog agrees
// with p, starts delivering the shard.
func (m *manager) claim(ctx context.Context, snap *shard.Snapshot, p shard.Placement) *claim {
	sess := m.session(ctx, snap, p.Node)
	if sess == nil {
		return nil
	}
	ok, err := sess.tryLock(ctx, p.Shard)
	if err != nil {
		m.log.Warn("claiming shard failed", "shard", p.Shard, "node", p.Node, "error", err)
		m.dropLost(p.Node)
		return nil
	}
	if !ok {
		return nil // another worker, or a move, holds it
	}
	// The map may be behind the catalog: check the placement the lock was
	// taken for is still the shard's, now that nobody can take it from us.
	if err := m.verify(ctx, p); err != nil {
		m.log.Info("not claiming shard", "shard", p.Shard, "node", p.Node, "why", err)
		if err := sess.unlock(ctx, p.Shard); err != nil {
			m.log.Warn("releasing shard lock failed", "shard", p.Shard, "error", err)
		}
		m.cooldown[p.Shard] = time.Now().Add(shardCooldown)
		return nil
	}
	c := &claim{shard: p.Shard, node: p.Node, sess: sess, stop: make(chan struct{})}
	sess.shards++
	m.claims[p.Shard] = c
	m.log.Info("claimed shard", "shard", p.Shard, "node", p.Node, "epoch", p.Epoch)
	m.metrics.shardHeld.WithLabelValues(strconv.Itoa(p.Shard), p.Node).Set(1)
	m.owners.note(ownerChange{shard: p.Shard, node: p.Node, kind: "claimed"})
	go m.deliver(c)
	return c
}

// errPlacementChanged says the catalog no longer has a shard where the map
// had it.
var errPlacementChanged = errors.New("placement changed")

func (m *manager) verify(ctx context.Context, p shard.Placement) error {
	ctx, cancel := context.WithTimeout(ctx, m.cfg.DBTimeout)
	defer cancel()
	var node, state string
	err := m.catalog.QueryRow(ctx, `SELECT node, state FROM ordo_catalog.shards WHERE shard = $1`, p.Shard).Scan(&node, &state)
	if errors.Is(err, pgx.ErrNoRows) {
		return fmt.Errorf("%w: shard %d is not in the catalog", errPlacementChanged, p.Shard)
	}
	if err != nil {
		return fmt.Errorf("checking placement: %w", err)
	}
	if node != p.Node || state != shard.StateActive {
		return fmt.Errorf("%w: shard %d is %s on node %s", errPlacementChanged, p.Shard, state, node)
	}
	return nil
}

// deliver runs a claim's loop, then releases its lock and reports it done.
func (m *manager) deliver(c *claim) {
	l := newShardLoop(m, c)
	err := l.run()
	if !c.sess.lost.Load() {
		if uerr := c.sess.unlock(context.Background(), c.shard); uerr != nil && !errors.Is(uerr, errSessionLost) {
			m.log.Warn("releasing shard lock failed", "shard", c.shard, "error", uerr)
		}
	}
	c.err = err
	m.done <- c
}

// finished forgets a claim whose loop ended.
func (m *manager) finished(c *claim) {
	delete(m.claims, c.shard)
	c.sess.shards--
	m.metrics.shardsOwned.Set(float64(len(m.claims)))
	m.metrics.shardHeld.DeleteLabelValues(strconv.Itoa(c.shard), c.node)
	m.owners.note(ownerChange{shard: c.shard, node: c.node, kind: "released"})
	switch {
	case errors.Is(c.err, errStopped):
		m.log.Info("released shard", "shard", c.shard, "node", c.node)
	case errors.Is(c.err, errSessionLost) || c.sess.lost.Load():
		m.log.Warn("lost shard with its connection", "shard", c.shard, "node", c.node, "error", c.err)
		m.dropLost(c.node)
	default:
		m.log.Warn("shard loop failed; releasing it", "shard", c.shard, "node", c.node, "error", c.err)
		m.cooldown[c.shard] = time.Now().Add(shardCooldown)
	}
}

// session returns a claim connection to node with the fewest shards,
// opening one while the node has fewer than NodeConns. It returns nil
// when the node cannot be reached.
func (m *manager) session(ctx context.Context, snap *shard.Snapshot, node string) *session {
	m.dropLost(node)
	if !m.reachable(node) {
		return nil // its watcher cannot reach it: dialling would hold up claiming
	}
	list := m.sessions[node]
	var best *session
	for _, s := range list {
		if best == nil || s.shards < best.shards {
			best = s
		}
	}
	if best != nil && (best.shards == 0 || len(list) >= m.cfg.NodeConns) {
		return best
	}
	if time.Now().Before(m.nodeDown[node]) {
		return best
	}
	n, ok := snap.Nodes[node]
	if !ok {
		return best
	}
	s, err := connect(ctx, node, n.URL, &m.cfg.Tuning, "ordo-worker "+m.id)
	if err != nil {
		m.log.Warn("cannot reach node", "node", node, "error", err)
		m.nodeDown[node] = time.Now().Add(nodeCooldown)
		return best
	}
	m.sessions[node] = append(list, s)
	m.publishSessions()
	return s
}

// publishSessions hands the claim connections to the pinger.
func (m *manager) publishSessions() {
	var all []*session
	for _, list := range m.sessions {
		all = append(all, list...)
	}
	m.pinger.publish(all)
}

// dropLost closes and forgets node's lost sessions. Their loops end on
// their next statement.
func (m *manager) dropLost(node string) {
	list := m.sessions[node]
	kept := list[:0]
	for _, s := range list {
		if s.lost.Load() {
			s.close()
			continue
		}
		kept = append(kept, s)
	}
	if len(kept) != len(list) {
		m.sessions[node] = kept
		m.publishSessions()
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
