package main

import (
	"context"
	"fmt"
)

// measureIngest sends sz.batchEvents events in /v1/batch requests, then
// sz.singleEvents in /v1/track requests, each from clients concurrent
// clients. The request bodies are built before the clock starts.
func measureIngest(ctx context.Context, st *stack, gen *events, sz sizes, clients int) (batch, single metric, err error) {
	reqs := gen.batchRequests(sz.batchEvents, sz.batchSize)
	r := st.closedLoop(ctx, reqs, clients)
	batch = loadMetric(idIngestBatch, fmt.Sprintf("ingest /v1/batch, %d events/request", sz.batchSize), "events/s", r)
	if err := loadErr(ctx, r); err != nil {
		return batch, single, fmt.Errorf("/v1/batch: %w", err)
	}

	reqs = gen.trackRequests(sz.singleEvents)
	r = st.closedLoop(ctx, reqs, clients)
	single = loadMetric(idIngestSingle, "ingest /v1/track, 1 event/request", "events/s", r)
	if err := loadErr(ctx, r); err != nil {
		return batch, single, fmt.Errorf("/v1/track: %w", err)
	}
	return batch, single, nil
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
