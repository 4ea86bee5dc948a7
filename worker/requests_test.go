package worker

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/ordo-pipeline/ordo/deliver"
)

// A shard loop's requests alone, against a real webhook destination.

func webhookTo(t *testing.T, h http.HandlerFunc, slots int) *destination {
	t.Helper()
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	cfg, _ := json.Marshal(map[string]any{"url": srv.URL, "timeout": "10s"})
	send, err := deliver.New("webhook", cfg)
	if err != nil {
		t.Fatal(err)
	}
	return &destination{id: "hook", send: send, sem: make(chan struct{}, slots)}
}

func TestRequestsCountPerDestination(t *testing.T) {
	t.Parallel()
	d := webhookTo(t, func(w http.ResponseWriter, _ *http.Request) {}, 4)
	q := newRequests(2, 1)
	ev := []deliver.Event{{MessageID: "m1", Payload: json.RawMessage(`{"messageId":"m1"}`)}}
	q.start(d, []*lane{{}}, ev)
	q.start(d, []*lane{{}}, ev)
	if q.n != 2 || q.to(d) != 2 {
		t.Fatalf("in flight %d, to the hook %d; want 2 and 2", q.n, q.to(d))
	}
	for range 2 {
		r := <-q.results
		if !r.res.OK() || r.aborted || r.dest != d || len(r.lanes) != 1 {
			t.Errorf("result %+v; want a delivery of one lane to the hook", r)
		}
		q.finished(r)
	}
	if q.n != 0 || q.to(d) != 0 {
		t.Errorf("in flight %d, to the hook %d after both results; want 0", q.n, q.to(d))
	}
}

// TestRequestsAbandon checks that abandoning cancels a request under way
// and one still waiting for its destination's slot, and waits for both.
func TestRequestsAbandon(t *testing.T) {
	t.Parallel()
	arrived := make(chan struct{}, 2)
	d := webhookTo(t, func(_ http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body) //nolint:errcheck // only its end matters
		arrived <- struct{}{}
		<-r.Context().Done() // answers only when the request is cancelled
	}, 1)
	q := newRequests(2, 1)
	ev := []deliver.Event{{MessageID: "m1", Payload: json.RawMessage(`{"messageId":"m1"}`)}}
	q.start(d, nil, ev)
	q.start(d, nil, ev) // waits for the one slot
	select {
	case <-arrived:
	case <-time.After(10 * time.Second):
		t.Fatal("the first request never reached the webhook")
	}
	done := make(chan struct{})
	go func() { q.abandon(); close(done) }()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("abandon did not return")
	}
	if q.n != 0 || len(d.sem) != 0 {
		t.Errorf("after abandon: in flight %d, slots taken %d; want 0 and 0", q.n, len(d.sem))
	}
	if len(arrived) != 0 {
		t.Error("the request waiting for the slot was sent after all")
	}
}
