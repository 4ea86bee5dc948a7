package worker

import (
	"context"
	"strconv"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/ordo-pipeline/ordo/deliver"
	"github.com/ordo-pipeline/ordo/workspace"
)

// Sending a shard's ready lanes and applying the results: acknowledgements,
// retries behind the barrier, dead letters, and the flushes that write them.

// dispatch sends requests for ready lanes, destination by destination,
// while each destination has room in this shard.
func (l *shardLoop) dispatch(now time.Time) {
	for {
		sent := false
		for _, d := range l.destOrder {
			if l.requests.to(d) >= l.tuning.ShardConcurrency || !l.lanes.hasReady(d) {
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

// sendBatch takes ready lanes of d, up to d's batch size of events, and
// sends them as one request; lanes past their retries are dead-lettered
// instead. It reports whether it sent one.
func (l *shardLoop) sendBatch(d *destination, now time.Time) bool {
	lanes, events, expired := l.lanes.batch(d, d.send.MaxBatchSize(), now)
	for _, ln := range expired {
		l.expire(d, ln, now)
	}
	if len(events) == 0 {
		return false
	}
	l.requests.start(d, lanes, events)
	return true
}

// pastRetries says whether r, which waited behind its lane's barrier, may
// not be attempted again: retryLater when it may (or was never attempted:
// the first attempt always goes), else why it is dead-lettered.
func pastRetries(r *row, p workspace.RetryPolicy, now time.Time) outcome {
	if r.attempts == 0 {
		return retryLater
	}
	return judge(r, r.attempts, p, now)
}

// sendable returns how many of the lane's first n rows may be sent: those
// before the first that is past its retries.
func sendable(ln *lane, n int, p workspace.RetryPolicy, now time.Time) int {
	for i, r := range ln.rows[:n] {
		if pastRetries(r, p, now) != retryLater {
			return i
		}
	}
	return n
}

// expire dead-letters, without another attempt, the rows at the head of the
// lane that are past their retries (MaxAge or MaxAttempts reached while
// they waited). They keep their last status and response. The lane waits
// for the flush.
func (l *shardLoop) expire(d *destination, ln *lane, now time.Time) {
	n := 0
	for _, r := range ln.rows {
		out := pastRetries(r, d.retry, now)
		if out == retryLater {
			break
		}
		dl := deadLetter{pos: r.pos, attempts: r.attempts, reason: expiredText(out), keepLast: true}
		if last, ok := l.acks.lastRetry(r.pos); ok {
			// Its last failure is not flushed yet: take it from there.
			dl.status, dl.response, dl.keepLast = last.status, last.response, false
		}
		l.acks.deadLetter(dl, now)
		d.metrics.dead(out.reason(), 1)
		n++
	}
	ln.inflight = n
	l.lanes.take(ln)
	l.lanes.hold(ln)
}

func expiredText(o outcome) string {
	if o == deadMaxAttempts {
		return "max attempts reached before the next attempt"
	}
	return "max age reached before the next attempt"
}

// handle applies a finished request to its lanes: delivered rows are
// acknowledged, failed ones retried later or dead-lettered.
func (l *shardLoop) handle(r *sendResult, now time.Time) {
	l.requests.finished(r)
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
			for _, row := range ln.rows[:ln.inflight] {
				l.acks.deliver(row.pos, now)
				d.metrics.latency.Observe(now.Sub(row.receivedAt).Seconds())
			}
			delivered += ln.inflight
			l.lanes.delivered(ln, now)
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
			l.lanes.release(ln, now)
		}
	default:
		text := responseText(r.res)
		reason := "status"
		if r.res.Status == 0 {
			reason = "error"
		}
		for _, ln := range r.lanes {
			for _, row := range ln.rows[:ln.inflight] {
				l.acks.deadLetter(deadLetter{pos: row.pos, attempts: row.attempts + 1, status: r.res.Status, response: text,
					reason: reasonText(reason, r.res)}, now)
			}
			d.metrics.dead(reason, ln.inflight)
			l.lanes.take(ln)
			l.lanes.hold(ln)
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
			l.acks.deadLetter(deadLetter{pos: row.pos, attempts: attempts, status: res.Status, response: text,
				reason: reasonText(out.reason(), res)}, now)
			d.metrics.dead(out.reason(), 1)
			deadCount++
			continue
		}
		if next.IsZero() {
			next = now.Add(d.retry.Backoff(attempts))
		}
		row.attempts = attempts
		row.nextAttempt = next
		l.acks.retry(retry{pos: row.pos, attempts: attempts, next: next, status: res.Status, response: text})
		l.acks.note(now)
		keep = append(keep, row)
	}
	d.metrics.retried.Add(float64(len(keep)))
	l.lanes.retry(ln, keep, next)
	if deadCount > 0 {
		l.lanes.hold(ln)
		return
	}
	l.lanes.free(ln, now)
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

// flushIfDue writes the acknowledgements when enough wait, when they have
// waited long enough, or when a dead letter holds up its lane.
func (l *shardLoop) flushIfDue(now time.Time, stopping bool) error {
	if l.acks.empty() {
		return nil
	}
	if l.lanes.holding() || len(l.acks.delivered) >= flushRows || now.Sub(l.acks.first) >= l.tuning.FlushInterval {
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
	l.vacuum.deletedRows(len(l.acks.delivered)+len(l.acks.dead), now)
	l.acks.reset()
	l.lanes.flushed(now)
	return nil
}
