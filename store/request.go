package store

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"
	"time"
)

// errStale is what a batcher answers a request whose rows went to a
// fenced or missing shard table: route it again.
var errStale = errors.New("shard placement stale")

// inDoubtGrace is how long a request whose batch already began waits past
// its deadline for the batch's outcome. The batch's transaction is itself
// bounded by the deadline, so this only covers the connection teardown.
const inDoubtGrace = 2 * time.Second

// States of a request; it moves from pending to taken (a batch holds it)
// or abandoned (its waiter gave up), exactly once.
const (
	statePending int32 = iota
	stateTaken
	stateAbandoned
)

// request is one Write's events for one node.
type request struct {
	events   []routed
	rows     int
	deadline time.Time
	state    atomic.Int32
	done     chan error // receives the outcome once
}

func newRequest(events []routed, deadline time.Time) *request {
	rows := 0
	for _, r := range events {
		rows += len(r.ev.Destinations)
	}
	return &request{events: events, rows: rows, deadline: deadline, done: make(chan error, 1)}
}

// take marks r as part of a batch. It returns false when r's waiter gave
// up, or r's deadline has passed (and then answers r).
func (r *request) take(now time.Time) bool {
	if !now.Before(r.deadline) {
		if r.state.CompareAndSwap(statePending, stateAbandoned) {
			r.done <- fmt.Errorf("%w: timed out waiting for the node's batch", ErrUnavailable)
		}
		return false
	}
	return r.state.CompareAndSwap(statePending, stateTaken)
}

// answer delivers the outcome of r's batch.
func (r *request) answer(err error) { r.done <- err }

// wait returns r's outcome. When ctx ends before r was taken into a
// batch, r is abandoned, so it is never written, and wait returns an error
// wrapping ErrUnavailable. Once taken, wait waits for the batch, whose
// transaction ends by r's deadline.
func (r *request) wait(ctx context.Context) error {
	select {
	case err := <-r.done:
		return err
	case <-ctx.Done():
	}
	if r.state.CompareAndSwap(statePending, stateAbandoned) {
		return fmt.Errorf("%w: timed out waiting for the node: %w", ErrUnavailable, context.Cause(ctx))
	}
	t := time.NewTimer(time.Until(r.deadline) + inDoubtGrace)
	defer t.Stop()
	select {
	case err := <-r.done:
		return err
	case <-t.C:
		return fmt.Errorf("%w: timed out waiting for the node's commit", ErrUnavailable)
	}
}
