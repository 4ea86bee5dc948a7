package worker

import (
	"testing"
	"time"
)

// Lanes alone, without Postgres or a shard loop.

func rowAt(seq int64, received time.Time) *row {
	return &row{pos: pos{1, seq}, receivedAt: received}
}

func TestLaneReady(t *testing.T) {
	t.Parallel()
	now := time.Now()
	d := &destination{id: "hook"}
	ln := &lane{dest: d}
	if ln.ready(now) {
		t.Error("an empty lane is ready")
	}
	ln.rows = []*row{rowAt(1, now)}
	if !ln.ready(now) || ln.stalled(now) {
		t.Error("a lane with a row is not ready, or stalled")
	}
	ln.busy = true
	if ln.ready(now) || ln.stalled(now) {
		t.Error("a busy lane is ready, or stalled")
	}
	ln.busy = false
	ln.blockedUntil = now.Add(time.Second)
	if ln.ready(now) || !ln.stalled(now) {
		t.Error("a lane behind its barrier is ready, or not stalled")
	}
	if !ln.ready(now.Add(time.Second)) {
		t.Error("a lane whose barrier ended is not ready")
	}
	unknown := &lane{rows: []*row{rowAt(1, now)}}
	if unknown.ready(now) || !unknown.stalled(now) {
		t.Error("a lane of an unknown destination is ready, or not stalled")
	}
}

func TestLaneTake(t *testing.T) {
	t.Parallel()
	now := time.Now()
	ln := &lane{rows: []*row{rowAt(1, now), rowAt(2, now), rowAt(3, now)}, inflight: 2, blockedUntil: now.Add(time.Minute)}
	if n := ln.take(); n != 2 || len(ln.rows) != 1 || ln.rows[0].seq != 3 || ln.inflight != 0 || !ln.blockedUntil.IsZero() {
		t.Errorf("take = %d; rows %v, inflight %d, barrier %v", n, ln.rows, ln.inflight, ln.blockedUntil)
	}
	ln.inflight = 1
	if n := ln.take(); n != 1 || ln.rows != nil {
		t.Errorf("take of the last row = %d, rows %v; want 1 and nil", n, ln.rows)
	}
}

// TestLaneSpillAbsorbReload follows a lane through a spill: its rows leave
// memory, rows read meanwhile at or after the spilled range join the range
// instead of the lane, and reloads walk the range until one comes back
// short.
func TestLaneSpillAbsorbReload(t *testing.T) {
	t.Parallel()
	t0 := time.Now()
	ln := &lane{rows: []*row{rowAt(5, t0.Add(time.Second)), rowAt(3, t0), rowAt(7, t0.Add(2*time.Second))}}
	if n := ln.spill(); n != 3 || ln.rows != nil || !ln.spilled {
		t.Fatalf("spill = %d, rows %v, spilled %v", n, ln.rows, ln.spilled)
	}
	if ln.spillFrom != (pos{1, 3}) || ln.spillEnd != (pos{1, 7}) || !ln.spilledSince.Equal(t0) {
		t.Errorf("spilled range %v..%v since %v, want 3..7 since the oldest row", ln.spillFrom, ln.spillEnd, ln.spilledSince)
	}
	if ln.absorb(rowAt(2, t0)) {
		t.Error("a row before the range joined it")
	}
	if !ln.absorb(rowAt(9, t0)) || ln.spillEnd != (pos{1, 9}) {
		t.Errorf("a row after the range: range ends at %v, want 9", ln.spillEnd)
	}
	ln.loading = true
	ln.reloaded(200, 200, pos{1, 6})
	if !ln.spilled || ln.loading || ln.spillFrom != (pos{1, 7}) {
		t.Errorf("after a full reload: spilled %v, loading %v, from %v; want still spilled from 7", ln.spilled, ln.loading, ln.spillFrom)
	}
	ln.reloaded(3, 200, pos{1, 9})
	if ln.spilled {
		t.Error("a short reload left the lane spilled")
	}
	if ln.absorb(rowAt(10, t0)) {
		t.Error("a lane no longer spilled absorbed a row")
	}
}
