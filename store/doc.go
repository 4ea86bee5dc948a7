// Package store writes accepted events durably into their shard tables.
//
// [Store.Write] routes each event by its ordering key to its shard and the
// shard to its node (the placement map of package shard), and hands the
// rows (one per event and destination of its source) to that node's
// batcher. A batcher gathers rows from all concurrent requests for a few
// milliseconds or up to a row limit, writes them in one transaction with
// one COPY per shard table touched, and answers each request once its rows
// are committed. Each node has its own batcher, connection pool and
// goroutine, so a slow or dead node holds up only the requests that need
// it.
//
// # Guarantees
//
// Within one node a request is all-or-nothing: its rows are in one
// transaction. A request whose events span several nodes is written on
// each node separately: Write returns nil only when every node committed.
// While a node is suspect (its last write failed and none has succeeded
// since), a request that spans it and other nodes is written to it first,
// alone, and fails without touching the others when it fails: so a node
// that is down, or refusing, makes such requests fail having stored
// nothing. Only a node that fails for the first time, in the middle of a
// request, can leave that request stored on the other nodes while it is
// answered with an error; the client retries with the same messageIds, so
// such events may be stored twice (at-least-once delivery; every copy
// carries the same messageId). A commit whose outcome is unknown because
// the connection broke during COMMIT is the same case.
//
// Write is bounded by Config.WriteTimeout: a request that cannot be
// committed in time, because its node is down, slow or its queue is full,
// fails with an error wrapping [ErrUnavailable]; a request that timed out
// before its batch began is never written afterwards, nor is one with less
// than 100 milliseconds left when its batch begins. A batch's transaction
// is bounded by the latest deadline of its requests, so that a request
// close to its deadline cannot fail the others in its batch; if that
// request's own deadline passes (with a grace of two seconds) before the
// batch commits, it is answered with an error while it may still be
// committed, the in-doubt case above.
//
// # Moved shards
//
// A write into a fenced or missing shard table (schema.IsStale) fails the
// batch's transaction. The batcher answers the requests that touched that
// shard with a stale error and writes the others again at once; Write
// refreshes the placement map and sends the stale requests' events to the
// shards' new nodes, waiting briefly while the map has not caught up yet,
// all within the same call. When the placement stays as it was for a
// quarter of a second (the move may have been rolled back, lifting the
// fence), Write tries the same placement again.
//
// # Poison rows
//
// Should Postgres refuse a request's data (a data exception such as
// invalid JSON it did not expect), the batch is split and each request
// written on its own, so only the guilty request fails, with an error
// wrapping [ErrRejected].
package store
