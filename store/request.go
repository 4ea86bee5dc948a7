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
// its deadline for the batch's outcome. The batch's transaction is bounded
// by the latest deadline of its requests, so that one request short of
// time cannot fail the others; a request whose own deadline (and this
// grace) passes first is answered with an error while its batch may still
// commit: an in-doubt answer, which the client retries with the same
// messageIds.
const inDoubtGrace = 2 * time.Second

// minTimeLeft is the least time before its deadline a request must have
// left to join a batch (or a tenth of the write timeout, when that is
// less): one with less is answered ErrUnavailable, unwritten, rather than
// start a write it could hardly see through.
const minTimeLeft = 100 * time.Millisecond

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
// up, or when r has less than minLeft left before its deadline (and then
// answers r, which is never written).
func (r *request) take(now time.Time, minLeft time.Duration) bool {
	if left := r.deadline.Sub(now); left < minLeft {
		if r.state.CompareAndSwap(statePending, stateAbandoned) {
			msg := "timed out waiting for the node's batch"
			if left > 0 {
				msg = fmt.Sprintf("only %s left before its deadline when the node's batch began", left.Round(time.Millisecond))
			}
			r.done <- fmt.Errorf("%w: %s", ErrUnavailable, msg)
		}
		return false
	}
	return r.state.CompareAndSwap(statePending, stateTaken)
}

// answer delivers the outcome of r's batch.
func (r *request) answer(err error) { r.done <- err }

// wait returns r's outcome. When ctx ends, or the batcher r was queued on
// stops (stopped is closed), before r was taken into a batch, r is
// abandoned, so it is never written, and wait returns an error wrapping
// ErrUnavailable; for a stopped batcher it also wraps errStale, so that
// Write routes r's events again. Once taken, wait waits for the batch's
// outcome until r's deadline plus inDoubtGrace.
func (r *request) wait(ctx context.Context, stopped <-chan struct{}) error {
	var gaveUp error
	select {
	case err := <-r.done:
		return err
	case <-ctx.Done():
		gaveUp = fmt.Errorf("%w: timed out waiting for the node: %w", ErrUnavailable, context.Cause(ctx))
	case <-stopped:
		gaveUp = fmt.Errorf("%w: the node's batcher stopped before taking the request: %w", ErrUnavailable, errStale)
	}
	if r.state.CompareAndSwap(statePending, stateAbandoned) {
		return gaveUp
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
