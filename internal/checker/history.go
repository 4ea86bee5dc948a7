package checker

import (
	"slices"
	"sync"
	"time"
)

// Event is one event as clients sent it, identified by its message id.
type Event struct {
	// MessageID identifies the event; every copy delivered carries it.
	MessageID string
	// Key is the event's ordering key.
	Key string
	// Destinations are the ids of the destinations of the event's source.
	Destinations []string
	// Sent is when the first request carrying the event was sent.
	Sent time.Time
	// Acked is when a request carrying the event was first answered 200;
	// zero when none was.
	Acked time.Time
	// Requests is how many requests carried the event: more than one when
	// the client retried a failed request with the same message id.
	Requests int
}

// Delivery is one copy of an event a destination received and answered
// with 2xx.
type Delivery struct {
	// Destination is the id of the destination that received it.
	Destination string
	// MessageID and Key are the event's, as received.
	MessageID string
	Key       string
	// At is when it arrived.
	At time.Time
	// Seq is its place in the arrival order of every delivery of the
	// history, from 0; History.Deliver sets it. Check orders deliveries by
	// it, and by At where a dead letter is compared.
	Seq int
	// Late says the destination answered after the sender's timeout, so
	// the sender counted the delivery as failed and will send it again.
	Late bool
}

// DeadLetter is one event a destination's dead letters hold.
type DeadLetter struct {
	Destination string
	MessageID   string
	// At is when it was dead-lettered (ordo.dead_letters.failed_at); zero
	// when unknown, and then it orders nothing.
	At time.Time
}

// History collects, from concurrent clients and webhooks, what was sent,
// acknowledged, delivered and dead-lettered. Its methods are safe for
// concurrent use; the zero value is not usable, call NewHistory.
type History struct {
	mu         sync.Mutex
	events     map[string]*Event
	order      []string // message ids in the order first sent
	deliveries []Delivery
	dead       []DeadLetter
}

// NewHistory returns an empty history.
func NewHistory() *History {
	return &History{events: map[string]*Event{}}
}

// Send records that one request carrying the events ids, of ordering key
// key and a source with destinations dests, is being sent now, and
// returns the time recorded. Call it just before sending, and again for
// each retry.
func (h *History) Send(key string, dests []string, ids ...string) time.Time {
	h.mu.Lock()
	defer h.mu.Unlock()
	now := time.Now()
	for _, id := range ids {
		ev, ok := h.events[id]
		if !ok {
			ev = &Event{MessageID: id, Key: key, Destinations: slices.Clone(dests), Sent: now}
			h.events[id] = ev
			h.order = append(h.order, id)
		}
		ev.Requests++
	}
	return now
}

// Ack records that a request carrying the events ids was answered 200,
// and returns the time recorded. Call it as soon as the answer is read.
func (h *History) Ack(ids ...string) time.Time {
	h.mu.Lock()
	defer h.mu.Unlock()
	now := time.Now()
	for _, id := range ids {
		if ev, ok := h.events[id]; ok && ev.Acked.IsZero() {
			ev.Acked = now
		}
	}
	return now
}

// Deliver records a delivery, setting its Seq, and At when zero. Call it
// when the request arrives, before answering it.
func (h *History) Deliver(d Delivery) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if d.At.IsZero() {
		d.At = time.Now()
	}
	d.Seq = len(h.deliveries)
	h.deliveries = append(h.deliveries, d)
}

// SetDeadLetters replaces the dead letters recorded with dead, as read
// from the nodes.
func (h *History) SetDeadLetters(dead []DeadLetter) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.dead = slices.Clone(dead)
}

// Events returns a copy of the events recorded, in the order first sent.
func (h *History) Events() []Event {
	h.mu.Lock()
	defer h.mu.Unlock()
	out := make([]Event, len(h.order))
	for i, id := range h.order {
		out[i] = *h.events[id]
		out[i].Destinations = slices.Clone(out[i].Destinations)
	}
	return out
}

// Deliveries returns a copy of the deliveries recorded, in arrival order.
func (h *History) Deliveries() []Delivery {
	h.mu.Lock()
	defer h.mu.Unlock()
	return slices.Clone(h.deliveries)
}

// Check checks the history as it stands; see the package documentation.
func (h *History) Check() Report {
	events := h.Events()
	h.mu.Lock()
	deliveries, dead := slices.Clone(h.deliveries), slices.Clone(h.dead)
	h.mu.Unlock()
	return Check(events, deliveries, dead)
}

// Delivered reports whether every acknowledged event reached each of its
// destinations, delivered or dead-lettered: what a test waits for before
// it checks.
func (h *History) Delivered() bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	got := make(map[pair]bool, len(h.deliveries))
	for _, d := range h.deliveries {
		got[pair{d.Destination, d.MessageID}] = true
	}
	for _, d := range h.dead {
		got[pair{d.Destination, d.MessageID}] = true
	}
	for _, ev := range h.events {
		if ev.Acked.IsZero() {
			continue
		}
		for _, dst := range ev.Destinations {
			if !got[pair{dst, ev.MessageID}] {
				return false
			}
		}
	}
	return true
}

// pair is one event at one destination.
type pair struct{ dst, id string }
