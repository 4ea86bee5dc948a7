package store

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/ordo-pipeline/ordo/shard"
)

// routed is an event with the shard it hashes to, and the shard's epoch
// in the snapshot it is routed by.
type routed struct {
	shard int
	epoch int64
	ev    *Event
}

// Write stores events, each once per destination, and returns nil once all
// of them are committed. Events of one ordering key are stored in the
// order given. ctx (and Config.WriteTimeout, whichever ends first) bounds
// the whole call; when it ends, Write returns an error wrapping
// ErrUnavailable. See the package documentation for what a failed Write
// may have stored.
func (s *Store) Write(ctx context.Context, events []Event) error {
	deadline := time.Now().Add(s.cfg.WriteTimeout)
	if d, ok := ctx.Deadline(); ok && d.Before(deadline) {
		deadline = d
	}
	ctx, cancel := context.WithDeadline(ctx, deadline)
	defer cancel()

	pending := make([]routed, 0, len(events))
	for i := range events {
		if len(events[i].Destinations) > 0 {
			pending = append(pending, routed{ev: &events[i]})
		}
	}
	if len(pending) == 0 {
		return nil
	}
	snap, err := s.snapshot(ctx)
	if err != nil {
		return err
	}
	s.prune()
	for i := range pending {
		pending[i].shard = shard.For(pending[i].ev.OrderingKey, snap.Count())
	}

	for {
		stale, err := s.writeOnce(ctx, snap, pending, deadline)
		if err != nil || len(stale) == 0 {
			return err
		}
		s.metrics.staleRetries.Inc()
		next, err := s.awaitMove(ctx, snap, stale)
		if err != nil {
			return err
		}
		snap, pending = next, stale
	}
}

// snapshot returns the current placement map, loading it if the map has
// never loaded.
func (s *Store) snapshot(ctx context.Context) (*shard.Snapshot, error) {
	if snap := s.m.Current(); snap != nil {
		return snap, nil
	}
	if err := s.m.Refresh(ctx); err != nil {
		return nil, fmt.Errorf("%w: loading shard map: %w", ErrUnavailable, err)
	}
	snap := s.m.Current()
	if snap == nil {
		return nil, fmt.Errorf("%w: shard map not loaded", ErrUnavailable)
	}
	return snap, nil
}

// writeOnce sends events to their nodes' batchers and waits for every
// node. It returns the events that hit a moved shard, to be routed again.
//
// Nodes are written in parallel, unless the events span several nodes and
// one of them is suspect (its last write failed): then the suspect nodes
// go first, one at a time, and the first failure ends the write, so that
// a node that is down does not leave the request stored on the others.
func (s *Store) writeOnce(ctx context.Context, snap *shard.Snapshot, events []routed, deadline time.Time) ([]routed, error) {
	byNode := map[string][]routed{}
	var order []string
	for i := range events {
		p := snap.Shards[events[i].shard]
		events[i].epoch = p.Epoch
		r, name := events[i], p.Node
		if _, ok := byNode[name]; !ok {
			order = append(order, name)
		}
		byNode[name] = append(byNode[name], r)
	}
	batchers := make(map[string]*batcher, len(order))
	for _, name := range order {
		b, err := s.batcherFor(snap.Nodes[name])
		if err != nil {
			return nil, err
		}
		batchers[name] = b
	}
	now := time.Now()
	var suspects, others []string
	for _, name := range order {
		if batchers[name].suspect(now) {
			suspects = append(suspects, name)
		} else {
			others = append(others, name)
		}
	}
	if len(order) == 1 || len(suspects) == 0 {
		return s.writeNodes(ctx, batchers, byNode, order, deadline)
	}
	s.metrics.suspectWrites.Inc()
	var stale []routed
	for _, name := range suspects {
		st, err := s.writeNodes(ctx, batchers, byNode, []string{name}, deadline)
		if err != nil {
			return nil, err
		}
		stale = append(stale, st...)
	}
	st, err := s.writeNodes(ctx, batchers, byNode, others, deadline)
	return append(stale, st...), err
}

// writeNodes writes the events of the given nodes in parallel and waits
// for all of them. It leaves marking nodes failed to their batchers,
// which alone can tell a failing node from a caller that gave up.
func (s *Store) writeNodes(ctx context.Context, batchers map[string]*batcher, byNode map[string][]routed, names []string, deadline time.Time) ([]routed, error) {
	type sent struct {
		b   *batcher
		req *request
	}
	var reqs []sent
	var firstErr error
	for _, name := range names {
		b := batchers[name]
		req := newRequest(byNode[name], deadline)
		if err := b.submit(ctx, req); err != nil {
			if firstErr == nil {
				firstErr = err
			}
			continue
		}
		reqs = append(reqs, sent{b, req})
	}
	var stale []routed
	for _, r := range reqs {
		err := r.req.wait(ctx, r.b.done)
		switch {
		case err == nil:
		case errors.Is(err, errStale):
			stale = append(stale, r.req.events...)
		default:
			if firstErr == nil {
				firstErr = err
			}
		}
	}
	return stale, firstErr
}

// retrySameAfter is how long awaitMove waits for a fenced shard's new
// placement before it lets the write try the same placement again: a
// move that is rolled back lifts its fence and leaves the placement as it
// was. A write into a shard that is still fenced fails again at once, so
// retrying is cheap.
const retrySameAfter = 250 * time.Millisecond

// awaitMove refreshes the map after a write hit a fenced or missing shard
// table and returns the snapshot to route the stale events by. While the
// map still places every stale shard where it was (the move fenced the
// shard but has not flipped the catalog yet, or the catalog did not
// answer), it waits with a short backoff and reloads again; once
// retrySameAfter has passed without a change, it returns the unchanged
// placement, to be tried again. It fails when ctx ends.
func (s *Store) awaitMove(ctx context.Context, old *shard.Snapshot, stale []routed) (*shard.Snapshot, error) {
	began := time.Now()
	wait := 5 * time.Millisecond
	for {
		err := s.m.Refresh(ctx)
		snap := s.m.Current()
		if err == nil && snap != nil && moved(old, snap, stale) {
			return snap, nil
		}
		if time.Since(began) >= retrySameAfter && ctx.Err() == nil {
			if snap == nil || snap.Count() != old.Count() {
				snap = old
			}
			return snap, nil
		}
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return nil, fmt.Errorf("%w: shard %d moved and its new placement did not appear in time", ErrUnavailable, stale[0].shard)
		case <-t.C:
		}
		wait = min(2*wait, 200*time.Millisecond)
	}
}

// moved reports whether any shard of stale is placed differently in snap
// than in old.
func moved(old, snap *shard.Snapshot, stale []routed) bool {
	for _, r := range stale {
		if old.Shards[r.shard] != snap.Shards[r.shard] {
			return true
		}
	}
	return false
}
