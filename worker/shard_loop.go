package worker

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/ordo-pipeline/ordo/deliver"
	"github.com/ordo-pipeline/ordo/shard"
)

// Limits of a shard loop that need no knob.
const (
	// flushRows makes a flush due at once when this many rows are
	// delivered and not yet deleted.
	flushRows = 1000
	// reloadLimit is how many rows of a spilled lane one reload fetches.
	reloadLimit = 200
	// maxMarks bounds the read ranges waiting for their writers to end.
	maxMarks = 64
	// lagEvery is how often the lag gauge is updated.
	lagEvery = time.Second
)

// errStopped is returned by a loop that ended because it was asked to.
var errStopped = errors.New("released")

// readMark is a range of rows read while some writers were in progress:
// once those have ended, the range is read again for rows they committed
// behind the cursor.
type readMark struct {
	from, to pos
	xids     []int64
}

// sendResult is one finished request.
type sendResult struct {
	dest    *destination
	lanes   []*lane
	took    time.Duration
	res     deliver.Result
	aborted bool // cancelled by the worker, not failed by the destination
}

// shardLoop delivers one claimed shard. One goroutine runs it and owns all
// its state; requests run in goroutines of their own and report back on
// results.
type shardLoop struct {
	shard     int
	node      string
	sess      *session
	tuning    *Tuning
	log       *slog.Logger
	metrics   *metrics
	dests     map[string]*destination
	destOrder []*destination
	// placement returns the shard's current placement in the map.
	placement func() shard.Placement
	// stop is closed when the claim should be released.
	stop <-chan struct{}
	// vacuum asks for the shard's table to be vacuumed; nil disables.
	vacuum func()

	sendCtx    context.Context
	cancelSend context.CancelFunc

	lanes    map[laneKey]*lane
	known    map[pos]struct{}
	buffered int
	ready    map[*destination][]*lane
	inflight map[*destination]int
	sending  int
	results  chan *sendResult
	blocked  map[*lane]struct{}
	nextWake time.Time
	reloads  []*lane
	unknown  map[string]bool

	cursor   pos
	moreRows bool
	nextRead time.Time
	marks    []readMark
	nextMark time.Time

	acks     acks
	ackLanes []*lane
	firstAck time.Time
	nextLag  time.Time

	deleted    int // rows deleted since the last vacuum request
	lastVacuum time.Time
}

func newShardLoop(m *manager, c *claim) *shardLoop {
	ctx, cancel := context.WithCancel(context.Background())
	l := &shardLoop{
		shard:      c.shard,
		node:       c.node,
		sess:       c.sess,
		tuning:     &m.cfg.Tuning,
		log:        m.log.With("shard", c.shard, "node", c.node),
		metrics:    m.metrics,
		dests:      m.dests,
		destOrder:  m.destOrder,
		placement:  func() shard.Placement { return m.placement(c.shard) },
		stop:       c.stop,
		vacuum:     m.vacuumFor(c),
		sendCtx:    ctx,
		cancelSend: cancel,
		lanes:      map[laneKey]*lane{},
		known:      map[pos]struct{}{},
		ready:      map[*destination][]*lane{},
		inflight:   map[*destination]int{},
		results:    make(chan *sendResult, m.cfg.ShardConcurrency*max(1, len(m.destOrder))),
		blocked:    map[*lane]struct{}{},
		unknown:    map[string]bool{},
	}
	return l
}

// run delivers the shard until it is asked to stop, its placement changes,
// or a statement fails. On a stop it lets the requests in flight finish
// (up to DrainTimeout), acknowledges what they did and returns errStopped;
// the caller then releases the lock.
func (l *shardLoop) run() (err error) {
	defer func() {
		l.cancelSend()
		for l.sending > 0 {
			<-l.results
			l.sending--
		}
		l.metrics.lag.DeleteLabelValues(strconv.Itoa(l.shard))
	}()
	timer := time.NewTimer(0)
	defer timer.Stop()
	stopCh := l.stop
	var stopping bool
	var drainDeadline <-chan time.Time
	for {
		now := time.Now()
		if !stopping {
			if why := l.shouldStop(stopCh); why != "" {
				stopping, stopCh = true, nil
				l.log.Debug("letting shard go", "why", why, "in_flight", l.sending)
				drainDeadline = time.After(l.tuning.DrainTimeout)
			}
		}
		if err := l.flushIfDue(now, stopping); err != nil {
			return err
		}
		if stopping && l.sending == 0 {
			if err := l.flushNow(); err != nil {
				return err
			}
			return errStopped
		}
		if !stopping {
			if err := l.step(now); err != nil {
				return err
			}
		}
		if !timer.Stop() {
			select {
			case <-timer.C:
			default:
			}
		}
		timer.Reset(max(l.nextDeadline(now, stopping).Sub(time.Now()), time.Millisecond))
		select {
		case r := <-l.results:
			l.handle(r, time.Now())
			// Take every result already waiting before the next round.
			for more := true; more; {
				select {
				case r := <-l.results:
					l.handle(r, time.Now())
				default:
					more = false
				}
			}
		case <-timer.C:
		case <-stopCh:
		case <-drainDeadline:
			l.log.Warn("requests in flight outlived the drain timeout; cancelling them", "in_flight", l.sending)
			l.cancelSend()
			drainDeadline = nil
		}
	}
}

// shouldStop says why the loop should let its shard go, or "".
func (l *shardLoop) shouldStop(stopCh <-chan struct{}) string {
	select {
	case <-stopCh:
		return "released"
	default:
	}
	p := l.placement()
	if p.Node != l.node {
		return "the shard moved to node " + p.Node
	}
	if p.State != shard.StateActive {
		return "the shard is " + p.State
	}
	return ""
}

// step does the loop's work between waits: barriers that ended, reloads of
// spilled lanes, rescans, reads, and new requests.
func (l *shardLoop) step(now time.Time) error {
	if !now.Before(l.nextWake) {
		l.unblock(now)
	}
	if len(l.reloads) > 0 {
		if err := l.reload(now); err != nil {
			return err
		}
	}
	if len(l.marks) > 0 && !now.Before(l.nextMark) {
		l.nextMark = now.Add(l.tuning.Poll)
		if err := l.settle(now); err != nil {
			return err
		}
	}
	if l.moreRows || !now.Before(l.nextRead) {
		if err := l.read(now); err != nil {
			return err
		}
	}
	if !now.Before(l.nextLag) {
		l.updateLag(now)
	}
	l.dispatch(now)
	return nil
}

// nextDeadline is when the loop must wake up even if no request finishes.
func (l *shardLoop) nextDeadline(now time.Time, stopping bool) time.Time {
	next := now.Add(time.Hour)
	earlier := func(t time.Time) {
		if !t.IsZero() && t.Before(next) {
			next = t
		}
	}
	if !l.acks.empty() {
		earlier(l.firstAck.Add(l.tuning.FlushInterval))
	}
	if stopping {
		return next
	}
	if l.moreRows {
		if l.canRead() {
			return now
		}
	} else {
		earlier(l.nextRead)
	}
	earlier(l.nextWake)
	earlier(l.nextLag)
	if len(l.marks) > 0 {
		earlier(l.nextMark)
	}
	return next
}

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

// dispatch sends requests for ready lanes, destination by destination,
// while each destination has room in this shard.
func (l *shardLoop) dispatch(now time.Time) {
	for {
		sent := false
		for _, d := range l.destOrder {
			if l.inflight[d] >= l.tuning.ShardConcurrency || len(l.ready[d]) == 0 {
				continue
			}
			if l.sendBatch(d, now) {
				sent = true
			}
		}
		if !sent {
			return
		}
	}
}

// sendBatch takes ready lanes of d off its queue, up to d's batch size of
// events, and sends them as one request. It reports whether it sent one.
func (l *shardLoop) sendBatch(d *destination, now time.Time) bool {
	limit := d.send.MaxBatchSize()
	q := l.ready[d]
	var lanes []*lane
	var events []deliver.Event
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
	l.ready[d] = q
	if len(events) == 0 {
		return false
	}
	l.inflight[d]++
	l.sending++
	go func() {
		select {
		case d.sem <- struct{}{}:
		case <-l.sendCtx.Done():
			l.results <- &sendResult{dest: d, lanes: lanes, aborted: true}
			return
		}
		start := time.Now()
		res := d.send.Send(l.sendCtx, events)
		<-d.sem
		l.results <- &sendResult{dest: d, lanes: lanes, took: time.Since(start), res: res, aborted: l.sendCtx.Err() != nil}
	}()
	return true
}

// handle applies a finished request to its lanes: delivered rows are
// acknowledged, failed ones retried later or dead-lettered.
func (l *shardLoop) handle(r *sendResult, now time.Time) {
	l.sending--
	l.inflight[r.dest]--
	d := r.dest
	if r.aborted {
		// Cancelled by us: not the destination's failure, and the loop
		// is ending. The rows stay pending for the next owner.
		for _, ln := range r.lanes {
			ln.busy, ln.inflight = false, 0
		}
		return
	}
	d.metrics.sendDuration.Observe(r.took.Seconds())
	d.metrics.request(r.res.Status)
	switch {
	case r.res.OK():
		delivered := 0
		for _, ln := range r.lanes {
			ln.solo = false
			for _, row := range ln.rows[:ln.inflight] {
				l.ack(row.pos, now)
				d.metrics.latency.Observe(now.Sub(row.receivedAt).Seconds())
				delete(l.known, row.pos)
			}
			delivered += ln.inflight
			l.take(ln)
			ln.busy = false
			l.settled(ln, now)
		}
		d.metrics.delivered.Add(float64(delivered))
	case r.res.Retryable:
		for _, ln := range r.lanes {
			// A failure shared by several keys may be one key's: each
			// retries alone, so one failing key cannot drag others
			// to their maxAttempts.
			ln.solo = ln.solo || len(r.lanes) > 1
			l.retryLane(d, ln, r.res, now)
		}
	case len(r.lanes) > 1 || r.lanes[0].inflight > 1:
		// Refused for good, but for which event? Send each lane's head
		// alone to find out; this costs none of their attempts.
		for _, ln := range r.lanes {
			ln.solo = true
			ln.busy, ln.inflight = false, 0
			l.settled(ln, now)
		}
	default:
		text := responseText(r.res)
		reason := "status"
		if r.res.Status == 0 {
			reason = "error"
		}
		for _, ln := range r.lanes {
			for _, row := range ln.rows[:ln.inflight] {
				l.dead(deadLetter{pos: row.pos, attempts: row.attempts + 1, status: r.res.Status, response: text,
					reason: reasonText(reason, r.res)})
				delete(l.known, row.pos)
			}
			d.metrics.dead(reason, ln.inflight)
			l.take(ln)
			l.ackLanes = append(l.ackLanes, ln) // busy until the flush
		}
	}
}

// retryLane records a retryable failure of the lane's rows in flight: each
// is retried after a backoff or, past MaxAttempts or MaxAge, dead-lettered.
// The lane waits behind its barrier until the backoff ends.
func (l *shardLoop) retryLane(d *destination, ln *lane, res deliver.Result, now time.Time) {
	text := responseText(res)
	var keep []*row
	var deadCount int
	var next time.Time
	for _, row := range ln.rows[:ln.inflight] {
		attempts := row.attempts + 1
		out := judge(row, attempts, d.retry, now)
		if out != retryLater {
			l.dead(deadLetter{pos: row.pos, attempts: attempts, status: res.Status, response: text,
				reason: reasonText(out.reason(), res)})
			delete(l.known, row.pos)
			d.metrics.dead(out.reason(), 1)
			deadCount++
			continue
		}
		if next.IsZero() {
			next = now.Add(d.retry.Backoff(attempts))
		}
		row.attempts = attempts
		row.nextAttempt = next
		l.acks.retries = append(l.acks.retries, retry{pos: row.pos, attempts: attempts, next: next, status: res.Status, response: text})
		l.noteAck(now)
		keep = append(keep, row)
	}
	d.metrics.retried.Add(float64(len(keep)))
	rest := ln.rows[ln.inflight:]
	ln.rows = append(keep, rest...)
	l.buffered -= deadCount
	ln.inflight = 0
	if len(keep) > 0 {
		ln.blockedUntil = next
		l.block(ln)
	}
	if deadCount > 0 {
		l.ackLanes = append(l.ackLanes, ln) // busy until the flush
		return
	}
	ln.busy = false
	l.settled(ln, now)
}

func reasonText(reason string, res deliver.Result) string {
	switch reason {
	case "max_attempts":
		return "max attempts reached: " + errText(res)
	case "max_age":
		return "max age reached: " + errText(res)
	}
	return errText(res)
}

func errText(res deliver.Result) string {
	if res.Err == nil {
		return "status " + strconv.Itoa(res.Status)
	}
	return res.Err.Error()
}

// take removes the lane's rows that were in flight.
func (l *shardLoop) take(ln *lane) {
	l.buffered -= ln.inflight
	ln.rows = ln.rows[ln.inflight:]
	if len(ln.rows) == 0 {
		ln.rows = nil
	}
	ln.inflight = 0
	ln.blockedUntil = time.Time{}
}

func (l *shardLoop) ack(p pos, now time.Time) {
	l.acks.delivered = append(l.acks.delivered, p)
	l.noteAck(now)
}

func (l *shardLoop) dead(dl deadLetter) {
	l.acks.dead = append(l.acks.dead, dl)
	l.noteAck(time.Now())
}

func (l *shardLoop) noteAck(now time.Time) {
	if l.firstAck.IsZero() {
		l.firstAck = now
	}
}

// flushIfDue writes the acknowledgements when enough wait, when they have
// waited long enough, or when a dead letter holds up its lane.
func (l *shardLoop) flushIfDue(now time.Time, stopping bool) error {
	if l.acks.empty() {
		return nil
	}
	if len(l.ackLanes) > 0 || len(l.acks.delivered) >= flushRows || now.Sub(l.firstAck) >= l.tuning.FlushInterval {
		return l.flushNow()
	}
	return nil
}

// flushNow writes every pending acknowledgement in one transaction on the
// claim connection, then frees the lanes that waited for it.
func (l *shardLoop) flushNow() error {
	if l.acks.empty() {
		return nil
	}
	err := l.sess.do(context.Background(), func(ctx context.Context, conn *pgx.Conn) error {
		return flush(ctx, conn, l.shard, &l.acks)
	})
	if err != nil {
		return err
	}
	now := time.Now()
	l.deleted += len(l.acks.delivered) + len(l.acks.dead)
	if l.vacuum != nil && l.deleted >= l.tuning.VacuumRows && now.Sub(l.lastVacuum) >= l.tuning.VacuumEvery {
		l.vacuum()
		l.deleted, l.lastVacuum = 0, now
	}
	l.acks.reset()
	l.firstAck = time.Time{}
	for _, ln := range l.ackLanes {
		ln.busy = false
		l.settled(ln, now)
	}
	l.ackLanes = l.ackLanes[:0]
	return nil
}

// updateLag sets the shard's lag gauge: the age of its oldest pending row.
func (l *shardLoop) updateLag(now time.Time) {
	l.nextLag = now.Add(lagEvery)
	var oldest time.Time
	for _, ln := range l.lanes {
		if len(ln.rows) > 0 && (oldest.IsZero() || ln.rows[0].receivedAt.Before(oldest)) {
			oldest = ln.rows[0].receivedAt
		}
		if ln.spilled && (oldest.IsZero() || ln.spilledSince.Before(oldest)) {
			oldest = ln.spilledSince
		}
	}
	lag := 0.0
	if !oldest.IsZero() {
		lag = max(0, now.Sub(oldest).Seconds())
	}
	l.metrics.lag.WithLabelValues(strconv.Itoa(l.shard)).Set(lag)
}

// describe is for errors: the shard and node of the loop.
func (l *shardLoop) describe() string { return fmt.Sprintf("shard %d on node %s", l.shard, l.node) }
