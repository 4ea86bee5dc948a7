// Package metric declares ordo's Prometheus metrics in one call each: its
// constructors take a metric's full name (ordo_<program>_..., written out
// so that dashboards, alert rules and docs can be grepped for it), its help
// and its labels, and register the metric with a Registerer at once, as
// promauto does; a nil Registerer registers nothing.
//
// NewRegistry and RegisterRuntime add the Go runtime and process
// collectors every ordo program serves beside its own metrics, and
// InstrumentHandler counts an HTTP handler's answers by route and status
// code.
package metric
