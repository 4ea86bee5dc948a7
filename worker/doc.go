// Package worker delivers stored events to their destinations: it claims
// whole shards, reads each claimed shard's rows in (epoch, seq) order and
// sends them, keeping the order of every ordering key per destination.
//
// # Claims
//
// A worker claims a shard by taking the shard's session-level advisory lock
// (schema.TryLockSQL) on the node that holds the shard. The lock is taken on
// one of a few dedicated connections per node (ORDO_WORKER_NODE_CONNS,
// default 2), and every read and every acknowledgement of the shard (deletes,
// dead-letter moves, retry bookkeeping) runs on that same connection: when it
// dies, the lock and the power to acknowledge die with it. One connection per
// claimed shard would need ⌈S/W⌉ connections per worker (128 for a lone
// worker on a default cluster, beyond Postgres' default max_connections of
// 100); one per node would serialise every shard of a node on one socket. A
// few per node, each shard pinned to one, bounds both. Connections use TCP
// keepalives and TCP_USER_TIMEOUT on both ends, so a dead peer is noticed in
// seconds rather than hours.
//
// # Fair share
//
// Each worker keeps a heartbeat row in ordo_catalog.workers. With W workers
// whose heartbeat is fresh (ORDO_WORKER_LIVENESS, default 5s) each aims at
// ⌈S/W⌉ shards: above it, it releases its least preferred shards between
// batches; below it, it tries free ones in its own preference order
// (rendezvous hashing of worker id and shard, so workers seldom contend and
// a shard tends to return to the same worker). A shard whose placement is
// 'moving', or that the map shows on another node than the one its lock is
// held on, is let go at once.
//
// # Failover
//
// A worker that still heartbeats but cannot reach a node, or that went
// silent (frozen, cut off without a reset), keeps its shards' locks for as
// long as the node keeps its sessions. Every worker watches every node
// (watch.go): it ends the claim sessions of other workers idle past
// ORDO_WORKER_SILENCE (live workers ping theirs every heartbeat, see
// pinger.go), and claims, above its fair share if need be, the shards so
// freed and those nobody has held past the liveness window (orphans.go).
// Workers also execute shard moves (ORDO_WORKER_MOVES, see moves.go), so a
// rebalance killed or cut off mid-move does not leave a shard fenced.
//
// # Delivery
//
// Per claimed shard, one goroutine owns the shard's state. It reads rows past
// a cursor in (epoch, seq) order, a window at a time, into lanes: the queue
// of one (destination, ordering key). Ready lanes of a destination are sent
// in parallel (bounded), a lane's consecutive events and the heads of other
// lanes sharing a request up to the destination's MaxBatchSize; a lane has
// at most one request in flight, so its events go out in order. A retryable
// failure blocks the lanes of the request until their backoff ends (the
// barrier) while other lanes go on; a non-retryable status, MaxAttempts or
// MaxAge dead-letters events, with their last status and response, and
// unblocks the lane. An event that reached MaxAge while it waited behind the
// barrier is dead-lettered without another request (an event never
// attempted still gets its first). Delivered rows are deleted in batches; retry
// bookkeeping (attempts, next_attempt_at, last status) is written to the row
// so a restart respects it. When the shard's buffer (ORDO_WORKER_BUFFER)
// fills, the rows of blocked lanes are spilled: dropped from memory and read
// again, by lane, once the lane moves, so a failing destination or key
// cannot stall the others however long it fails.
//
// A refused request (a non-retryable status) that carried several events
// dead-letters none of them: each lane's head is then sent alone until it
// succeeds, so only the event actually refused is dead-lettered. Lanes of a
// request that failed retryably are likewise retried alone.
//
// Reading relies on writers: every insert into a shard table holds the
// shard's transaction-level write lock (schema.LockForWrite) from before it
// draws sequence numbers until it commits, so a shard's rows become visible
// in (epoch, seq) order and none ever appears behind the read cursor. Each
// read is one statement, and each row is read once (again only after its
// lane spilled it). Rebalance copies rows of older epochs into a target
// table only while the shard is 'moving', when no worker holds it.
//
// A loop reads when it starts, when a notification says rows committed in
// its shard, and every ORDO_WORKER_POLL (30s) as a safety net: writers
// notify the node's ordo_rows channel in their transaction, and each
// worker listens on one connection per node (see waker in wake.go). While a
// node's listener is down, its shards are polled every 500ms instead.
//
// # Queue hygiene
//
// Delivered rows are deleted in batches (every ORDO_WORKER_FLUSH_INTERVAL or
// 1000 rows). Autovacuum visits a database once per autovacuum_naptime (a
// minute by default), during which a busy shard table grows by every row
// written, so the worker also runs VACUUM on a table after deleting
// ORDO_WORKER_VACUUM_ROWS rows from it (at most every
// ORDO_WORKER_VACUUM_EVERY), on a connection of its own. The soak of `make
// bench` measures table sizes with it.
//
// # Files
//
// The process: main.go (flags, signals), worker.go (Run), config.go,
// admin.go (/health, /ready, /metrics), metrics.go, metric_registry.go
// (every metric, for checking dashboards and alert rules).
//
// Claims: manager.go (the claim manager's state and loop), heartbeat.go,
// share.go (fair share and preference), claims.go (taking and letting go
// of a shard), claim_conns.go (the connections claims share, per node),
// session.go (one such connection: its lock and statements).
//
// Failover: watch.go (watching every node's sessions), orphans.go,
// pinger.go, owners.go (ordo_catalog.shard_owners), moves.go (executing
// moves).
//
// Delivery of one shard: shard_loop.go (the loop: when to read, send,
// flush and let go), shard_read.go (reads, spills, reloads), shard_send.go
// (what to send, and what a result means), requests.go (requests in
// flight), shard_sql.go (its statements), lane.go
// (one lane), lane_set.go (a shard's lanes and what schedules them),
// row.go, acks.go (what a flush writes), judge.go (retry or dead letter),
// destination.go, unknown_dest.go, wake.go (waking loops on commit),
// vacuum.go.
package worker
