// Command ordo-dev starts a whole ordo system locally on throwaway Postgres
// nodes, for `make dev`: two nodes, rebalance, a gateway, two workers and the
// demo sink, until Ctrl-C.
package main

import (
	"errors"
	"flag"
	"os"

	"github.com/ordo-pipeline/ordo/internal/cli"
)

func main() {
	cfg, err := parseConfig(os.Args[1:], nil, os.Stdout)
	if errors.Is(err, flag.ErrHelp) {
		os.Exit(0)
	}
	if err != nil {
		cli.Exit("ordo-dev", err)
	}
	os.Exit(run(cfg, os.Stdout, os.Stderr))
}
