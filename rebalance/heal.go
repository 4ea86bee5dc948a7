package rebalance

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// HealConfig configures Heal.
type HealConfig struct {
	// Logger defaults to a logger that discards.
	Logger *slog.Logger
	// Registerer receives the move metrics (ordo_rebalance_*); nil keeps
	// them unexported.
	Registerer prometheus.Registerer
	// Concurrency is how many moves run at once in this process. Defaults
	// to 1.
	Concurrency int
	// Every is how often abandoned moves are looked for. Defaults to 1
	// second.
	Every time.Duration
}

// healPoll is how often a healing process looks for move jobs when no
// notification comes: new jobs notify, so this only bounds a lost one.
const healPoll = 2 * time.Second

// Heal executes move jobs, as a rebalance run does, and resumes the moves
// that nobody executes, until ctx ends: the moves of a rebalance that was
// killed or cut off from the catalog, which would otherwise leave a shard
// refusing writes (fenced, not flipped) or undelivered (flipped, not
// copied) until someone ran rebalance again. Every Every, it ends the
// catalog session of executors whose lease expired (they are silent) and
// gives a fresh job to every open move whose lock is free and that has no
// job waiting. Workers run it, so moves heal without an operator.
//
// It returns nil when ctx ends, after waiting up to shutdownWait for the
// moves in flight; an error only when it cannot start.
func Heal(ctx context.Context, catalogURL string, cfg HealConfig) error {
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if cfg.Concurrency <= 0 {
		cfg.Concurrency = 1
	}
	if cfg.Every <= 0 {
		cfg.Every = time.Second
	}
	reg := cfg.Registerer
	if reg == nil {
		reg = prometheus.NewRegistry()
	}
	pool, err := catalogPool(ctx, catalogURL)
	if err != nil {
		return err
	}
	defer pool.Close()
	client, err := newRiverClient(pool, log, metricsOn(reg), &nodeMigrator{log: log}, cfg.Concurrency, 1, healPoll)
	if err != nil {
		return fmt.Errorf("preparing move executor: %w", err)
	}
	if err := client.Start(context.WithoutCancel(ctx)); err != nil {
		return fmt.Errorf("starting move executor: %w", err)
	}
	defer func() {
		stopCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), shutdownWait)
		defer cancel()
		if err := client.Stop(stopCtx); err != nil {
			log.Warn("moves in flight did not stop in time", "error", err)
		}
	}()
	tick := time.NewTicker(cfg.Every)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-tick.C:
		}
		if _, err := expireLeases(ctx, pool, log); err != nil && ctx.Err() == nil {
			log.Warn("looking for silent move executors failed", "error", err)
		}
		if err := resumeOrphans(ctx, pool, client, log); err != nil && ctx.Err() == nil {
			log.Warn("resuming abandoned moves failed", "error", err)
		}
	}
}
