package rebalance

import (
	"errors"
	"fmt"
	"os"

	"github.com/ordo-pipeline/ordo/internal/cli"
	"github.com/ordo-pipeline/ordo/internal/dsn"
	"github.com/ordo-pipeline/ordo/shard"
)

const summary = `rebalance converges an ordo cluster to the desired set of Postgres nodes.

  rebalance             bootstrap an empty catalog, or migrate new nodes and move
                        shards until every node in ORDO_NODES holds ⌊S/N⌋ or ⌈S/N⌉
                        shards and unlisted nodes hold none; exits 0 once converged
  rebalance --dry-run   print the plan and change nothing
  rebalance status      print nodes, shards and pending events per node, and moves
                        in progress (needs only ORDO_CATALOG_URL)

Running it again after an interruption (even SIGKILL) finishes the work.`

const settings = `  ORDO_CATALOG_URL  Postgres URL of the catalog database (required)
  ORDO_NODES        desired storage nodes: name=postgres-url,... (required, not for status)
  ORDO_SHARDS       number of virtual shards, fixed at bootstrap (default 128)
  ORDO_LOG_FORMAT   text or json (default text)
  ORDO_LOG_LEVEL    debug, info, warn or error (default info)
`

// StatusConfig is the settings `rebalance status` needs.
type StatusConfig struct {
	CatalogURL string `env:"ORDO_CATALOG_URL,required,notEmpty"`
	Log        cli.LogConfig
}

// Validate checks the catalog URL and the log settings.
func (c *StatusConfig) Validate() error {
	if err := dsn.Check(c.CatalogURL); err != nil {
		return &cli.SettingError{Var: "ORDO_CATALOG_URL", Msg: err.Error()}
	}
	return c.Log.Validate()
}

// Main is the rebalance program: it parses args and the environment, runs,
// and exits with the contract's status codes.
func Main(args []string) {
	fs := cli.Flags("rebalance", summary, settings)
	dryRun := fs.Bool("dry-run", false, "print the plan and change nothing")
	concurrency := fs.Int("concurrency", 4, "moves this process runs at once")
	perSource := fs.Int("per-source", 1, "moves that may copy from one source node at once (across all rebalance runs)")
	metricsAddr := fs.String("metrics-addr", "", "serve Prometheus metrics on this address while running (empty: off)")
	if err := cli.ParseFlags(fs, args); err != nil {
		cli.Exit("rebalance", err)
	}
	if *concurrency < 1 || *perSource < 1 {
		cli.Exit("rebalance", fmt.Errorf("%w: --concurrency and --per-source must be at least 1", cli.ErrUsage))
	}
	ctx, cancel := cli.SignalContext()
	defer cancel()

	switch rest := fs.Args(); {
	case len(rest) == 1 && rest[0] == "status":
		cfg, err := cli.ParseEnv[StatusConfig](nil)
		if err != nil {
			cli.Exit("rebalance", err)
		}
		report, err := Status(ctx, cfg.CatalogURL)
		if errors.Is(err, shard.ErrNotBootstrapped) {
			fmt.Println("cluster: not bootstrapped (run rebalance with ORDO_NODES set)")
			cli.Exit("rebalance", nil)
		}
		if err == nil {
			err = report.Print(os.Stdout)
		}
		cli.Exit("rebalance", err)
	case len(rest) > 0:
		cli.Exit("rebalance", fmt.Errorf("%w: unknown command %q (see --help)", cli.ErrUsage, rest[0]))
	}

	cfg, err := cli.ParseEnv[Config](nil)
	if err != nil {
		cli.Exit("rebalance", err)
	}
	log := cfg.Log.Logger(os.Stderr, "rebalance")
	err = Run(ctx, &cfg, Options{
		DryRun:      *dryRun,
		Concurrency: *concurrency,
		PerSource:   *perSource,
		Out:         os.Stdout,
		Terminal:    cli.IsTerminal(os.Stdout),
		Logger:      log,
		MetricsAddr: *metricsAddr,
	})
	cli.Exit("rebalance", err)
}
