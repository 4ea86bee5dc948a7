package worker

import (
	"context"
	"math/rand/v2"
	"time"

	"github.com/jackc/pgx/v5"
)

// Reading a shard into lanes: windows after the cursor, spills of stalled
// lanes and their reloads.
//
// A row is read once, unless its lane spills it: every writer holds the
// shard's write lock (schema.LockForWrite) from before it draws sequence
// numbers until it commits, so no row commits behind the cursor, and the
// cursor only moves forward. A spilled lane holds no rows in memory from
// the spill until its reload, which reads only the spilled range; rows read
// after the cursor meanwhile join that range instead of the lane. So a row
// is never in memory twice.

// canRead reports whether the buffer has room for a worthwhile read.
func (l *shardLoop) canRead() bool { return l.lanes.room() >= max(1, l.tuning.Window/4) }

// read fetches the next window of rows after the cursor into lanes.
func (l *shardLoop) read(now time.Time) error {
	if l.lanes.room() < l.tuning.Window {
		if n := l.lanes.spill(now); n > 0 {
			l.log.Debug("spilled stalled lanes", "rows", n)
		}
	}
	if !l.canRead() {
		// Full of rows that can move: read once they have.
		l.moreRows = true
		return nil
	}
	l.moreRows = false
	l.nextRead = now.Add(l.pollDelay())
	limit := min(l.lanes.room(), l.tuning.Window)
	var rows []*row
	err := l.sess.do(context.Background(), func(ctx context.Context, conn *pgx.Conn) error {
		var err error
		rows, err = readRows(ctx, conn, l.shard, l.cursor, limit)
		return err
	})
	if err != nil {
		return err
	}
	if len(rows) == 0 {
		return nil
	}
	l.cursor = rows[len(rows)-1].pos
	for _, r := range rows {
		l.add(r, now, false)
	}
	l.moreRows = len(rows) == limit
	return nil
}

// pollDelay is how long until the loop reads again if nothing wakes it:
// Poll while its node's listener is up, else downPoll (see waker). It is
// jittered by up to a quarter, so that loops claimed together do not poll
// together.
func (l *shardLoop) pollDelay() time.Duration {
	d := l.tuning.Poll
	if l.listening != nil && !l.listening() {
		d = min(d, downPoll)
	}
	return d - rand.N(d/4+1)
}

// add puts a row read from the table into its lane, unless it belongs to
// the spilled part of its lane or is dead-lettered at once.
func (l *shardLoop) add(r *row, now time.Time, reloaded bool) {
	ln, created := l.lanes.laneOf(r, now)
	if created && ln.dest == nil && !l.unknown[r.dest] {
		l.unknown[r.dest] = true
		l.log.Warn("rows for a destination the workspace does not have stay pending", "destination", r.dest)
	}
	if ln.dest == nil && l.dropIfUnknown(ln, r, now) {
		return
	}
	if !l.lanes.push(ln, r, now, reloaded) {
		return
	}
	if l.nextLag.Sub(now) > lagEvery {
		l.nextLag = now.Add(lagEvery)
	}
}

// reload reads the next rows of spilled lanes that ran out of rows.
func (l *shardLoop) reload(now time.Time) error {
	// The rows' retry bookkeeping must be in the table before it is read.
	if err := l.flushNow(); err != nil {
		return err
	}
	lanes := l.lanes.takeReloads()
	reqs := make([]reload, 0, len(lanes))
	for _, ln := range lanes {
		reqs = append(reqs, reload{dest: ln.laneKey.dest, key: ln.key, from: ln.spillFrom, to: ln.spillEnd})
	}
	var rows []*row
	err := l.sess.do(context.Background(), func(ctx context.Context, conn *pgx.Conn) error {
		var err error
		rows, err = reloadRows(ctx, conn, l.shard, reqs, reloadLimit)
		return err
	})
	if err != nil {
		return err
	}
	got := map[*lane]int{}
	lastOf := map[*lane]pos{}
	for _, r := range rows {
		ln := l.lanes.get(laneKey{dest: r.dest, key: r.key})
		got[ln]++
		lastOf[ln] = r.pos
		l.add(r, now, true)
	}
	for _, ln := range lanes {
		l.lanes.reloaded(ln, got[ln], reloadLimit, lastOf[ln], now)
	}
	return nil
}
