package gateway

import (
	"net/http"
	"time"

	"github.com/ordo-pipeline/ordo/internal/metric"
	"github.com/prometheus/client_golang/prometheus"
)

// metrics are the gateway's Prometheus metrics.
type metrics struct {
	requests *prometheus.CounterVec
	events   *prometheus.CounterVec
	ack      *prometheus.HistogramVec
	byType   map[string]prometheus.Counter // events' children, by type
}

// newMetrics registers the gateway's metrics, and the Go runtime and
// process collectors, with reg.
func newMetrics(reg prometheus.Registerer) *metrics {
	m := &metrics{
		requests: metric.CounterVec(reg, "ordo_gateway_requests_total",
			"HTTP requests by path and status code.", "path", "status"),
		events: metric.CounterVec(reg, "ordo_gateway_events_accepted_total",
			"Events committed and answered 200, by type.", "type"),
		ack: metric.HistogramVec(reg, "ordo_gateway_ack_seconds",
			"Time from receiving an ingest request to answering it 200 (events committed), by path.",
			prometheus.ExponentialBuckets(0.001, 2, 14), "path"),
	}
	m.byType = map[string]prometheus.Counter{}
	for _, t := range Types {
		m.byType[t] = m.events.WithLabelValues(t)
	}
	metric.RegisterRuntime(reg)
	return m
}

// instrument counts h's answers under path.
func (m *metrics) instrument(path string, h http.HandlerFunc) http.HandlerFunc {
	return metric.InstrumentHandler(m.requests, path, h)
}

// acked records an ingest request answered 200.
func (m *metrics) acked(path string, began time.Time, events []*event) {
	m.ack.WithLabelValues(path).Observe(time.Since(began).Seconds())
	for _, ev := range events {
		m.byType[ev.typ].Inc()
	}
}
