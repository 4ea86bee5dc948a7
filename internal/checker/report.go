package checker

import (
	"fmt"
	"slices"
	"strings"
	"time"
)

// Report is what Check found.
type Report struct {
	// Sent counts the events sent; Acked those acknowledged, Unacked the
	// others.
	Sent, Acked, Unacked int
	// Expected counts the pairs of acknowledged event and destination of
	// its source: what must be delivered or dead-lettered.
	Expected int
	// Deliveries counts every delivery, copies included; Delivered the
	// distinct pairs of event and destination delivered.
	Deliveries, Delivered int
	// DeadLettered counts the acknowledged pairs found dead-lettered.
	DeadLettered int
	// Duplicates counts the copies after the first, by cause.
	Duplicates Duplicates
	// UnackedDelivered counts the events delivered that no request
	// carrying them was answered 200 for.
	UnackedDelivered int

	// Lost lists the acknowledged pairs neither delivered nor
	// dead-lettered.
	Lost []Lost
	// OutOfOrder lists the first deliveries that broke guarantee 2.
	OutOfOrder []Violation
	// Unexpected lists the deliveries of no event sent, to a destination
	// the event's source lacks, or under another ordering key.
	Unexpected []Unexpected
	// Copies lists the duplicates, in arrival order, with their cause: a
	// test can set them against the faults it injected.
	Copies []Copy

	// ByDestination breaks the figures down per destination id.
	ByDestination map[string]*Figures
}

// Figures are one destination's part of a report.
type Figures struct {
	Expected, Deliveries, Delivered, DeadLettered int
	Lost, OutOfOrder                              int
	Duplicates                                    Duplicates
}

// Duplicates counts the copies of an event at a destination after the
// first, by cause.
type Duplicates struct {
	// AfterTimeout counts copies after an earlier one the destination held
	// past the sender's timeout: at-least-once delivery at work.
	AfterTimeout int
	// Resent counts the other copies of events a client sent in more than
	// one request (it retried a request that failed after storing them).
	Resent int
	// Other counts the rest: one stored event delivered again, as after a
	// worker died between delivering and acknowledging.
	Other int
}

// Cause is why a copy of an event was delivered again.
type Cause string

// The causes of duplicates; see Duplicates.
const (
	CauseTimeout Cause = "after a timeout"
	CauseResent  Cause = "resent"
	CauseOther   Cause = "other"
)

// Copy is one duplicate delivery.
type Copy struct {
	Delivery
	Cause Cause
}

// NotTimeout is the number of copies not caused by a timeout.
func (d Duplicates) NotTimeout() int { return d.Resent + d.Other }

// Total is the number of copies.
func (d Duplicates) Total() int { return d.AfterTimeout + d.Resent + d.Other }

// Lost is one acknowledged event never delivered nor dead-lettered at one
// destination.
type Lost struct {
	Destination, MessageID, Key string
	Acked                       time.Time
}

// Violation is one first delivery out of order: After was sent once
// Before had been acknowledged, yet After was first delivered (at AfterAt)
// before Before was (at BeforeAt), or before Before was dead-lettered
// when BeforeDead is set.
type Violation struct {
	Destination, Key  string
	Before, After     Event
	BeforeAt, AfterAt time.Time
	BeforeDead        bool
}

func (v Violation) String() string {
	what := "first delivered"
	if v.BeforeDead {
		what = "dead-lettered"
	}
	return fmt.Sprintf("destination %s key %s: %s (sent %s) first delivered at %s, before %s (acknowledged %s) was %s at %s",
		v.Destination, v.Key, v.After.MessageID, clock(v.After.Sent), clock(v.AfterAt),
		v.Before.MessageID, clock(v.Before.Acked), what, clock(v.BeforeAt))
}

// Unexpected is a delivery that matches no event sent.
type Unexpected struct {
	Delivery Delivery
	Why      string
}

func (u Unexpected) String() string {
	return fmt.Sprintf("destination %s message %s key %s at %s: %s",
		u.Delivery.Destination, u.Delivery.MessageID, u.Delivery.Key, clock(u.Delivery.At), u.Why)
}

func (r *Report) figures(dst string) *Figures {
	f, ok := r.ByDestination[dst]
	if !ok {
		f = &Figures{}
		r.ByDestination[dst] = f
	}
	return f
}

// rate returns n as a percentage of the deliveries.
func rate(n, of int) string {
	if of == 0 {
		return "0%"
	}
	return fmt.Sprintf("%.3f%%", 100*float64(n)/float64(of))
}

// String prints the figures, one destination a line after the totals.
func (r Report) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "events sent %d, acknowledged %d, never acknowledged %d; %d acknowledged pairs of event and destination\n",
		r.Sent, r.Acked, r.Unacked, r.Expected)
	fmt.Fprintf(&b, "deliveries %d: %d distinct, %d duplicates (after a timeout %d = %s, resent %d = %s, other %d = %s of deliveries)\n",
		r.Deliveries, r.Delivered, r.Duplicates.Total(),
		r.Duplicates.AfterTimeout, rate(r.Duplicates.AfterTimeout, r.Deliveries),
		r.Duplicates.Resent, rate(r.Duplicates.Resent, r.Deliveries),
		r.Duplicates.Other, rate(r.Duplicates.Other, r.Deliveries))
	fmt.Fprintf(&b, "lost %d, out of order %d, dead-lettered %d, delivered but never acknowledged %d, unexpected %d",
		len(r.Lost), len(r.OutOfOrder), r.DeadLettered, r.UnackedDelivered, len(r.Unexpected))
	dsts := make([]string, 0, len(r.ByDestination))
	for d := range r.ByDestination {
		dsts = append(dsts, d)
	}
	slices.Sort(dsts)
	for _, d := range dsts {
		f := r.ByDestination[d]
		fmt.Fprintf(&b, "\n  %s: expected %d, deliveries %d, distinct %d, dead-lettered %d, lost %d, out of order %d, duplicates after a timeout %d, resent %d, other %d",
			d, f.Expected, f.Deliveries, f.Delivered, f.DeadLettered, f.Lost, f.OutOfOrder,
			f.Duplicates.AfterTimeout, f.Duplicates.Resent, f.Duplicates.Other)
	}
	return b.String()
}

// Limits say what a run tolerates.
type Limits struct {
	// MaxNotTimeoutDuplicates is the share of deliveries that duplicates
	// not caused by a timeout must stay under, such as 0.001 for 0.1%.
	// Defaults to 0: none is allowed.
	// Duplicates after a timeout are never a problem.
	MaxNotTimeoutDuplicates float64
}

// examples is how many of each kind of problem Problems quotes.
const examples = 10

// Problems returns one message per guarantee the report shows broken, or
// per limit exceeded, quoting the first few cases; none when all is well.
// Lost events, first deliveries out of order and unexpected deliveries
// are always problems.
func (r Report) Problems(l Limits) []string {
	var out []string
	if n := len(r.Lost); n > 0 {
		msg := fmt.Sprintf("%d of %d acknowledged pairs of event and destination lost, e.g.:", n, r.Expected)
		for _, x := range r.Lost[:min(n, examples)] {
			msg += fmt.Sprintf("\n  destination %s message %s key %s acknowledged at %s", x.Destination, x.MessageID, x.Key, clock(x.Acked))
		}
		out = append(out, msg)
	}
	if n := len(r.OutOfOrder); n > 0 {
		msg := fmt.Sprintf("%d first deliveries out of order, e.g.:", n)
		for _, v := range r.OutOfOrder[:min(n, examples)] {
			msg += "\n  " + v.String()
		}
		out = append(out, msg)
	}
	if n := len(r.Unexpected); n > 0 {
		msg := fmt.Sprintf("%d unexpected deliveries, e.g.:", n)
		for _, u := range r.Unexpected[:min(n, examples)] {
			msg += "\n  " + u.String()
		}
		out = append(out, msg)
	}
	if n := r.Duplicates.NotTimeout(); n > 0 && float64(n) >= l.MaxNotTimeoutDuplicates*float64(r.Deliveries) {
		out = append(out, fmt.Sprintf("%d duplicates not caused by a timeout (%d resent, %d other) are %s of %d deliveries, not under %.3f%%",
			n, r.Duplicates.Resent, r.Duplicates.Other, rate(n, r.Deliveries), r.Deliveries, 100*l.MaxNotTimeoutDuplicates))
	}
	return out
}

func clock(t time.Time) string {
	if t.IsZero() {
		return "never"
	}
	return t.Format("15:04:05.000")
}
