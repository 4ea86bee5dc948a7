package checker

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
)

// t0 is the start of every hand-made history; at(n) is n milliseconds
// later.
var t0 = time.Date(2025, 6, 1, 12, 0, 0, 0, time.UTC)

func at(ms int) time.Time { return t0.Add(time.Duration(ms) * time.Millisecond) }

// ev is an event of key k to destinations "a" and "b", sent at sent and
// acknowledged at acked (never when negative).
func ev(id, k string, sent, acked int) Event {
	e := Event{MessageID: id, Key: k, Destinations: []string{"a", "b"}, Sent: at(sent), Requests: 1}
	if acked >= 0 {
		e.Acked = at(acked)
	}
	return e
}

// deliveries numbers ds in the order given, as History.Deliver does.
func deliveries(ds ...Delivery) []Delivery {
	for i := range ds {
		ds[i].Seq = i
		if ds[i].At.IsZero() {
			ds[i].At = at(1000 + i)
		}
	}
	return ds
}

// to is a delivery of id (key k) to dst.
func to(dst, id, k string) Delivery { return Delivery{Destination: dst, MessageID: id, Key: k} }

func late(d Delivery) Delivery { d.Late = true; return d }

func TestCleanHistory(t *testing.T) {
	t.Parallel()
	events := []Event{ev("1", "k", 0, 10), ev("2", "k", 11, 20), ev("3", "j", 0, 5)}
	ds := deliveries(to("a", "1", "k"), to("b", "3", "j"), to("a", "3", "j"), to("b", "1", "k"), to("a", "2", "k"), to("b", "2", "k"))
	r := Check(events, ds, nil)
	if p := r.Problems(Limits{}); len(p) > 0 {
		t.Fatalf("problems in a clean history: %v", p)
	}
	if r.Sent != 3 || r.Acked != 3 || r.Expected != 6 || r.Deliveries != 6 || r.Delivered != 6 || r.Duplicates.Total() != 0 {
		t.Errorf("report = %+v", r)
	}
	if f := r.ByDestination["a"]; f.Expected != 3 || f.Deliveries != 3 || f.Delivered != 3 {
		t.Errorf("destination a = %+v", *f)
	}
	if !strings.Contains(r.String(), "lost 0, out of order 0") {
		t.Errorf("String() = %s", r)
	}
}

func TestLost(t *testing.T) {
	t.Parallel()
	events := []Event{ev("1", "k", 0, 10), ev("2", "k", 11, 20), ev("3", "k", 21, -1)}
	// 1 reaches both; 2 only a, and b dead-letters it; 3, never
	// acknowledged, reaches neither: nothing is lost.
	ds := deliveries(to("a", "1", "k"), to("b", "1", "k"), to("a", "2", "k"))
	r := Check(events, ds, []DeadLetter{{Destination: "b", MessageID: "2"}})
	if len(r.Lost) != 0 || r.DeadLettered != 1 || r.Unacked != 1 {
		t.Fatalf("lost %v, dead-lettered %d, unacked %d; want none, 1, 1", r.Lost, r.DeadLettered, r.Unacked)
	}
	if p := r.Problems(Limits{}); len(p) > 0 {
		t.Fatalf("problems: %v", p)
	}

	// Without the dead letter, 2 is lost at b.
	r = Check(events, ds, nil)
	if len(r.Lost) != 1 || r.Lost[0].Destination != "b" || r.Lost[0].MessageID != "2" || r.ByDestination["b"].Lost != 1 {
		t.Fatalf("lost %v, want 2 at b", r.Lost)
	}
	if p := r.Problems(Limits{}); len(p) != 1 || !strings.Contains(p[0], "1 of 4 acknowledged pairs") || !strings.Contains(p[0], "message 2") {
		t.Fatalf("problems = %q", p)
	}
	// A dead letter of another destination does not count.
	r = Check(events, ds, []DeadLetter{{Destination: "a", MessageID: "2"}})
	if len(r.Lost) != 1 {
		t.Fatalf("lost %v, want 2 at b", r.Lost)
	}
}

func TestOutOfOrder(t *testing.T) {
	t.Parallel()
	// 2 was sent after 1 was acknowledged: at b it came first.
	events := []Event{ev("1", "k", 0, 10), ev("2", "k", 11, 20)}
	ds := deliveries(to("a", "1", "k"), to("a", "2", "k"), to("b", "2", "k"), to("b", "1", "k"))
	r := Check(events, ds, nil)
	if len(r.OutOfOrder) != 1 {
		t.Fatalf("out of order %v, want one", r.OutOfOrder)
	}
	v := r.OutOfOrder[0]
	if v.Destination != "b" || v.Key != "k" || v.Before.MessageID != "1" || v.After.MessageID != "2" || v.BeforeDead {
		t.Errorf("violation %+v", v)
	}
	if r.ByDestination["a"].OutOfOrder != 0 || r.ByDestination["b"].OutOfOrder != 1 {
		t.Errorf("per destination: a %d, b %d", r.ByDestination["a"].OutOfOrder, r.ByDestination["b"].OutOfOrder)
	}
	if p := r.Problems(Limits{}); len(p) != 1 || !strings.Contains(p[0], "2 (sent 12:00:00.011) first delivered") {
		t.Errorf("problems = %q", p)
	}
}

func TestConcurrentEventsMayComeInAnyOrder(t *testing.T) {
	t.Parallel()
	// 2 was sent before 1 was acknowledged (two requests in flight at
	// once): the contract orders nothing between them.
	events := []Event{ev("1", "k", 0, 10), ev("2", "k", 5, 12)}
	ds := deliveries(to("a", "2", "k"), to("a", "1", "k"), to("b", "2", "k"), to("b", "1", "k"))
	if r := Check(events, ds, nil); len(r.OutOfOrder) != 0 {
		t.Fatalf("out of order %v, want none", r.OutOfOrder)
	}
	// Nor between events of different keys.
	events = []Event{ev("1", "k", 0, 10), ev("2", "j", 11, 20)}
	ds = deliveries(to("a", "2", "j"), to("a", "1", "k"), to("b", "2", "j"), to("b", "1", "k"))
	if r := Check(events, ds, nil); len(r.OutOfOrder) != 0 {
		t.Fatalf("out of order %v, want none", r.OutOfOrder)
	}
}

func TestOnlyFirstDeliveriesAreOrdered(t *testing.T) {
	t.Parallel()
	// A copy of 1 after 2 is a duplicate, not a reordering.
	events := []Event{ev("1", "k", 0, 10), ev("2", "k", 11, 20)}
	ds := deliveries(to("a", "1", "k"), to("a", "2", "k"), to("a", "1", "k"), to("b", "1", "k"), to("b", "2", "k"))
	r := Check(events, ds, nil)
	if len(r.OutOfOrder) != 0 || r.Duplicates.Other != 1 {
		t.Fatalf("out of order %v, duplicates %+v", r.OutOfOrder, r.Duplicates)
	}
}

func TestOrderAgainstDeadLetters(t *testing.T) {
	t.Parallel()
	events := []Event{ev("1", "k", 0, 10), ev("2", "k", 11, 20)}
	// At a, 1 is dead-lettered at 1500 ms, and 2 delivered at 1000 ms
	// (before) or at 2000 ms (after).
	for _, c := range []struct {
		deliveredAt int
		want        int
	}{{1000, 1}, {2000, 0}} {
		ds := deliveries(Delivery{Destination: "a", MessageID: "2", Key: "k", At: at(c.deliveredAt)}, to("b", "1", "k"), to("b", "2", "k"))
		r := Check(events, ds, []DeadLetter{{Destination: "a", MessageID: "1", At: at(1500)}})
		if len(r.OutOfOrder) != c.want {
			t.Fatalf("2 delivered at %d ms: out of order %v, want %d", c.deliveredAt, r.OutOfOrder, c.want)
		}
		if c.want == 1 && !r.OutOfOrder[0].BeforeDead {
			t.Errorf("violation %+v does not say 1 was dead-lettered", r.OutOfOrder[0])
		}
		if len(r.Lost) != 0 {
			t.Errorf("lost %v", r.Lost)
		}
	}
}

func TestLostEventIsNotAlsoOutOfOrder(t *testing.T) {
	t.Parallel()
	events := []Event{ev("1", "k", 0, 10), ev("2", "k", 11, 20)}
	ds := deliveries(to("a", "1", "k"), to("a", "2", "k"), to("b", "2", "k"))
	r := Check(events, ds, nil)
	if len(r.Lost) != 1 || len(r.OutOfOrder) != 0 {
		t.Fatalf("lost %v, out of order %v; want 1 at b, none", r.Lost, r.OutOfOrder)
	}
}

func TestDuplicatesByCause(t *testing.T) {
	t.Parallel()
	resent := ev("3", "k", 30, 40)
	resent.Requests = 2
	events := []Event{ev("1", "k", 0, 10), ev("2", "k", 11, 20), resent}
	ds := deliveries(
		late(to("a", "1", "k")), to("a", "1", "k"), to("a", "1", "k"), // two copies after a late one: timeout
		to("a", "2", "k"), to("a", "2", "k"), // other
		to("a", "3", "k"), to("a", "3", "k"), // resent
		to("b", "1", "k"), to("b", "2", "k"), to("b", "3", "k"),
	)
	r := Check(events, ds, nil)
	want := Duplicates{AfterTimeout: 2, Resent: 1, Other: 1}
	if r.Duplicates != want || r.ByDestination["a"].Duplicates != want || r.ByDestination["b"].Duplicates != (Duplicates{}) {
		t.Fatalf("duplicates %+v (a %+v, b %+v), want %+v at a", r.Duplicates, r.ByDestination["a"].Duplicates, r.ByDestination["b"].Duplicates, want)
	}
	var causes []Cause
	for _, c := range r.Copies {
		causes = append(causes, c.Cause)
	}
	if want := []Cause{CauseTimeout, CauseTimeout, CauseOther, CauseResent}; !slices.Equal(causes, want) || r.Copies[2].MessageID != "2" {
		t.Errorf("copies %v, want causes %v", r.Copies, want)
	}
	if r.Deliveries != 10 || r.Delivered != 6 {
		t.Errorf("deliveries %d, distinct %d; want 10, 6", r.Deliveries, r.Delivered)
	}
	// 2 duplicates not caused by a timeout in 10 deliveries: 20%.
	if p := r.Problems(Limits{MaxNotTimeoutDuplicates: 0.25}); len(p) != 0 {
		t.Errorf("problems under a 25%% limit: %v", p)
	}
	if p := r.Problems(Limits{MaxNotTimeoutDuplicates: 0.2}); len(p) != 1 || !strings.Contains(p[0], "2 duplicates not caused by a timeout (1 resent, 1 other)") {
		t.Errorf("problems under a 20%% limit = %q", p)
	}
	// A delivery that was late is a timeout's cause only for later copies.
	ds = deliveries(to("a", "1", "k"), late(to("a", "1", "k")), to("b", "1", "k"))
	if r := Check(events[:1], ds, nil); r.Duplicates != (Duplicates{Other: 1}) {
		t.Errorf("duplicates %+v, want one other", r.Duplicates)
	}
}

func TestUnackedAndUnexpected(t *testing.T) {
	t.Parallel()
	events := []Event{ev("1", "k", 0, -1), ev("2", "k", 0, 10)}
	ds := deliveries(
		to("a", "1", "k"), to("b", "1", "k"), // delivered, never acknowledged
		to("a", "2", "k"), to("b", "2", "k"),
		to("a", "9", "k"),   // sent by nobody
		to("c", "2", "k"),   // not a destination of the source
		to("a", "2", "zzz"), // another key
	)
	r := Check(events, ds, nil)
	if r.UnackedDelivered != 1 {
		t.Errorf("unacked delivered %d, want 1", r.UnackedDelivered)
	}
	if len(r.Unexpected) != 3 {
		t.Fatalf("unexpected %v, want 3", r.Unexpected)
	}
	for i, want := range []string{"no client sent", "does not have this destination", "under ordering key zzz"} {
		if !strings.Contains(r.Unexpected[i].Why, want) {
			t.Errorf("unexpected[%d] = %s, want %q", i, r.Unexpected[i], want)
		}
	}
	if p := r.Problems(Limits{MaxNotTimeoutDuplicates: 1}); len(p) != 1 || !strings.Contains(p[0], "3 unexpected deliveries") {
		t.Errorf("problems = %q", p)
	}
}

// bruteOutOfOrder is guarantee 2 checked pair by pair: the after events
// of every violation.
func bruteOutOfOrder(events []Event, ds []Delivery, dead []DeadLetter) map[string]bool {
	first := map[pair]Delivery{}
	for _, d := range ds {
		if _, ok := first[pair{d.Destination, d.MessageID}]; !ok {
			first[pair{d.Destination, d.MessageID}] = d
		}
	}
	deadAt := map[pair]time.Time{}
	for _, d := range dead {
		deadAt[pair{d.Destination, d.MessageID}] = d.At
	}
	out := map[string]bool{}
	for _, a := range events {
		for _, b := range events {
			if a.Key != b.Key || a.Acked.IsZero() || !a.Acked.Before(b.Sent) {
				continue
			}
			for _, dst := range b.Destinations {
				fb, ok := first[pair{dst, b.MessageID}]
				if !ok {
					continue
				}
				fa, delivered := first[pair{dst, a.MessageID}]
				da, dead := deadAt[pair{dst, a.MessageID}]
				switch {
				case delivered && fa.Seq > fb.Seq:
					out[dst+"/"+b.MessageID] = true
				case !delivered && dead && da.After(fb.At):
					out[dst+"/"+b.MessageID] = true
				}
			}
		}
	}
	return out
}

// TestOutOfOrderMatchesPairwise compares Check with the pairwise
// definition on random histories of a few keys, with overlapping
// requests, duplicates, losses and dead letters.
func TestOutOfOrderMatchesPairwise(t *testing.T) {
	t.Parallel()
	rng := rand.New(rand.NewPCG(1, 2))
	for round := range 300 {
		var events []Event
		var ds []Delivery
		var dead []DeadLetter
		for k := range 3 {
			key := fmt.Sprintf("k%d", k)
			clock := 0
			for n := range rng.IntN(12) {
				id := fmt.Sprintf("%s-%d", key, n)
				sent := clock + rng.IntN(5)
				acked := sent + 1 + rng.IntN(10)
				if rng.IntN(8) == 0 {
					acked = -1
				}
				events = append(events, ev(id, key, sent, acked))
				clock = sent + rng.IntN(8) // the next may be sent before this is acknowledged
			}
		}
		for _, e := range events {
			for _, dst := range e.Destinations {
				switch rng.IntN(10) {
				case 0: // never delivered
				case 1:
					dead = append(dead, DeadLetter{Destination: dst, MessageID: e.MessageID, At: at(rng.IntN(2000))})
				default:
					for range 1 + rng.IntN(2) {
						ds = append(ds, Delivery{Destination: dst, MessageID: e.MessageID, Key: e.Key})
					}
				}
			}
		}
		rng.Shuffle(len(ds), func(i, j int) { ds[i], ds[j] = ds[j], ds[i] })
		for i := range ds {
			ds[i].Seq, ds[i].At = i, at(i*4)
		}
		want := bruteOutOfOrder(events, ds, dead)
		got := map[string]bool{}
		r := Check(events, ds, dead)
		for _, v := range r.OutOfOrder {
			got[v.Destination+"/"+v.After.MessageID] = true
		}
		// Check skips an A that is lost; the pairwise definition has none
		// to skip, since a lost A is not delivered nor dead-lettered.
		if !mapsEqual(got, want) {
			t.Fatalf("round %d: Check finds %v, pairwise %v", round, keys(got), keys(want))
		}
	}
}

func mapsEqual(a, b map[string]bool) bool {
	if len(a) != len(b) {
		return false
	}
	for k := range a {
		if !b[k] {
			return false
		}
	}
	return true
}

func keys(m map[string]bool) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}

func TestHistory(t *testing.T) {
	t.Parallel()
	h := NewHistory()
	dests := []string{"a"}
	var wg sync.WaitGroup
	for k := range 8 {
		wg.Go(func() {
			key := fmt.Sprintf("k%d", k)
			for n := range 50 {
				id := fmt.Sprintf("%s-%d", key, n)
				h.Send(key, dests, id)
				if n%10 == 0 { // a failed request, retried
					h.Send(key, dests, id)
				}
				h.Deliver(Delivery{Destination: "a", MessageID: id, Key: key})
				h.Ack(id)
			}
		})
	}
	wg.Wait()
	if !h.Delivered() {
		t.Fatal("Delivered() = false with every event delivered")
	}
	r := h.Check()
	if p := r.Problems(Limits{}); len(p) > 0 {
		t.Fatalf("problems: %v", p)
	}
	if r.Sent != 400 || r.Acked != 400 || r.Deliveries != 400 {
		t.Errorf("sent %d, acked %d, deliveries %d; want 400 each", r.Sent, r.Acked, r.Deliveries)
	}
	if evs := h.Events(); evs[0].Requests != 2 {
		t.Errorf("first event's requests = %d, want 2", evs[0].Requests)
	}
	for i, d := range h.Deliveries() {
		if d.Seq != i || d.At.IsZero() {
			t.Fatalf("delivery %d: seq %d at %v", i, d.Seq, d.At)
		}
	}

	// An acknowledged event not delivered holds Delivered back, until it
	// is dead-lettered.
	h.Send("z", dests, "z-1")
	h.Ack("z-1")
	if h.Delivered() {
		t.Error("Delivered() = true with z-1 pending")
	}
	h.SetDeadLetters([]DeadLetter{{Destination: "a", MessageID: "z-1"}})
	if !h.Delivered() {
		t.Error("Delivered() = false with z-1 dead-lettered")
	}
	// An ack before any send records nothing.
	h.Ack("never-sent")
	if r := h.Check(); r.Sent != 401 {
		t.Errorf("sent %d, want 401", r.Sent)
	}
}
