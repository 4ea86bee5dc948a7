package metric

import (
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
)

func TestInstrumentHandlerCountsByRouteAndCode(t *testing.T) {
	t.Parallel()
	reg := prometheus.NewRegistry()
	requests := CounterVec(reg, "test_requests_total", "Requests by route and code.", "route", "code")
	ok := InstrumentHandler(requests, "ok", func(w http.ResponseWriter, _ *http.Request) {
		_, _ = w.Write([]byte("ok"))
	})
	missing := InstrumentHandler(requests, "missing", func(w http.ResponseWriter, _ *http.Request) {
		http.Error(w, "no", http.StatusNotFound)
	})
	for _, h := range []http.HandlerFunc{ok, ok, missing} {
		rec := httptest.NewRecorder()
		h(rec, httptest.NewRequest(http.MethodGet, "/", nil))
	}
	want := `# HELP test_requests_total Requests by route and code.
# TYPE test_requests_total counter
test_requests_total{code="200",route="ok"} 2
test_requests_total{code="404",route="missing"} 1
`
	if got := exposition(t, reg); got != want {
		t.Errorf("/metrics =\n%s\nwant\n%s", got, want)
	}
}

func TestInstrumentHandlerUnwraps(t *testing.T) {
	t.Parallel()
	requests := CounterVec(prometheus.NewRegistry(), "test_requests_total", "Requests by route and code.", "route", "code")
	rec := httptest.NewRecorder()
	InstrumentHandler(requests, "flush", func(w http.ResponseWriter, _ *http.Request) {
		if err := http.NewResponseController(w).Flush(); err != nil {
			t.Errorf("Flush() = %v, want nil", err)
		}
	})(rec, httptest.NewRequest(http.MethodGet, "/", nil))
	if !rec.Flushed {
		t.Error("the recorder was not flushed")
	}
}
