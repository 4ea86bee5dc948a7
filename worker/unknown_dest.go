package worker

import (
	"time"

	"github.com/ordo-pipeline/ordo/workspace"
)

// unknownDestinationAge is how long rows for a destination the workspace
// does not have wait before they are dead-lettered: the default maxAge. A
// destination removed from the workspace would otherwise leave its rows
// pending for good (the shard's lag never clears, and every move copies
// them); waiting that long first keeps the rows of a destination that
// this worker does not know yet, during a rolling change of the workspace,
// for the workers that do.
const unknownDestinationAge = workspace.DefaultMaxAge

// dropUnknown dead-letters the rows held in memory of lanes whose
// destination the workspace does not have, once they are older than
// unknownDestinationAge, and has such lanes' spilled rows read back, to
// be dead-lettered as they come (see dropIfUnknown).
func (l *shardLoop) dropUnknown(now time.Time) {
	for ln := range l.lanes.all() {
		if ln.dest != nil {
			continue
		}
		// Order does not matter here: nothing of the lane is sent.
		var keep []*row
		n := 0
		for _, r := range ln.rows {
			if !l.dropIfUnknown(ln, r, now) {
				keep = append(keep, r)
				continue
			}
			n++
		}
		if n > 0 {
			ln.rows = keep
			l.lanes.drop(n)
			continue
		}
		if !ln.busy && len(ln.rows) == 0 && ln.spilled && now.Sub(ln.spilledSince) >= unknownDestinationAge {
			l.lanes.settled(ln, now) // reads the spilled rows back
		}
	}
}

// dropIfUnknown dead-letters r, a row of ln whose destination the
// workspace does not have, if it is older than unknownDestinationAge, and
// reports whether it did. The lane is then busy until the flush.
func (l *shardLoop) dropIfUnknown(ln *lane, r *row, now time.Time) bool {
	if now.Sub(r.receivedAt) < unknownDestinationAge {
		return false
	}
	l.acks.deadLetter(deadLetter{pos: r.pos, attempts: r.attempts, keepLast: true,
		reason: "unknown destination: the workspace has no destination " + ln.laneKey.dest}, now)
	l.metrics.deadLettered.WithLabelValues(ln.laneKey.dest, "unknown_destination").Inc()
	if !ln.busy {
		l.lanes.hold(ln)
	}
	return true
}
