package worker

import (
	"context"
	"log/slog"

	"github.com/ordo-pipeline/ordo/rebalance"
)

// runMoves executes shard moves beside delivery (rebalance.Heal) until the
// returned function is called, which waits for the moves in flight to
// reach a step boundary (bounded by rebalance's shutdown wait). Workers are
// always running: with them executing move jobs and resuming abandoned
// moves, a rebalance killed or cut off mid-move does not leave a shard
// fenced or undelivered until an operator runs rebalance again.
func runMoves(ctx context.Context, cfg *Config, m *metrics, log *slog.Logger) (stop func()) {
	ctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	done := make(chan struct{})
	go func() {
		defer close(done)
		err := rebalance.Heal(ctx, cfg.CatalogURL, rebalance.HealConfig{
			Logger:      log.With("component", "moves"),
			Registerer:  m.registry,
			Concurrency: cfg.Moves,
		})
		if err != nil {
			log.Error("executing moves stopped", "error", err)
		}
	}()
	return func() {
		cancel()
		<-done
	}
}
