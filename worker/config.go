package worker

import (
	"fmt"
	"time"

	"github.com/ordo-pipeline/ordo/internal/cli"
	"github.com/ordo-pipeline/ordo/internal/dsn"
)

// DefaultAdminAddr is where /health, /ready and /metrics listen when
// ORDO_ADMIN_ADDR is not set.
const DefaultAdminAddr = ":9090"

// Config is the worker's settings, read from the environment.
type Config struct {
	// CatalogURL is the Postgres URL of the catalog database. Required.
	CatalogURL string `env:"ORDO_CATALOG_URL,required,notEmpty"`
	// WorkspaceConfig is the path of the workspace file. Required.
	WorkspaceConfig string `env:"ORDO_WORKSPACE_CONFIG,required,notEmpty"`
	// AdminAddr is the listen address of /health, /ready and /metrics;
	// port 0 picks a free port, "" disables the server. Defaults to
	// DefaultAdminAddr (:9090). (env/v11 reads a variable set to the empty
	// string as unset; Main turns ORDO_ADMIN_ADDR= into "" itself.)
	AdminAddr string `env:"ORDO_ADMIN_ADDR" envDefault:":9090"`
	Log       cli.LogConfig
	Tuning
}

// Tuning holds the worker's ORDO_WORKER_* knobs. The defaults suit
// production; tests shorten the intervals.
type Tuning struct {
	// ID names the worker in the heartbeat table and in logs. Defaults to
	// host-pid-random.
	ID string `env:"ORDO_WORKER_ID"`
	// Heartbeat is how often the worker refreshes its heartbeat and
	// reconsiders its share of shards. Defaults to 1 second.
	Heartbeat time.Duration `env:"ORDO_WORKER_HEARTBEAT" envDefault:"1s"`
	// Liveness is how fresh a heartbeat must be for its worker to count as
	// live. Defaults to 5 seconds.
	Liveness time.Duration `env:"ORDO_WORKER_LIVENESS" envDefault:"5s"`
	// MapPoll is how often the shard map is reloaded when no notification
	// arrives. Defaults to 5 seconds.
	MapPoll time.Duration `env:"ORDO_WORKER_MAP_POLL" envDefault:"5s"`
	// Poll is how often an idle shard is read for new rows when no
	// notification woke it: the safety net for a missed wake-up (see
	// waker). Defaults to 30 seconds.
	Poll time.Duration `env:"ORDO_WORKER_POLL" envDefault:"30s"`
	// Window is how many rows one read of a shard fetches at most.
	// Defaults to 1000.
	Window int `env:"ORDO_WORKER_WINDOW" envDefault:"1000"`
	// Buffer is how many rows of one shard are held in memory at most;
	// reading pauses, and blocked lanes are spilled, beyond it. Defaults
	// to 5000.
	Buffer int `env:"ORDO_WORKER_BUFFER" envDefault:"5000"`
	// ShardConcurrency is how many requests one shard has in flight to one
	// destination at most. Defaults to 16.
	ShardConcurrency int `env:"ORDO_WORKER_SHARD_CONCURRENCY" envDefault:"16"`
	// Concurrency is how many requests the whole worker has in flight to
	// one destination at most, over all its shards. Defaults to 256.
	Concurrency int `env:"ORDO_WORKER_CONCURRENCY" envDefault:"256"`
	// NodeConns is how many claim connections the worker opens per node.
	// Defaults to 2.
	NodeConns int `env:"ORDO_WORKER_NODE_CONNS" envDefault:"2"`
	// FlushInterval is how long delivered rows may wait before their
	// batched delete. Defaults to 50 milliseconds.
	FlushInterval time.Duration `env:"ORDO_WORKER_FLUSH_INTERVAL" envDefault:"50ms"`
	// DBTimeout bounds one statement on a node or the catalog; a node that
	// does not answer in time loses the connection and its claims.
	// Defaults to 30 seconds.
	DBTimeout time.Duration `env:"ORDO_WORKER_DB_TIMEOUT" envDefault:"30s"`
	// DrainTimeout bounds how long a SIGTERM waits for requests in flight.
	// Defaults to 30 seconds.
	DrainTimeout time.Duration `env:"ORDO_WORKER_DRAIN_TIMEOUT" envDefault:"30s"`
	// VacuumRows makes the worker VACUUM a shard table once it has deleted
	// this many rows from it since the last time (at most every
	// VacuumEvery), on a connection of its own; 0 leaves it to
	// autovacuum. Defaults to 5000.
	VacuumRows int `env:"ORDO_WORKER_VACUUM_ROWS" envDefault:"5000"`
	// VacuumEvery is the shortest time between two vacuums of a table the
	// worker asks for. Defaults to 2 seconds.
	VacuumEvery time.Duration `env:"ORDO_WORKER_VACUUM_EVERY" envDefault:"2s"`
	// KeepAlive is the TCP keepalive idle time and probe interval on node
	// and catalog connections, on both ends; a peer silent for about three
	// times as long is dropped, and a node then releases the locks of a
	// worker cut off from it. Defaults to 2 seconds.
	KeepAlive time.Duration `env:"ORDO_WORKER_KEEPALIVE" envDefault:"2s"`
	// Silence is how long a worker's claim connection may stay idle on a
	// node before other workers end it as silent (cut off, or frozen) and
	// take its shards. A live worker pings each claim connection every
	// Heartbeat. Defaults to 3 seconds.
	Silence time.Duration `env:"ORDO_WORKER_SILENCE" envDefault:"3s"`
	// Moves is how many shard moves the worker executes at once, as
	// rebalance does: it takes move jobs, and resumes the moves of a
	// rebalance that was killed or cut off, so that no shard stays fenced
	// or undelivered until someone runs rebalance again. 0 leaves moves to
	// rebalance alone. Defaults to 1.
	Moves int `env:"ORDO_WORKER_MOVES" envDefault:"1"`
}

// Validate checks the settings; errors name the variable at fault.
func (c *Config) Validate() error {
	if err := dsn.Check(c.CatalogURL); err != nil {
		return &cli.SettingError{Var: "ORDO_CATALOG_URL", Msg: err.Error()}
	}
	if a := c.AdminAddr; a != "" {
		if err := cli.CheckAddr(a); err != nil {
			return &cli.SettingError{Var: "ORDO_ADMIN_ADDR", Msg: err.Error()}
		}
	}
	durations := []struct {
		name string
		v    time.Duration
	}{
		{"ORDO_WORKER_HEARTBEAT", c.Heartbeat},
		{"ORDO_WORKER_LIVENESS", c.Liveness},
		{"ORDO_WORKER_MAP_POLL", c.MapPoll},
		{"ORDO_WORKER_POLL", c.Poll},
		{"ORDO_WORKER_FLUSH_INTERVAL", c.FlushInterval},
		{"ORDO_WORKER_DB_TIMEOUT", c.DBTimeout},
		{"ORDO_WORKER_DRAIN_TIMEOUT", c.DrainTimeout},
		{"ORDO_WORKER_KEEPALIVE", c.KeepAlive},
		{"ORDO_WORKER_VACUUM_EVERY", c.VacuumEvery},
		{"ORDO_WORKER_SILENCE", c.Silence},
	}
	for _, d := range durations {
		if d.v <= 0 {
			return &cli.SettingError{Var: d.name, Msg: fmt.Sprintf("must be positive, not %s", d.v)}
		}
	}
	if c.Silence < 2*c.Heartbeat {
		return &cli.SettingError{Var: "ORDO_WORKER_SILENCE", Msg: fmt.Sprintf("%s must be at least twice ORDO_WORKER_HEARTBEAT (%s)", c.Silence, c.Heartbeat)}
	}
	if c.Liveness < 2*c.Heartbeat {
		return &cli.SettingError{Var: "ORDO_WORKER_LIVENESS", Msg: fmt.Sprintf("%s must be at least twice ORDO_WORKER_HEARTBEAT (%s)", c.Liveness, c.Heartbeat)}
	}
	ints := []struct {
		name      string
		v, lo, hi int
	}{
		{"ORDO_WORKER_WINDOW", c.Window, 1, 100000},
		{"ORDO_WORKER_BUFFER", c.Buffer, 1, 10000000},
		{"ORDO_WORKER_SHARD_CONCURRENCY", c.ShardConcurrency, 1, 10000},
		{"ORDO_WORKER_CONCURRENCY", c.Concurrency, 1, 100000},
		{"ORDO_WORKER_NODE_CONNS", c.NodeConns, 1, 64},
		{"ORDO_WORKER_VACUUM_ROWS", c.VacuumRows, 0, 1 << 30},
		{"ORDO_WORKER_MOVES", c.Moves, 0, 64},
	}
	for _, n := range ints {
		if n.v < n.lo || n.v > n.hi {
			return &cli.SettingError{Var: n.name, Msg: fmt.Sprintf("must be between %d and %d, not %d", n.lo, n.hi, n.v)}
		}
	}
	if c.Buffer < c.Window {
		return &cli.SettingError{Var: "ORDO_WORKER_BUFFER", Msg: fmt.Sprintf("%d must be at least ORDO_WORKER_WINDOW (%d)", c.Buffer, c.Window)}
	}
	return c.Log.Validate()
}
