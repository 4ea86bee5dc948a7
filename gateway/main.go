package gateway

import (
	"cmp"
	"io"
	"os"
	"runtime/debug"

	"github.com/ordo-pipeline/ordo/internal/cli"
	"github.com/ordo-pipeline/ordo/workspace"
)

const summary = `gateway is ordo's HTTP ingest server, compatible with the RudderStack and
Segment HTTP tracking APIs.

  POST /v1/track, /v1/identify, /v1/page, /v1/screen, /v1/group, /v1/alias
  POST /v1/batch          {"batch": [event, ...]}; also /v1/import
  POST /v1/t, /v1/i, /v1/p, /v1/s, /v1/g, /v1/a, /v1/b   (Segment analytics.js)
  POST /beacon/v1/batch?writeKey=...                     (navigator.sendBeacon)
  GET  /pixel/v1/track, /pixel/v1/page   an event in the query string; a 1x1 GIF
  GET  /sourceConfig/                    RudderStack JS SDK's source config
  GET  /v1/projects/{writeKey}/settings  Segment analytics.js settings
  GET  /cluster-info, /version, /health, /ready, /metrics

Clients authenticate with HTTP Basic, the source's write key as user name,
or with ?writeKey= or the JSON body's "writeKey" where they cannot. Every
answer carries CORS headers for the request's Origin.
A 200 answer means every event of the request is committed in Postgres.
SIGTERM stops accepting connections, finishes in-flight requests, exits 0.`

// flagOf names the flag that overrides each setting.
var flagOf = map[string]string{"ORDO_HTTP_ADDR": "addr"}

// envConfig is Config without its Validate method, so that reading the
// environment does not check the settings before flags override them.
type envConfig Config

// parseConfig reads the settings from environ (the process environment
// when nil), then lets args override them, then checks them. For -h or
// --help it prints the usage to usage and returns flag.ErrHelp, whatever
// the settings. Its other errors are one line that names the variable or
// flag at fault; cli.Exit maps them to exit status 2.
func parseConfig(args []string, environ map[string]string, usage io.Writer) (Config, error) {
	raw, envErr := cli.ParseEnv[envConfig](environ)
	cfg := Config(raw)
	fs := cli.Flags("gateway", summary, settings)
	fs.StringVar(&cfg.HTTPAddr, "addr", cfg.HTTPAddr, "listen `address` (overrides ORDO_HTTP_ADDR)")
	err := cli.ParseOverrides(fs, args, usage, flagOf, func() error {
		if envErr != nil {
			return envErr
		}
		return cfg.Validate()
	})
	if err != nil {
		return Config{}, err
	}
	return cfg, nil
}

// Main is the gateway program: it parses args and the environment, serves
// until SIGINT or SIGTERM, and exits with the contract's status codes.
func Main(args []string) {
	cfg := cli.ParseOrExit("gateway", args, parseConfig)
	tuneGC(cfg)
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

// gcPercent is the gateway's GOGC unless the environment sets one. What a
// gateway holds live is small (the requests in flight), and each event's
// decoding allocates: collecting less often takes a tenth of its CPU at
// full load off, for a heap of a few times the live data.
const gcPercent = 400

// baseMemory is what a gateway holds besides its requests in flight: the
// runtime, the shard map, the store's buffers and connections.
const baseMemory = 128 << 20

// tuneGC sets gcPercent unless GOGC is set, and a soft memory limit of
// what cfg lets requests hold plus baseMemory unless GOMEMLIMIT is set:
// with gcPercent alone, the heap could grow to five times what is live
// before a collection, whatever the in-flight limit.
func tuneGC(cfg Config) {
	if _, ok := os.LookupEnv("GOGC"); !ok {
		debug.SetGCPercent(gcPercent)
	}
	if _, ok := os.LookupEnv("GOMEMLIMIT"); !ok {
		debug.SetMemoryLimit(int64(cmp.Or(cfg.MaxInflightMiB, defaultInflightMiB))<<20 + baseMemory)
	}
}
