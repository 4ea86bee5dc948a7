package main

import (
	"context"
	"fmt"
	"time"
)

// measureMoves preloads sz.movePreload events, runs a steady load of
// single-event requests for sz.steadyFor, then adds the third node and
// runs rebalance under the same load. It returns the copy rate of the
// moves, read from ordo_catalog.moves, and the load's latencies without
// and during the moves. Checks that found something wrong but did not
// stop the run become notes of rep.
func measureMoves(ctx context.Context, st *stack, gen *events, sz sizes, clients int, rep *report) (moved, without, during metric, err error) {
	if err := preload(ctx, st, gen, sz.movePreload, sz.batchSize, clients); err != nil {
		return moved, without, during, err
	}
	base := st.pacedFor(ctx, gen, sz.steadyRate, sz.steadyFor)
	without = loadMetric(idSteadyBase, fmt.Sprintf("steady /v1/track, %d req/s, no moves", sz.steadyRate), "req/s", base)
	if err := loadErr(ctx, base); err != nil {
		return moved, without, during, fmt.Errorf("steady load without moves: %w", err)
	}

	stop := make(chan struct{})
	result := make(chan loadResult, 1)
	go func() { result <- st.paced(ctx, gen, sz.steadyRate, stop) }()
	rerr := st.rebalance(ctx, 3)
	close(stop)
	load := <-result
	during = loadMetric(idSteadyMoves, fmt.Sprintf("steady /v1/track, %d req/s, during moves", sz.steadyRate), "req/s", load)
	if rerr != nil {
		return moved, without, during, rerr
	}
	if err := loadErr(ctx, load); err != nil {
		return moved, without, during, fmt.Errorf("steady load during moves: %w", err)
	}

	var done, other int
	var rows int64
	var seconds float64
	err = st.pools[0].QueryRow(ctx, `SELECT count(*) FILTER (WHERE state = 'done'), count(*) FILTER (WHERE state <> 'done'),
		coalesce(sum(rows_copied) FILTER (WHERE state = 'done'), 0)::bigint,
		coalesce(extract(epoch FROM max(finished_at) - min(created_at)), 0)::float8
		FROM ordo_catalog.moves`).Scan(&done, &other, &rows, &seconds)
	if err != nil {
		return moved, without, during, fmt.Errorf("reading moves: %w", err)
	}
	if done == 0 || other > 0 {
		return moved, without, during, fmt.Errorf("rebalance exited 0 with %d moves done and %d not", done, other)
	}
	moved = rateMetric(idMoveCopy, fmt.Sprintf("move copy, %d shards to a new node", done), "rows/s", rows, time.Duration(seconds*float64(time.Second)))

	// Every event answered 200 must still be pending somewhere.
	left, err := st.pending(ctx, 3)
	if err != nil {
		return moved, without, during, err
	}
	want := int64(sz.movePreload + base.events + load.events)
	if base.failed+load.failed == 0 && left != want {
		rep.Notes = append(rep.Notes, fmt.Sprintf("after the moves the nodes hold %d pending events, want %d (preloaded plus the steady load's).", left, want))
	}
	return moved, without, during, nil
}
