// Package rebalance converges an ordo cluster to the desired set of
// storage nodes: it bootstraps an empty catalog, migrates nodes, plans the
// fewest shard moves and executes them as River jobs (workers execute
// them too, and resume abandoned ones: see Heal). Package main in
// cmd/rebalance only parses settings and calls Run or Status.
package rebalance
