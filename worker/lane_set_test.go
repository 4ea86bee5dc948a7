package worker

import (
	"testing"
	"time"

	"github.com/ordo-pipeline/ordo/workspace"
)

// A shard's lanes and their scheduling alone, without Postgres, requests
// or a shard loop: rows go in, batches come out, results come back.

var testRetry = workspace.RetryPolicy{InitialBackoff: time.Second, MaxBackoff: time.Minute, MaxAttempts: 3, MaxAge: time.Hour}

// hookLanes returns a set of the given capacity for one destination,
// "hook".
func hookLanes(capacity int) (*laneSet, *destination) {
	d := &destination{id: "hook", retry: testRetry}
	return newLaneSet(map[string]*destination{"hook": d}, capacity), d
}

// put reads a row of dest and key with the given seq into s.
func put(s *laneSet, dest, key string, seq int64, now time.Time) *row {
	r := &row{pos: pos{1, seq}, dest: dest, key: key, messageID: dest + key, receivedAt: now}
	ln, _ := s.laneOf(r, now)
	s.push(ln, r, now, false)
	return r
}

// failedLane reads rows a1, a2, b3 into a set of the given capacity and
// fails lane a's head retryably: it is to be tried again after wait.
func failedLane(capacity int, now time.Time, wait time.Duration) (s *laneSet, d *destination, a *lane, next time.Time) {
	s, d = hookLanes(capacity)
	put(s, "hook", "a", 1, now)
	put(s, "hook", "a", 2, now)
	put(s, "hook", "b", 3, now)
	lanes, _, _ := s.batch(d, 1, now)
	a = lanes[0]
	next = now.Add(wait)
	s.retry(a, a.rows[:1], next)
	s.free(a, now)
	return s, d, a, next
}

func seqsOf(lanes []*lane) [][]int64 {
	var out [][]int64
	for _, ln := range lanes {
		var seqs []int64
		for _, r := range ln.rows[:ln.inflight] {
			seqs = append(seqs, r.seq)
		}
		out = append(out, seqs)
	}
	return out
}

func TestLaneSetBatchesReadyLanesInOrder(t *testing.T) {
	t.Parallel()
	now := time.Now()
	s, d := hookLanes(100)
	put(s, "hook", "a", 1, now)
	put(s, "hook", "b", 2, now)
	put(s, "hook", "a", 3, now)
	put(s, "hook", "b", 4, now)
	put(s, "hook", "c", 5, now)
	if s.buffered != 5 || s.room() != 95 {
		t.Fatalf("buffered %d, room %d; want 5 and 95", s.buffered, s.room())
	}

	lanes, events, expired := s.batch(d, 3, now)
	if got := seqsOf(lanes); len(got) != 2 || len(got[0]) != 2 || got[0][0] != 1 || got[0][1] != 3 || len(got[1]) != 1 || got[1][0] != 2 {
		t.Fatalf("first batch of 3 carries %v; want lane a [1 3], then lane b [2]", got)
	}
	if len(events) != 3 || len(expired) != 0 {
		t.Fatalf("first batch: %d events, %d expired; want 3 and 0", len(events), len(expired))
	}
	// A lane in flight is not sent again; c is next.
	lanes2, _, _ := s.batch(d, 3, now)
	if got := seqsOf(lanes2); len(got) != 1 || got[0][0] != 5 {
		t.Fatalf("second batch carries %v; want only lane c [5]", got)
	}
	if s.hasReady(d) {
		t.Fatal("lanes in flight are still queued")
	}

	// Lane b delivered what it carried: its next row is queued.
	s.delivered(lanes[1], now)
	lanes3, _, _ := s.batch(d, 3, now)
	if got := seqsOf(lanes3); len(got) != 1 || got[0][0] != 4 {
		t.Fatalf("after b's delivery the batch carries %v; want lane b [4]", got)
	}
	if s.buffered != 4 {
		t.Errorf("buffered %d after one row was delivered; want 4", s.buffered)
	}

	// A lane delivered to its last row is forgotten.
	s.delivered(lanes[0], now)
	if _, ok := s.lanes[laneKey{"hook", "a"}]; ok {
		t.Error("an empty lane is still kept")
	}
}

func TestLaneSetSoloLaneGoesAlone(t *testing.T) {
	t.Parallel()
	now := time.Now()
	s, d := hookLanes(100)
	put(s, "hook", "a", 1, now)
	put(s, "hook", "b", 2, now)
	put(s, "hook", "b", 3, now)
	lanes, _, _ := s.batch(d, 10, now)
	for _, ln := range lanes {
		ln.solo = true
		s.release(ln, now)
	}
	first, _, _ := s.batch(d, 10, now)
	if got := seqsOf(first); len(got) != 1 || len(got[0]) != 1 || got[0][0] != 1 {
		t.Fatalf("first solo batch carries %v; want lane a's head [1] alone", got)
	}
	second, _, _ := s.batch(d, 10, now)
	if got := seqsOf(second); len(got) != 1 || len(got[0]) != 1 || got[0][0] != 2 {
		t.Fatalf("second solo batch carries %v; want lane b's head [2] alone", got)
	}
	// A solo lane does not join a request that already carries events.
	put(s, "hook", "c", 4, now)
	s.release(second[0], now) // b's head goes solo again, queued after c
	mixed, _, _ := s.batch(d, 10, now)
	if got := seqsOf(mixed); len(got) != 1 || got[0][0] != 4 {
		t.Fatalf("a batch opened by lane c carries %v; want c [4] without solo lane b", got)
	}
	second, _, _ = s.batch(d, 10, now)
	if len(second) != 1 || second[0].key != "b" {
		t.Fatalf("solo lane b was not sent next: %v", seqsOf(second))
	}
	s.delivered(second[0], now)
	third, _, _ := s.batch(d, 10, now)
	if got := seqsOf(third); len(got) != 1 || got[0][0] != 3 || second[0].solo {
		t.Fatalf("after b's head was delivered: batch %v, solo %v; want [3], not solo", got, second[0].solo)
	}
}

func TestLaneSetBarrier(t *testing.T) {
	t.Parallel()
	now := time.Now()
	// Lane a failed: its head is tried again after the barrier, its
	// second row waits behind it, and lane b goes meanwhile.
	s, d, _, next := failedLane(100, now, 5*time.Second)
	if got, _, _ := s.batch(d, 10, now); len(got) != 1 || got[0].key != "b" {
		t.Fatalf("behind a's barrier the batch carries %v; want only lane b", seqsOf(got))
	}
	if !s.nextWake.Equal(next) {
		t.Errorf("next wake %v, want the barrier %v", s.nextWake, next)
	}
	s.unblock(next.Add(-time.Millisecond))
	if s.hasReady(d) || !s.nextWake.Equal(next) {
		t.Fatalf("before its barrier: lane a queued %v, next wake %v", s.hasReady(d), s.nextWake)
	}
	s.unblock(next)
	got, _, _ := s.batch(d, 10, next)
	if seqs := seqsOf(got); len(seqs) != 1 || len(seqs[0]) != 2 || seqs[0][0] != 1 {
		t.Fatalf("after its barrier the batch carries %v; want lane a [1 2]", seqs)
	}
}

// A barrier recorded by an earlier owner holds in a lane made anew.
func TestLaneSetKeepsRecordedBarrier(t *testing.T) {
	t.Parallel()
	now := time.Now()
	s, _ := hookLanes(100)
	r := &row{pos: pos{1, 1}, dest: "hook", key: "a", receivedAt: now, attempts: 1, nextAttempt: now.Add(time.Minute)}
	ln, created := s.laneOf(r, now)
	s.push(ln, r, now, false)
	if !created || s.hasReady(s.dests["hook"]) || !s.nextWake.Equal(r.nextAttempt) {
		t.Fatalf("created %v, queued %v, next wake %v; want a lane blocked until %v", created, s.hasReady(s.dests["hook"]), s.nextWake, r.nextAttempt)
	}
	if again, created := s.laneOf(r, now); again != ln || created {
		t.Error("a second row of the lane made another lane")
	}
}

func TestLaneSetRetryDropsWhatWasDeadLettered(t *testing.T) {
	t.Parallel()
	now := time.Now()
	s, d := hookLanes(100)
	for seq := int64(1); seq <= 4; seq++ {
		put(s, "hook", "a", seq, now)
	}
	lanes, _, _ := s.batch(d, 3, now)
	a := lanes[0]
	// Of the three in flight, row 2 is kept for a retry; 1 and 3 were
	// dead-lettered.
	s.retry(a, []*row{a.rows[1]}, now.Add(time.Second))
	if s.buffered != 2 || len(a.rows) != 2 || a.rows[0].seq != 2 || a.rows[1].seq != 4 || a.inflight != 0 {
		t.Fatalf("buffered %d, lane rows %v, inflight %d; want 2, [2 4], 0", s.buffered, a.rows, a.inflight)
	}
	s.hold(a)
	if !s.holding() {
		t.Fatal("a lane with dead letters to flush is not held")
	}
	s.flushed(now.Add(2 * time.Second))
	if s.holding() || a.busy {
		t.Fatal("the flush did not free the held lane")
	}
	if got, _, _ := s.batch(d, 10, now.Add(2*time.Second)); len(got) != 1 || got[0] != a {
		t.Fatalf("after the flush and the barrier the batch carries %v; want lane a", seqsOf(got))
	}
}

// A lane whose head is past its retries is not sent but handed back.
func TestLaneSetExpiredHead(t *testing.T) {
	t.Parallel()
	now := time.Now()
	s, d := hookLanes(100)
	old := &row{pos: pos{1, 1}, dest: "hook", key: "a", receivedAt: now.Add(-2 * time.Hour), attempts: 1}
	ln, _ := s.laneOf(old, now)
	s.push(ln, old, now, false)
	put(s, "hook", "b", 2, now)
	lanes, events, expired := s.batch(d, 10, now)
	if len(expired) != 1 || expired[0] != ln || ln.busy || ln.queued {
		t.Fatalf("expired %v (busy %v, queued %v); want lane a, off the queue, not busy", expired, ln.busy, ln.queued)
	}
	if len(lanes) != 1 || lanes[0].key != "b" || len(events) != 1 {
		t.Fatalf("the batch carries %v; want lane b alone", seqsOf(lanes))
	}
}

// Stalled lanes spill to make room; once they can move they ask for a
// reload, and a short reload ends the spill.
func TestLaneSetSpillAndReload(t *testing.T) {
	t.Parallel()
	now := time.Now()
	s, _, a, next := failedLane(4, now, time.Second)
	if s.room() != 1 {
		t.Fatalf("room %d, want 1", s.room())
	}
	if n := s.spill(now); n != 2 || s.room() != 3 || !a.spilled {
		t.Fatalf("spill dropped %d rows, room %d, lane a spilled %v; want 2, 3, true", n, s.room(), a.spilled)
	}
	// A row of a read after the spill joins the spilled range.
	r := &row{pos: pos{1, 4}, dest: "hook", key: "a", receivedAt: now}
	if ln, _ := s.laneOf(r, now); ln != a || s.push(a, r, now, false) {
		t.Fatal("a row after the spilled range was taken into memory")
	}
	if len(s.takeReloads()) != 0 {
		t.Fatal("a lane behind its barrier asked for a reload")
	}
	s.unblock(next)
	s.settled(a, next) // settled again before the reload: asks once
	reloads := s.takeReloads()
	if len(reloads) != 1 || reloads[0] != a || !a.loading || a.spillFrom != (pos{1, 1}) || a.spillEnd != (pos{1, 4}) {
		t.Fatalf("reloads %v, loading %v, range %v..%v; want lane a, 1..4", reloads, a.loading, a.spillFrom, a.spillEnd)
	}
	for _, seq := range []int64{1, 2, 4} {
		s.push(a, &row{pos: pos{1, seq}, dest: "hook", key: "a", receivedAt: now}, next, true)
	}
	s.reloaded(a, 3, reloadLimit, pos{1, 4}, next)
	if a.spilled || a.loading || !a.queued {
		t.Fatalf("after a short reload: spilled %v, loading %v, queued %v", a.spilled, a.loading, a.queued)
	}
	if !s.oldest().Equal(now) {
		t.Errorf("oldest %v, want %v", s.oldest(), now)
	}
}

func TestLaneSetOldestCountsSpilledRows(t *testing.T) {
	t.Parallel()
	t0 := time.Now()
	s, _ := hookLanes(10)
	if !s.oldest().IsZero() {
		t.Fatal("an empty set has an oldest row")
	}
	put(s, "hook", "a", 2, t0.Add(time.Second))
	ln := s.lanes[laneKey{"hook", "b"}]
	if ln != nil {
		t.Fatal("lane b exists before its first row")
	}
	b, _ := s.laneOf(&row{pos: pos{1, 1}, dest: "hook", key: "b"}, t0)
	b.spilled, b.spilledSince = true, t0
	if !s.oldest().Equal(t0) {
		t.Errorf("oldest %v, want the spilled row's %v", s.oldest(), t0)
	}
}
