package main

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/riverqueue/river"
	"github.com/riverqueue/river/riverdriver/riverpgxv5"
	"github.com/riverqueue/river/rivermigrate"
)

// riverSchema holds the baseline's River tables, in the catalog database
// next to ordo's own River schema.
const riverSchema = "bench_river"

// River at its best, as its own `river bench` runs it: jobs inserted with
// InsertManyFast (COPY) in batches of riverInsertBatch from several
// goroutines, and worked by one client with MaxWorkers 2000 and a 2ms
// FetchCooldown (the default 100ms caps the rate at ten times MaxWorkers).
const (
	riverInsertBatch   = 1000
	riverMaxWorkers    = 2000
	riverFetchCooldown = 2 * time.Millisecond
)

// noopArgs is a job that carries an event and does nothing with it.
type noopArgs struct {
	Event json.RawMessage `json:"event"`
}

func (noopArgs) Kind() string { return "bench_noop" }

type noopWorker struct {
	river.WorkerDefaults[noopArgs]
	worked *atomic.Int64
}

func (w *noopWorker) Work(context.Context, *river.Job[noopArgs]) error {
	w.worked.Add(1)
	return nil
}

// measureRiver inserts n no-op jobs with InsertManyFast, riverInsertBatch
// per call from clients goroutines, then works them with one River
// client, on the Postgres at url.
func measureRiver(ctx context.Context, url string, gen *events, n, clients int) (insert, work metric, err error) {
	cfg, err := pgxpool.ParseConfig(url)
	if err != nil {
		return insert, work, err
	}
	cfg.MaxConns = int32(clients + 10)
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return insert, work, err
	}
	defer pool.Close()
	if _, err := pool.Exec(ctx, "CREATE SCHEMA IF NOT EXISTS "+riverSchema); err != nil {
		return insert, work, fmt.Errorf("creating schema: %w", err)
	}
	discard := slog.New(slog.DiscardHandler)
	migrator, err := rivermigrate.New(riverpgxv5.New(pool), &rivermigrate.Config{Schema: riverSchema, Logger: discard})
	if err != nil {
		return insert, work, err
	}
	if _, err := migrator.Migrate(ctx, rivermigrate.DirectionUp, nil); err != nil {
		return insert, work, fmt.Errorf("migrating: %w", err)
	}

	var worked atomic.Int64
	workers := river.NewWorkers()
	river.AddWorker(workers, &noopWorker{worked: &worked})
	client, err := river.NewClient(riverpgxv5.New(pool), &river.Config{
		Schema:        riverSchema,
		Logger:        discard,
		Workers:       workers,
		Queues:        map[string]river.QueueConfig{river.QueueDefault: {MaxWorkers: riverMaxWorkers}},
		FetchCooldown: riverFetchCooldown,
	})
	if err != nil {
		return insert, work, err
	}

	var batches [][]river.InsertManyParams
	for left := n; left > 0; left -= riverInsertBatch {
		batch := make([]river.InsertManyParams, min(riverInsertBatch, left))
		for i := range batch {
			_, ev := gen.next(true)
			batch[i] = river.InsertManyParams{Args: noopArgs{Event: ev}}
		}
		batches = append(batches, batch)
	}
	var firstErr error
	var once sync.Once
	began := time.Now()
	takeTurns(clients, len(batches), func(i int) bool {
		if _, err := client.InsertManyFast(ctx, batches[i]); err != nil {
			once.Do(func() { firstErr = err })
			return false
		}
		return true
	})
	insert = rateMetric(idRiverInsert, fmt.Sprintf("River InsertManyFast, %d jobs/call", riverInsertBatch), "jobs/s", int64(n), time.Since(began))
	if firstErr != nil {
		return insert, work, fmt.Errorf("inserting: %w", firstErr)
	}

	began = time.Now()
	if err := client.Start(ctx); err != nil {
		return insert, work, fmt.Errorf("starting client: %w", err)
	}
	defer func() {
		stopCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
		defer cancel()
		if serr := client.Stop(stopCtx); err == nil && serr != nil {
			err = fmt.Errorf("stopping client: %w", serr)
		}
	}()
	if err := waitRiver(ctx, pool, &worked, n); err != nil {
		return insert, work, err
	}
	work = rateMetric(idRiverWork, "River work, no-op jobs, 1 client", "jobs/s", int64(n), time.Since(began))
	return insert, work, nil
}

// waitRiver waits until n jobs were worked and River recorded them all
// completed, failing when no job is worked for 30 seconds.
func waitRiver(ctx context.Context, pool *pgxpool.Pool, worked *atomic.Int64, n int) error {
	last, lastAt := int64(-1), time.Now()
	for {
		w := worked.Load()
		if w >= int64(n) {
			var done int64
			err := pool.QueryRow(ctx, "SELECT count(*) FROM "+riverSchema+".river_job WHERE state = 'completed'").Scan(&done)
			if err != nil {
				return fmt.Errorf("counting completed jobs: %w", err)
			}
			if done >= int64(n) {
				return nil
			}
		}
		if w != last {
			last, lastAt = w, time.Now()
		} else if time.Since(lastAt) > 30*time.Second {
			return fmt.Errorf("stuck at %d of %d jobs worked", w, n)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(10 * time.Millisecond):
		}
	}
}
