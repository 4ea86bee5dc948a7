package shard

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// fakeCatalog stands in for Load: each load returns a snapshot whose
// shard 0 has the epoch of the load's number (1, 2, ...), and, while
// held, blocks until released or its ctx ends.
type fakeCatalog struct {
	loads   atomic.Int64
	started chan int64 // receives each load's number as it begins
	mu      sync.Mutex
	hold    chan struct{} // closed to release held loads; nil when not holding
}

func newFakeCatalog() *fakeCatalog {
	return &fakeCatalog{started: make(chan int64, 16)}
}

func (f *fakeCatalog) holdLoads() {
	f.mu.Lock()
	f.hold = make(chan struct{})
	f.mu.Unlock()
}

func (f *fakeCatalog) release() {
	f.mu.Lock()
	close(f.hold)
	f.hold = nil
	f.mu.Unlock()
}

func (f *fakeCatalog) load(ctx context.Context, _ Querier) (*Snapshot, error) {
	n := f.loads.Add(1)
	f.mu.Lock()
	hold := f.hold
	f.mu.Unlock()
	f.started <- n
	if hold != nil {
		select {
		case <-hold:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	return &Snapshot{Shards: []Placement{{Shard: 0, Node: "n1", Epoch: n, State: StateActive}}, Nodes: map[string]Node{"n1": {Name: "n1"}}}, nil
}

func newFakeMap(f *fakeCatalog) *Map {
	m := NewMap(nil, MapConfig{})
	m.load = f.load
	return m
}

func (f *fakeCatalog) awaitStart(t *testing.T, want int64) {
	t.Helper()
	select {
	case n := <-f.started:
		if n != want {
			t.Fatalf("load %d began, want load %d", n, want)
		}
	case <-time.After(5 * time.Second):
		t.Fatalf("load %d did not begin", want)
	}
}

// startHeldRefresh starts a Refresh of a fake map whose loads are held,
// and waits until its load began. The Refresh's error comes on first.
func startHeldRefresh(t *testing.T) (*fakeCatalog, *Map, <-chan error) {
	t.Helper()
	f := newFakeCatalog()
	m := newFakeMap(f)
	f.holdLoads()
	first := make(chan error, 1)
	go func() { first <- m.Refresh(context.Background()) }()
	f.awaitStart(t, 1)
	return f, m, first
}

// TestRefreshGivesUpWhenCtxEnds checks that a caller waiting for another
// caller's reload, which hangs, returns when its own ctx ends.
func TestRefreshGivesUpWhenCtxEnds(t *testing.T) {
	t.Parallel()
	f, m, first := startHeldRefresh(t)

	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	second := make(chan error, 1)
	go func() { second <- m.Refresh(ctx) }()
	select {
	case err := <-second:
		if !errors.Is(err, context.DeadlineExceeded) {
			t.Errorf("Refresh behind a hanging reload = %v, want context.DeadlineExceeded", err)
		}
	case <-time.After(2 * time.Second):
		t.Error("Refresh with a 50ms ctx still waits for a hanging reload after 2s")
	}
	f.release()
	if err := <-first; err != nil {
		t.Fatalf("first Refresh: %v", err)
	}
	if got := f.loads.Load(); got != 1 {
		t.Errorf("%d loads, want 1: the caller that gave up must not load", got)
	}
}

// TestRefreshIgnoresLoadsThatBeganBeforeTheAsk checks that a caller that
// asks while a reload is running gets a reload that began after it asked,
// and that callers who waited together share one.
func TestRefreshIgnoresLoadsThatBeganBeforeTheAsk(t *testing.T) {
	t.Parallel()
	f, m, first := startHeldRefresh(t)

	// Two callers ask while load 1, which began before them, runs.
	later := make(chan error, 2)
	for range 2 {
		go func() { later <- m.Refresh(context.Background()) }()
	}
	time.Sleep(50 * time.Millisecond) // let both ask and wait their turn
	f.release()
	if err := <-first; err != nil {
		t.Fatalf("first Refresh: %v", err)
	}
	for range 2 {
		if err := <-later; err != nil {
			t.Fatalf("later Refresh: %v", err)
		}
	}
	if got := f.loads.Load(); got != 2 {
		t.Errorf("%d loads, want 2: load 1 began before the later callers asked, and they share the next", got)
	}
	if got := m.Current().Shards[0].Epoch; got != 2 {
		t.Errorf("snapshot of load %d after the later callers returned, want load 2", got)
	}

	// A caller asking once everything is idle loads again.
	if err := m.Refresh(context.Background()); err != nil {
		t.Fatal(err)
	}
	if got := f.loads.Load(); got != 3 {
		t.Errorf("%d loads, want 3", got)
	}
}
