// Package rebalance converges an ordo cluster to the desired set of
// storage nodes: it bootstraps an empty catalog, migrates nodes, and (in
// later work) plans and executes shard moves. Package main in
// cmd/rebalance only parses settings and calls Run or Status.
package rebalance
