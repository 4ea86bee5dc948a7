// Package overview is the cluster as an operator sees it: `rebalance
// status`'s report (nodes, shards, pending events and dead letters per
// node, moves in progress), plus, per shard, the age of its oldest pending
// event (lag) and the worker that holds it, and the workers with their
// heartbeats. `ordoctl status` prints it; the console serves it as JSON.
//
// Which worker holds a shard is read on the shard's node: the session
// that holds the shard's advisory lock (schema.LockSQL), named by its
// application_name, which workers set to "ordo-worker <id>".
package overview
