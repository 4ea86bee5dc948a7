// Package schema owns the per-shard tables on a storage node: their
// columns, and creating, fencing and dropping them.
//
// Each shard a node holds is one table, ordo.shard_<n>. Its rows are the
// pending deliveries of the shard: one row per event and destination, in
// (epoch, seq) order. A table is created with its epoch as the column
// default, so writers never need to know the epoch: rows written to the
// shard's current table carry the current epoch, and rows copied from an
// older node keep theirs.
//
// A fenced table refuses every new row with SQLSTATE FencedCode (raised by
// the trigger FenceTrigger); writers recognise it (and a missing table)
// with IsStale, reload the placement map and write to the shard's new
// node.
package schema
