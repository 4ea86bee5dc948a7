package checker

import (
	"cmp"
	"slices"
	"sort"
	"time"
)

// Check checks a history: the events clients sent, the deliveries
// destinations received (Seq giving their arrival order) and the dead
// letters found. See the package documentation for what it reports.
func Check(events []Event, deliveries []Delivery, dead []DeadLetter) Report {
	r := Report{ByDestination: map[string]*Figures{}}
	byID := make(map[string]*Event, len(events))
	for i := range events {
		ev := &events[i]
		byID[ev.MessageID] = ev
		r.Sent++
		if ev.Acked.IsZero() {
			r.Unacked++
			continue
		}
		r.Acked++
		for _, dst := range ev.Destinations {
			r.figures(dst).Expected++
			r.Expected++
		}
	}

	deliveries = slices.Clone(deliveries)
	slices.SortStableFunc(deliveries, func(a, b Delivery) int { return cmp.Compare(a.Seq, b.Seq) })
	first := map[pair]*Delivery{}
	late := map[pair]bool{} // an earlier copy was held past the sender's timeout
	unackedDelivered := map[string]bool{}
	for i := range deliveries {
		d := &deliveries[i]
		p := pair{d.Destination, d.MessageID}
		f := r.figures(d.Destination)
		f.Deliveries++
		r.Deliveries++
		ev, known := byID[d.MessageID]
		switch {
		case !known:
			r.Unexpected = append(r.Unexpected, Unexpected{Delivery: *d, Why: "no client sent this message id"})
		case !slices.Contains(ev.Destinations, d.Destination):
			r.Unexpected = append(r.Unexpected, Unexpected{Delivery: *d, Why: "the event's source does not have this destination"})
		case d.Key != ev.Key:
			r.Unexpected = append(r.Unexpected, Unexpected{Delivery: *d, Why: "delivered under ordering key " + d.Key + ", sent under " + ev.Key})
		}
		if _, seen := first[p]; !seen {
			first[p] = d
			f.Delivered++
			r.Delivered++
			if known && ev.Acked.IsZero() {
				unackedDelivered[d.MessageID] = true
			}
		} else {
			cause := CauseOther
			switch {
			case late[p]:
				cause = CauseTimeout
				f.Duplicates.AfterTimeout++
			case known && ev.Requests > 1:
				cause = CauseResent
				f.Duplicates.Resent++
			default:
				f.Duplicates.Other++
			}
			r.Copies = append(r.Copies, Copy{Delivery: *d, Cause: cause})
		}
		if d.Late {
			late[p] = true
		}
	}
	r.UnackedDelivered = len(unackedDelivered)

	deadAt := map[pair]time.Time{}
	for _, dl := range dead {
		p := pair{dl.Destination, dl.MessageID}
		if at, ok := deadAt[p]; !ok || (!dl.At.IsZero() && dl.At.Before(at)) {
			deadAt[p] = dl.At
		}
	}
	for p := range deadAt {
		if ev, ok := byID[p.id]; ok && !ev.Acked.IsZero() && slices.Contains(ev.Destinations, p.dst) {
			r.figures(p.dst).DeadLettered++
			r.DeadLettered++
		}
	}

	for _, ev := range events {
		if ev.Acked.IsZero() {
			continue
		}
		for _, dst := range ev.Destinations {
			p := pair{dst, ev.MessageID}
			if _, ok := first[p]; ok {
				continue
			}
			if _, ok := deadAt[p]; ok {
				continue
			}
			r.Lost = append(r.Lost, Lost{Destination: dst, MessageID: ev.MessageID, Key: ev.Key, Acked: ev.Acked})
			r.figures(dst).Lost++
		}
	}

	r.OutOfOrder = outOfOrder(events, first, deadAt)
	for _, v := range r.OutOfOrder {
		r.figures(v.Destination).OutOfOrder++
	}
	for _, f := range r.ByDestination {
		r.Duplicates.AfterTimeout += f.Duplicates.AfterTimeout
		r.Duplicates.Resent += f.Duplicates.Resent
		r.Duplicates.Other += f.Duplicates.Other
	}
	return r
}

// laneEvent is one event of one lane (destination and ordering key).
type laneEvent struct {
	ev     *Event
	first  *Delivery // nil when never delivered
	deadAt time.Time // zero when not dead-lettered, or when unknown
	dead   bool
}

// outOfOrder finds, per destination and ordering key, each event B first
// delivered before an event A that was acknowledged before B was sent was
// delivered or dead-lettered. Per lane it sorts the acknowledged events by
// ack time, so that the events acknowledged before B was sent are a
// prefix, and keeps the prefix's latest first delivery and dead letter:
// O(n log n) per lane.
func outOfOrder(events []Event, first map[pair]*Delivery, deadAt map[pair]time.Time) []Violation {
	type lane struct{ dst, key string }
	lanes := map[lane][]laneEvent{}
	var order []lane
	for i := range events {
		ev := &events[i]
		for _, dst := range ev.Destinations {
			l := lane{dst, ev.Key}
			if _, ok := lanes[l]; !ok {
				order = append(order, l)
			}
			p := pair{dst, ev.MessageID}
			at, dead := deadAt[p]
			lanes[l] = append(lanes[l], laneEvent{ev: ev, first: first[p], deadAt: at, dead: dead})
		}
	}

	var out []Violation
	for _, l := range order {
		all := lanes[l]
		// Acknowledged events that were delivered or dead-lettered, by ack
		// time; lost ones are reported as lost.
		var acked []laneEvent
		for _, e := range all {
			if !e.ev.Acked.IsZero() && (e.first != nil || e.dead) {
				acked = append(acked, e)
			}
		}
		if len(acked) == 0 {
			continue
		}
		sort.SliceStable(acked, func(i, j int) bool { return acked[i].ev.Acked.Before(acked[j].ev.Acked) })
		// latest[i] is, of acked[:i+1], the one whose first delivery came
		// last; latestDead[i] the one dead-lettered last (among those not
		// delivered, with a known time).
		latest := make([]int, len(acked))
		latestDead := make([]int, len(acked))
		for i, e := range acked {
			latest[i], latestDead[i] = i, i
			if i > 0 {
				if a := acked[latest[i-1]]; e.first == nil || (a.first != nil && a.first.Seq > e.first.Seq) {
					latest[i] = latest[i-1]
				}
				if a := acked[latestDead[i-1]]; !deadOnly(e) || (deadOnly(a) && a.deadAt.After(e.deadAt)) {
					latestDead[i] = latestDead[i-1]
				}
			}
		}
		for _, b := range all {
			if b.first == nil {
				continue
			}
			// n events were acknowledged before b was sent.
			n := sort.Search(len(acked), func(i int) bool { return !acked[i].ev.Acked.Before(b.ev.Sent) })
			if n == 0 {
				continue
			}
			if a := acked[latest[n-1]]; a.first != nil && a.first.Seq > b.first.Seq {
				out = append(out, Violation{Destination: l.dst, Key: l.key, Before: *a.ev, After: *b.ev, BeforeAt: a.first.At, AfterAt: b.first.At})
				continue
			}
			if a := acked[latestDead[n-1]]; deadOnly(a) && a.deadAt.After(b.first.At) {
				out = append(out, Violation{Destination: l.dst, Key: l.key, Before: *a.ev, After: *b.ev, BeforeAt: a.deadAt, AfterAt: b.first.At, BeforeDead: true})
			}
		}
	}
	return out
}

// deadOnly reports whether e was dead-lettered at a known time without
// being delivered.
func deadOnly(e laneEvent) bool { return e.first == nil && e.dead && !e.deadAt.IsZero() }
