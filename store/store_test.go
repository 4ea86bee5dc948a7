package store

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/ordo-pipeline/ordo/internal/pgtest"
	"github.com/ordo-pipeline/ordo/rebalance"
	"github.com/ordo-pipeline/ordo/schema"
	"github.com/ordo-pipeline/ordo/shard"
)

// testBundle is a two-node cluster of 8 shards (catalog in node 1) and a
// Store writing to it.
type testBundle struct {
	nodes []*pgtest.Cluster
	m     *shard.Map
	snap  *shard.Snapshot
	store *Store
}

func setup(t *testing.T, cfg Config) *testBundle {
	t.Helper()
	nodes := pgtest.Start(t, 2)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	rcfg := rebalance.Config{CatalogURL: nodes[0].URL(), Nodes: "n1=" + nodes[0].URL() + ",n2=" + nodes[1].URL(), Shards: 8}
	if err := rcfg.Validate(); err != nil {
		t.Fatal(err)
	}
	if err := rebalance.Run(ctx, &rcfg, rebalance.Options{}); err != nil {
		t.Fatal(err)
	}
	pool, err := pgxpool.New(ctx, nodes[0].URL())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close)
	m := shard.NewMap(pool, shard.MapConfig{})
	st := New(m, cfg)
	t.Cleanup(st.Close)
	snap, err := shard.Load(ctx, pool)
	if err != nil {
		t.Fatal(err)
	}
	return &testBundle{nodes: nodes, m: m, snap: snap, store: st}
}

// key returns an ordering key on node whose shard is not in avoid.
func (b *testBundle) key(t *testing.T, node string, avoid ...int) string {
	t.Helper()
	for i := range 10000 {
		k := fmt.Sprintf("key-%d", i)
		p := b.snap.Lookup(k)
		if p.Node == node && !containsInt(avoid, p.Shard) {
			return k
		}
	}
	t.Fatal("no key found")
	return ""
}

func containsInt(s []int, v int) bool {
	for _, x := range s {
		if x == v {
			return true
		}
	}
	return false
}

// event returns an event of key with one destination.
func event(key, id, body string) Event {
	return Event{
		OrderingKey:  key,
		SourceID:     "src",
		Destinations: []string{"d"},
		MessageID:    id,
		ReceivedAt:   time.Now(),
		JSON:         []byte(body),
	}
}

// messageIDs returns the message ids stored on node, in (shard, epoch,
// seq) order.
func (b *testBundle) messageIDs(t *testing.T, node int) []string {
	t.Helper()
	ctx := context.Background()
	conn := pgtest.Connect(t, b.nodes[node].URL())
	shards, err := schema.List(ctx, conn)
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	for _, s := range shards {
		rows, err := conn.Query(ctx, "SELECT message_id FROM "+schema.Table(s).Sanitize()+" ORDER BY epoch, seq")
		if err != nil {
			t.Fatal(err)
		}
		got, err := pgx.CollectRows(rows, pgx.RowTo[string])
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, got...)
	}
	return ids
}

// write writes one event of key with message id id, failing the test
// when the write fails.
func (b *testBundle) write(t *testing.T, key, id string) {
	t.Helper()
	if err := b.store.Write(t.Context(), []Event{event(key, id, `{}`)}); err != nil {
		t.Fatal(err)
	}
}

// checkStored checks that node holds the events of message ids want, in
// that order.
func (b *testBundle) checkStored(t *testing.T, node int, want ...string) {
	t.Helper()
	if ids := b.messageIDs(t, node); strings.Join(ids, ",") != strings.Join(want, ",") {
		t.Errorf("stored %v, want %v", ids, want)
	}
}

// checkCancelledRefused checks that a write of key whose caller gave up
// before it began is answered ErrUnavailable.
func (b *testBundle) checkCancelledRefused(t *testing.T, key string) {
	t.Helper()
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	if err := b.store.Write(ctx, []Event{event(key, "cancelled", `{}`)}); !errors.Is(err, ErrUnavailable) {
		t.Errorf("cancelled Write = %v, want ErrUnavailable", err)
	}
}

// fence fences shard on node 1 by hand, as a move does, and returns the
// connection it used.
func (b *testBundle) fence(t *testing.T, shard int) *pgx.Conn {
	t.Helper()
	ctx := context.Background()
	conn := pgtest.Connect(t, b.nodes[0].URL())
	if err := pgx.BeginFunc(ctx, conn, func(tx pgx.Tx) error { return schema.Fence(ctx, tx, shard) }); err != nil {
		t.Fatal(err)
	}
	return conn
}

// TestWriteOrderAndDestinations writes concurrent requests and checks
// every event is stored once per destination, each key's events in order.
func TestWriteOrderAndDestinations(t *testing.T) {
	t.Parallel()
	b := setup(t, Config{MaxWait: 20 * time.Millisecond, MaxRows: 50})
	var wg sync.WaitGroup
	for r := range 10 {
		wg.Go(func() {
			var evs []Event
			for i := range 20 {
				ev := event(fmt.Sprintf("req%d", r), fmt.Sprintf("r%02d-%02d", r, i), `{}`)
				ev.Destinations = []string{"d1", "d2"}
				evs = append(evs, ev)
			}
			evs = append(evs, Event{OrderingKey: "nowhere", MessageID: "none", JSON: []byte(`{}`)})
			if err := b.store.Write(t.Context(), evs); err != nil {
				t.Errorf("request %d: %v", r, err)
			}
		})
	}
	wg.Wait()
	ids := append(b.messageIDs(t, 0), b.messageIDs(t, 1)...)
	if len(ids) != 10*20*2 {
		t.Fatalf("stored %d rows, want %d", len(ids), 400)
	}
	last := map[string]string{} // request → last id seen, per destination pair
	count := map[string]int{}
	for _, id := range ids {
		if id == "none" {
			t.Fatal("stored an event without destinations")
		}
		count[id]++
		r := id[:3]
		if prev := last[r]; prev > id {
			t.Errorf("%s stored after %s", id, prev)
		}
		last[r] = id
	}
	for id, n := range count {
		if n != 2 {
			t.Errorf("%s stored %d times, want 2", id, n)
		}
	}
}

// TestPoisonRequestIsolated writes, in one batch, requests of which one
// holds JSON that Postgres refuses: only that one fails, with ErrRejected.
func TestPoisonRequestIsolated(t *testing.T) {
	t.Parallel()
	b := setup(t, Config{MaxWait: 300 * time.Millisecond})
	k := b.key(t, "n1")
	poison := `{"truncated": ` // the gateway never sends this; the database refuses it
	var wg sync.WaitGroup
	errs := make([]error, 3)
	for i := range errs {
		wg.Go(func() {
			body := `{"ok": true}`
			if i == 1 {
				body = poison
			}
			errs[i] = b.store.Write(t.Context(), []Event{event(k, fmt.Sprintf("m%d", i), body)})
		})
	}
	wg.Wait()
	if errs[0] != nil || errs[2] != nil || !errors.Is(errs[1], ErrRejected) {
		t.Errorf("errors %v, want nil, ErrRejected, nil", errs)
	}
	if ids := b.messageIDs(t, 0); strings.Join(ids, ",") != "m0,m2" && strings.Join(ids, ",") != "m2,m0" {
		t.Errorf("stored %v, want m0 and m2", ids)
	}
}

// TestFencedShardFailsOnlyItsRequests fences a shard without moving it: a
// request for it times out with ErrUnavailable and stores nothing, while
// requests for other shards of the same node, batched with it, succeed.
func TestFencedShardFailsOnlyItsRequests(t *testing.T) {
	t.Parallel()
	b := setup(t, Config{MaxWait: 100 * time.Millisecond, WriteTimeout: time.Second})
	fenced := b.key(t, "n1")
	other := b.key(t, "n1", b.snap.Lookup(fenced).Shard)
	b.fence(t, b.snap.Lookup(fenced).Shard)

	var wg sync.WaitGroup
	var fencedErr error
	began := time.Now()
	wg.Go(func() { fencedErr = b.store.Write(t.Context(), []Event{event(fenced, "fenced", `{}`)}) })
	for i := range 3 {
		wg.Go(func() {
			if err := b.store.Write(t.Context(), []Event{event(other, fmt.Sprintf("other%d", i), `{}`)}); err != nil {
				t.Errorf("write to an unfenced shard: %v", err)
			}
		})
	}
	wg.Wait()
	if !errors.Is(fencedErr, ErrUnavailable) {
		t.Errorf("write to a fenced shard that never moves: %v, want ErrUnavailable", fencedErr)
	}
	if took := time.Since(began); took > 3*time.Second {
		t.Errorf("took %v with a 1s write timeout", took)
	}
	if ids := b.messageIDs(t, 0); len(ids) != 3 || containsString(ids, "fenced") {
		t.Errorf("stored %v, want the three others", ids)
	}
}

func containsString(s []string, v string) bool {
	for _, x := range s {
		if x == v {
			return true
		}
	}
	return false
}

// TestSpanningNodesPartialCommit pins down the documented behaviour of a
// request whose events span two nodes, one of them down: the first Write
// fails, and the part on the live node stays committed; once the dead node
// is suspect, spanning writes fail storing nothing.
func TestSpanningNodesPartialCommit(t *testing.T) {
	t.Parallel()
	b := setup(t, Config{WriteTimeout: 2 * time.Second})
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := b.nodes[1].Stop(ctx); err != nil {
		t.Fatal(err)
	}
	err := b.store.Write(ctx, []Event{event(b.key(t, "n1"), "live", `{}`), event(b.key(t, "n2"), "dead", `{}`)})
	if !errors.Is(err, ErrUnavailable) {
		t.Fatalf("Write = %v, want ErrUnavailable", err)
	}
	if ids := b.messageIDs(t, 0); len(ids) != 1 || ids[0] != "live" {
		t.Errorf("node 1 holds %v, want [live]", ids)
	}

	// Node 2 is now suspect: later spanning requests go to it first and
	// fail having stored nothing on node 1, however often they are tried.
	for i := range 3 {
		err := b.store.Write(ctx, []Event{event(b.key(t, "n1"), fmt.Sprintf("live-%d", i), `{}`), event(b.key(t, "n2"), "dead", `{}`)})
		if !errors.Is(err, ErrUnavailable) {
			t.Fatalf("Write %d = %v, want ErrUnavailable", i, err)
		}
	}
	if ids := b.messageIDs(t, 0); len(ids) != 1 {
		t.Errorf("node 1 holds %v after requests that failed on suspect node 2, want only [live]", ids)
	}
	// Requests for node 1 alone still go through.
	if err := b.store.Write(ctx, []Event{event(b.key(t, "n1"), "alone", `{}`)}); err != nil {
		t.Errorf("Write to node 1 alone: %v", err)
	}
	// Node 2 back: spanning requests succeed again.
	if err := b.nodes[1].Start(ctx); err != nil {
		t.Fatal(err)
	}
	if err := b.store.Write(ctx, []Event{event(b.key(t, "n1"), "both-1", `{}`), event(b.key(t, "n2"), "both-2", `{}`)}); err != nil {
		t.Errorf("Write after node 2 came back: %v", err)
	}
}

// fakePlacement is a placement map whose catalog never answers.
type fakePlacement struct{}

func (fakePlacement) Current() *shard.Snapshot { return nil }

func (fakePlacement) Refresh(context.Context) error { return errors.New("catalog down") }

// TestWriteWithoutMap checks that events without destinations need no
// map, and others fail with ErrUnavailable when the map cannot load.
func TestWriteWithoutMap(t *testing.T) {
	t.Parallel()
	st := New(fakePlacement{}, Config{})
	defer st.Close()
	if err := st.Write(t.Context(), []Event{{OrderingKey: "k", JSON: []byte(`{}`)}}); err != nil {
		t.Errorf("Write without destinations = %v, want nil", err)
	}
	if err := st.Write(t.Context(), []Event{event("k", "m", `{}`)}); !errors.Is(err, ErrUnavailable) {
		t.Errorf("Write = %v, want ErrUnavailable", err)
	}
}

// TestCancelledWriteNeverWritten checks that a request whose caller gave up
// before its batch began is never written, and the node's batcher goes on.
func TestCancelledWriteNeverWritten(t *testing.T) {
	t.Parallel()
	b := setup(t, Config{MaxWait: 50 * time.Millisecond})
	k := b.key(t, "n1")
	b.write(t, k, "first")
	b.checkCancelledRefused(t, k)
	time.Sleep(100 * time.Millisecond) // let the batcher see the abandoned request
	b.write(t, k, "last")
	b.checkStored(t, 0, "first", "last")
}

// TestWritesWaitForTheShardWriteLock holds a shard's write lock in an open
// transaction, as another gateway's batch would: a write to that shard
// waits for it, so rows of a shard commit in sequence order.
func TestWritesWaitForTheShardWriteLock(t *testing.T) {
	t.Parallel()
	b := setup(t, Config{MaxWait: time.Millisecond, WriteTimeout: 10 * time.Second})
	locked := b.key(t, "n1")
	ctx := context.Background()
	release := b.holdWriteLock(t, 0, b.snap.Lookup(locked).Shard)
	done := make(chan error, 1)
	go func() { done <- b.store.Write(ctx, []Event{event(locked, "waits", `{}`)}) }()

	select {
	case err := <-done:
		t.Fatalf("write to a locked shard returned %v before the lock was released", err)
	case <-time.After(500 * time.Millisecond):
	}
	release()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("write after the lock was released: %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("write did not finish after the lock was released")
	}
}
