package e2e

import (
	"bytes"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ordo-pipeline/ordo/internal/checker"
)

// sample is one request's outcome.
type sample struct {
	phase   string
	latency time.Duration
	status  int
}

// traffic sends events from many keys through several gateways and
// records them in a history. Each key sends its next request only after
// the previous one was answered 200, so the contract's order guarantee
// applies to every pair of a key's events in different requests. A failed
// request is sent again, with the same message ids, to the next gateway.
type traffic struct {
	gateways []string
	writeKey string
	dests    []string // the destinations of the write key's source
	h        *checker.History
	// batchShare is the share of requests sent to /v1/batch with 2 to 4
	// events of one key; the others are one /v1/track event.
	batchShare float64
	// client sends the requests; prefix starts every key. newTraffic
	// sets defaults; change them before start.
	client *http.Client
	prefix string
	phase  atomic.Value // string: the label samples get
	stop   chan struct{}
	wg     sync.WaitGroup

	mu      sync.Mutex
	samples []sample
	errors  []string
	causes  map[string]int // failed requests by what went wrong
	sent    int            // requests
}

func newTraffic(h *checker.History, gateways []string, writeKey string, dests ...string) *traffic {
	t := &traffic{gateways: gateways, writeKey: writeKey, dests: dests, h: h, stop: make(chan struct{}), causes: map[string]int{},
		client: &http.Client{Timeout: 30 * time.Second}, prefix: "user"}
	t.phase.Store("baseline")
	return t
}

func messageID(key string, n int) string { return fmt.Sprintf("%s-%d", key, n) }

// start starts keys clients, each pausing for pause between requests.
func (t *traffic) start(keys int, pause time.Duration) {
	client := t.client
	for k := range keys {
		key := fmt.Sprintf("%s-%03d", t.prefix, k)
		rng := rand.New(rand.NewPCG(uint64(k), 7))
		t.wg.Go(func() {
			next := 0 // the n of the key's next new event
			var ids []string
			for i := k; ; i++ {
				select {
				case <-t.stop:
					return
				default:
				}
				if ids == nil { // else the last request failed: send it again
					size := 1
					if rng.Float64() < t.batchShare {
						size = 2 + rng.IntN(3)
					}
					for range size {
						ids = append(ids, messageID(key, next))
						next++
					}
				}
				gw := t.gateways[i%len(t.gateways)]
				if t.request(client, gw, key, ids) {
					ids = nil
				}
				time.Sleep(pause)
			}
		})
	}
}

// request sends the events ids of key in one request and reports whether
// it was answered 200.
func (t *traffic) request(client *http.Client, gw, key string, ids []string) bool {
	path, body := "/v1/track", ""
	if len(ids) == 1 {
		body = fmt.Sprintf(`{"userId":%q,"event":"step","messageId":%q}`, key, ids[0])
	} else {
		path = "/v1/batch"
		var evs []string
		for _, id := range ids {
			evs = append(evs, fmt.Sprintf(`{"type":"track","userId":%q,"event":"step","messageId":%q}`, key, id))
		}
		body = `{"batch":[` + strings.Join(evs, ",") + `]}`
	}
	req, _ := http.NewRequest("POST", gw+path, bytes.NewBufferString(body))
	req.SetBasicAuth(t.writeKey, "")
	req.Header.Set("Content-Type", "application/json")
	phase := t.phase.Load().(string)
	began := t.h.Send(key, t.dests, ids...)
	resp, err := client.Do(req)
	status := 0
	var msg []byte
	if err == nil {
		status = resp.StatusCode
		msg, _ = io.ReadAll(resp.Body)
		resp.Body.Close()
	}
	if status == http.StatusOK {
		t.h.Ack(ids...)
	}
	lat := time.Since(began)
	t.mu.Lock()
	defer t.mu.Unlock()
	t.sent++
	t.samples = append(t.samples, sample{phase: phase, latency: lat, status: status})
	if status != http.StatusOK {
		t.errors = append(t.errors, fmt.Sprintf("%s %s %s %v: status %d err %v body %s", phase, gw, path, ids, status, err, bytes.TrimSpace(msg)))
		cause := fmt.Sprintf("%d %s", status, bytes.TrimSpace(msg))
		if err != nil {
			// The last part of a client error says what happened, such as
			// "connection refused" or "EOF".
			parts := strings.Split(err.Error(), ": ")
			cause = "no answer: " + parts[len(parts)-1]
		}
		t.causes[cause]++
	}
	return status == http.StatusOK
}

func (t *traffic) finish() {
	close(t.stop)
	t.wg.Wait()
}

// failures returns the number of requests not answered 200, and up to n
// of their descriptions.
func (t *traffic) failures(n int) (int, []string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	return len(t.errors), slices.Clone(t.errors[:min(n, len(t.errors))])
}

// failureCauses returns the failed requests by cause, most frequent
// first, one a line.
func (t *traffic) failureCauses() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	var lines []string
	for c, n := range t.causes {
		lines = append(lines, fmt.Sprintf("%7d  %s", n, c))
	}
	slices.Sort(lines)
	slices.Reverse(lines)
	return strings.Join(lines, "\n")
}

// requests returns the number of requests sent.
func (t *traffic) requests() int {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.sent
}

// latencies returns p50, p99 and max request latency of phase.
func (t *traffic) latencies(phase string) (n int, p50, p99, worst time.Duration) {
	t.mu.Lock()
	defer t.mu.Unlock()
	var ls []time.Duration
	for _, s := range t.samples {
		if s.phase == phase {
			ls = append(ls, s.latency)
		}
	}
	if len(ls) == 0 {
		return 0, 0, 0, 0
	}
	slices.Sort(ls)
	return len(ls), ls[len(ls)/2], ls[len(ls)*99/100], ls[len(ls)-1]
}
