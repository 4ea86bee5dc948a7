package worker

import (
	"cmp"
	"context"
	"hash/fnv"
	"slices"
	"strconv"
	"time"

	"github.com/ordo-pipeline/ordo/shard"
)

// The worker's fair share of the shards, and which shards it prefers.

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
