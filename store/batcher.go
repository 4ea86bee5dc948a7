package store

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/ordo-pipeline/ordo/internal/dsn"
	"github.com/ordo-pipeline/ordo/internal/keepalive"
	"github.com/ordo-pipeline/ordo/shard"
)

// batcher gathers the requests for one node and writes them in batches,
// with up to Config.Writers batches in flight, each on its own goroutine.
// A writer that is free takes what is queued (group commit): when the node
// is idle a request is written at once, alone; under load, each batch is
// what arrived while the writers were busy.
type batcher struct {
	node    string
	url     string
	cfg     Config
	pool    *pgxpool.Pool
	log     *slog.Logger
	metrics *metrics
	minLeft time.Duration // see minTimeLeft

	queue chan *request
	stop  chan struct{}
	done  chan struct{}
	once  sync.Once

	// lastFail and lastOK are when (unix nanos) a write to the node last
	// failed as unavailable and last succeeded: see suspect.
	lastFail atomic.Int64
	lastOK   atomic.Int64
}

// suspectFor is how long after a failed write a node stays suspect unless
// a write succeeds meanwhile.
const suspectFor = 30 * time.Second

// suspect reports whether the node's last write failed, recently, and no
// write has succeeded since. Requests that span this node and others are
// then written to it first, alone, so that its failure stores nothing
// elsewhere.
func (b *batcher) suspect(now time.Time) bool {
	f := b.lastFail.Load()
	return f != 0 && f > b.lastOK.Load() && now.Sub(time.Unix(0, f)) < suspectFor
}

// failed records a write to the node that failed as unavailable.
func (b *batcher) failed() { b.lastFail.Store(time.Now().UnixNano()) }

// newBatcher starts the batcher of node. Its pool connects lazily.
func newBatcher(node shard.Node, cfg Config, m *metrics) (*batcher, error) {
	pcfg, err := pgxpool.ParseConfig(node.URL)
	if err != nil {
		return nil, fmt.Errorf("%w: node %s has an invalid url %s: %w", ErrUnavailable, node.Name, dsn.Redact(node.URL), err)
	}
	// A node that goes silent (a partition, not a reset) is given up in
	// seconds rather than the kernel's two hours, on both ends: its
	// writes fail over to a 503 the client retries, and the node ends the
	// session and its write locks, which would hold up other gateways.
	keepalive.Configure(&pcfg.ConnConfig.Config, keepalive.Options{
		App:                      "ordo-gateway",
		IdleInTransactionTimeout: cfg.WriteTimeout + 5*time.Second,
	})
	pcfg.MaxConns = cfg.MaxConns
	pcfg.MinConns = 0
	pool, err := pgxpool.NewWithConfig(context.Background(), pcfg)
	if err != nil {
		return nil, fmt.Errorf("%w: node %s: %w", ErrUnavailable, node.Name, err)
	}
	b := &batcher{
		node:    node.Name,
		url:     node.URL,
		cfg:     cfg,
		pool:    pool,
		log:     cfg.Logger.With("node", node.Name),
		metrics: m,
		minLeft: min(minTimeLeft, cfg.WriteTimeout/10),
		queue:   make(chan *request, cfg.QueueSize),
		stop:    make(chan struct{}),
		done:    make(chan struct{}),
	}
	var wg sync.WaitGroup
	for range cfg.Writers {
		wg.Go(b.run)
	}
	go func() {
		wg.Wait()
		b.pool.Close()
		close(b.done)
	}()
	return b, nil
}

// submit queues r. It fails when the queue stays full until ctx ends or
// the batcher is closing; a queue that stayed full until ctx's deadline
// marks the node failed, as it is not keeping up.
func (b *batcher) submit(ctx context.Context, r *request) error {
	if ctx.Err() != nil {
		// Its caller gave up already: queueing it would race the batcher
		// to take it.
		return fmt.Errorf("%w: gave up before queueing: %w", ErrUnavailable, context.Cause(ctx))
	}
	select {
	case b.queue <- r:
		return nil
	default:
	}
	select {
	case b.queue <- r:
		return nil
	case <-b.stop:
		return fmt.Errorf("%w: shutting down", ErrUnavailable)
	case <-ctx.Done():
		b.metrics.queueFull.WithLabelValues(b.node).Inc()
		if errors.Is(ctx.Err(), context.DeadlineExceeded) {
			b.failed()
		}
		return fmt.Errorf("%w: node %s is not keeping up", ErrUnavailable, b.node)
	}
}

// close stops the batcher once it has written every queued request, and
// closes its pool. It is safe to call more than once.
func (b *batcher) close() {
	b.once.Do(func() { close(b.stop) })
	<-b.done
}

// run is one writer: it writes batches until the batcher stops, then
// what is still queued.
func (b *batcher) run() {
	for {
		var first *request
		select {
		case first = <-b.queue:
		case <-b.stop:
			b.drain()
			return
		}
		if batch := b.gather(first); len(batch) > 0 {
			b.flush(batch)
		}
	}
}

// gather collects requests into a batch, starting with first: what is
// queued now, then, when MaxWait is set, what arrives until MaxWait has
// passed, until the batch holds MaxRows rows. Requests whose waiters gave
// up are left out, so the batch may be empty.
func (b *batcher) gather(first *request) []*request {
	batch, rows := b.add(nil, 0, first)
	batch, rows = b.takeQueued(batch, rows)
	if b.cfg.MaxWait <= 0 || rows >= b.cfg.MaxRows {
		return batch
	}
	timer := time.NewTimer(b.cfg.MaxWait)
	defer timer.Stop()
	for rows < b.cfg.MaxRows {
		select {
		case r := <-b.queue:
			batch, rows = b.add(batch, rows, r)
		case <-timer.C:
			return batch
		case <-b.stop:
			return batch
		}
	}
	return batch
}

// takeQueued adds what is queued now to batch, until it holds MaxRows rows.
func (b *batcher) takeQueued(batch []*request, rows int) ([]*request, int) {
	for rows < b.cfg.MaxRows {
		select {
		case r := <-b.queue:
			batch, rows = b.add(batch, rows, r)
		default:
			return batch, rows
		}
	}
	return batch, rows
}

// add appends r to batch unless its waiter gave up (see request.take).
func (b *batcher) add(batch []*request, rows int, r *request) ([]*request, int) {
	if r.take(time.Now(), b.minLeft) {
		return append(batch, r), rows + r.rows
	}
	return batch, rows
}

// drain writes whatever is queued when the batcher stops.
func (b *batcher) drain() {
	for {
		batch, _ := b.takeQueued(nil, 0)
		if len(batch) == 0 {
			return
		}
		b.flush(batch)
	}
}
