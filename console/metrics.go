package console

import (
	"net/http"

	"github.com/ordo-pipeline/ordo/internal/metric"
	"github.com/prometheus/client_golang/prometheus"
)

// metrics are the console's Prometheus metrics, on a registry of their own.
type metrics struct {
	registry *prometheus.Registry
	requests *prometheus.CounterVec
	changed  *prometheus.CounterVec
}

func newMetrics() *metrics {
	reg := metric.NewRegistry()
	return &metrics{
		registry: reg,
		requests: metric.CounterVec(reg, "ordo_console_requests_total",
			"Console API requests by route and status code.", "route", "code"),
		changed: metric.CounterVec(reg, "ordo_console_dead_letters_total",
			"Dead letters replayed or purged from the console, by action.", "action"),
	}
}

// Registry returns a registry with every metric the console serves, for
// tools that check dashboards against it.
func Registry() *prometheus.Registry { return newMetrics().registry }

// instrument counts h's answers under route.
func (m *metrics) instrument(route string, h http.HandlerFunc) http.HandlerFunc {
	return metric.InstrumentHandler(m.requests, route, h)
}
