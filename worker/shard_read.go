package worker

import (
	"context"
	"time"

	"github.com/jackc/pgx/v5"
)

// Reading a shard into lanes: windows after the cursor, rescans behind it,
// spills of stalled lanes and their reloads.

// room is how many more rows the buffer takes.
func (l *shardLoop) room() int { return l.tuning.Buffer - l.buffered }

// canRead reports whether the buffer has room for a worthwhile read.
func (l *shardLoop) canRead() bool { return l.room() >= max(1, l.tuning.Window/4) }

// read fetches the next window of rows after the cursor into lanes.
func (l *shardLoop) read(now time.Time) error {
	if l.room() < l.tuning.Window {
		l.spill(now)
	}
	if !l.canRead() {
		// Full of rows that can move: read once they have.
		l.moreRows = true
		return nil
	}
	l.moreRows = false
	l.nextRead = now.Add(l.tuning.Poll)
	limit := min(l.room(), l.tuning.Window)
	var rows []*row
	var xids []int64
	err := l.sess.do(context.Background(), func(ctx context.Context, conn *pgx.Conn) error {
		var err error
		rows, xids, err = readRows(ctx, conn, l.shard, l.cursor, limit)
		return err
	})
	if err != nil {
		return err
	}
	if len(rows) == 0 {
		return nil
	}
	from := l.cursor
	l.cursor = rows[len(rows)-1].pos
	if len(xids) > 0 {
		l.addMark(readMark{from: from, to: l.cursor, xids: xids})
	}
	for _, r := range rows {
		l.add(r, now, false)
	}
	l.moreRows = len(rows) == limit
	return nil
}

func (l *shardLoop) addMark(m readMark) {
	if len(l.marks) == 0 {
		l.nextMark = time.Now().Add(l.tuning.Poll)
	}
	l.marks = append(l.marks, m)
	if len(l.marks) > maxMarks {
		a, b := l.marks[0], l.marks[1]
		l.marks[1] = readMark{from: a.from, to: b.to, xids: append(a.xids, b.xids...)}
		l.marks = l.marks[1:]
	}
}

// settle reads again the ranges whose writers have all ended, for rows
// they committed behind the cursor.
func (l *shardLoop) settle(now time.Time) error {
	var all []int64
	for _, m := range l.marks {
		all = append(all, m.xids...)
	}
	var running map[int64]bool
	err := l.sess.do(context.Background(), func(ctx context.Context, conn *pgx.Conn) error {
		var err error
		running, err = stillRunning(ctx, conn, all)
		return err
	})
	if err != nil {
		return err
	}
	var settled []readMark
	kept := l.marks[:0]
	for _, m := range l.marks {
		done := true
		for _, x := range m.xids {
			if running[x] {
				done = false
				break
			}
		}
		if done {
			settled = append(settled, m)
		} else {
			kept = append(kept, m)
		}
	}
	l.marks = kept
	if len(settled) == 0 {
		return nil
	}
	// Rows delivered but not yet deleted would look new: delete them first.
	if err := l.flushNow(); err != nil {
		return err
	}
	var missing []pos
	err = l.sess.do(context.Background(), func(ctx context.Context, conn *pgx.Conn) error {
		for _, m := range settled {
			ps, err := positionsBetween(ctx, conn, l.shard, m.from, m.to)
			if err != nil {
				return err
			}
			for _, p := range ps {
				if _, ok := l.known[p]; !ok {
					missing = append(missing, p)
				}
			}
		}
		return nil
	})
	if err != nil || len(missing) == 0 {
		return err
	}
	var rows []*row
	err = l.sess.do(context.Background(), func(ctx context.Context, conn *pgx.Conn) error {
		var err error
		rows, err = fetchRows(ctx, conn, l.shard, missing)
		return err
	})
	if err != nil {
		return err
	}
	for _, r := range rows {
		l.add(r, now, false)
	}
	return nil
}

// add puts a row read from the table into its lane, unless it is there
// already or belongs to the spilled part of its lane.
func (l *shardLoop) add(r *row, now time.Time, reloaded bool) {
	if _, ok := l.known[r.pos]; ok {
		return
	}
	k := laneKey{dest: r.dest, key: r.key}
	ln := l.lanes[k]
	if ln == nil {
		ln = &lane{laneKey: k, dest: l.dests[r.dest]}
		if ln.dest == nil && !l.unknown[r.dest] {
			l.unknown[r.dest] = true
			l.log.Warn("rows for a destination the workspace does not have stay pending", "destination", r.dest)
		}
		// A barrier recorded by an earlier owner still holds.
		if r.nextAttempt.After(now) {
			ln.blockedUntil = r.nextAttempt
			l.block(ln)
		}
		l.lanes[k] = ln
	}
	if ln.spilled && !reloaded && !r.pos.less(ln.spillFrom) {
		if ln.spillEnd.less(r.pos) {
			ln.spillEnd = r.pos
		}
		return
	}
	ln.rows = append(ln.rows, r)
	l.known[r.pos] = struct{}{}
	l.buffered++
	l.enqueue(ln, now)
}

func (l *shardLoop) enqueue(ln *lane, now time.Time) {
	if !ln.queued && ln.ready(now) {
		ln.queued = true
		l.ready[ln.dest] = append(l.ready[ln.dest], ln)
	}
}

func (l *shardLoop) block(ln *lane) {
	l.blocked[ln] = struct{}{}
	if l.nextWake.IsZero() || ln.blockedUntil.Before(l.nextWake) {
		l.nextWake = ln.blockedUntil
	}
}

// unblock queues the lanes whose barrier has ended.
func (l *shardLoop) unblock(now time.Time) {
	l.nextWake = time.Time{}
	for ln := range l.blocked {
		if ln.blockedUntil.After(now) {
			if l.nextWake.IsZero() || ln.blockedUntil.Before(l.nextWake) {
				l.nextWake = ln.blockedUntil
			}
			continue
		}
		delete(l.blocked, ln)
		l.settled(ln, now)
	}
	if l.nextWake.IsZero() {
		l.nextWake = now.Add(time.Hour)
	}
}

// spill drops from memory the rows of every stalled lane, so that lanes
// that cannot move do not keep the shard from reading rows of lanes that
// can. They are read again when their lane moves.
func (l *shardLoop) spill(now time.Time) {
	dropped := 0
	for _, ln := range l.lanes {
		if !ln.stalled(now) {
			continue
		}
		for _, r := range ln.spill() {
			delete(l.known, r.pos)
			dropped++
		}
	}
	l.buffered -= dropped
	if dropped > 0 {
		l.log.Debug("spilled stalled lanes", "rows", dropped)
	}
}

// reload reads the next rows of spilled lanes that ran out of rows.
func (l *shardLoop) reload(now time.Time) error {
	// The rows' retry bookkeeping must be in the table before it is read.
	if err := l.flushNow(); err != nil {
		return err
	}
	lanes := l.reloads
	l.reloads = nil
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
		ln := l.lanes[laneKey{dest: r.dest, key: r.key}]
		got[ln]++
		lastOf[ln] = r.pos
		l.add(r, now, true)
	}
	for _, ln := range lanes {
		ln.loading = false
		if got[ln] < reloadLimit {
			ln.spilled = false
		} else {
			ln.spillFrom = lastOf[ln].next()
		}
		l.settled(ln, now)
	}
	return nil
}

// settled is called when a lane's state changed: it queues the lane, asks
// for a reload, or forgets an empty lane.
func (l *shardLoop) settled(ln *lane, now time.Time) {
	switch {
	case ln.busy:
	case len(ln.rows) > 0:
		l.enqueue(ln, now)
	case ln.spilled:
		if !ln.loading {
			ln.loading = true
			l.reloads = append(l.reloads, ln)
		}
	case !ln.blockedUntil.After(now):
		delete(l.lanes, ln.laneKey)
		delete(l.blocked, ln)
	}
}
