package worker

import (
	"errors"
	"testing"
	"time"

	"github.com/ordo-pipeline/ordo/internal/cli"
)

func TestConfigDefaults(t *testing.T) {
	t.Parallel()
	cfg, err := cli.ParseEnv[Config](map[string]string{"ORDO_CATALOG_URL": "postgres://c", "ORDO_WORKSPACE_CONFIG": "ws.json"})
	if err != nil {
		t.Fatal(err)
	}
	if cfg.AdminAddr != DefaultAdminAddr {
		t.Errorf("AdminAddr = %q, want %q", cfg.AdminAddr, DefaultAdminAddr)
	}
	want := Tuning{
		Heartbeat: time.Second, Liveness: 5 * time.Second, MapPoll: 5 * time.Second,
		Poll: 30 * time.Second, Window: 1000, Buffer: 5000, ShardConcurrency: 16,
		Concurrency: 256, NodeConns: 2, FlushInterval: 50 * time.Millisecond,
		DBTimeout: 30 * time.Second, DrainTimeout: 30 * time.Second, VacuumRows: 5000,
		VacuumEvery: 2 * time.Second, KeepAlive: 2 * time.Second, Silence: 3 * time.Second, Moves: 1,
	}
	if cfg.Tuning != want {
		t.Errorf("Tuning = %+v, want %+v", cfg.Tuning, want)
	}
}

func TestConfigErrorsNameVariable(t *testing.T) {
	t.Parallel()
	base := map[string]string{"ORDO_CATALOG_URL": "postgres://c", "ORDO_WORKSPACE_CONFIG": "ws.json"}
	for name, value := range map[string]string{
		"ORDO_WORKER_LIVENESS":   "1s", // less than twice the heartbeat
		"ORDO_WORKER_WINDOW":     "0",
		"ORDO_WORKER_BUFFER":     "10", // less than the window
		"ORDO_WORKER_NODE_CONNS": "0",
		"ORDO_WORKER_SILENCE":    "1s", // less than twice the heartbeat
		"ORDO_WORKER_MOVES":      "-1",
		"ORDO_WORKER_POLL":       "-1s",
		"ORDO_ADMIN_ADDR":        "9090",
		"ORDO_LOG_FORMAT":        "xml",
		"ORDO_CATALOG_URL":       "postgres://c:notaport/x",
	} {
		env := map[string]string{}
		for k, v := range base {
			env[k] = v
		}
		env[name] = value
		_, err := cli.ParseEnv[Config](env)
		var se *cli.SettingError
		if !errors.As(err, &se) || se.Var != name {
			t.Errorf("%s=%s: error %v, want a SettingError naming %s", name, value, err, name)
		}
	}
}
