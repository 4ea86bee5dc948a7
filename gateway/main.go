package gateway

import (
	"fmt"
	"os"

	"github.com/ordo-pipeline/ordo/internal/cli"
	"github.com/ordo-pipeline/ordo/workspace"
)

const summary = `gateway is ordo's HTTP ingest server, compatible with the RudderStack and
Segment HTTP tracking APIs.

  POST /v1/track, /v1/identify, /v1/page, /v1/screen, /v1/group, /v1/alias
  POST /v1/batch          {"batch": [event, ...]}
  GET  /health, /ready, /metrics

Clients authenticate with HTTP Basic, the source's write key as user name.
A 200 answer means every event of the request is committed in Postgres.
SIGTERM stops accepting connections, finishes in-flight requests, exits 0.`

// Main is the gateway program: it parses args and the environment, serves
// until SIGINT or SIGTERM, and exits with the contract's status codes.
func Main(args []string) {
	fs := cli.Flags("gateway", summary, settings)
	addr := fs.String("addr", "", "listen address (overrides ORDO_HTTP_ADDR)")
	if err := cli.ParseFlags(fs, args); err != nil {
		cli.Exit("gateway", err)
	}
	if fs.NArg() > 0 {
		cli.Exit("gateway", fmt.Errorf("%w: unexpected argument %q (see --help)", cli.ErrUsage, fs.Arg(0)))
	}
	if *addr != "" {
		os.Setenv("ORDO_HTTP_ADDR", *addr) //nolint:errcheck // a valid name
	}
	cfg, err := cli.ParseEnv[Config](nil)
	if err != nil {
		cli.Exit("gateway", err)
	}
	ws, err := workspace.Load(cfg.WorkspaceConfig)
	if err != nil {
		cli.Exit("gateway", &cli.SettingError{Var: "ORDO_WORKSPACE_CONFIG", Msg: err.Error()})
	}
	log := cfg.Log.Logger(os.Stderr, "gateway")
	ctx, cancel := cli.SignalContext()
	defer cancel()
	err = Run(ctx, cfg, ws, Options{Logger: log})
	if err != nil {
		log.Error("gateway failed", "error", err)
	}
	cli.Exit("gateway", err)
}
