package worker

import (
	"strconv"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
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
	m := &metrics{
		registry: prometheus.NewRegistry(),
		shardsOwned: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "ordo_worker_shards_owned",
			Help: "Shards this worker has claimed and delivers.",
		}),
		shardTarget: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "ordo_worker_shards_target",
			Help: "This worker's fair share of shards: ceil(shards / live workers).",
		}),
		shardCount: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "ordo_worker_cluster_shards",
			Help: "Shards in the cluster, from the placement map: what the shards owned by all workers should add up to.",
		}),
		liveWorkers: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "ordo_worker_live_workers",
			Help: "Workers with a fresh heartbeat, this one included.",
		}),
		delivered: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "ordo_worker_events_delivered_total",
			Help: "Events the destination accepted (2xx), by destination.",
		}, []string{"destination"}),
		retried: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "ordo_worker_events_retried_total",
			Help: "Failed attempts that will be retried, by destination.",
		}, []string{"destination"}),
		deadLettered: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "ordo_worker_events_dead_lettered_total",
			Help: "Events moved to dead letters, by destination and reason (status, max_attempts, max_age).",
		}, []string{"destination", "reason"}),
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "ordo_worker_requests_total",
			Help: "Requests sent to destinations, by destination and status code (0: no response).",
		}, []string{"destination", "code"}),
		latency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "ordo_worker_delivery_latency_seconds",
			Help:    "Time from an event's receivedAt to its successful delivery, by destination.",
			Buckets: []float64{.01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30, 60, 300, 1800, 3600, 10800},
		}, []string{"destination"}),
		sendDuration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "ordo_worker_request_duration_seconds",
			Help:    "Duration of one request to a destination, by destination.",
			Buckets: prometheus.DefBuckets,
		}, []string{"destination"}),
		lag: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "ordo_worker_shard_lag_seconds",
			Help: "Age of the oldest pending event of each owned shard (0 when none is pending).",
		}, []string{"shard"}),
		wakeups: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "ordo_worker_row_notifications_total",
			Help: "Notifications of committed rows received, by node.",
		}, []string{"node"}),
		listenerErrors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "ordo_worker_listener_errors_total",
			Help: "Times the connection listening for new rows failed, by node; its shards are polled meanwhile.",
		}, []string{"node"}),
	}
	m.shardHeld = prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "ordo_worker_shard_held",
		Help: "1 for each shard this worker holds, by shard and node.",
	}, []string{"shard", "node"})
	m.shardUnowned = prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "ordo_worker_shard_unowned_seconds",
		Help: "For each active shard that no worker holds, as this worker sees the nodes: for how long nobody has.",
	}, []string{"shard"})
	m.silentEnded = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "ordo_worker_silent_sessions_ended_total",
		Help: "Claim connections of silent workers (cut off or frozen) this worker ended, freeing their shards.",
	})
	m.orphansClaimed = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "ordo_worker_orphans_claimed_total",
		Help: "Shards nobody held that this worker claimed, above its fair share if it had to.",
	})
	m.registry.MustRegister(m.shardsOwned, m.shardTarget, m.shardCount, m.liveWorkers, m.delivered, m.retried,
		m.deadLettered, m.requests, m.latency, m.sendDuration, m.lag, m.wakeups, m.listenerErrors,
		m.shardHeld, m.shardUnowned, m.silentEnded, m.orphansClaimed,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return m
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
