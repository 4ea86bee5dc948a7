// Package shard maps ordering keys to virtual shards and shards to the
// Postgres nodes that hold them.
//
// # The hash
//
// A cluster has a fixed number S of virtual shards, chosen at bootstrap.
// An event's ordering key is its userId when that is a non-empty string,
// otherwise its anonymousId. Its shard is
//
//	FNV-1a-64(UTF-8 bytes of the key) mod S
//
// where FNV-1a-64 starts from the offset basis 0xcbf29ce484222325 and, for
// each byte, XORs the byte in and multiplies by the prime 0x100000001b3,
// modulo 2^64; the mod is taken on the unsigned 64-bit result. The key is
// used exactly as sent: no trimming, no case folding, no Unicode
// normalisation. testdata/vectors.csv holds (key, S, shard) vectors that
// another implementation (a routing proxy, an SDK) can check itself
// against.
//
// # The map
//
// Map is the placement of every shard (node and epoch) loaded from the
// catalog, cached in memory, refreshed when the catalog sends a
// notification on channel ordo_placement and, as a fallback, on a slow
// poll.
package shard
