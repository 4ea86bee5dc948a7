package metric

import (
	"net/http"
	"strconv"

	"github.com/prometheus/client_golang/prometheus"
)

// InstrumentHandler returns h counting each of its answers in requests,
// whose two labels are the route and the status code: route, and the code
// h wrote (200 when it wrote none before its body, or nothing).
func InstrumentHandler(requests *prometheus.CounterVec, route string, h http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		sw := &statusWriter{ResponseWriter: w, status: http.StatusOK}
		h(sw, r)
		requests.WithLabelValues(route, strconv.Itoa(sw.status)).Inc()
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
