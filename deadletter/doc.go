// Package deadletter lists, counts, replays and purges dead letters
// across every node of a cluster, so that an operator need not know where
// the shards live.
//
// Dead letters sit in ordo.dead_letters on the node that holds their
// shard. Each operation reads the placement map from the catalog, visits
// every node that is not detached, and does its work on each node in one
// transaction: a node is either done or left as it was, and the result
// says which, node by node.
//
// Replay moves dead letters back into their shard's table, in their
// original (epoch, seq) order, behind the rows already pending there, with
// their messageId and event unchanged and a fresh retry budget (attempts
// start again from 0 and maxAge counts from the replay). The insert into
// the shard table and the delete from ordo.dead_letters commit together,
// so an interrupted replay loses nothing, and a second run finds only what
// the first did not replay. A shard that is being moved is left alone and
// reported: its dead letters are replayed once the move has finished.
package deadletter
