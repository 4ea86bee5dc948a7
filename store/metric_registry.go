package store

import "github.com/prometheus/client_golang/prometheus"

// MetricRegistry returns a new registry holding every metric the store
// registers, none of them observed yet, for tools that check dashboards
// and alert rules against the metrics that exist.
func MetricRegistry() *prometheus.Registry {
	r := prometheus.NewRegistry()
	newMetrics(r)
	return r
}
