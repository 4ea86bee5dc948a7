package e2e

import (
	"encoding/json"
	"io"
	"math"
	"math/rand/v2"
	"net"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ordo-pipeline/ordo/internal/checker"
)

// webhook is a test destination: it records every event it answers 2xx
// in the run's history, in arrival order, fails a fraction of requests
// with 503 before reading them, and can hang: hold each request for a
// while before answering.
type webhook struct {
	id      string        // the destination's id in the workspace
	timeout time.Duration // the destination's timeout, as configured
	h       *checker.History
	srv     *httptest.Server

	failRate atomic.Uint64 // math.Float64bits of the share failed with 503
	hang     atomic.Int64  // how long each request is held, in nanoseconds
	requests atomic.Int64
}

func newWebhook(t *testing.T, h *checker.History, id string, timeout time.Duration, failRate float64) *webhook {
	return newWebhookOn(t, nil, h, id, timeout, failRate)
}

// newWebhookOn is newWebhook serving on ln (nil: a new local port).
func newWebhookOn(t *testing.T, ln net.Listener, h *checker.History, id string, timeout time.Duration, failRate float64) *webhook {
	w := &webhook{id: id, timeout: timeout, h: h}
	w.setFailRate(failRate)
	w.srv = httptest.NewUnstartedServer(http.HandlerFunc(w.serve))
	if ln != nil {
		w.srv.Listener.Close()
		w.srv.Listener = ln
	}
	w.srv.Start()
	t.Cleanup(w.srv.Close)
	return w
}

func (w *webhook) setFailRate(f float64) { w.failRate.Store(math.Float64bits(f)) }

// setHang makes the webhook hold each request for d before answering; 0
// stops it. A request held for the destination's timeout or longer is
// recorded as late: its sender gave up on it and sends it again.
func (w *webhook) setHang(d time.Duration) { w.hang.Store(int64(d)) }

// destination is the webhook's entry in a workspace file.
func (w *webhook) destination() map[string]any {
	return map[string]any{
		"id": w.id, "type": "webhook",
		"config": map[string]any{"url": w.srv.URL + "/events", "timeout": w.timeout.String()},
		"retry":  map[string]any{"initialBackoff": "50ms", "maxBackoff": "500ms", "maxAttempts": 100000, "maxAge": "1h"},
	}
}

// hookEvent is what the webhook reads of an event.
type hookEvent struct {
	MessageID   string `json:"messageId"`
	UserID      string `json:"userId"`
	AnonymousID string `json:"anonymousId"`
}

func (w *webhook) serve(rw http.ResponseWriter, req *http.Request) {
	w.requests.Add(1)
	if f := math.Float64frombits(w.failRate.Load()); f > 0 && rand.Float64() < f {
		http.Error(rw, "try again", http.StatusServiceUnavailable)
		return
	}
	body, err := io.ReadAll(req.Body)
	if err != nil {
		http.Error(rw, err.Error(), http.StatusBadRequest)
		return
	}
	var events []hookEvent
	var batch struct {
		Batch []hookEvent `json:"batch"`
	}
	var one hookEvent
	switch {
	case json.Unmarshal(body, &batch) == nil && batch.Batch != nil:
		events = batch.Batch
	case json.Unmarshal(body, &one) == nil:
		events = []hookEvent{one}
	default:
		http.Error(rw, "not an event", http.StatusBadRequest)
		return
	}
	hold := time.Duration(w.hang.Load())
	for _, ev := range events {
		key := ev.UserID
		if key == "" {
			key = ev.AnonymousID
		}
		w.h.Deliver(checker.Delivery{Destination: w.id, MessageID: ev.MessageID, Key: key, Late: hold >= w.timeout})
	}
	if hold > 0 {
		select {
		case <-time.After(hold):
		case <-req.Context().Done():
		}
	}
	rw.WriteHeader(http.StatusOK)
}
