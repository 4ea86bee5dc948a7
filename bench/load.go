package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"slices"
	"sync"
	"sync/atomic"
	"time"
)

// loadResult is what a load against the gateway achieved.
type loadResult struct {
	events   int // events of the requests answered 200
	requests int // requests answered 200
	failed   int // requests answered otherwise, or not at all
	firstErr string
	elapsed  time.Duration
	lat      latencies // of the requests answered 200
}

// collector gathers the outcomes of concurrent requests.
type collector struct {
	mu  sync.Mutex
	res loadResult
}

func (c *collector) record(events int, took time.Duration, err error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if err != nil {
		c.res.failed++
		if c.res.firstErr == "" {
			c.res.firstErr = err.Error()
		}
		return
	}
	c.res.events += events
	c.res.requests++
	c.res.lat = append(c.res.lat, took)
}

// post sends req to the gateway; an answer other than 200 is an error.
func (st *stack) post(ctx context.Context, req request) error {
	r, err := http.NewRequestWithContext(ctx, http.MethodPost, st.gatewayURL+req.path, bytes.NewReader(req.body))
	if err != nil {
		return err
	}
	r.SetBasicAuth(writeKey, "")
	r.Header.Set("Content-Type", "application/json")
	resp, err := st.client.Do(r)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("%s: %s: %s", req.path, resp.Status, bytes.TrimSpace(body))
	}
	return nil
}

// closedLoop sends reqs from clients concurrent clients, each sending its
// next request once the previous one is answered.
func (st *stack) closedLoop(ctx context.Context, reqs []request, clients int) loadResult {
	var c collector
	began := time.Now()
	takeTurns(clients, len(reqs), func(i int) bool {
		if ctx.Err() != nil {
			return false
		}
		t := time.Now()
		err := st.post(ctx, reqs[i])
		c.record(reqs[i].events, time.Since(t), err)
		return true
	})
	c.res.elapsed = time.Since(began)
	return c.res
}

// takeTurns calls do with 0 to n-1 from clients goroutines, each taking
// the next number once its previous call returned; a goroutine stops when
// do returns false. It returns once every goroutine has stopped.
func takeTurns(clients, n int, do func(i int) bool) {
	var next atomic.Int64
	var wg sync.WaitGroup
	for range clients {
		wg.Go(func() {
			for {
				i := int(next.Add(1)) - 1
				if i >= n || !do(i) {
					return
				}
			}
		})
	}
	wg.Wait()
}

// paced sends single-event /v1/track requests at rate per second, each on
// its own goroutine whatever the answers of earlier ones, until stop is
// closed. Latency counts from when a request was due, so that a stalled
// gateway shows as latency rather than as fewer requests.
func (st *stack) paced(ctx context.Context, gen *events, rate int, stop <-chan struct{}) loadResult {
	var c collector
	interval := time.Second / time.Duration(rate)
	began := time.Now()
	var wg sync.WaitGroup
	timer := time.NewTimer(0)
	defer timer.Stop()
loop:
	for i := 0; ; i++ {
		due := began.Add(time.Duration(i) * interval)
		timer.Reset(time.Until(due))
		select {
		case <-stop:
			break loop
		case <-ctx.Done():
			break loop
		case <-timer.C:
		}
		reqs := gen.trackRequests(1)
		wg.Go(func() {
			err := st.post(ctx, reqs[0])
			c.record(1, time.Since(due), err)
		})
	}
	wg.Wait()
	c.res.elapsed = time.Since(began)
	return c.res
}

// pacedFor runs paced for d.
func (st *stack) pacedFor(ctx context.Context, gen *events, rate int, d time.Duration) loadResult {
	stop := make(chan struct{})
	t := time.AfterFunc(d, func() { close(stop) })
	defer t.Stop()
	return st.paced(ctx, gen, rate, stop)
}

// latencies are request durations.
type latencies []time.Duration

// quantiles returns the median, the 99th percentile and the maximum.
func (l latencies) quantiles() (p50, p99, maxim time.Duration) {
	if len(l) == 0 {
		return 0, 0, 0
	}
	s := slices.Clone(l)
	slices.Sort(s)
	at := func(q float64) time.Duration {
		i := int(q*float64(len(s))+0.5) - 1
		return s[min(max(i, 0), len(s)-1)]
	}
	return at(0.50), at(0.99), s[len(s)-1]
}
