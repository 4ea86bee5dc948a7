package worker

import (
	"context"
	"time"

	"github.com/ordo-pipeline/ordo/deliver"
)

// sendResult is one finished request.
type sendResult struct {
	dest    *destination
	lanes   []*lane
	took    time.Duration
	res     deliver.Result
	aborted bool // cancelled by the worker, not failed by the destination
}

// requests are a shard loop's requests in flight. Each runs in a goroutine
// of its own, holding a slot of its destination's worker-wide bound
// (destination.sem), and reports on results, which only the loop reads.
type requests struct {
	ctx     context.Context
	cancel  context.CancelFunc
	n       int // in flight
	perDest map[*destination]int
	results chan *sendResult
}

// newRequests makes room for up to limit requests in flight to each of
// dests destinations.
func newRequests(limit, dests int) *requests {
	ctx, cancel := context.WithCancel(context.Background())
	return &requests{ctx: ctx, cancel: cancel, perDest: map[*destination]int{},
		results: make(chan *sendResult, limit*max(1, dests))}
}

// inFlight is how many requests are in flight.
func (q *requests) inFlight() int { return q.n }

// done yields each finished request; pass it to finished.
func (q *requests) done() <-chan *sendResult { return q.results }

// cancelAll cancels every request in flight; they still report on done.
func (q *requests) cancelAll() { q.cancel() }

// to returns how many requests to d are in flight.
func (q *requests) to(d *destination) int { return q.perDest[d] }

// start sends events, the rows in flight of lanes, to d.
func (q *requests) start(d *destination, lanes []*lane, events []deliver.Event) {
	q.perDest[d]++
	q.n++
	go func() {
		select {
		case d.sem <- struct{}{}:
		case <-q.ctx.Done():
			q.results <- &sendResult{dest: d, lanes: lanes, aborted: true}
			return
		}
		start := time.Now()
		res := d.send.Send(q.ctx, events)
		<-d.sem
		q.results <- &sendResult{dest: d, lanes: lanes, took: time.Since(start), res: res, aborted: q.ctx.Err() != nil}
	}()
}

// finished records that r, read from results, is no longer in flight.
func (q *requests) finished(r *sendResult) {
	q.n--
	q.perDest[r.dest]--
}

// abandon cancels every request in flight and waits for them to end,
// dropping their results.
func (q *requests) abandon() {
	q.cancel()
	for q.n > 0 {
		<-q.results
		q.n--
	}
}
