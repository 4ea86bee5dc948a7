package worker

import "time"

// What a shard loop has to write back to its table: deliveries to delete,
// dead letters to move, retries to record. A flush (shard_sql.go) writes
// them in one transaction.

// retry is the bookkeeping of a failed attempt that will be retried.
type retry struct {
	pos
	attempts int
	next     time.Time
	status   int // 0 when no response came
	response string
}

// deadLetter is an event that will not be retried.
type deadLetter struct {
	pos
	attempts int
	status   int // 0 when no response came
	response string
	reason   string
	// keepLast takes the status and response stored on the row (its last
	// attempt's) instead of status and response.
	keepLast bool
}

// acks is what one flush writes, in one transaction.
type acks struct {
	delivered []pos
	dead      []deadLetter
	retries   []retry
	retryAt   map[pos]int // index in retries of each row's entry
	// first is when the oldest of them was recorded; zero when empty.
	first time.Time
}

// deliver records that the row at p was delivered.
func (a *acks) deliver(p pos, now time.Time) {
	a.delivered = append(a.delivered, p)
	a.note(now)
}

// deadLetter records dl.
func (a *acks) deadLetter(dl deadLetter, now time.Time) {
	a.dead = append(a.dead, dl)
	a.note(now)
}

// retry records r, replacing an entry of the same row not yet flushed (a
// row may fail twice between flushes): the flush's UPDATE ... FROM unnest
// would apply either of two, and attempts could go backwards. The caller
// notes the time (see note).
func (a *acks) retry(r retry) {
	if i, ok := a.retryAt[r.pos]; ok {
		a.retries[i] = r
		return
	}
	if a.retryAt == nil {
		a.retryAt = map[pos]int{}
	}
	a.retryAt[r.pos] = len(a.retries)
	a.retries = append(a.retries, r)
}

// note records that an acknowledgement was added at now.
func (a *acks) note(now time.Time) {
	if a.first.IsZero() {
		a.first = now
	}
}

// lastRetry returns the retry not yet flushed of the row at p, if any.
func (a *acks) lastRetry(p pos) (retry, bool) {
	i, ok := a.retryAt[p]
	if !ok {
		return retry{}, false
	}
	return a.retries[i], true
}

func (a *acks) empty() bool {
	return len(a.delivered) == 0 && len(a.dead) == 0 && len(a.retries) == 0
}

func (a *acks) reset() {
	a.delivered = a.delivered[:0]
	a.dead = a.dead[:0]
	a.retries = a.retries[:0]
	clear(a.retryAt)
	a.first = time.Time{}
}
