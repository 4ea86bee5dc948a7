package main

import (
	"context"
	"fmt"
	"time"

	"github.com/google/uuid"
)

// wakeRate is the pace of the ack-to-webhook measurement: events per
// second, one at a time, each of its own user.
const wakeRate = 10

// measureWake sends n single-event /v1/track requests at wakeRate per
// second while two workers run, and measures for each the time from its
// 200 to the webhook receiving it: how long a worker takes to learn of a
// committed row and deliver it when the cluster is not loaded.
func measureWake(ctx context.Context, st *stack, gen *events, n int) (metric, error) {
	m := metric{ID: idWake, Name: fmt.Sprintf("ack → webhook, %d events/s, one at a time", wakeRate), Unit: "events/s"}
	if err := st.drain(ctx); err != nil {
		return m, err
	}
	workers, err := st.startWorkers(ctx, deliveryWorkers, 1)
	if err != nil {
		return m, err
	}
	defer func() {
		for _, w := range workers {
			w.stop() //nolint:errcheck // measured already
		}
	}()
	// Let both workers claim their shares before the clock starts.
	time.Sleep(2 * time.Second)
	st.sink.track()
	cpu := startCPU()
	began := time.Now()
	acked := map[string]time.Time{}
	interval := time.Second / wakeRate
	for i := range n {
		select {
		case <-ctx.Done():
			return m, ctx.Err()
		case <-time.After(time.Until(began.Add(time.Duration(i) * interval))):
		}
		id := uuid.NewString()
		_, body := gen.next(false)
		body = fmt.Appendf(body[:len(body)-1], `,"messageId":%q}`, id)
		if err := st.post(ctx, request{path: "/v1/track", body: body, events: 1}); err != nil {
			return m, fmt.Errorf("event %d: %w", i, err)
		}
		acked[id] = time.Now()
	}
	var lat latencies
	deadline := time.Now().Add(30 * time.Second)
	for id, at := range acked {
		for {
			if got, ok := st.sink.arrival(id); ok {
				lat = append(lat, max(0, got.Sub(at)))
				break
			}
			if time.Now().After(deadline) {
				return m, fmt.Errorf("event %s acknowledged but not delivered within 30s", id)
			}
			time.Sleep(5 * time.Millisecond)
		}
	}
	m = loadMetric(m.ID, m.Name, m.Unit, loadResult{events: n, requests: n, elapsed: time.Since(began), lat: lat})
	m.CPU = cpu.done()
	return m, nil
}

// drain waits until no row is pending on the first two nodes, starting
// workers for it if there are rows.
func (st *stack) drain(ctx context.Context) error {
	left, err := st.pending(ctx, 2)
	if err != nil || left == 0 {
		return err
	}
	_, err = measureDelivery(ctx, st, 100)
	return err
}
