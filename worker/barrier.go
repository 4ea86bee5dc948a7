package worker

import (
	"time"

	"github.com/ordo-pipeline/ordo/deliver"
	"github.com/ordo-pipeline/ordo/workspace"
)

// destination is a workspace destination ready to send to.
type destination struct {
	id      string
	send    deliver.Destination
	retry   workspace.RetryPolicy
	metrics *destMetrics
	// sem bounds the requests in flight to this destination across the
	// whole worker, so a slow destination cannot take every slot.
	sem chan struct{}
}

// laneKey names a lane: one destination and one ordering key.
type laneKey struct{ dest, key string }

// lane is the queue of one (destination, ordering key) within a shard: its
// pending rows in order, and its barrier. At most one request carrying the
// lane's events is in flight at a time, which is what keeps them in order.
type lane struct {
	laneKey
	dest *destination // nil when the workspace does not know the destination

	// rows are the lane's rows held in memory, oldest first. While busy,
	// the first inflight of them are in a request.
	rows     []*row
	inflight int
	// busy is set while a request carrying the lane's head is in flight,
	// or while a dead letter of the lane waits for its flush: the lane's
	// next event may not go before that is settled.
	busy bool
	// blockedUntil is the barrier: after a retryable failure none of the
	// lane's events is attempted before it.
	blockedUntil time.Time
	// queued says the lane is in its destination's ready queue.
	queued bool
	// solo makes the lane send its head alone, in a request of its own,
	// until that succeeds: set when a request carrying several events was
	// refused for good, to find out which event the refusal was for
	// without dead-lettering its neighbours.
	solo bool

	// spilled says rows of the lane from spillFrom to spillEnd are in the
	// table but not in memory: the lane was stalled while the shard's
	// buffer was full, and they are reloaded once the lane moves again.
	spilled   bool
	spillFrom pos
	spillEnd  pos
	// spilledSince is the receivedAt of the oldest spilled row, for the
	// shard's lag.
	spilledSince time.Time
	// loading says a reload of the lane is under way.
	loading bool
}

// ready reports whether the lane's head may be sent now.
func (ln *lane) ready(now time.Time) bool {
	return ln.dest != nil && !ln.busy && len(ln.rows) > 0 && !ln.blockedUntil.After(now)
}

// stalled reports whether the lane holds rows that cannot move for a while:
// it is blocked by its barrier or its destination is unknown.
func (ln *lane) stalled(now time.Time) bool {
	return !ln.busy && len(ln.rows) > 0 && (ln.dest == nil || ln.blockedUntil.After(now))
}

// spill drops the lane's rows from memory, remembering the range they span
// so that they can be read again. It returns how many rows it dropped.
func (ln *lane) spill() int {
	dropped := len(ln.rows)
	for _, r := range ln.rows {
		if !ln.spilled || r.pos.less(ln.spillFrom) {
			ln.spillFrom = r.pos
		}
		if !ln.spilled || r.receivedAt.Before(ln.spilledSince) {
			ln.spilledSince = r.receivedAt
		}
		if !ln.spilled || ln.spillEnd.less(r.pos) {
			ln.spillEnd = r.pos
		}
		ln.spilled = true
	}
	ln.rows = nil
	return dropped
}

// next returns the position right after p.
func (p pos) next() pos { return pos{p.epoch, p.seq + 1} }

// outcome is what a failed attempt means for one row.
type outcome int

const (
	retryLater outcome = iota
	deadMaxAttempts
	deadMaxAge
)

// judge decides whether a row whose attempts-th attempt just failed with a
// retryable error is retried or dead-lettered, under policy p.
func judge(r *row, attempts int, p workspace.RetryPolicy, now time.Time) outcome {
	switch {
	case attempts >= p.MaxAttempts:
		return deadMaxAttempts
	case now.Sub(r.receivedAt) >= p.MaxAge:
		return deadMaxAge
	}
	return retryLater
}

func (o outcome) reason() string {
	switch o {
	case deadMaxAttempts:
		return "max_attempts"
	case deadMaxAge:
		return "max_age"
	}
	return ""
}

// responseText is what is kept of a response: its body, or the error when
// no response came.
func responseText(res deliver.Result) string {
	if res.Status == 0 && res.Err != nil {
		return truncate(res.Err.Error(), deliver.MaxResponseBody)
	}
	return truncate(res.Body, deliver.MaxResponseBody)
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	s = s[:n]
	for len(s) > 0 && s[len(s)-1]&0xC0 == 0x80 {
		s = s[:len(s)-1]
	}
	if len(s) > 0 && s[len(s)-1] >= 0xC0 {
		s = s[:len(s)-1]
	}
	return s
}
