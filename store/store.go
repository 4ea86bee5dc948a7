package store

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ordo-pipeline/ordo/shard"
	"github.com/prometheus/client_golang/prometheus"
)

// ErrUnavailable is wrapped by Write's errors when the store cannot take
// the write now: a node is down, slow or overloaded, the placement map
// cannot be loaded, or the store is closing. The client should retry.
var ErrUnavailable = errors.New("store unavailable")

// ErrRejected is wrapped by Write's errors when Postgres refused the
// request's data itself; retrying the same request will not help.
var ErrRejected = errors.New("event data rejected by the database")

// Default settings.
const (
	DefaultMaxRows      = 1000
	DefaultWriters      = 2
	DefaultWriteTimeout = 5 * time.Second
	DefaultQueueSize    = 4096
)

// Config configures a Store.
type Config struct {
	// MaxRows closes a batch once it holds at least this many rows; a
	// single request is never split, so a batch may hold more. Defaults to
	// 1000.
	MaxRows int

	// MaxWait is how long a batch may wait for more requests after taking
	// those already queued. The default, 0, waits for none: a batch is
	// what arrived while the node's writers were busy.
	MaxWait time.Duration

	// Writers is how many batches may be in flight per node. Defaults to
	// 2: one gathers and sends while the other commits.
	Writers int

	// WriteTimeout bounds each Write: queueing, batching, retries after a
	// shard moved and the commit. Defaults to 5 seconds.
	WriteTimeout time.Duration

	// QueueSize is how many requests may wait for each node's batcher.
	// Defaults to 4096.
	QueueSize int

	// MaxConns is the connection pool size per node. Defaults to 4.
	MaxConns int32

	// Logger defaults to a logger that discards.
	Logger *slog.Logger

	// Registerer receives the store's Prometheus metrics. Defaults to
	// none: the metrics are kept but not exported.
	Registerer prometheus.Registerer
}

// WithDefaults returns a copy of c with defaults filled in.
func (c Config) WithDefaults() Config {
	if c.MaxRows <= 0 {
		c.MaxRows = DefaultMaxRows
	}
	if c.MaxWait < 0 {
		c.MaxWait = 0
	}
	if c.Writers <= 0 {
		c.Writers = DefaultWriters
	}
	if c.WriteTimeout <= 0 {
		c.WriteTimeout = DefaultWriteTimeout
	}
	if c.QueueSize <= 0 {
		c.QueueSize = DefaultQueueSize
	}
	if c.MaxConns <= 0 {
		c.MaxConns = 4
	}
	c.MaxConns = max(c.MaxConns, int32(c.Writers))
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	return c
}

// Placement is the placement map a Store routes by; *shard.Map is one.
type Placement interface {
	// Current returns the latest snapshot, or nil before the first load.
	Current() *shard.Snapshot
	// Refresh reloads the map from the catalog, or returns ctx's error
	// once ctx ends, even while it waits for another caller's reload.
	Refresh(ctx context.Context) error
}

// Event is one accepted event, to be stored once per destination.
type Event struct {
	// OrderingKey routes the event to its shard (shard.OrderingKey).
	OrderingKey string
	// SourceID is the source the event was written to.
	SourceID string
	// Destinations are the destination ids of the source; the event is
	// stored once for each. None stores nothing.
	Destinations []string
	// MessageID is the event's messageId.
	MessageID string
	// ReceivedAt is when the gateway received the event.
	ReceivedAt time.Time
	// JSON is the event as it will be delivered.
	JSON []byte
}

// Store writes events into shard tables through one batcher per node.
// Create one with New; it is safe for concurrent use.
type Store struct {
	cfg     Config
	m       Placement
	metrics *metrics

	mu       sync.Mutex
	closed   bool
	batchers map[string]*batcher // by node name
	// retired are batchers still writing what they hold, after their
	// node's URL changed or their node left the map.
	retired map[*batcher]struct{}
	// prunedFor is the snapshot prune last looked at; read without mu,
	// so that most writes skip prune without taking it.
	prunedFor atomic.Pointer[shard.Snapshot]
}

// New returns a Store that routes by m. Call Close when done.
func New(m Placement, cfg Config) *Store {
	cfg = cfg.WithDefaults()
	return &Store{
		cfg:      cfg,
		m:        m,
		metrics:  newMetrics(cfg.Registerer),
		batchers: map[string]*batcher{},
		retired:  map[*batcher]struct{}{},
	}
}

// Close stops accepting writes, lets every batcher write what it holds,
// and closes the node connection pools.
func (s *Store) Close() {
	s.mu.Lock()
	s.closed = true
	var all []*batcher
	for b := range s.retired {
		all = append(all, b)
	}
	for _, b := range s.batchers {
		all = append(all, b)
	}
	s.batchers = map[string]*batcher{}
	s.retired = map[*batcher]struct{}{}
	s.mu.Unlock()
	for _, b := range all {
		b.close()
	}
}

// batcherFor returns the batcher of node, starting it (and its pool) on
// first use, and replacing it when the node's URL changed.
func (s *Store) batcherFor(node shard.Node) (*batcher, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil, fmt.Errorf("%w: shutting down", ErrUnavailable)
	}
	if b, ok := s.batchers[node.Name]; ok {
		if b.url == node.URL {
			return b, nil
		}
		s.retire(b)
	}
	b, err := newBatcher(node, s.cfg, s.metrics)
	if err != nil {
		return nil, err
	}
	s.batchers[node.Name] = b
	return b, nil
}

// retire closes b, which must no longer be in s.batchers, in the
// background: it writes what it holds meanwhile, and Close waits for it.
// Call with s.mu held.
func (s *Store) retire(b *batcher) {
	s.retired[b] = struct{}{}
	go func() {
		b.close()
		s.mu.Lock()
		delete(s.retired, b)
		s.mu.Unlock()
	}()
}

// nodeDetached is the catalog state of a node that was drained and holds
// no shard.
const nodeDetached = "detached"

// prune retires the batchers of nodes that the map's current snapshot no
// longer lists, or lists as detached, once per snapshot. A write still
// routed by an older snapshot starts such a node's batcher again.
func (s *Store) prune() {
	snap := s.m.Current()
	if snap == nil || snap == s.prunedFor.Load() {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed || snap == s.prunedFor.Load() {
		return
	}
	s.prunedFor.Store(snap)
	for name, b := range s.batchers {
		if n, ok := snap.Nodes[name]; !ok || n.State == nodeDetached {
			delete(s.batchers, name)
			s.retire(b)
		}
	}
}
