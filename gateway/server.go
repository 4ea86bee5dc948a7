package gateway

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/ordo-pipeline/ordo/shard"
	"github.com/ordo-pipeline/ordo/store"
	"github.com/ordo-pipeline/ordo/workspace"
	"github.com/prometheus/client_golang/prometheus"
)

// Options are what a Gateway takes besides its settings.
type Options struct {
	// Logger defaults to a logger that discards.
	Logger *slog.Logger
	// MapPoll is how often the shard map is reloaded when no notification
	// arrives. /ready fails once the last successful load is older than
	// three times MapPoll. Defaults to 5 seconds.
	MapPoll time.Duration
	// ShutdownTimeout bounds how long Run waits for in-flight requests
	// after its context ends. Defaults to the write timeout plus 10
	// seconds.
	ShutdownTimeout time.Duration
}

// Gateway is a running ingest server's state: the workspace, the shard
// map it keeps fresh, the store and the metrics. Create one with New and
// serve its Handler; Close it when done.
type Gateway struct {
	cfg      Config
	opts     Options
	ws       *workspace.Workspace
	log      *slog.Logger
	catalog  *pgxpool.Pool
	shards   *shard.Map
	store    *store.Store
	registry *prometheus.Registry
	metrics  *metrics
	inflight *inflight
	// publicURL is ORDO_PUBLIC_URL parsed; nil when not set.
	publicURL *url.URL

	stopMap context.CancelFunc
	mapDone chan struct{}
}

// New starts a gateway for the validated cfg and workspace ws: it begins
// loading and following the shard map in the background (the catalog need
// not be up yet; /ready says when the map is loaded). Call Close when
// done.
func New(cfg Config, ws *workspace.Workspace, opts Options) (*Gateway, error) {
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.MapPoll <= 0 {
		opts.MapPoll = 5 * time.Second
	}
	if opts.ShutdownTimeout <= 0 {
		opts.ShutdownTimeout = cfg.WriteTimeout + 10*time.Second
	}
	var publicURL *url.URL
	if cfg.PublicURL != "" {
		u, err := parsePublicURL(cfg.PublicURL)
		if err != nil {
			return nil, fmt.Errorf("public url: %w", err)
		}
		publicURL = u
	}
	pcfg, err := pgxpool.ParseConfig(cfg.CatalogURL)
	if err != nil {
		return nil, fmt.Errorf("catalog url: %w", err)
	}
	pcfg.MaxConns = 4
	catalog, err := pgxpool.NewWithConfig(context.Background(), pcfg)
	if err != nil {
		return nil, fmt.Errorf("catalog: %w", err)
	}
	reg := prometheus.NewRegistry()
	g := &Gateway{
		cfg:      cfg,
		opts:     opts,
		ws:       ws,
		log:      opts.Logger,
		catalog:  catalog,
		registry: reg,
		metrics:  newMetrics(reg),
		mapDone:  make(chan struct{}),

		publicURL: publicURL,
	}
	g.inflight = newInflight(int64(cmp.Or(cfg.MaxInflightMiB, defaultInflightMiB))<<20, reg)
	g.shards = shard.NewMap(catalog, shard.MapConfig{Poll: opts.MapPoll, Logger: opts.Logger})
	g.store = store.New(g.shards, store.Config{
		MaxRows:      cfg.BatchMaxRows,
		MaxWait:      cfg.BatchMaxWait,
		Writers:      cfg.BatchWriters,
		MaxConns:     int32(cfg.BatchWriters) + 2,
		WriteTimeout: cfg.WriteTimeout,
		Logger:       opts.Logger,
		Registerer:   reg,
	})
	ctx, cancel := context.WithCancel(context.Background())
	g.stopMap = cancel
	go func() {
		defer close(g.mapDone)
		g.shards.Run(ctx) //nolint:errcheck // returns ctx's error
	}()
	return g, nil
}

// Close writes what the store holds, stops following the shard map and
// closes the catalog connections. Stop serving the Handler first.
func (g *Gateway) Close() {
	g.store.Close()
	g.stopMap()
	<-g.mapDone
	g.catalog.Close()
}

// Ready reports whether the shard map is loaded and was reloaded from the
// catalog within the last three poll intervals.
func (g *Gateway) Ready() bool {
	return g.shards.Current() != nil && time.Since(g.shards.LoadedAt()) < 3*g.opts.MapPoll
}

// Run serves the gateway on cfg.HTTPAddr until ctx ends, then stops
// accepting connections, waits for in-flight requests (up to
// Options.ShutdownTimeout), writes what the store holds and returns nil.
// It returns an error when it cannot listen or serve.
func Run(ctx context.Context, cfg Config, ws *workspace.Workspace, opts Options) error {
	g, err := New(cfg, ws, opts)
	if err != nil {
		return err
	}
	defer g.Close()
	ln, err := net.Listen("tcp", cfg.HTTPAddr)
	if err != nil {
		return fmt.Errorf("listening: %w", err)
	}
	srv := &http.Server{
		Handler:           g.Handler(),
		ReadHeaderTimeout: cmp.Or(cfg.ReadHeaderTimeout, defaultReadHeaderTimeout),
		ReadTimeout:       cmp.Or(cfg.ReadTimeout, defaultReadTimeout),
		IdleTimeout:       cmp.Or(cfg.IdleTimeout, defaultIdleTimeout),
		MaxHeaderBytes:    maxHeaderBytes,
		ErrorLog:          slog.NewLogLogger(g.log.Handler(), slog.LevelWarn),
	}
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()
	g.log.Info("gateway listening", "addr", ln.Addr().String(), "sources", len(ws.Sources))

	select {
	case err := <-served:
		return fmt.Errorf("serving: %w", err)
	case <-ctx.Done():
	}
	g.log.Info("shutting down: finishing in-flight requests")
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), g.opts.ShutdownTimeout)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil {
		g.log.Warn("in-flight requests did not finish in time", "error", err)
		srv.Close() //nolint:errcheck // closing after a failed graceful shutdown
	}
	if err := <-served; !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("serving: %w", err)
	}
	g.log.Info("gateway stopped")
	return nil
}
