package metric

import (
	"testing"

	"github.com/prometheus/client_golang/prometheus"
)

func TestConstructorsRegisterWithReg(t *testing.T) {
	t.Parallel()
	reg := prometheus.NewPedanticRegistry()
	Counter(reg, "test_counter_total", "A counter.").Add(2)
	CounterVec(reg, "test_counter_vec_total", "Counters by a and b.", "a", "b").WithLabelValues("x", "y").Inc()
	Gauge(reg, "test_gauge", "A gauge.").Set(3)
	GaugeVec(reg, "test_gauge_vec", "Gauges by a.", "a").WithLabelValues("x").Set(4)
	Histogram(reg, "test_histogram", "A histogram.", []float64{1, 2}).Observe(1.5)
	HistogramVec(reg, "test_histogram_vec", "Histograms by a.", prometheus.ExponentialBuckets(1, 2, 2), "a").WithLabelValues("x").Observe(3)
	want := `# HELP test_counter_total A counter.
# TYPE test_counter_total counter
test_counter_total 2
# HELP test_counter_vec_total Counters by a and b.
# TYPE test_counter_vec_total counter
test_counter_vec_total{a="x",b="y"} 1
# HELP test_gauge A gauge.
# TYPE test_gauge gauge
test_gauge 3
# HELP test_gauge_vec Gauges by a.
# TYPE test_gauge_vec gauge
test_gauge_vec{a="x"} 4
# HELP test_histogram A histogram.
# TYPE test_histogram histogram
test_histogram_bucket{le="1"} 0
test_histogram_bucket{le="2"} 1
test_histogram_bucket{le="+Inf"} 1
test_histogram_sum 1.5
test_histogram_count 1
# HELP test_histogram_vec Histograms by a.
# TYPE test_histogram_vec histogram
test_histogram_vec_bucket{a="x",le="1"} 0
test_histogram_vec_bucket{a="x",le="2"} 0
test_histogram_vec_bucket{a="x",le="+Inf"} 1
test_histogram_vec_sum{a="x"} 3
test_histogram_vec_count{a="x"} 1
`
	if got := exposition(t, reg); got != want {
		t.Errorf("/metrics =\n%s\nwant\n%s", got, want)
	}
}

func TestNilRegistererRegistersNothing(t *testing.T) {
	t.Parallel()
	// Twice the same name: with a registry, the second would panic.
	Counter(nil, "test_counter_total", "A counter.")
	c := Counter(nil, "test_counter_total", "A counter.")
	c.Inc()
	reg := prometheus.NewRegistry()
	if err := reg.Register(c); err != nil {
		t.Fatalf("registering the counter made with nil: %v", err)
	}
	want := "# HELP test_counter_total A counter.\n# TYPE test_counter_total counter\ntest_counter_total 1\n"
	if got := exposition(t, reg); got != want {
		t.Errorf("/metrics = %q, want %q", got, want)
	}
}

func TestNewRegistryHoldsRuntimeCollectors(t *testing.T) {
	t.Parallel()
	mfs, err := NewRegistry().Gather()
	if err != nil {
		t.Fatal(err)
	}
	names := map[string]bool{}
	for _, mf := range mfs {
		names[mf.GetName()] = true
	}
	for _, want := range []string{"go_goroutines", "process_cpu_seconds_total"} {
		if !names[want] {
			t.Errorf("NewRegistry() lacks %s", want)
		}
	}
}
