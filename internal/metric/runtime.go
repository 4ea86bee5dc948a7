package metric

import (
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
)

// NewRegistry returns a registry of a program's own, holding the Go
// runtime and process collectors (see RegisterRuntime).
func NewRegistry() *prometheus.Registry {
	reg := prometheus.NewRegistry()
	RegisterRuntime(reg)
	return reg
}

// RegisterRuntime registers the Go runtime's collector (go_*) and the
// process's (process_*) with reg.
func RegisterRuntime(reg prometheus.Registerer) {
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
}
