package worker

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/ordo-pipeline/ordo/deliver"
	"github.com/ordo-pipeline/ordo/internal/cli"
	"github.com/ordo-pipeline/ordo/internal/dsn"
	"github.com/ordo-pipeline/ordo/migrations"
	"github.com/ordo-pipeline/ordo/shard"
	"github.com/ordo-pipeline/ordo/workspace"
)

// Options are what a caller of Run may add to the settings.
type Options struct {
	// Logger defaults to a logger that discards.
	Logger *slog.Logger
	// AdminReady, when set, is called with the admin server's address
	// once it listens.
	AdminReady func(addr string)
}

// Run delivers events until ctx ends, then drains: requests in flight
// finish, their rows are acknowledged, every shard is released and the
// heartbeat row deleted. It returns nil after a clean drain. A workspace
// file that cannot be loaded is a *cli.SettingError naming
// ORDO_WORKSPACE_CONFIG.
func Run(ctx context.Context, cfg *Config, opts Options) error {
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	ws, err := workspace.Load(cfg.WorkspaceConfig)
	if err != nil {
		return &cli.SettingError{Var: "ORDO_WORKSPACE_CONFIG", Msg: err.Error()}
	}
	m := newMetrics()
	dests, order, err := destinations(ws, m, cfg.Concurrency)
	if err != nil {
		return &cli.SettingError{Var: "ORDO_WORKSPACE_CONFIG", Msg: err.Error()}
	}
	id := cfg.ID
	if id == "" {
		id = defaultID()
	}
	log = log.With("worker", id)

	poolCfg, err := pgxpool.ParseConfig(cfg.CatalogURL)
	if err != nil {
		return &cli.SettingError{Var: "ORDO_CATALOG_URL", Msg: "not a valid Postgres URL: " + err.Error()}
	}
	configure(&poolCfg.ConnConfig.Config, cfg.KeepAlive, "ordo-worker "+id)
	poolCfg.MaxConns = 4
	pool, err := pgxpool.NewWithConfig(ctx, poolCfg)
	if err != nil {
		return fmt.Errorf("catalog: %w", err)
	}
	defer pool.Close()

	mgr := &manager{
		cfg:       cfg,
		id:        id,
		log:       log,
		catalog:   pool,
		smap:      shard.NewMap(pool, shard.MapConfig{Poll: cfg.MapPoll, Logger: log}),
		metrics:   m,
		dests:     dests,
		destOrder: order,
		sessions:  map[string][]*session{},
		nodeDown:  map[string]time.Time{},
		claims:    map[int]*claim{},
		cooldown:  map[int]time.Time{},
		done:      make(chan *claim),
		watches:   map[string]*nodeWatch{},
		reports:   make(chan watchReport),
		orph:      newOrphanState(),
		pinger:    &pinger{every: cfg.Heartbeat},
		owners:    newOwners(id, pool, cfg.DBTimeout, log),
	}
	mgr.live.Store(1)
	if addr := cfg.AdminAddr; addr != "" {
		a, err := startAdmin(addr, m, mgr.ready, log)
		if err != nil {
			return &cli.SettingError{Var: "ORDO_ADMIN_ADDR", Msg: err.Error()}
		}
		defer a.stop()
		if opts.AdminReady != nil {
			opts.AdminReady(a.Addr())
		}
	}

	if err := waitForMap(ctx, mgr.smap, log, cfg.CatalogURL); err != nil {
		return err
	}
	if ctx.Err() != nil {
		// Stopped before the map loaded: nothing claimed, no heartbeat
		// written.
		log.Info("stopped before the shard map loaded")
		return nil
	}
	// The catalog may have been migrated by an older rebalance: the tables
	// of failover (leases, shard owners) come with this worker. A failure
	// (a catalog newer than this worker, say) only costs those records.
	if err := migrations.Catalog(ctx, cfg.CatalogURL, log); err != nil {
		log.Warn("migrating the catalog failed; going on without it", "error", err)
	}
	mapCtx, stopMap := context.WithCancel(context.WithoutCancel(ctx))
	mapDone := make(chan struct{})
	go func() {
		defer close(mapDone)
		mgr.smap.Run(mapCtx) //nolint:errcheck // returns the context's error
	}()
	defer func() {
		stopMap()
		<-mapDone
	}()
	if cfg.VacuumRows > 0 {
		vctx, stopVacuum := context.WithCancel(context.WithoutCancel(ctx))
		mgr.vacuum = newVacuumer(vctx, &cfg.Tuning, log, "ordo-worker "+id)
		defer func() {
			stopVacuum()
			mgr.vacuum.wait()
		}()
	}
	mgr.waker = newWaker(log, &cfg.Tuning, "ordo-worker "+id, m)
	wctx, stopWaker := context.WithCancel(context.WithoutCancel(ctx))
	wakerDone := make(chan struct{})
	go func() {
		defer close(wakerDone)
		mgr.waker.run(wctx, mgr.smap)
	}()
	defer func() {
		stopWaker()
		<-wakerDone
	}()
	if cfg.Moves > 0 {
		stopMoves := runMoves(ctx, cfg, m, log)
		defer stopMoves()
	}
	log.Info("worker started", "shards", mgr.smap.Current().Count(), "destinations", len(order))
	return mgr.run(ctx)
}

// waitForMap loads the shard map, retrying while the catalog is down or not
// yet bootstrapped. It returns nil, with no map, when ctx ends first.
func waitForMap(ctx context.Context, smap *shard.Map, log *slog.Logger, url string) error {
	for {
		err := smap.Refresh(ctx)
		if err == nil {
			return nil
		}
		if ctx.Err() != nil {
			return nil //nolint:nilerr // stopped before starting: a clean exit
		}
		if errors.Is(err, shard.ErrNotBootstrapped) {
			log.Warn("waiting for the cluster to be bootstrapped", "catalog", dsn.Redact(url))
		} else {
			log.Warn("waiting for the catalog", "catalog", dsn.Redact(url), "error", err)
		}
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(2 * time.Second):
		}
	}
}

// destinations builds the workspace's destinations.
func destinations(ws *workspace.Workspace, m *metrics, concurrency int) (map[string]*destination, []*destination, error) {
	byID := map[string]*destination{}
	var order []*destination
	for _, wd := range ws.Destinations {
		send, err := deliver.New(wd.Type, wd.Config)
		if err != nil {
			return nil, nil, fmt.Errorf("destination %q: %w", wd.ID, err)
		}
		d := &destination{
			id:      wd.ID,
			send:    send,
			retry:   wd.Retry,
			metrics: m.forDestination(wd.ID),
			sem:     make(chan struct{}, concurrency),
		}
		byID[wd.ID] = d
		order = append(order, d)
	}
	return byID, order, nil
}

func defaultID() string {
	host, _ := os.Hostname()
	b := make([]byte, 4)
	rand.Read(b) //nolint:errcheck // never fails
	return fmt.Sprintf("%s-%d-%s", host, os.Getpid(), hex.EncodeToString(b))
}
