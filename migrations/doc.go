// Package migrations holds ordo's schema migrations, embedded in every
// binary, and the code that applies them.
//
// There are two sets, applied with golang-migrate: the catalog set
// (schema ordo_catalog: nodes, shard placement, moves, worker heartbeats)
// and the node set (schema ordo: the row sequence and dead letters; the
// per-shard tables themselves belong to package schema). River's tables go
// into the catalog database too, in schema ordo_river, applied with River's
// own rivermigrate at the version pinned in go.mod, so upgrading River in
// go.mod and re-running rebalance applies River's new migrations.
//
// The catalog may share a database with a node: the sets use different
// schemas and different migration tables. Applying a set twice is a no-op.
package migrations
