package store

import (
	"github.com/ordo-pipeline/ordo/internal/metric"
	"github.com/prometheus/client_golang/prometheus"
)

// metrics are the store's Prometheus metrics.
type metrics struct {
	batchRows     prometheus.Histogram
	batchRequests prometheus.Histogram
	commitSeconds *prometheus.HistogramVec
	errors        *prometheus.CounterVec
	queueFull     *prometheus.CounterVec
	staleRetries  prometheus.Counter
	suspectWrites prometheus.Counter
}

// newMetrics returns the store's metrics, registered with reg unless reg
// is nil.
func newMetrics(reg prometheus.Registerer) *metrics {
	return &metrics{
		batchRows: metric.Histogram(reg, "ordo_store_batch_rows",
			"Rows written per committed batch (one row per event and destination).",
			prometheus.ExponentialBuckets(1, 2, 14)),
		batchRequests: metric.Histogram(reg, "ordo_store_batch_requests",
			"Requests answered per committed batch.",
			prometheus.ExponentialBuckets(1, 2, 12)),
		commitSeconds: metric.HistogramVec(reg, "ordo_store_commit_seconds",
			"Time to write and commit one batch, from BEGIN to COMMIT, by node.",
			prometheus.ExponentialBuckets(0.0005, 2, 16), "node"),
		errors: metric.CounterVec(reg, "ordo_store_batch_errors_total",
			"Failed batch writes by node and kind (stale: shard fenced or moved; unavailable: node down or slow; rejected: data refused).", "node", "kind"),
		queueFull: metric.CounterVec(reg, "ordo_store_queue_full_total",
			"Requests refused because a node's batcher queue stayed full.", "node"),
		staleRetries: metric.Counter(reg, "ordo_store_stale_retries_total",
			"Writes routed again after hitting a moved shard."),
		suspectWrites: metric.Counter(reg, "ordo_store_suspect_node_writes_total",
			"Writes spanning several nodes that went to a recently failed node first, alone."),
	}
}
