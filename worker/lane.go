package worker

import "time"

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

// take removes the rows that were in flight, now settled, and lifts the
// barrier. It returns how many rows it removed.
func (ln *lane) take() int {
	n := ln.inflight
	ln.rows = ln.rows[n:]
	if len(ln.rows) == 0 {
		ln.rows = nil
	}
	ln.inflight = 0
	ln.blockedUntil = time.Time{}
	return n
}

// absorb reports whether r, a row read after the cursor, belongs to the
// lane's spilled range rather than to its rows in memory; the range then
// grows to hold it, and the row is read again with the range.
func (ln *lane) absorb(r *row) bool {
	if !ln.spilled || r.pos.less(ln.spillFrom) {
		return false
	}
	if ln.spillEnd.less(r.pos) {
		ln.spillEnd = r.pos
	}
	return true
}

// reloaded records that a reload of the spilled range returned got rows
// (at most limit), the last at last: the range is done when it returned
// fewer than limit, else what is left starts after last.
func (ln *lane) reloaded(got, limit int, last pos) {
	ln.loading = false
	if got < limit {
		ln.spilled = false
	} else {
		ln.spillFrom = last.next()
	}
}
