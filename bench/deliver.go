package main

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// deliveryWorkers is how many worker processes deliver.
const deliveryWorkers = 2

// measureDelivery starts deliveryWorkers workers on the rows pending in
// the cluster, with the sink's maxBatchSize set to batchSize, and times
// them from the first webhook request until the shard tables are empty.
func measureDelivery(ctx context.Context, st *stack, batchSize int) (m metric, err error) {
	pending, err := st.pending(ctx, 2)
	if err != nil {
		return m, err
	}
	if pending == 0 {
		return m, errors.New("no rows to deliver")
	}
	st.sink.reset()
	workers, err := st.startWorkers(ctx, deliveryWorkers, batchSize)
	if err != nil {
		return m, err
	}
	defer func() {
		for _, w := range workers {
			if serr := w.stop(); err == nil && serr != nil {
				err = serr
			}
		}
	}()

	cpu := startCPU()
	progress, progressAt := int64(-1), time.Now()
	for {
		// Counting rows costs the nodes a scan: wait until the sink has
		// seen every event first.
		p := st.sink.events.Load()
		if p >= pending {
			left, err := st.pending(ctx, 2)
			if err != nil {
				return m, err
			}
			if left == 0 {
				break
			}
			p += pending - left // grows as delivered rows are deleted
		}
		if p != progress {
			progress, progressAt = p, time.Now()
		} else if time.Since(progressAt) > time.Minute {
			return m, fmt.Errorf("delivery stuck for a minute: the sink received %d of %d events\n%s", st.sink.events.Load(), pending, workers[0].tail())
		}
		for _, w := range workers {
			select {
			case <-w.done:
				return m, fmt.Errorf("%s exited during delivery: %w\n%s", w.name, w.err, w.tail())
			default:
			}
		}
		select {
		case <-ctx.Done():
			return m, ctx.Err()
		case <-time.After(20 * time.Millisecond):
		}
	}
	took := time.Since(st.sink.firstAt())
	name := fmt.Sprintf("deliver to webhook, maxBatchSize %d, %d workers", batchSize, deliveryWorkers)
	id := idDeliver1
	if batchSize > 1 {
		id = idDeliver100
	}
	if bad := st.sink.bad.Load(); bad > 0 {
		return m, fmt.Errorf("the sink received %d malformed batch bodies", bad)
	}
	m = rateMetric(id, name, "events/s", pending, took)
	m.CPU = cpu.done()
	return m, nil
}
