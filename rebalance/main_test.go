package rebalance

import (
	"os"
	"strings"
	"testing"

	"github.com/ordo-pipeline/ordo/internal/buildtest"
)

// TestConfigErrors runs the built program with bad settings: each exits 2
// with one line that names the variable (or flag) at fault.
func TestConfigErrors(t *testing.T) {
	t.Parallel()
	good := []string{"ORDO_CATALOG_URL=postgres://127.0.0.1:1/x", "ORDO_NODES=a=postgres://127.0.0.1:1/x"}
	for _, tc := range []struct {
		name string
		env  []string
		args []string
		want string
	}{
		{"no catalog", []string{"ORDO_NODES=a=postgres://h/x"}, nil, "ORDO_CATALOG_URL"},
		{"no nodes", []string{"ORDO_CATALOG_URL=postgres://h/x"}, nil, "ORDO_NODES"},
		{"bad nodes", []string{"ORDO_CATALOG_URL=postgres://h/x", "ORDO_NODES=a"}, nil, "ORDO_NODES"},
		{"duplicate node", []string{"ORDO_CATALOG_URL=postgres://h/x", "ORDO_NODES=a=postgres://h/x,a=postgres://h/y"}, nil, "ORDO_NODES"},
		{"shards not a number", append(good, "ORDO_SHARDS=many"), nil, "ORDO_SHARDS"},
		{"shards zero", append(good, "ORDO_SHARDS=0"), nil, "ORDO_SHARDS"},
		{"log format", append(good, "ORDO_LOG_FORMAT=xml"), nil, "ORDO_LOG_FORMAT"},
		{"log level", append(good, "ORDO_LOG_LEVEL=loud"), nil, "ORDO_LOG_LEVEL"},
		{"log level offset", append(good, "ORDO_LOG_LEVEL=info+4"), nil, "ORDO_LOG_LEVEL"},
		{"catalog url port", []string{"ORDO_CATALOG_URL=postgres://u@h:notaport/db", "ORDO_NODES=a=postgres://h/x"}, nil, "ORDO_CATALOG_URL"},
		{"status catalog url", []string{"ORDO_CATALOG_URL=postgres://h/x?sslmode=bogus"}, []string{"status"}, "ORDO_CATALOG_URL"},
		{"node url", []string{"ORDO_CATALOG_URL=postgres://h/x", "ORDO_NODES=a=postgres://h:notaport/x"}, nil, "ORDO_NODES"},
		{"status without catalog", nil, []string{"status"}, "ORDO_CATALOG_URL"},
		{"unknown flag", good, []string{"--bogus"}, "-bogus"},
		{"unknown command", good, []string{"explode"}, "explode"},
		{"bad concurrency", good, []string{"--concurrency=0"}, "--concurrency"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			env := append([]string{"ORDO_CATALOG_URL=", "ORDO_NODES=", "ORDO_SHARDS=", "ORDO_LOG_FORMAT=", "ORDO_LOG_LEVEL="}, tc.env...)
			out, ps := runProcess(t, env, tc.args...)
			if ps.ExitCode() != 2 {
				t.Errorf("exit %d, want 2; output:\n%s", ps.ExitCode(), out)
			}
			lines := strings.Split(strings.TrimSpace(out), "\n")
			if len(lines) != 1 || !strings.Contains(lines[0], tc.want) {
				t.Errorf("output %q, want one line naming %s", out, tc.want)
			}
		})
	}
}

func TestHelp(t *testing.T) {
	t.Parallel()
	out, ps := runProcess(t, nil, "--help")
	if ps.ExitCode() != 0 {
		t.Errorf("--help: exit %d", ps.ExitCode())
	}
	for _, want := range []string{"rebalance status", "--dry-run", "ORDO_NODES", "ORDO_SHARDS", "-per-source"} {
		if !strings.Contains(out, want) {
			t.Errorf("--help lacks %q:\n%s", want, out)
		}
	}
}

func TestMain(m *testing.M) {
	code := m.Run()
	buildtest.Cleanup()
	os.Exit(code)
}
