package main

import (
	"context"
	"fmt"
)

// measureIngest sends sz.batchEvents events in /v1/batch requests from
// clients concurrent clients, then sz.singleEvents in /v1/track requests
// from singleClients, then sz.soloEvents /v1/track requests from one
// client, for the latency of a gateway that is not loaded. The request
// bodies are built before the clock starts.
func measureIngest(ctx context.Context, st *stack, gen *events, sz sizes, clients, singleClients int) ([]metric, error) {
	runs := []struct {
		id, name string
		reqs     []request
		clients  int
	}{
		{idIngestBatch, fmt.Sprintf("ingest /v1/batch, %d events/request, %d clients", sz.batchSize, clients), gen.batchRequests(sz.batchEvents, sz.batchSize), clients},
		{idIngestSingle, fmt.Sprintf("ingest /v1/track, 1 event/request, %d clients", singleClients), gen.trackRequests(sz.singleEvents), singleClients},
		{idIngestSolo, "ingest /v1/track, 1 event/request, 1 client", gen.trackRequests(sz.soloEvents), 1},
	}
	var out []metric
	for _, run := range runs {
		cpu := startCPU()
		r := st.closedLoop(ctx, run.reqs, run.clients)
		m := loadMetric(run.id, run.name, "events/s", r)
		m.CPU = cpu.done()
		out = append(out, m)
		if err := loadErr(ctx, r); err != nil {
			return out, fmt.Errorf("%s: %w", run.name, err)
		}
	}
	return out, nil
}

// loadErr fails a load that ctx cut short or in which no request
// succeeded; a few failed requests are reported in the table instead.
func loadErr(ctx context.Context, r loadResult) error {
	if ctx.Err() != nil {
		return ctx.Err()
	}
	if r.requests == 0 {
		return fmt.Errorf("no request was answered 200; first error: %s", r.firstErr)
	}
	return nil
}

// preload stores n events through the gateway in /v1/batch requests of
// per events, for a later measurement to consume. Every request must
// succeed.
func preload(ctx context.Context, st *stack, gen *events, n, per, clients int) error {
	r := st.closedLoop(ctx, gen.batchRequests(n, per), clients)
	if ctx.Err() != nil {
		return ctx.Err()
	}
	if r.failed > 0 {
		return fmt.Errorf("preloading: %d requests failed; first error: %s", r.failed, r.firstErr)
	}
	return nil
}
