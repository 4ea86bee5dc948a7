package worker

import (
	"iter"
	"maps"
	"time"

	"github.com/ordo-pipeline/ordo/deliver"
)

// laneSet holds the lanes of one shard in memory and what schedules them:
// which lanes may send, per destination, in the order they became ready;
// which wait behind a barrier and until when; which ran out of rows while
// spilled and need a reload; which wait for a flush; and how many rows they
// buffer in all. It does no I/O and starts no request: the shard loop reads
// rows into it, takes batches from it, and tells it how each request ended.
// Only the loop's goroutine touches it.
type laneSet struct {
	dests    map[string]*destination
	capacity int // rows the set may buffer (Tuning.Buffer)

	lanes    map[laneKey]*lane
	buffered int
	ready    map[*destination][]*lane
	blocked  map[*lane]struct{}
	nextWake time.Time // the earliest barrier of a blocked lane; zero: none known
	reloads  []*lane
	held     []*lane // busy until the next flush writes their dead letters
}

func newLaneSet(dests map[string]*destination, capacity int) *laneSet {
	return &laneSet{
		dests:    dests,
		capacity: capacity,
		lanes:    map[laneKey]*lane{},
		ready:    map[*destination][]*lane{},
		blocked:  map[*lane]struct{}{},
	}
}

// get returns the lane of k, or nil.
func (s *laneSet) get(k laneKey) *lane { return s.lanes[k] }

// all yields every lane of the set, in no order.
func (s *laneSet) all() iter.Seq[*lane] { return maps.Values(s.lanes) }

// empty reports whether the set holds no lane.
func (s *laneSet) empty() bool { return len(s.lanes) == 0 }

// wakeAt is when the earliest barrier of a blocked lane ends (see
// unblock); zero when none is known.
func (s *laneSet) wakeAt() time.Time { return s.nextWake }

// reloading reports whether lanes wait for a reload (see takeReloads).
func (s *laneSet) reloading() bool { return len(s.reloads) > 0 }

// room is how many more rows the set takes.
func (s *laneSet) room() int { return s.capacity - s.buffered }

// laneOf returns r's lane, making it when r is its first row; created says
// it was made. A new lane keeps a barrier an earlier owner recorded on r.
func (s *laneSet) laneOf(r *row, now time.Time) (ln *lane, created bool) {
	k := laneKey{dest: r.dest, key: r.key}
	if ln := s.lanes[k]; ln != nil {
		return ln, false
	}
	ln = &lane{laneKey: k, dest: s.dests[r.dest]}
	if r.nextAttempt.After(now) {
		ln.blockedUntil = r.nextAttempt
		s.block(ln)
	}
	s.lanes[k] = ln
	return ln, true
}

// push appends r to ln and queues the lane if it may send. A row read
// after the cursor (not reloaded) that falls in the lane's spilled range
// joins the range instead; push then reports false.
func (s *laneSet) push(ln *lane, r *row, now time.Time, reloaded bool) bool {
	if !reloaded && ln.absorb(r) {
		return false
	}
	ln.rows = append(ln.rows, r)
	s.buffered++
	s.enqueue(ln, now)
	return true
}

func (s *laneSet) enqueue(ln *lane, now time.Time) {
	if !ln.queued && ln.ready(now) {
		ln.queued = true
		s.ready[ln.dest] = append(s.ready[ln.dest], ln)
	}
}

// hasReady reports whether d has a lane queued to send.
func (s *laneSet) hasReady(d *destination) bool { return len(s.ready[d]) > 0 }

func (s *laneSet) block(ln *lane) {
	s.blocked[ln] = struct{}{}
	if s.nextWake.IsZero() || ln.blockedUntil.Before(s.nextWake) {
		s.nextWake = ln.blockedUntil
	}
}

// unblock queues the lanes whose barrier has ended.
func (s *laneSet) unblock(now time.Time) {
	s.nextWake = time.Time{}
	for ln := range s.blocked {
		if ln.blockedUntil.After(now) {
			if s.nextWake.IsZero() || ln.blockedUntil.Before(s.nextWake) {
				s.nextWake = ln.blockedUntil
			}
			continue
		}
		delete(s.blocked, ln)
		s.settled(ln, now)
	}
	if s.nextWake.IsZero() {
		s.nextWake = now.Add(time.Hour)
	}
}

// spill drops from memory the rows of every stalled lane, so that lanes
// that cannot move do not keep the shard from reading rows of lanes that
// can, and returns how many it dropped. They are read again when their
// lane moves.
func (s *laneSet) spill(now time.Time) int {
	dropped := 0
	for _, ln := range s.lanes {
		if ln.stalled(now) {
			dropped += ln.spill()
		}
	}
	s.buffered -= dropped
	return dropped
}

// takeReloads returns the lanes waiting for a reload, and forgets them.
func (s *laneSet) takeReloads() []*lane {
	lanes := s.reloads
	s.reloads = nil
	return lanes
}

// reloaded records that a reload of ln's spilled range returned got rows
// (at most limit), the last at last, and settles the lane.
func (s *laneSet) reloaded(ln *lane, got, limit int, last pos, now time.Time) {
	ln.reloaded(got, limit, last)
	s.settled(ln, now)
}

// settled is called when a lane's state changed: it queues the lane, asks
// for a reload, or forgets an empty lane.
func (s *laneSet) settled(ln *lane, now time.Time) {
	switch {
	case ln.busy:
	case len(ln.rows) > 0:
		s.enqueue(ln, now)
	case ln.spilled:
		if !ln.loading {
			ln.loading = true
			s.reloads = append(s.reloads, ln)
		}
	case !ln.blockedUntil.After(now):
		delete(s.lanes, ln.laneKey)
		delete(s.blocked, ln)
	}
}

// batch takes ready lanes of d off its queue, up to limit events, for one
// request: lanes are the lanes it carries, now busy with their first
// inflight rows, and events those rows' events in lane order. A lane sent
// solo goes alone. A lane whose head is past its retries is not sent: it
// comes back in expired, off the queue, for the loop to dead-letter.
func (s *laneSet) batch(d *destination, limit int, now time.Time) (lanes []*lane, events []deliver.Event, expired []*lane) {
	q := s.ready[d]
	for len(q) > 0 && len(events) < limit {
		ln := q[0]
		if !ln.ready(now) {
			ln.queued = false
			q = q[1:]
			continue
		}
		if ln.solo && len(events) > 0 {
			break // goes alone, in the next request
		}
		ln.queued = false
		q = q[1:]
		n := min(len(ln.rows), limit-len(events))
		if ln.solo {
			n = 1
		}
		if n = sendable(ln, n, d.retry, now); n == 0 {
			expired = append(expired, ln)
			continue
		}
		for _, r := range ln.rows[:n] {
			events = append(events, deliver.Event{MessageID: r.messageID, Payload: r.event})
		}
		ln.busy, ln.inflight = true, n
		lanes = append(lanes, ln)
		if ln.solo {
			break
		}
	}
	if len(q) == 0 {
		q = nil
	}
	s.ready[d] = q
	return lanes, events, expired
}

// take removes the lane's rows that were in flight from the set.
func (s *laneSet) take(ln *lane) { s.buffered -= ln.take() }

// drop forgets n of the set's rows that their lane no longer holds.
func (s *laneSet) drop(n int) { s.buffered -= n }

// delivered takes the lane's rows in flight, which were delivered, and
// frees the lane.
func (s *laneSet) delivered(ln *lane, now time.Time) {
	ln.solo = false
	s.take(ln)
	ln.busy = false
	s.settled(ln, now)
}

// retry puts keep, the lane's rows in flight that will be tried again,
// back at its head; the others that were in flight are gone. When keep is
// not empty the lane waits behind a barrier until next.
func (s *laneSet) retry(ln *lane, keep []*row, next time.Time) {
	gone := ln.inflight - len(keep)
	ln.rows = append(keep, ln.rows[ln.inflight:]...)
	s.buffered -= gone
	ln.inflight = 0
	if len(keep) > 0 {
		ln.blockedUntil = next
		s.block(ln)
	}
}

// release frees a busy lane without taking its rows: the request did not
// settle them (it was cancelled, or its head goes solo next).
func (s *laneSet) release(ln *lane, now time.Time) {
	ln.busy, ln.inflight = false, 0
	s.settled(ln, now)
}

// free frees a busy lane whose rows in flight were settled.
func (s *laneSet) free(ln *lane, now time.Time) {
	ln.busy = false
	s.settled(ln, now)
}

// hold keeps ln busy until the next flush, which writes its dead letters:
// its next row may not go before they are in the table. A lane is held
// once: it is not queued, and so not sent, while held.
func (s *laneSet) hold(ln *lane) {
	ln.busy = true
	s.held = append(s.held, ln)
}

// holding reports whether a lane waits for a flush.
func (s *laneSet) holding() bool { return len(s.held) > 0 }

// flushed frees the lanes held for a flush that was written.
func (s *laneSet) flushed(now time.Time) {
	for _, ln := range s.held {
		ln.busy = false
		s.settled(ln, now)
	}
	s.held = s.held[:0]
}

// oldest returns when the set's oldest row was received, counting spilled
// rows; zero when it holds none.
func (s *laneSet) oldest() time.Time {
	var oldest time.Time
	for _, ln := range s.lanes {
		if len(ln.rows) > 0 && (oldest.IsZero() || ln.rows[0].receivedAt.Before(oldest)) {
			oldest = ln.rows[0].receivedAt
		}
		if ln.spilled && (oldest.IsZero() || ln.spilledSince.Before(oldest)) {
			oldest = ln.spilledSince
		}
	}
	return oldest
}
