package worker

import (
	"strconv"

	"github.com/ordo-pipeline/ordo/internal/metric"
	"github.com/prometheus/client_golang/prometheus"
)

// metrics are the worker's Prometheus metrics, on a registry of their own.
type metrics struct {
	registry *prometheus.Registry

	shardsOwned    prometheus.Gauge
	shardTarget    prometheus.Gauge
	shardCount     prometheus.Gauge
	liveWorkers    prometheus.Gauge
	delivered      *prometheus.CounterVec
	retried        *prometheus.CounterVec
	deadLettered   *prometheus.CounterVec
	requests       *prometheus.CounterVec
	latency        *prometheus.HistogramVec
	sendDuration   *prometheus.HistogramVec
	lag            *prometheus.GaugeVec
	wakeups        *prometheus.CounterVec
	listenerErrors *prometheus.CounterVec

	shardHeld      *prometheus.GaugeVec
	shardUnowned   *prometheus.GaugeVec
	silentEnded    prometheus.Counter
	orphansClaimed prometheus.Counter
}

func newMetrics() *metrics {
	reg := metric.NewRegistry()
	return &metrics{
		registry: reg,
		shardsOwned: metric.Gauge(reg, "ordo_worker_shards_owned",
			"Shards this worker has claimed and delivers."),
		shardTarget: metric.Gauge(reg, "ordo_worker_shards_target",
			"This worker's fair share of shards: ceil(shards / live workers)."),
		shardCount: metric.Gauge(reg, "ordo_worker_cluster_shards",
			"Shards in the cluster, from the placement map: what the shards owned by all workers should add up to."),
		liveWorkers: metric.Gauge(reg, "ordo_worker_live_workers",
			"Workers with a fresh heartbeat, this one included."),
		delivered: metric.CounterVec(reg, "ordo_worker_events_delivered_total",
			"Events the destination accepted (2xx), by destination.", "destination"),
		retried: metric.CounterVec(reg, "ordo_worker_events_retried_total",
			"Failed attempts that will be retried, by destination.", "destination"),
		deadLettered: metric.CounterVec(reg, "ordo_worker_events_dead_lettered_total",
			"Events moved to dead letters, by destination and reason (status, max_attempts, max_age).", "destination", "reason"),
		requests: metric.CounterVec(reg, "ordo_worker_requests_total",
			"Requests sent to destinations, by destination and status code (0: no response).", "destination", "code"),
		latency: metric.HistogramVec(reg, "ordo_worker_delivery_latency_seconds",
			"Time from an event's receivedAt to its successful delivery, by destination.",
			[]float64{.01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30, 60, 300, 1800, 3600, 10800}, "destination"),
		sendDuration: metric.HistogramVec(reg, "ordo_worker_request_duration_seconds",
			"Duration of one request to a destination, by destination.",
			prometheus.DefBuckets, "destination"),
		lag: metric.GaugeVec(reg, "ordo_worker_shard_lag_seconds",
			"Age of the oldest pending event of each owned shard (0 when none is pending).", "shard"),
		wakeups: metric.CounterVec(reg, "ordo_worker_row_notifications_total",
			"Notifications of committed rows received, by node.", "node"),
		listenerErrors: metric.CounterVec(reg, "ordo_worker_listener_errors_total",
			"Times the connection listening for new rows failed, by node; its shards are polled meanwhile.", "node"),

		shardHeld: metric.GaugeVec(reg, "ordo_worker_shard_held",
			"1 for each shard this worker holds, by shard and node.", "shard", "node"),
		shardUnowned: metric.GaugeVec(reg, "ordo_worker_shard_unowned_seconds",
			"For each active shard that no worker holds, as this worker sees the nodes: for how long nobody has.", "shard"),
		silentEnded: metric.Counter(reg, "ordo_worker_silent_sessions_ended_total",
			"Claim connections of silent workers (cut off or frozen) this worker ended, freeing their shards."),
		orphansClaimed: metric.Counter(reg, "ordo_worker_orphans_claimed_total",
			"Shards nobody held that this worker claimed, above its fair share if it had to."),
	}
}

// destMetrics are one destination's series, looked up once.
type destMetrics struct {
	delivered    prometheus.Counter
	retried      prometheus.Counter
	latency      prometheus.Observer
	sendDuration prometheus.Observer
	m            *metrics
	id           string
}

func (m *metrics) forDestination(id string) *destMetrics {
	return &destMetrics{
		delivered:    m.delivered.WithLabelValues(id),
		retried:      m.retried.WithLabelValues(id),
		latency:      m.latency.WithLabelValues(id),
		sendDuration: m.sendDuration.WithLabelValues(id),
		m:            m,
		id:           id,
	}
}

func (d *destMetrics) dead(reason string, n int) {
	d.m.deadLettered.WithLabelValues(d.id, reason).Add(float64(n))
}

func (d *destMetrics) request(code int) {
	d.m.requests.WithLabelValues(d.id, strconv.Itoa(code)).Inc()
}
