// Package schema owns the shard tables on a storage node: their columns,
// and creating, fencing and dropping them.
//
// Each shard a node holds is one table, ordo.shard_<n>, attached as a
// partition of the node's parent table Parent (ordo.events), listed by
// shard. Its rows are the pending deliveries of the shard: one row per
// event and destination, in (epoch, seq) order.
//
// Writers send a whole batch, whatever shards it touches, as one COPY into
// Parent (RoutedColumns), naming each row's shard and the epoch their
// placement map gives for it. Each table accepts new rows at its current
// epoch only (its ordo_epoch constraint); rows copied in from an older
// node by a move keep their older epochs and are marked copied. Tests and
// tools may also insert into one shard's table directly (Columns): the
// table's defaults then supply the shard and the current epoch.
//
// A fenced table refuses every new row with SQLSTATE FencedCode (raised by
// the row trigger FenceTrigger). Writers recognise it, a missing table and
// a refused epoch with IsStale (and the shard at fault with StaleShard),
// reload the placement map and write to the shard's new node.
package schema
