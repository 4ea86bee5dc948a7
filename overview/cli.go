package overview

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"strings"

	"github.com/ordo-pipeline/ordo/internal/cli"
	"github.com/ordo-pipeline/ordo/shard"
)

// Summary is the help of `ordoctl status`.
const Summary = `ordoctl status prints the cluster: what rebalance status prints (nodes with their
state, shards, pending events and dead letters; moves in progress), then every
shard with its node, pending events, lag (age of its oldest pending event), dead
letters and the worker that holds it, then the workers with their heartbeats.

  ordoctl status [--json]

An unreachable node is shown as such and makes the exit status 1.`

// Run runs `ordoctl status args...` with environ (the process's when
// nil), writing to out.
func Run(ctx context.Context, args []string, environ map[string]string, out io.Writer, settings string) error {
	fs := flag.NewFlagSet("ordoctl status", flag.ContinueOnError)
	asJSON := fs.Bool("json", false, "print JSON instead of tables")
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), "%s\n\nFlags:\n", Summary)
		fs.PrintDefaults()
		fmt.Fprintf(fs.Output(), "\nSettings (environment variables):\n%s", settings)
	}
	if help, err := cli.ParseCommand(fs, args, out); help || err != nil {
		return err
	}
	cfg, err := cli.ParseEnv[cli.CatalogConfig](environ)
	if err != nil {
		return err
	}
	o, err := Read(ctx, cfg.CatalogURL)
	if errors.Is(err, shard.ErrNotBootstrapped) {
		fmt.Fprintln(out, "cluster: not bootstrapped (run rebalance with ORDO_NODES set)")
		return nil
	}
	if err != nil {
		return oneLineError{err}
	}
	if *asJSON {
		enc := json.NewEncoder(out)
		enc.SetIndent("", "  ")
		err = enc.Encode(o)
	} else {
		err = o.Print(out)
	}
	if err != nil {
		return err
	}
	return o.Err()
}

// Err is nil when every node could be read.
func (o *Overview) Err() error {
	var bad []string
	for _, n := range o.Nodes {
		if n.Error != "" {
			bad = append(bad, n.Name)
		}
	}
	if len(bad) == 0 {
		return nil
	}
	return fmt.Errorf("%d nodes could not be read: %v", len(bad), bad)
}

// oneLineError is an error whose message is put on one line, as pgx's
// connection errors span several.
type oneLineError struct{ err error }

func (e oneLineError) Error() string { return strings.Join(strings.Fields(e.err.Error()), " ") }
func (e oneLineError) Unwrap() error { return e.err }
