// Command gateway is ordo's stateless HTTP ingest server: it accepts
// RudderStack- and Segment-compatible events and stores them durably in
// their shard.
package main

import (
	"os"

	"github.com/ordo-pipeline/ordo/gateway"
)

func main() {
	gateway.Main(os.Args[1:])
}
