package store

import (
	"context"
	"errors"
	"testing"
	"time"
)

// suspectNode reports whether the store holds node's batcher as suspect.
func (s *Store) suspectNode(node string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	b, ok := s.batchers[node]
	return ok && b.suspect(time.Now())
}

// TestCallerGivingUpDoesNotFailTheNode checks that writes whose caller
// gave up before their batch began, before queueing or while queued, are
// answered ErrUnavailable, unwritten, without marking their node failed:
// only a batch that fails, or a queue that stays full, says the node is
// failing.
func TestCallerGivingUpDoesNotFailTheNode(t *testing.T) {
	t.Parallel()
	b := setup(t, Config{MaxWait: 50 * time.Millisecond})
	k := b.key(t, "n1")
	b.write(t, k, "first")
	b.checkCancelledRefused(t, k)
	// One that gives up while queued behind a batch that waits for a
	// shard's write lock.
	release := b.holdWriteLock(t, 0, b.snap.Lookup(k).Shard)
	blocked := make(chan error, 1)
	go func() { blocked <- b.store.Write(t.Context(), []Event{event(k, "blocked", `{}`)}) }()
	time.Sleep(100 * time.Millisecond) // its batch began and waits
	queued, cancel := context.WithTimeout(t.Context(), 200*time.Millisecond)
	defer cancel()
	if err := b.store.Write(queued, []Event{event(k, "queued", `{}`)}); !errors.Is(err, ErrUnavailable) {
		t.Errorf("Write that gave up while queued = %v, want ErrUnavailable", err)
	}
	if b.store.suspectNode("n1") {
		t.Error("n1 is marked failed after a write that gave up while queued")
	}
	release()
	if err := <-blocked; err != nil {
		t.Errorf("Write once the lock was released: %v", err)
	}
	if b.store.suspectNode("n1") {
		t.Error("n1 is marked failed after writes whose callers gave up")
	}
	b.checkStored(t, 0, "first", "blocked")
}
