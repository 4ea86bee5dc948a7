package store

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ordo-pipeline/ordo/internal/pgtest"
	"github.com/ordo-pipeline/ordo/schema"
)

// holdWriteLock takes shard's write lock on node in an open transaction,
// as another gateway's batch would, and returns a func that releases it.
func (b *testBundle) holdWriteLock(t *testing.T, node, shard int) func() {
	t.Helper()
	ctx := context.Background()
	conn := pgtest.Connect(t, b.nodes[node].URL())
	tx, err := conn.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock($1::int, $2::int)`, schema.WriteLockClass, shard); err != nil {
		t.Fatal(err)
	}
	var once sync.Once
	release := func() {
		once.Do(func() {
			tx.Rollback(ctx) //nolint:errcheck // closing the connection ends it anyway
			conn.Close(ctx)  //nolint:errcheck // a test connection
		})
	}
	t.Cleanup(release)
	return release
}

// TestShortRequestDoesNotFailItsBatch batches a request with plenty of time
// with one whose deadline passes while the batch waits for a shard's write
// lock: the batch commits once the lock is free, both requests are
// answered with the commit, and the node is not marked failed.
func TestShortRequestDoesNotFailItsBatch(t *testing.T) {
	t.Parallel()
	b := setup(t, Config{MaxWait: 100 * time.Millisecond, WriteTimeout: 10 * time.Second})
	slow := b.key(t, "n1")
	short := b.key(t, "n1", b.snap.Lookup(slow).Shard)
	release := b.holdWriteLock(t, 0, b.snap.Lookup(slow).Shard)

	var wg sync.WaitGroup
	var longErr, shortErr error
	wg.Go(func() { longErr = b.store.Write(t.Context(), []Event{event(slow, "long", `{}`)}) })
	time.Sleep(10 * time.Millisecond) // same batch: it gathers for 100ms
	wg.Go(func() {
		ctx, cancel := context.WithTimeout(t.Context(), 300*time.Millisecond)
		defer cancel()
		shortErr = b.store.Write(ctx, []Event{event(short, "short", `{}`)})
	})
	time.Sleep(600 * time.Millisecond) // past the short request's deadline
	release()
	wg.Wait()

	if longErr != nil {
		t.Errorf("request with 10s to go, batched with one of 300ms: %v, want nil", longErr)
	}
	if shortErr != nil {
		t.Errorf("request of 300ms whose batch committed within its grace: %v, want nil", shortErr)
	}
	if b.store.suspectNode("n1") {
		t.Error("n1 is marked failed after a batch that committed")
	}
	if ids := b.messageIDs(t, 0); len(ids) != 2 {
		t.Errorf("stored %v, want long and short", ids)
	}
}

// TestNearlyExpiredRequestNotStarted checks that a request with less than
// minTimeLeft left is answered ErrUnavailable without being written, and
// without marking its node failed.
func TestNearlyExpiredRequestNotStarted(t *testing.T) {
	t.Parallel()
	b := setup(t, Config{MaxWait: time.Millisecond})
	k := b.key(t, "n1")
	b.write(t, k, "first") // loads the map and starts the batcher
	ctx, cancel := context.WithTimeout(t.Context(), minTimeLeft/2)
	defer cancel()
	err := b.store.Write(ctx, []Event{event(k, "late", `{}`)})
	if !errors.Is(err, ErrUnavailable) || !strings.Contains(err.Error(), "left before its deadline") {
		t.Errorf("Write with %v left = %v, want ErrUnavailable for too little time left", minTimeLeft/2, err)
	}
	if b.store.suspectNode("n1") {
		t.Error("n1 is marked failed after a request that had too little time")
	}
	b.write(t, k, "next")
	b.checkStored(t, 0, "first", "next")
}

// TestShortBatchTimingOutDoesNotFailTheNode checks that a batch that runs
// out of time only because its requests had little left is answered
// ErrUnavailable, without marking the node failed.
func TestShortBatchTimingOutDoesNotFailTheNode(t *testing.T) {
	t.Parallel()
	b := setup(t, Config{MaxWait: time.Millisecond, WriteTimeout: 10 * time.Second})
	k := b.key(t, "n1")
	b.write(t, k, "first")
	release := b.holdWriteLock(t, 0, b.snap.Lookup(k).Shard)
	ctx, cancel := context.WithTimeout(t.Context(), 300*time.Millisecond)
	defer cancel()
	err := b.store.Write(ctx, []Event{event(k, "short", `{}`)})
	release()
	if !errors.Is(err, ErrUnavailable) {
		t.Errorf("Write of 300ms to a locked shard = %v, want ErrUnavailable", err)
	}
	if b.store.suspectNode("n1") {
		t.Error("n1 is marked failed after a batch that had 300ms of a 10s write timeout")
	}
}
