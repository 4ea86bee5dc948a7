// Command ordoctl is the operator's tool: dead letters across every node,
// the cluster's status with lag and workers, and the web console.
package main

import (
	"context"
	"fmt"
	"os"

	"github.com/ordo-pipeline/ordo/console"
	"github.com/ordo-pipeline/ordo/deadletter"
	"github.com/ordo-pipeline/ordo/internal/cli"
	"github.com/ordo-pipeline/ordo/overview"
)

const summary = `ordoctl operates an ordo cluster without knowing where its shards live.

  ordoctl status                 nodes, shards with pending events, lag, dead letters
                                 and the worker holding each, workers, moves in progress
  ordoctl dead-letters list      the newest dead letters of every node, with filters
  ordoctl dead-letters count     dead letters by node, destination, reason and status
  ordoctl dead-letters replay    return dead letters to delivery (same messageId, in order)
  ordoctl dead-letters purge     delete dead letters (asks first, unless --yes)
  ordoctl console                serve the web console on ORDO_CONSOLE_ADDR

Run "ordoctl <command> --help" for a command's flags and settings.`

func main() {
	ctx, cancel := cli.SignalContext()
	defer cancel()
	cli.Exit("ordoctl", run(ctx, os.Args[1:]))
}

func run(ctx context.Context, args []string) error {
	if len(args) == 0 {
		fmt.Fprintln(os.Stderr, summary)
		return fmt.Errorf("%w: a command is needed", cli.ErrUsage)
	}
	rest := args[1:]
	switch args[0] {
	case "-h", "--help", "help":
		fmt.Println(summary)
		return nil
	case "status":
		return overview.Run(ctx, rest, nil, os.Stdout, deadletter.Settings)
	case "dead-letters", "deadletters", "dl":
		return deadletter.Run(ctx, rest, nil, deadletter.IO{In: os.Stdin, Out: os.Stdout, ErrOut: os.Stderr, Terminal: cli.IsTerminal(os.Stdin)})
	case "console":
		return console.Run(ctx, rest, nil, os.Stdout, os.Stderr)
	}
	return fmt.Errorf("%w: unknown command %q (want status, dead-letters or console; see --help)", cli.ErrUsage, args[0])
}
