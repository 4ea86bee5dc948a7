package e2e

import (
	"bytes"
	"fmt"
	"io"
	"net/http"
	"slices"
	"sync"
	"sync/atomic"
	"time"
)

// sample is one request's outcome.
type sample struct {
	phase   string
	latency time.Duration
	status  int
}

// traffic sends events from many keys through several gateways. Each key
// sends its next event only after the previous one was answered 200, so
// the contract's order guarantee applies to every pair of a key's events.
type traffic struct {
	gateways []string
	writeKey string
	phase    atomic.Value // string: the label samples get
	stop     chan struct{}
	wg       sync.WaitGroup

	// client sends the requests; prefix starts every key. newTraffic
	// sets defaults; change them before start.
	client *http.Client
	prefix string

	mu       sync.Mutex
	acked    map[string][]int     // key → acknowledged N, in order
	ackedAt  map[string]time.Time // messageId → when it was answered 200
	firstTry map[string]time.Time // messageId → when it was first sent
	samples  []sample
	errors   []string
}

func newTraffic(gateways []string, writeKey string) *traffic {
	t := &traffic{gateways: gateways, writeKey: writeKey, stop: make(chan struct{}), acked: map[string][]int{},
		ackedAt: map[string]time.Time{}, firstTry: map[string]time.Time{},
		client: &http.Client{Timeout: 30 * time.Second}, prefix: "user"}
	t.phase.Store("baseline")
	return t
}

func messageID(key string, n int) string { return fmt.Sprintf("%s-%d", key, n) }

func (t *traffic) start(keys int, pause time.Duration) {
	client := t.client
	for k := range keys {
		key := fmt.Sprintf("%s-%03d", t.prefix, k)
		t.wg.Add(1)
		go func() {
			defer t.wg.Done()
			for n, i := 0, k; ; i++ {
				select {
				case <-t.stop:
					return
				default:
				}
				gw := t.gateways[i%len(t.gateways)]
				body := fmt.Sprintf(`{"userId":%q,"event":"step","messageId":%q,"properties":{"n":%d}}`, key, messageID(key, n), n)
				req, _ := http.NewRequest("POST", gw+"/v1/track", bytes.NewBufferString(body))
				req.SetBasicAuth(t.writeKey, "")
				req.Header.Set("Content-Type", "application/json")
				phase := t.phase.Load().(string)
				began := time.Now()
				t.mu.Lock()
				if _, ok := t.firstTry[messageID(key, n)]; !ok {
					t.firstTry[messageID(key, n)] = began
				}
				t.mu.Unlock()
				resp, err := client.Do(req)
				lat := time.Since(began)
				status := 0
				var msg []byte
				if err == nil {
					status = resp.StatusCode
					msg, _ = io.ReadAll(resp.Body)
					resp.Body.Close()
				}
				t.mu.Lock()
				t.samples = append(t.samples, sample{phase: phase, latency: lat, status: status})
				if status == http.StatusOK {
					t.acked[key] = append(t.acked[key], n)
					t.ackedAt[messageID(key, n)] = time.Now()
					n++
				} else {
					t.errors = append(t.errors, fmt.Sprintf("%s %s n=%d: status %d err %v body %s", phase, gw, n, status, err, msg))
				}
				t.mu.Unlock()
				// A failed request is retried with the same messageId.
				time.Sleep(pause)
			}
		}()
	}
}

func (t *traffic) finish() {
	close(t.stop)
	t.wg.Wait()
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
