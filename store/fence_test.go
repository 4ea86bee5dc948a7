package store

import (
	"context"
	"testing"
	"time"

	"github.com/ordo-pipeline/ordo/internal/pgtest"
	"github.com/ordo-pipeline/ordo/schema"
)

// TestFenceLiftedWithoutMoveRetries fences a shard by hand, as a move
// does, and lifts the fence without changing the catalog, as a move that
// is rolled back does: the write that hit the fence goes through at the
// same placement soon after, well before its timeout.
func TestFenceLiftedWithoutMoveRetries(t *testing.T) {
	t.Parallel()
	b := setup(t, Config{MaxWait: time.Millisecond, WriteTimeout: 10 * time.Second})
	k := b.key(t, "n1")
	s := b.snap.Lookup(k).Shard
	ctx := context.Background()
	conn := b.fence(t, s)

	done := make(chan error, 1)
	go func() { done <- b.store.Write(ctx, []Event{event(k, "fenced", `{}`)}) }()
	select {
	case err := <-done:
		t.Fatalf("write to a fenced shard returned %v while fenced", err)
	case <-time.After(700 * time.Millisecond):
	}
	if err := schema.Unfence(ctx, conn, s); err != nil {
		t.Fatal(err)
	}
	lifted := time.Now()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("write after the fence was lifted: %v, want nil", err)
		}
		if took := time.Since(lifted); took > 2*time.Second {
			t.Errorf("write took %v after the fence was lifted", took)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("write still waits 5s after the fence was lifted, with the catalog unchanged")
	}
	if ids := b.messageIDs(t, 0); len(ids) != 1 || ids[0] != "fenced" {
		t.Errorf("stored %v, want [fenced]", ids)
	}
}

// TestStaleEpochRerouted writes with a map from before the shard moved
// away from its node and back (its table there is now at a later epoch):
// the node refuses the rows of the old epoch, and the write goes through
// at the shard's current epoch once the map is reloaded, so that the rows
// sort after every row of the epochs between.
func TestStaleEpochRerouted(t *testing.T) {
	t.Parallel()
	b := setup(t, Config{WriteTimeout: 10 * time.Second})
	k := b.key(t, "n1")
	p := b.snap.Lookup(k)
	ctx := context.Background()
	if err := b.store.Write(ctx, []Event{event(k, "before", `{}`)}); err != nil {
		t.Fatal(err)
	}
	node := pgtest.Connect(t, b.nodes[0].URL())
	// Away and back: the table is made afresh two epochs on. The catalog
	// changes without the notification a move sends, so the store's map
	// stays stale until a write is refused.
	if err := schema.Drop(ctx, node, p.Shard); err != nil {
		t.Fatal(err)
	}
	if err := schema.Create(ctx, node, p.Shard, p.Epoch+2); err != nil {
		t.Fatal(err)
	}
	if _, err := node.Exec(ctx, `UPDATE ordo_catalog.shards SET epoch = $2 WHERE shard = $1`, p.Shard, p.Epoch+2); err != nil {
		t.Fatal(err)
	}
	if err := b.store.Write(ctx, []Event{event(k, "after", `{}`)}); err != nil {
		t.Fatalf("write with a stale epoch: %v, want it rerouted at the current epoch", err)
	}
	var epoch int64
	var id string
	if err := node.QueryRow(ctx, "SELECT epoch, message_id FROM "+schema.Table(p.Shard).Sanitize()).Scan(&epoch, &id); err != nil {
		t.Fatal(err)
	}
	if epoch != p.Epoch+2 || id != "after" {
		t.Errorf("stored %q at epoch %d, want \"after\" at epoch %d", id, epoch, p.Epoch+2)
	}
}
