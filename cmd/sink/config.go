package main

import (
	"io"

	"github.com/ordo-pipeline/ordo/internal/cli"
)

// config holds the sink's settings, read from the environment and then from flags.
type config struct {
	// Addr is the listen address. Defaults to ":9000".
	Addr string `env:"ORDO_SINK_ADDR" envDefault:":9000"`
	// Verbose adds each event's JSON to its line. Defaults to false.
	Verbose bool `env:"ORDO_SINK_VERBOSE" envDefault:"false"`
	// Log is ORDO_LOG_FORMAT and ORDO_LOG_LEVEL.
	Log cli.LogConfig
}

// Validate checks the listen address and the log settings.
func (c *config) Validate() error {
	if c.Addr == "" {
		return &cli.SettingError{Var: "ORDO_SINK_ADDR", Msg: "must not be empty"}
	}
	return c.Log.Validate()
}

const summary = `sink is the ordo demo sink, a webhook endpoint that prints every event it receives.

Point a workspace destination of type "webhook" at it, for example
"url": "http://127.0.0.1:9000/events". It answers 200 to a POST on any path and
prints one line per event to standard output:

  sink: user=<userId or anonymousId> type=<type> event=<event> messageId=<id>

A {"batch": [...]} body prints one line per element; a missing field prints as "-".
GET /health answers 200; GET /metrics serves Prometheus metrics, among them
ordo_sink_events_received_total. Logs go to standard error.`

const settings = `  ORDO_SINK_ADDR     listen address (default :9000)
  ORDO_SINK_VERBOSE  true to add each event's JSON to its line (default false)
  ORDO_LOG_FORMAT    text or json (default text)
  ORDO_LOG_LEVEL     debug, info, warn or error (default info)
`

// flagOf names the flag that overrides each setting.
var flagOf = map[string]string{
	"ORDO_SINK_ADDR":    "addr",
	"ORDO_SINK_VERBOSE": "v",
	"ORDO_LOG_FORMAT":   "log-format",
	"ORDO_LOG_LEVEL":    "log-level",
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

	fs := cli.Flags("sink", summary, settings)
	fs.StringVar(&cfg.Addr, "addr", cfg.Addr, "listen `address` (ORDO_SINK_ADDR)")
	fs.BoolVar(&cfg.Verbose, "v", cfg.Verbose, "add each event's JSON to its line (ORDO_SINK_VERBOSE)")
	fs.StringVar(&cfg.Log.Format, "log-format", cfg.Log.Format, "log `format`, text or json (ORDO_LOG_FORMAT)")
	fs.StringVar(&cfg.Log.Level, "log-level", cfg.Log.Level, "log `level`, debug, info, warn or error (ORDO_LOG_LEVEL)")
	if err := cli.ParseOverrides(fs, args, usage, flagOf, cfg.Validate); err != nil {
		return config{}, err
	}
	return cfg, nil
}
