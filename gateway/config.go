package gateway

import (
	"fmt"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/ordo-pipeline/ordo/internal/cli"
)

// Limits on batching settings.
const (
	maxBatchRows    = 1_000_000
	maxBatchWait    = time.Second
	maxBatchWriters = 64
)

// Defaults of the settings a Config built in code may leave zero; they
// match the envDefault tags.
const (
	defaultInflightMiB       = 512
	defaultReadHeaderTimeout = 5 * time.Second
	defaultReadTimeout       = 30 * time.Second
	defaultIdleTimeout       = 60 * time.Second
)

// Limits on the in-flight limit: at least what one request of
// MaxBodyBytes reserves, at most 1 TiB.
const (
	minInflightMiB = MaxBodyBytes * inflightWeight >> 20
	maxInflightMiB = 1 << 20
)

// Config is the gateway's settings, read from the environment.
type Config struct {
	// CatalogURL is the Postgres URL of the catalog database. Required.
	CatalogURL string `env:"ORDO_CATALOG_URL,required,notEmpty"`
	// WorkspaceConfig is the path of the workspace file. Required.
	WorkspaceConfig string `env:"ORDO_WORKSPACE_CONFIG,required,notEmpty"`
	// HTTPAddr is the listen address. Defaults to ":8080".
	HTTPAddr string `env:"ORDO_HTTP_ADDR" envDefault:":8080"`
	// BatchMaxRows closes a node's write batch once it holds this many
	// rows (events times destinations). Defaults to 1000.
	BatchMaxRows int `env:"ORDO_BATCH_MAX_ROWS" envDefault:"1000"`
	// BatchMaxWait is how long a node's write batch may wait for more
	// requests once it has taken those queued. Defaults to 0: a batch is
	// what arrived while the node's writers were busy.
	BatchMaxWait time.Duration `env:"ORDO_BATCH_MAX_WAIT" envDefault:"0s"`
	// BatchWriters is how many batches may be in flight per node.
	// Defaults to 2.
	BatchWriters int `env:"ORDO_BATCH_WRITERS" envDefault:"2"`
	// WriteTimeout bounds how long a request waits for its events to be
	// committed before it is answered 503. Defaults to 5s.
	WriteTimeout time.Duration `env:"ORDO_WRITE_TIMEOUT" envDefault:"5s"`
	// PublicURL is the address browsers reach this gateway at, such as
	// https://events.example.com, given to Segment's analytics.js as its
	// apiHost. Optional: when empty, each settings request's own Host (and
	// X-Forwarded-Proto) is used.
	PublicURL string `env:"ORDO_PUBLIC_URL"`
	// MaxInflightMiB bounds, in MiB, what the requests in flight may make
	// the gateway hold: each reserves its body's size (decompressed) times
	// inflightWeight and eventWeight per event of a batch while it is read
	// and handled, and a request that would go over is answered 503 with
	// Retry-After. The Go runtime's soft memory limit is set to this plus
	// 128 MiB unless GOMEMLIMIT is set. Defaults to 512, also when 0 in a
	// Config built in code, as the timeouts below.
	MaxInflightMiB int `env:"ORDO_MAX_INFLIGHT_MIB" envDefault:"512"`
	// ReadHeaderTimeout bounds how long a client may take to send a
	// request's headers; the connection is then closed. Defaults to 5s.
	ReadHeaderTimeout time.Duration `env:"ORDO_READ_HEADER_TIMEOUT" envDefault:"5s"`
	// ReadTimeout bounds how long a client may take to send a whole
	// request, body included; a body late is answered 408. Defaults to 30s.
	ReadTimeout time.Duration `env:"ORDO_READ_TIMEOUT" envDefault:"30s"`
	// IdleTimeout is how long a keep-alive connection may wait for its
	// next request. Defaults to 60s.
	IdleTimeout time.Duration `env:"ORDO_IDLE_TIMEOUT" envDefault:"60s"`
	Log         cli.LogConfig
}

// settings is the Settings section of --help.
const settings = `  ORDO_CATALOG_URL       Postgres URL of the catalog database (required)
  ORDO_WORKSPACE_CONFIG  path of the workspace file (required)
  ORDO_HTTP_ADDR         listen address (default :8080)
  ORDO_BATCH_MAX_ROWS    write a node's batch once it holds this many rows,
                         one per event and destination (default 1000)
  ORDO_BATCH_MAX_WAIT    how long a node's batch may wait for more requests
                         after taking those queued, e.g. 2ms (default 0s: a
                         batch is what arrived while the writers were busy)
  ORDO_BATCH_WRITERS     batches in flight per node (default 2)
  ORDO_WRITE_TIMEOUT     longest a request waits for its commit before it is
                         answered 503 with Retry-After (default 5s)
  ORDO_PUBLIC_URL        address browsers reach this gateway at, e.g.
                         https://events.example.com, for Segment's apiHost
                         (default: each request's own Host)
  ORDO_MAX_INFLIGHT_MIB  memory, in MiB, the requests in flight may hold:
                         each reserves 4 times its body's size and 2 KiB
                         per event of a batch; one that would go over is
                         answered 503 with Retry-After; the Go runtime's
                         memory limit is this plus 128 MiB unless
                         GOMEMLIMIT is set (default 512)
  ORDO_READ_HEADER_TIMEOUT  longest a client may take to send its headers;
                         the connection is then closed (default 5s)
  ORDO_READ_TIMEOUT      longest a client may take to send a whole request;
                         a body late is answered 408 (default 30s)
  ORDO_IDLE_TIMEOUT      longest a keep-alive connection waits for its next
                         request (default 60s)
  ORDO_LOG_FORMAT        text or json (default text)
  ORDO_LOG_LEVEL         debug, info, warn or error (default info)
`

// Validate checks every setting; its error names the variable at fault.
func (c *Config) Validate() error {
	if _, err := pgxpool.ParseConfig(c.CatalogURL); err != nil {
		// pgconn's parse errors redact the password.
		return &cli.SettingError{Var: "ORDO_CATALOG_URL", Msg: "not a valid Postgres URL: " + err.Error()}
	}
	if err := cli.CheckAddr(c.HTTPAddr); err != nil {
		return &cli.SettingError{Var: "ORDO_HTTP_ADDR", Msg: err.Error()}
	}
	if c.BatchMaxRows < 1 || c.BatchMaxRows > maxBatchRows {
		return &cli.SettingError{Var: "ORDO_BATCH_MAX_ROWS", Msg: fmt.Sprintf("must be between 1 and %d, not %d", maxBatchRows, c.BatchMaxRows)}
	}
	if c.BatchMaxWait < 0 || c.BatchMaxWait > maxBatchWait {
		return &cli.SettingError{Var: "ORDO_BATCH_MAX_WAIT", Msg: fmt.Sprintf("must be between 0s and %s, not %s", maxBatchWait, c.BatchMaxWait)}
	}
	if c.BatchWriters < 1 || c.BatchWriters > maxBatchWriters {
		return &cli.SettingError{Var: "ORDO_BATCH_WRITERS", Msg: fmt.Sprintf("must be between 1 and %d, not %d", maxBatchWriters, c.BatchWriters)}
	}
	if c.WriteTimeout <= 0 {
		return &cli.SettingError{Var: "ORDO_WRITE_TIMEOUT", Msg: fmt.Sprintf("must be positive, not %s", c.WriteTimeout)}
	}
	if c.MaxInflightMiB < minInflightMiB || c.MaxInflightMiB > maxInflightMiB {
		return &cli.SettingError{Var: "ORDO_MAX_INFLIGHT_MIB", Msg: fmt.Sprintf("must be between %d (what a 4 MiB request reserves) and %d, not %d", minInflightMiB, maxInflightMiB, c.MaxInflightMiB)}
	}
	for _, d := range []struct {
		name string
		v    time.Duration
	}{
		{"ORDO_READ_HEADER_TIMEOUT", c.ReadHeaderTimeout},
		{"ORDO_READ_TIMEOUT", c.ReadTimeout},
		{"ORDO_IDLE_TIMEOUT", c.IdleTimeout},
	} {
		if d.v <= 0 {
			return &cli.SettingError{Var: d.name, Msg: fmt.Sprintf("must be positive, not %s", d.v)}
		}
	}
	if c.PublicURL != "" {
		if _, err := parsePublicURL(c.PublicURL); err != nil {
			return &cli.SettingError{Var: "ORDO_PUBLIC_URL", Msg: err.Error()}
		}
	}
	return c.Log.Validate()
}
