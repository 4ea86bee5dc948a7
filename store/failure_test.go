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

// TestCallerGivingUpDoesNotFailTheNode checks that a write whose caller
// gave up before its batch began is answered ErrUnavailable without
// marking its node failed: only a batch that fails, or a queue that stays
// full, says the node is failing.
func TestCallerGivingUpDoesNotFailTheNode(t *testing.T) {
	t.Parallel()
	b := setup(t, Config{MaxWait: 50 * time.Millisecond})
	k := b.key(t, "n1")
	if err := b.store.Write(t.Context(), []Event{event(k, "first", `{}`)}); err != nil {
		t.Fatal(err)
	}
	cancelled, cancel := context.WithCancel(t.Context())
	cancel()
	if err := b.store.Write(cancelled, []Event{event(k, "cancelled", `{}`)}); !errors.Is(err, ErrUnavailable) {
		t.Errorf("cancelled Write = %v, want ErrUnavailable", err)
	}
	if b.store.suspectNode("n1") {
		t.Error("n1 is marked failed after a write whose caller gave up")
	}
}
