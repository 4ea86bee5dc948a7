package worker

import (
	"context"
	"time"

	"github.com/ordo-pipeline/ordo/shard"
)

// The manager's claim connections (sessions), a few per node, shared by
// the shards claimed there.

// nodeCooldown keeps a node that refused a connection from being dialled
// again at once.
const nodeCooldown = 2 * time.Second

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
