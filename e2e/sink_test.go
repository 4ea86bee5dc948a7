package e2e

import (
	"encoding/json"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"
)

// delivery is one event as the webhook received it.
type delivery struct {
	MessageID string
	Key       string
	N         int
	At        time.Time
}

// recorder is a test webhook that records every delivery, in arrival
// order, and fails a fraction of requests with 503 to exercise retries.
type recorder struct {
	mu       sync.Mutex
	all      []delivery
	first    map[string]int // messageId → index in all of its first delivery
	failRate float64
	srv      *httptest.Server
}

func newRecorder(t *testing.T, failRate float64) *recorder {
	return newRecorderOn(t, nil, failRate)
}

// newRecorderOn is newRecorder serving on ln (nil: a new local port).
func newRecorderOn(t *testing.T, ln net.Listener, failRate float64) *recorder {
	r := &recorder{first: map[string]int{}, failRate: failRate}
	r.srv = httptest.NewUnstartedServer(http.HandlerFunc(r.serve))
	if ln != nil {
		r.srv.Listener.Close()
		r.srv.Listener = ln
	}
	r.srv.Start()
	t.Cleanup(r.srv.Close)
	return r
}

// firstAt returns when messageID was first delivered.
func (r *recorder) firstAt(messageID string) (time.Time, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	i, ok := r.first[messageID]
	if !ok {
		return time.Time{}, false
	}
	return r.all[i].At, true
}

func (r *recorder) serve(w http.ResponseWriter, req *http.Request) {
	body, err := io.ReadAll(req.Body)
	if err != nil {
		http.Error(w, err.Error(), 400)
		return
	}
	if r.failRate > 0 && rand.Float64() < r.failRate {
		http.Error(w, "try again", http.StatusServiceUnavailable)
		return
	}
	var ev struct {
		MessageID  string `json:"messageId"`
		UserID     string `json:"userId"`
		Properties struct {
			N int `json:"n"`
		} `json:"properties"`
	}
	if err := json.Unmarshal(body, &ev); err != nil {
		http.Error(w, "not an event: "+err.Error(), 400)
		return
	}
	r.mu.Lock()
	if _, ok := r.first[ev.MessageID]; !ok {
		r.first[ev.MessageID] = len(r.all)
	}
	r.all = append(r.all, delivery{MessageID: ev.MessageID, Key: ev.UserID, N: ev.Properties.N, At: time.Now()})
	r.mu.Unlock()
	w.WriteHeader(http.StatusOK)
}

// firstDeliveries returns, per key, the N of each distinct event in the
// order of its first delivery, and the total number of deliveries.
func (r *recorder) firstDeliveries() (map[string][]int, int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := map[string][]int{}
	for i, d := range r.all {
		if r.first[d.MessageID] == i {
			out[d.Key] = append(out[d.Key], d.N)
		}
	}
	return out, len(r.all)
}

func (r *recorder) has(messageID string) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	_, ok := r.first[messageID]
	return ok
}

// deliveriesOf returns every delivery of key, in arrival order.
func (r *recorder) deliveriesOf(key string) []delivery {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []delivery
	for _, d := range r.all {
		if d.Key == key {
			out = append(out, d)
		}
	}
	return out
}
