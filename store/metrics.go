package store

import "github.com/prometheus/client_golang/prometheus"

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

func newMetrics(reg prometheus.Registerer) *metrics {
	m := &metrics{
		batchRows: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "ordo_store_batch_rows",
			Help:    "Rows written per committed batch (one row per event and destination).",
			Buckets: prometheus.ExponentialBuckets(1, 2, 14),
		}),
		batchRequests: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "ordo_store_batch_requests",
			Help:    "Requests answered per committed batch.",
			Buckets: prometheus.ExponentialBuckets(1, 2, 12),
		}),
		commitSeconds: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "ordo_store_commit_seconds",
			Help:    "Time to write and commit one batch, from BEGIN to COMMIT, by node.",
			Buckets: prometheus.ExponentialBuckets(0.0005, 2, 16),
		}, []string{"node"}),
		errors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "ordo_store_batch_errors_total",
			Help: "Failed batch writes by node and kind (stale: shard fenced or moved; unavailable: node down or slow; rejected: data refused).",
		}, []string{"node", "kind"}),
		queueFull: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "ordo_store_queue_full_total",
			Help: "Requests refused because a node's batcher queue stayed full.",
		}, []string{"node"}),
		staleRetries: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "ordo_store_stale_retries_total",
			Help: "Writes routed again after hitting a moved shard.",
		}),
		suspectWrites: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "ordo_store_suspect_node_writes_total",
			Help: "Writes spanning several nodes that went to a recently failed node first, alone.",
		}),
	}
	if reg != nil {
		reg.MustRegister(m.batchRows, m.batchRequests, m.commitSeconds, m.errors, m.queueFull, m.staleRetries, m.suspectWrites)
	}
	return m
}
