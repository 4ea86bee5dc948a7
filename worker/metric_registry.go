package worker

import "github.com/prometheus/client_golang/prometheus"

// MetricRegistry returns a new registry holding every metric the worker
// serves, none of them observed yet, for tools that check dashboards and
// alert rules against the metrics that exist.
func MetricRegistry() *prometheus.Registry { return newMetrics().registry }
