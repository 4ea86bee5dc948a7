package rebalance

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"net/http"
	"time"

	"github.com/ordo-pipeline/ordo/internal/metric"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// metrics are what a rebalance run exposes with --metrics-addr.
type metrics struct {
	registry    *prometheus.Registry // nil when registered elsewhere
	moves       *prometheus.CounterVec
	rowsCopied  prometheus.Counter
	moveSeconds prometheus.Histogram
	stepSeconds *prometheus.HistogramVec
}

// newMetrics returns metrics on a registry of their own, with the Go and
// process collectors, for a rebalance run.
func newMetrics() *metrics {
	reg := metric.NewRegistry()
	m := metricsOn(reg)
	m.registry = reg
	return m
}

// metricsOn registers the move metrics on reg: a process that executes
// moves besides its own work (a worker) adds them to its own metrics.
func metricsOn(reg prometheus.Registerer) *metrics {
	return &metrics{
		moves: metric.CounterVec(reg, "ordo_rebalance_moves_total",
			"Shard moves executed by this process, by result (done, failed, retried).", "result"),
		rowsCopied: metric.Counter(reg, "ordo_rebalance_rows_copied_total",
			"Pending rows copied to target nodes by this process."),
		moveSeconds: metric.Histogram(reg, "ordo_rebalance_move_seconds",
			"Time one move attempt took in this process.",
			prometheus.ExponentialBuckets(0.05, 2, 14)),
		stepSeconds: metric.HistogramVec(reg, "ordo_rebalance_step_seconds",
			"Time each move step took; fenced→flipped is the write pause.",
			prometheus.ExponentialBuckets(0.001, 2, 16), "step"),
	}
}

// serveMetrics serves /metrics on addr until ctx ends.
func serveMetrics(ctx context.Context, addr string, m *metrics, log *slog.Logger) error {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return err
	}
	mux := http.NewServeMux()
	mux.Handle("/metrics", promhttp.HandlerFor(m.registry, promhttp.HandlerOpts{}))
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	log.Info("metrics listening", "addr", ln.Addr().String())
	go func() {
		<-ctx.Done()
		_ = srv.Close()
	}()
	go func() {
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			log.Warn("metrics server failed", "error", err)
		}
	}()
	return nil
}
