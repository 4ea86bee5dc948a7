package worker

import (
	"errors"
	"fmt"
	"os"

	"github.com/ordo-pipeline/ordo/internal/cli"
)

const summary = `worker claims whole shards and delivers their events, in order, to destinations.

It runs until SIGTERM or SIGINT, then finishes the requests in flight,
releases its shards and exits 0.`

const settings = `  ORDO_CATALOG_URL        Postgres URL of the catalog database (required)
  ORDO_WORKSPACE_CONFIG   path of the workspace file (required)
  ORDO_ADMIN_ADDR         listen address of /health, /ready, /metrics; port 0 picks
                          a free port, empty disables (default :9090)
  ORDO_LOG_FORMAT         text or json (default text)
  ORDO_LOG_LEVEL          debug, info, warn or error (default info)
  ORDO_WORKER_*           tuning: HEARTBEAT (1s), LIVENESS (5s), MAP_POLL (5s),
                          POLL (30s), WINDOW (1000), BUFFER (5000),
                          SHARD_CONCURRENCY (16), CONCURRENCY (256), NODE_CONNS (2),
                          FLUSH_INTERVAL (50ms), DB_TIMEOUT (30s),
                          DRAIN_TIMEOUT (30s), KEEPALIVE (2s), VACUUM_ROWS (5000;
                          0 leaves vacuum to autovacuum), VACUUM_EVERY (2s),
                          SILENCE (3s: idle claim connections of other workers
                          are ended after it), MOVES (1: shard moves executed
                          at once, abandoned
                          moves resumed; 0 leaves moves to rebalance),
                          ID (host-pid-random)
`

// Main is the worker program: it parses args and the environment, runs
// until a signal, and exits with the contract's status codes.
func Main(args []string) {
	fs := cli.Flags("worker", summary, settings)
	if err := cli.ParseFlags(fs, args); err != nil {
		cli.Exit("worker", err)
	}
	if fs.NArg() > 0 {
		cli.Exit("worker", fmt.Errorf("%w: unexpected argument %q (see --help)", cli.ErrUsage, fs.Arg(0)))
	}
	cfg, err := cli.ParseEnv[Config](nil)
	if err != nil {
		cli.Exit("worker", err)
	}
	if v, ok := os.LookupEnv("ORDO_ADMIN_ADDR"); ok && v == "" {
		cfg.AdminAddr = "" // set but empty: no admin server
	}
	ctx, cancel := cli.SignalContext()
	defer cancel()
	log := cfg.Log.Logger(os.Stderr, "worker")
	err = Run(ctx, &cfg, Options{Logger: log})
	var se *cli.SettingError
	if err != nil && !errors.As(err, &se) {
		log.Error("worker failed", "error", err)
	}
	cli.Exit("worker", err)
}
