package worker

import (
	"errors"
	"log/slog"
	"strconv"
	"time"

	"github.com/ordo-pipeline/ordo/shard"
)

// Limits of a shard loop that need no knob.
const (
	// flushRows makes a flush due at once when this many rows are
	// delivered and not yet deleted.
	flushRows = 1000
	// reloadLimit is how many rows of a spilled lane one reload fetches.
	reloadLimit = 200
	// lagEvery is how often the lag gauge is updated.
	lagEvery = time.Second
)

// errStopped is returned by a loop that ended because it was asked to.
var errStopped = errors.New("released")

// shardLoop delivers one claimed shard. One goroutine runs it and owns all
// its state; its requests run in goroutines of their own (requests). It
// decides when to read, send, flush and let go; its lanes
// (laneSet) say what may be sent.
type shardLoop struct {
	shard     int
	node      string
	sess      *session
	tuning    *Tuning
	log       *slog.Logger
	metrics   *metrics
	destOrder []*destination
	// placement returns the shard's current placement in the map.
	placement func() shard.Placement
	// stop is closed when the claim should be released.
	stop <-chan struct{}
	// wake receives a value when rows committed in the shard (see
	// waker); unwake forgets the loop there.
	wake   chan struct{}
	unwake func()
	// listening reports whether the node's listener is up; nil when there
	// is no waker.
	listening func() bool

	lanes   *laneSet
	unknown map[string]bool // destinations already warned about

	// Reading: the last row read, whether the last read was full, and
	// when to read again if nothing wakes the loop.
	cursor   pos
	moreRows bool
	nextRead time.Time

	requests *requests // in flight

	acks    acks // written back at the next flush
	vacuum  vacuumPace
	nextLag time.Time
}

func newShardLoop(m *manager, c *claim) *shardLoop {
	l := &shardLoop{
		shard:     c.shard,
		node:      c.node,
		sess:      c.sess,
		tuning:    &m.cfg.Tuning,
		log:       m.log.With("shard", c.shard, "node", c.node),
		metrics:   m.metrics,
		destOrder: m.destOrder,
		placement: func() shard.Placement { return m.placement(c.shard) },
		stop:      c.stop,
		unwake:    func() {},
		lanes:     newLaneSet(m.dests, m.cfg.Tuning.Buffer),
		unknown:   map[string]bool{},
		requests:  newRequests(m.cfg.ShardConcurrency, len(m.destOrder)),
		vacuum:    vacuumPace{request: m.vacuumFor(c), tuning: &m.cfg.Tuning},
	}
	if w := m.waker; w != nil {
		ch := w.register(c.shard, c.node)
		l.wake, l.unwake = ch, func() { w.unregister(c.shard, ch) }
		l.listening = func() bool { return w.listening(c.node) }
	}
	return l
}

// run delivers the shard until it is asked to stop, its placement changes,
// or a statement fails. On a stop it lets the requests in flight finish
// (up to DrainTimeout), acknowledges what they did and returns errStopped;
// the caller then releases the lock.
func (l *shardLoop) run() (err error) {
	defer func() {
		l.unwake()
		l.requests.abandon()
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
				l.log.Debug("letting shard go", "why", why, "in_flight", l.requests.inFlight())
				drainDeadline = time.After(l.tuning.DrainTimeout)
			}
		}
		if err := l.flushIfDue(now, stopping); err != nil {
			return err
		}
		if stopping && l.requests.inFlight() == 0 {
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
		timer.Reset(max(time.Until(l.nextDeadline(now, stopping)), time.Millisecond))
		select {
		case r := <-l.requests.done():
			l.handle(r, time.Now())
			// Take every result already waiting before the next round.
			for more := true; more; {
				select {
				case r := <-l.requests.done():
					l.handle(r, time.Now())
				default:
					more = false
				}
			}
		case <-timer.C:
		case <-l.wake:
			// Rows committed: read now rather than at the next poll.
			l.nextRead = time.Time{}
		case <-stopCh:
		case <-drainDeadline:
			l.log.Warn("requests in flight outlived the drain timeout; cancelling them", "in_flight", l.requests.inFlight())
			l.requests.cancelAll()
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
// spilled lanes, reads, and new requests.
func (l *shardLoop) step(now time.Time) error {
	if !now.Before(l.lanes.wakeAt()) {
		l.lanes.unblock(now)
	}
	if l.lanes.reloading() {
		if err := l.reload(now); err != nil {
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
		l.dropUnknown(now)
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
		earlier(l.acks.first.Add(l.tuning.FlushInterval))
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
	earlier(l.lanes.wakeAt())
	earlier(l.nextLag)
	return next
}

// updateLag sets the shard's lag gauge: the age of its oldest pending row.
// A shard with no lane has no lag to follow: the gauge is set to 0 and not
// looked at again until a row arrives (see add), so that idle shards do not
// wake their loops every lagEvery.
func (l *shardLoop) updateLag(now time.Time) {
	l.nextLag = now.Add(lagEvery)
	if l.lanes.empty() {
		l.nextLag = now.Add(time.Hour)
	}
	oldest := l.lanes.oldest()
	lag := 0.0
	if !oldest.IsZero() {
		lag = max(0, now.Sub(oldest).Seconds())
	}
	l.metrics.lag.WithLabelValues(strconv.Itoa(l.shard)).Set(lag)
}
