package main

import (
	"context"
	"fmt"
	"time"

	"github.com/ordo-pipeline/ordo/schema"
)

// measureSoak writes n events through the gateway while two workers
// deliver them, sampling the shard tables' total size: delivered rows are
// deleted, and what the worker's VACUUM and autovacuum make of the dead
// rows shows in the size before, at its peak, once drained, and 30 seconds
// later. Its rate is events delivered per second, writing included.
func measureSoak(ctx context.Context, st *stack, gen *events, sz sizes, clients int) (metric, string, error) {
	n, per := sz.soakEvents, sz.batchSize
	m := metric{ID: idSoak, Name: fmt.Sprintf("soak: %dk events written while delivered", n/1000), Unit: "events/s"}
	if err := st.drain(ctx); err != nil {
		return m, "", err
	}
	base, err := st.tableBytes(ctx)
	if err != nil {
		return m, "", err
	}
	st.sink.reset()
	workers, err := st.startWorkers(ctx, deliveryWorkers, 100)
	if err != nil {
		return m, "", err
	}
	defer func() {
		for _, w := range workers {
			w.stop() //nolint:errcheck // measured already
		}
	}()
	cpu := startCPU()
	began := time.Now()
	peak := base
	const chunks = 10
	for i := range chunks {
		if err := preload(ctx, st, gen, n/chunks, per, clients); err != nil {
			return m, "", fmt.Errorf("writing chunk %d: %w", i+1, err)
		}
		size, err := st.tableBytes(ctx)
		if err != nil {
			return m, "", err
		}
		peak = max(peak, size)
	}
	for st.sink.events.Load() < int64(n/chunks*chunks) {
		if time.Since(began) > 10*time.Minute {
			return m, "", fmt.Errorf("soak: %d of %d events delivered after 10 minutes", st.sink.events.Load(), n)
		}
		select {
		case <-ctx.Done():
			return m, "", ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
	}
	m = rateMetric(m.ID, m.Name, m.Unit, st.sink.events.Load(), time.Since(began))
	m.CPU = cpu.done()
	drained, err := st.tableBytes(ctx)
	if err != nil {
		return m, "", err
	}
	time.Sleep(sz.soakAfter)
	later, err := st.tableBytes(ctx)
	if err != nil {
		return m, "", err
	}
	sizes := fmt.Sprintf("shard tables during the soak (pg_total_relation_size, both nodes): before %s, peak sampled %s, drained %s, %s later %s",
		mib(base), mib(peak), mib(drained), sz.soakAfter, mib(later))
	return m, sizes, nil
}

func mib(n int64) string { return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20)) }

// tableBytes sums the size of the shard tables on the first two nodes.
func (st *stack) tableBytes(ctx context.Context) (int64, error) {
	var total int64
	for i, pool := range st.pools[:2] {
		var n int64
		err := pool.QueryRow(ctx, `SELECT coalesce(sum(pg_total_relation_size(format('%I.%I', schemaname, tablename))), 0)::bigint
			FROM pg_tables WHERE schemaname = $1 AND tablename LIKE 'shard\_%'`, schema.Schema).Scan(&n)
		if err != nil {
			return 0, fmt.Errorf("sizing %s's shard tables: %w", st.nodes[i].Name(), err)
		}
		total += n
	}
	return total, nil
}
