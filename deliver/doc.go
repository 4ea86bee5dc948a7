// Package deliver sends stored events to destinations.
//
// A destination type (only "webhook" for now) is a [Destination]: it says how
// many events one request may carry and sends them as one unit, returning a
// [Result] that tells the worker whether the events were accepted, should be
// retried later, or must be dead-lettered at once. [New], [KnownType] and
// [ValidateConfig] look types up by name, so package workspace can refuse an
// unknown type or a bad config when the workspace file is loaded, long before
// the first event is sent.
//
// [Backoff] computes the wait before the next attempt of a failed delivery.
//
// Adding a destination type means writing its config parser and its
// Destination, and listing it in the registry in deliver.go.
package deliver
