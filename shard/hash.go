package shard

import "hash/fnv"

// OrderingKey returns the key that orders an event's delivery: userID when
// non-empty, otherwise anonymousID.
func OrderingKey(userID, anonymousID string) string {
	if userID != "" {
		return userID
	}
	return anonymousID
}

// For returns the shard of key in a cluster of count shards:
// FNV-1a-64(key) mod count. count must be positive.
func For(key string, count int) int {
	h := fnv.New64a()
	h.Write([]byte(key)) //nolint:errcheck // hash writes never fail
	return int(h.Sum64() % uint64(count))
}
