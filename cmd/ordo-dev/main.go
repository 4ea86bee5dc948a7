// Command ordo-dev starts a whole ordo system locally on throwaway Postgres
// nodes, for `make dev`: two nodes, rebalance, a gateway, two workers and the
// demo sink, until Ctrl-C.
package main

import (
	"os"

	"github.com/ordo-pipeline/ordo/internal/cli"
)

func main() {
	cfg := cli.ParseOrExit("ordo-dev", os.Args[1:], parseConfig)
	os.Exit(run(cfg, os.Stdout, os.Stderr))
}
