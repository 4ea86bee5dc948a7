// Command rebalance converges an ordo cluster to the storage nodes listed
// in ORDO_NODES: it bootstraps an empty catalog, migrates new nodes, and
// moves shards; `rebalance status` shows where everything is.
package main

import (
	"os"

	"github.com/ordo-pipeline/ordo/rebalance"
)

func main() {
	rebalance.Main(os.Args[1:])
}
