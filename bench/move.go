package main

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/ordo-pipeline/ordo/schema"
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

// measureBigMove loads n rows into one shard of node3 (which holds about a
// third of the shards after measureMoves), then drains node3 with
// rebalance on the first two nodes. Every move's copy is timed from
// River's record of its job: the big shard's rows over its job's time is
// the copy rate, and the median, over the other moves, of a job's time
// less its rows at that rate is a move's fixed cost.
func measureBigMove(ctx context.Context, st *stack, gen *events, n int) (big, fixed metric, err error) {
	var s int
	if err := st.pools[0].QueryRow(ctx, `SELECT min(shard) FROM ordo_catalog.shards WHERE node = $1`, st.nodes[2].Name()).Scan(&s); err != nil {
		return big, fixed, fmt.Errorf("finding a shard on %s: %w", st.nodes[2].Name(), err)
	}
	rows := storedRows(gen, n)
	err = pgx.BeginFunc(ctx, st.pools[2], func(tx pgx.Tx) error {
		if err := schema.LockForWrite(ctx, tx, []int{s}); err != nil {
			return err
		}
		_, err := tx.CopyFrom(ctx, schema.Table(s), schema.Columns, pgx.CopyFromRows(rows))
		return err
	})
	if err != nil {
		return big, fixed, fmt.Errorf("loading shard %d: %w", s, err)
	}
	var last int64
	if err := st.pools[0].QueryRow(ctx, `SELECT coalesce(max(id), 0) FROM ordo_catalog.moves`).Scan(&last); err != nil {
		return big, fixed, err
	}
	if err := st.rebalance(ctx, 2); err != nil {
		return big, fixed, err
	}
	type job struct {
		shard   int
		rows    int64
		seconds float64
	}
	qrows, err := st.pools[0].Query(ctx, `SELECT m.shard, m.rows_copied, extract(epoch FROM j.finalized_at - j.attempted_at)::float8
		FROM ordo_catalog.moves m JOIN ordo_river.river_job j ON j.kind = 'ordo_move' AND (j.args->>'move_id')::bigint = m.id
		WHERE m.id > $1 AND m.state = 'done' AND j.state = 'completed'`, last)
	if err != nil {
		return big, fixed, fmt.Errorf("reading the moves' jobs: %w", err)
	}
	jobs, err := pgx.CollectRows(qrows, func(r pgx.CollectableRow) (job, error) {
		var j job
		err := r.Scan(&j.shard, &j.rows, &j.seconds)
		return j, err
	})
	if err != nil {
		return big, fixed, fmt.Errorf("reading the moves' jobs: %w", err)
	}
	var costs []time.Duration
	rate := 0.0
	for _, j := range jobs {
		if j.shard == s && j.seconds > 0 {
			big = rateMetric(idMoveBig, fmt.Sprintf("move of one shard of %dk rows, whole job", n/1000), "rows/s", j.rows, time.Duration(j.seconds*float64(time.Second)))
			rate = big.Rate
		}
	}
	if rate == 0 {
		return big, fixed, fmt.Errorf("no completed move of shard %d found", s)
	}
	for _, j := range jobs {
		if j.shard != s {
			costs = append(costs, max(0, time.Duration((j.seconds-float64(j.rows)/rate)*float64(time.Second))))
		}
	}
	if len(costs) == 0 {
		return big, fixed, fmt.Errorf("no other move to take the fixed cost from")
	}
	med, _, mx := latencies(costs).quantiles()
	// Its rate column is the median in milliseconds.
	fixed = metric{ID: idMoveFixed, Name: "move fixed cost: job time less its copy", Count: int64(len(costs)), Unit: "ms/move",
		Seconds: med.Seconds(), Rate: ms(med), Latency: &latencyMs{P50: ms(med), P99: ms(mx), Max: ms(mx)}}
	return big, fixed, nil
}
