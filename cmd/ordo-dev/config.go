package main

import (
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/ordo-pipeline/ordo/internal/cli"
	"github.com/ordo-pipeline/ordo/rebalance"
)

// config holds ordo-dev's settings, read from the environment and then from flags.
type config struct {
	// Dir is the dev folder: node data (node1, node2, ...) and the generated
	// workspace file. Defaults to ".dev".
	Dir string
	// Keep leaves the dev folder in place on exit; the next start reuses it.
	// Defaults to false: the folder is removed.
	Keep bool
	// Workspace is a workspace file to use instead of the generated one.
	// Defaults to "", generate one.
	Workspace string `env:"ORDO_WORKSPACE_CONFIG"`
	// Shards is the number of virtual shards, fixed when the cluster is first
	// bootstrapped. Defaults to 16.
	Shards int `env:"ORDO_SHARDS" envDefault:"16"`
	// Nodes is the number of Postgres nodes; node1 also holds the catalog.
	// Defaults to 2.
	Nodes int
	// Workers is the number of workers. Defaults to 2.
	Workers int
	// HTTPAddr is the gateway's listen address; port 0 picks a free port.
	// Defaults to ":8080".
	HTTPAddr string `env:"ORDO_HTTP_ADDR" envDefault:":8080"`
	// SinkAddr is the demo sink's listen address; port 0 picks a free port.
	// Defaults to ":9000".
	SinkAddr string `env:"ORDO_SINK_ADDR" envDefault:":9000"`
	// AdminPort is the port of worker-1's /health, /ready and /metrics on
	// 127.0.0.1; worker-2 takes the next one and so on. 0 picks free ports.
	// Defaults to 9091.
	AdminPort int
	// PGPort is the port of node1; node2 takes the next one and so on. 0
	// picks free ports. Defaults to 0.
	PGPort int
	// StopTimeout bounds how long each program may take to stop after
	// SIGTERM before it is killed. Defaults to 10 seconds.
	StopTimeout time.Duration
	// Verbose shows the programs' info logs and ordo-dev's debug logs.
	// Defaults to false.
	Verbose bool
	// LogFormat is the log format of ordo-dev and its programs, text or json.
	// Defaults to text.
	LogFormat string `env:"ORDO_LOG_FORMAT" envDefault:"text"`
	// LogLevel is the log level of the programs. Defaults to "", which means
	// warn, or info with Verbose.
	LogLevel string `env:"ORDO_LOG_LEVEL"`
}

// Validate checks the settings; its error names the variable at fault.
func (c *config) Validate() error {
	if c.Shards < 1 || c.Shards > rebalance.MaxShards {
		return &cli.SettingError{Var: "ORDO_SHARDS", Msg: fmt.Sprintf("must be between 1 and %d, not %d", rebalance.MaxShards, c.Shards)}
	}
	if err := cli.CheckAddr(c.HTTPAddr); err != nil {
		return &cli.SettingError{Var: "ORDO_HTTP_ADDR", Msg: err.Error()}
	}
	if err := cli.CheckAddr(c.SinkAddr); err != nil {
		return &cli.SettingError{Var: "ORDO_SINK_ADDR", Msg: err.Error()}
	}
	return cli.LogConfig{Format: c.LogFormat, Level: c.LogLevel}.Validate()
}

// validateFlags checks the settings that only flags set.
func (c *config) validateFlags() error {
	switch {
	case c.Dir == "":
		return errors.New("-dir must not be empty")
	case c.Nodes < 1 || c.Nodes > 16:
		return fmt.Errorf("-nodes must be between 1 and 16, not %d", c.Nodes)
	case c.Nodes > c.Shards:
		return fmt.Errorf("-nodes %d is more than -shards %d", c.Nodes, c.Shards)
	case c.Workers < 0 || c.Workers > 16:
		return fmt.Errorf("-workers must be between 0 and 16, not %d", c.Workers)
	case c.AdminPort < 0 || c.AdminPort+c.Workers-1 > 65535:
		return fmt.Errorf("-admin-port %d leaves no room for %d workers", c.AdminPort, c.Workers)
	case c.PGPort < 0 || c.PGPort+c.Nodes-1 > 65535:
		return fmt.Errorf("-pg-port %d leaves no room for %d nodes", c.PGPort, c.Nodes)
	case c.StopTimeout <= 0:
		return fmt.Errorf("-stop-timeout must be positive, not %s", c.StopTimeout)
	}
	return nil
}

// programLogLevel is the ORDO_LOG_LEVEL of the programs ordo-dev starts.
func (c *config) programLogLevel() string {
	switch {
	case c.Verbose && (c.LogLevel == "" || c.LogLevel == "warn" || c.LogLevel == "error"):
		return "info"
	case c.LogLevel == "":
		return "warn"
	}
	return c.LogLevel
}

const summary = `ordo-dev starts a whole ordo system locally on throwaway Postgres nodes
(make dev), and stops it on Ctrl-C.

It starts, in order:
  1. Postgres nodes node1, node2 (-nodes) from the local PostgreSQL server
     binaries, with their data under the dev folder (-dir, default .dev).
     node1 also holds the catalog.
  2. rebalance, which bootstraps the cluster with 16 shards (-shards), and
     waits for it to exit 0. With kept data it only converges the cluster.
  3. the demo sink (-sink-addr, default :9000), the gateway (-http-addr,
     default :8080) and two workers (-workers; /health, /ready and /metrics
     on 127.0.0.1:9091, :9092, see -admin-port).
The workspace is written to the dev folder (source "web", write key
wk_dev_123, one webhook destination "sink" pointing at the sink) unless
-workspace names one. The programs are found next to ordo-dev (as make build
leaves them in ./bin), or else on PATH.

Once the gateway, the workers and the sink answer, it prints their URLs, the
environment for "rebalance status", and a curl command that sends an event.
Each line a program writes is shown behind its name, such as [gateway]; the
sink prints one "[sink] sink: user=... type=... event=..." line per event it
receives. Programs log at warn level (-v: info). Other ORDO_* variables in
the environment, such as ORDO_WORKER_POLL, pass through to the programs.

Ctrl-C (or SIGTERM, or SIGHUP) stops the gateway and the workers, then the
sink (each gets -stop-timeout before it is killed; a second Ctrl-C kills at
once), then Postgres, and removes the dev folder unless -keep; the exit
status is then 0. -keep leaves the data in place, and the next start reuses
it. If a program exits on its own, ordo-dev says which, stops everything and
exits 1.

Examples:
  make dev                          builds ./bin and runs bin/ordo-dev
  make dev DEV_FLAGS=--keep         keeps the data for the next start
  bin/ordo-dev -http-addr :8081 -sink-addr :9001 -admin-port 0 -dir /tmp/ordo-dev`

const settings = `  ORDO_HTTP_ADDR         gateway listen address (default :8080)
  ORDO_SINK_ADDR         demo sink listen address (default :9000)
  ORDO_SHARDS            number of shards at bootstrap (default 16)
  ORDO_WORKSPACE_CONFIG  workspace file to use instead of the generated one
  ORDO_LOG_FORMAT        text or json (default text)
  ORDO_LOG_LEVEL         log level of the programs (default warn, -v: info)
`

// flagOf names the flag that overrides each setting.
var flagOf = map[string]string{
	"ORDO_HTTP_ADDR":        "http-addr",
	"ORDO_SINK_ADDR":        "sink-addr",
	"ORDO_SHARDS":           "shards",
	"ORDO_WORKSPACE_CONFIG": "workspace",
	"ORDO_LOG_FORMAT":       "log-format",
	"ORDO_LOG_LEVEL":        "log-level",
}

// parseConfig reads the settings from environ (the process environment when nil), then
// lets args override them. For -h or --help it prints the usage to usage and returns
// flag.ErrHelp. Its other errors are one line that names the variable or flag at fault;
// cli.Exit maps them to exit status 2.
func parseConfig(args []string, environ map[string]string, usage io.Writer) (config, error) {
	cfg, err := cli.ParseEnv[config](environ)
	if err != nil {
		return config{}, err
	}
	cfg.Dir, cfg.Nodes, cfg.Workers, cfg.AdminPort, cfg.StopTimeout = ".dev", 2, 2, 9091, 10*time.Second

	fs := cli.Flags("ordo-dev", summary, settings)
	fs.StringVar(&cfg.Dir, "dir", cfg.Dir, "dev `folder` for node data and the generated workspace file")
	fs.BoolVar(&cfg.Keep, "keep", cfg.Keep, "keep the dev folder on exit and reuse it on the next start")
	fs.StringVar(&cfg.Workspace, "workspace", cfg.Workspace, "workspace `file` to use instead of the generated one (ORDO_WORKSPACE_CONFIG)")
	fs.IntVar(&cfg.Shards, "shards", cfg.Shards, "number of shards, fixed at bootstrap (ORDO_SHARDS)")
	fs.IntVar(&cfg.Nodes, "nodes", cfg.Nodes, "number of Postgres nodes")
	fs.IntVar(&cfg.Workers, "workers", cfg.Workers, "number of workers")
	fs.StringVar(&cfg.HTTPAddr, "http-addr", cfg.HTTPAddr, "gateway listen `address`; port 0 picks a free port (ORDO_HTTP_ADDR)")
	fs.StringVar(&cfg.SinkAddr, "sink-addr", cfg.SinkAddr, "demo sink listen `address`; port 0 picks a free port (ORDO_SINK_ADDR)")
	fs.IntVar(&cfg.AdminPort, "admin-port", cfg.AdminPort, "`port` of worker-1's admin server on 127.0.0.1, the next worker the next one; 0 picks free ports")
	fs.IntVar(&cfg.PGPort, "pg-port", cfg.PGPort, "`port` of node1, the next node the next one; 0 picks free ports")
	fs.DurationVar(&cfg.StopTimeout, "stop-timeout", cfg.StopTimeout, "how long each program may take to stop before it is killed")
	fs.BoolVar(&cfg.Verbose, "v", cfg.Verbose, "show the programs' info logs")
	fs.StringVar(&cfg.LogFormat, "log-format", cfg.LogFormat, "log `format`, text or json (ORDO_LOG_FORMAT)")
	fs.StringVar(&cfg.LogLevel, "log-level", cfg.LogLevel, "log `level` of the programs, debug, info, warn or error (ORDO_LOG_LEVEL)")
	if err := cli.ParseOverrides(fs, args, usage, flagOf, cfg.Validate); err != nil {
		return config{}, err
	}
	if err := cfg.validateFlags(); err != nil {
		return config{}, fmt.Errorf("%w: %w", cli.ErrUsage, err)
	}
	return cfg, nil
}
