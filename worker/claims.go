package worker

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/ordo-pipeline/ordo/shard"
)

// shardCooldown keeps a shard whose loop failed (not for a lost
// connection) from being claimed again at once.
const shardCooldown = 2 * time.Second

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
