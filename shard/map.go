package shard

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
)

// Channel is the notification channel the catalog signals placement (and
// worker membership) changes on.
const Channel = "ordo_placement"

// MapConfig configures a Map.
type MapConfig struct {
	// Poll is how often the map is reloaded when no notification arrives.
	// Defaults to 5 seconds.
	Poll time.Duration
	// Logger defaults to a logger that discards.
	Logger *slog.Logger
}

// Map is the cached placement map of a running gateway or worker. The
// zero value is not usable; create one with NewMap and call Run.
type Map struct {
	pool   *pgxpool.Pool
	cfg    MapConfig
	cur    atomic.Pointer[Snapshot]
	loaded atomic.Int64 // unix nanos of the last successful load

	// load reads the catalog; Load, but tests may stand in for it.
	load func(context.Context, Querier) (*Snapshot, error)

	// refreshing holds a token while a reload runs, so that callers of
	// Refresh take turns and can give up waiting when their ctx ends.
	refreshing chan struct{}
	// lastStart is when the last successful reload began. Only the holder
	// of the refreshing token reads or writes it.
	lastStart time.Time

	subMu sync.Mutex
	subs  []chan struct{}
}

// NewMap returns a Map that reads the catalog through pool.
func NewMap(pool *pgxpool.Pool, cfg MapConfig) *Map {
	if cfg.Poll <= 0 {
		cfg.Poll = 5 * time.Second
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	return &Map{pool: pool, cfg: cfg, load: Load, refreshing: make(chan struct{}, 1)}
}

// Current returns the latest snapshot, or nil before the first load.
func (m *Map) Current() *Snapshot { return m.cur.Load() }

// LoadedAt returns when the map was last loaded successfully.
func (m *Map) LoadedAt() time.Time {
	n := m.loaded.Load()
	if n == 0 {
		return time.Time{}
	}
	return time.Unix(0, n)
}

// Refresh reloads the map now. Concurrent callers share reloads: a caller
// that waited while another reload ran returns without reloading again
// when that reload began after the caller asked, as its result is then at
// least as new as the caller needs; a reload that began before the caller
// asked does not count. Refresh returns ctx's error when ctx ends while it
// waits for another caller's reload.
func (m *Map) Refresh(ctx context.Context) error {
	asked := time.Now()
	select {
	case m.refreshing <- struct{}{}:
	case <-ctx.Done():
		return context.Cause(ctx)
	}
	defer func() { <-m.refreshing }()
	if !m.lastStart.IsZero() && !m.lastStart.Before(asked) {
		return nil
	}
	began := time.Now()
	s, err := m.load(ctx, m.pool)
	if err != nil {
		return err
	}
	m.lastStart = began
	m.cur.Store(s)
	m.loaded.Store(time.Now().UnixNano())
	m.notify()
	return nil
}

// Subscribe returns a channel that receives a value (coalesced, never
// blocking the map) after every reload and every notification.
func (m *Map) Subscribe() <-chan struct{} {
	ch := make(chan struct{}, 1)
	m.subMu.Lock()
	m.subs = append(m.subs, ch)
	m.subMu.Unlock()
	return ch
}

func (m *Map) notify() {
	m.subMu.Lock()
	defer m.subMu.Unlock()
	for _, ch := range m.subs {
		select {
		case ch <- struct{}{}:
		default:
		}
	}
}

// Run keeps the map fresh until ctx ends: it loads it, then listens on
// Channel and reloads on every notification and every Poll interval. A
// lost catalog connection is retried; meanwhile the last snapshot stays in
// use. Run returns ctx's error.
func (m *Map) Run(ctx context.Context) error {
	for {
		err := m.listen(ctx)
		if ctx.Err() != nil {
			return ctx.Err()
		}
		m.cfg.Logger.Warn("shard map: catalog listener failed, retrying", "error", err)
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(time.Second):
		}
	}
}

func (m *Map) listen(ctx context.Context) error {
	pooled, err := m.pool.Acquire(ctx)
	if err != nil {
		return fmt.Errorf("acquiring listener connection: %w", err)
	}
	// A LISTENing connection must not go back to the pool.
	conn := pooled.Hijack()
	defer conn.Close(context.WithoutCancel(ctx)) //nolint:errcheck // closing a connection we are abandoning
	if _, err := conn.Exec(ctx, "LISTEN "+Channel); err != nil {
		return fmt.Errorf("listening: %w", err)
	}
	if err := m.refreshBounded(ctx); err != nil {
		return err
	}
	for {
		wctx, cancel := context.WithTimeout(ctx, m.cfg.Poll)
		_, err := conn.WaitForNotification(wctx)
		cancel()
		if err != nil && !errors.Is(err, context.DeadlineExceeded) {
			return fmt.Errorf("waiting for notification: %w", err)
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if err := m.refreshBounded(ctx); err != nil {
			return err
		}
	}
}

// refreshTimeout bounds one background reload, so a catalog that stops
// answering without closing the connection does not hold up, for long,
// the callers of Refresh that wait their turn.
const refreshTimeout = 10 * time.Second

func (m *Map) refreshBounded(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, refreshTimeout)
	defer cancel()
	return m.Refresh(ctx)
}
