// Command worker claims whole shards of an ordo cluster and delivers their
// events, in order, to the workspace's destinations.
package main

import (
	"os"

	"github.com/ordo-pipeline/ordo/worker"
)

func main() {
	worker.Main(os.Args[1:])
}
