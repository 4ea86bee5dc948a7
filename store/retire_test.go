package store

import (
	"context"
	"errors"
	"maps"
	"sync"
	"testing"
	"time"

	"github.com/ordo-pipeline/ordo/shard"
)

// TestRequestQueuedOnStoppedBatcher queues a request on a batcher that has
// already stopped, as a write that raced a retired batcher does: its
// waiter is answered at once, unwritten, rather than at its deadline.
func TestRequestQueuedOnStoppedBatcher(t *testing.T) {
	t.Parallel()
	cfg := Config{}.WithDefaults()
	b, err := newBatcher(shard.Node{Name: "gone", URL: "postgres://postgres@127.0.0.1:1/postgres"}, cfg, newMetrics(nil))
	if err != nil {
		t.Fatal(err)
	}
	b.close()
	r := newRequest([]routed{{ev: &Event{Destinations: []string{"d"}}}}, time.Now().Add(10*time.Second))
	if err := b.submit(t.Context(), r); err != nil {
		t.Fatalf("submit = %v, want the request queued", err)
	}
	began := time.Now()
	err = r.wait(t.Context(), b.done)
	if !errors.Is(err, ErrUnavailable) || !errors.Is(err, errStale) {
		t.Errorf("wait = %v, want ErrUnavailable, to be routed again", err)
	}
	if took := time.Since(began); took > time.Second {
		t.Errorf("wait took %v", took)
	}
	if r.state.Load() != stateAbandoned {
		t.Error("the request is not abandoned: it could still be written")
	}
}

// settablePlacement is a placement map whose snapshot the test sets.
type settablePlacement struct {
	mu   sync.Mutex
	snap *shard.Snapshot
}

func (p *settablePlacement) Current() *shard.Snapshot {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.snap
}

func (p *settablePlacement) set(s *shard.Snapshot) {
	p.mu.Lock()
	p.snap = s
	p.mu.Unlock()
}

func (p *settablePlacement) Refresh(context.Context) error { return nil }

// without returns a copy of snap in which node holds no shard (they are
// on onto) and has state, or is not listed when state is "".
func without(snap *shard.Snapshot, node, onto, state string) *shard.Snapshot {
	out := &shard.Snapshot{Shards: append([]shard.Placement(nil), snap.Shards...), Nodes: maps.Clone(snap.Nodes)}
	for i := range out.Shards {
		if out.Shards[i].Node == node {
			out.Shards[i].Node = onto
		}
	}
	if state == "" {
		delete(out.Nodes, node)
	} else {
		n := out.Nodes[node]
		n.State = state
		out.Nodes[node] = n
	}
	return out
}

// TestBatchersOfLeftNodesClose checks that the batcher (and pool) of a
// node is closed once the map lists the node as detached, or no longer
// lists it, and that writes go on.
func TestBatchersOfLeftNodesClose(t *testing.T) {
	t.Parallel()
	b := setup(t, Config{MaxWait: time.Millisecond})
	p := &settablePlacement{snap: b.snap}
	st := New(p, Config{MaxWait: time.Millisecond})
	defer st.Close()
	k1, k2 := b.key(t, "n1"), b.key(t, "n2")

	for _, state := range []string{nodeDetached, ""} {
		p.set(b.snap)
		if err := st.Write(t.Context(), []Event{event(k1, "one", `{}`), event(k2, "two", `{}`)}); err != nil {
			t.Fatal(err)
		}
		st.mu.Lock()
		n2 := st.batchers["n2"]
		st.mu.Unlock()
		if n2 == nil {
			t.Fatal("no batcher for n2 after a write to it")
		}

		p.set(without(b.snap, "n2", "n1", state))
		if err := st.Write(t.Context(), []Event{event(k1, "three", `{}`)}); err != nil {
			t.Fatal(err)
		}
		select {
		case <-n2.done:
		case <-time.After(5 * time.Second):
			t.Fatalf("n2's batcher still runs 5s after the map listed n2 as %q", state)
		}
		st.mu.Lock()
		_, listed := st.batchers["n2"]
		st.mu.Unlock()
		if listed {
			t.Errorf("the store still holds n2's batcher after the map listed n2 as %q", state)
		}
	}
}
