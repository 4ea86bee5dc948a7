package console

import (
	"net/http"
	"strconv"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
)

// metrics are the console's Prometheus metrics, on a registry of their own.
type metrics struct {
	registry *prometheus.Registry
	requests *prometheus.CounterVec
	changed  *prometheus.CounterVec
}

func newMetrics() *metrics {
	m := &metrics{
		registry: prometheus.NewRegistry(),
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "ordo_console_requests_total",
			Help: "Console API requests by route and status code.",
		}, []string{"route", "code"}),
		changed: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "ordo_console_dead_letters_total",
			Help: "Dead letters replayed or purged from the console, by action.",
		}, []string{"action"}),
	}
	m.registry.MustRegister(m.requests, m.changed,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return m
}

// Registry returns a registry with every metric the console serves, for
// tools that check dashboards against it.
func Registry() *prometheus.Registry { return newMetrics().registry }

type statusWriter struct {
	http.ResponseWriter
	code int
}

func (w *statusWriter) WriteHeader(code int) {
	w.code = code
	w.ResponseWriter.WriteHeader(code)
}

func (m *metrics) instrument(route string, h http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		sw := &statusWriter{ResponseWriter: w, code: http.StatusOK}
		h(sw, r)
		m.requests.WithLabelValues(route, strconv.Itoa(sw.code)).Inc()
	}
}
