package gateway

import (
	"net/http"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
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
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "ordo_gateway_requests_total",
			Help: "HTTP requests by path and status code.",
		}, []string{"path", "status"}),
		events: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "ordo_gateway_events_accepted_total",
			Help: "Events committed and answered 200, by type.",
		}, []string{"type"}),
		ack: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "ordo_gateway_ack_seconds",
			Help:    "Time from receiving an ingest request to answering it 200 (events committed), by path.",
			Buckets: prometheus.ExponentialBuckets(0.001, 2, 14),
		}, []string{"path"}),
	}
	m.byType = map[string]prometheus.Counter{}
	for _, t := range Types {
		m.byType[t] = m.events.WithLabelValues(t)
	}
	reg.MustRegister(m.requests, m.events, m.ack,
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return m
}

// instrument counts h's answers under path.
func (m *metrics) instrument(path string, h http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		sw := &statusWriter{ResponseWriter: w, status: http.StatusOK}
		h(sw, r)
		m.requests.WithLabelValues(path, strconv.Itoa(sw.status)).Inc()
	}
}

// acked records an ingest request answered 200.
func (m *metrics) acked(path string, began time.Time, events []*event) {
	m.ack.WithLabelValues(path).Observe(time.Since(began).Seconds())
	for _, ev := range events {
		m.byType[ev.typ].Inc()
	}
}

// statusWriter remembers the status code written.
type statusWriter struct {
	http.ResponseWriter
	status int
}

func (w *statusWriter) WriteHeader(code int) {
	w.status = code
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }
