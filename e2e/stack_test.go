package e2e

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"slices"
	"testing"
	"time"

	"github.com/ordo-pipeline/ordo/internal/buildtest"
	"github.com/ordo-pipeline/ordo/internal/proctest"
)

func TestMain(m *testing.M) {
	code := m.Run()
	buildtest.Cleanup()
	os.Exit(code)
}

func binary(t *testing.T, name string) string {
	t.Helper()
	return buildtest.Program(t, name)
}

// start runs program with env (added to the test's environment).
func start(t *testing.T, name, program string, env []string, args ...string) *proctest.Proc {
	t.Helper()
	cmd := exec.Command(binary(t, program), args...)
	cmd.Env = append(os.Environ(), env...)
	return proctest.Start(t, name, cmd, 40)
}

// runOnce runs program to completion and returns its output and state.
func runOnce(t *testing.T, program string, env []string, args ...string) (string, *os.ProcessState) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 3*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, binary(t, program), args...)
	cmd.Env = append(os.Environ(), env...)
	out, _ := cmd.CombinedOutput()
	return string(out), cmd.ProcessState
}

// runRebalance runs rebalance with env to completion, fails the test
// saying what the run was for when it does not exit 0, and returns its
// output.
func runRebalance(t *testing.T, what string, env []string) string {
	t.Helper()
	out, ps := runOnce(t, "rebalance", env)
	if ps.ExitCode() != 0 {
		t.Fatalf("%s: exit %d\n%s", what, ps.ExitCode(), out)
	}
	return out
}

// gateways are gateways started by startGateways.
type gateways struct {
	procs []*proctest.Proc
	addrs []string // listen addresses
	urls  []string // http://addr
}

// startGateways starts n gateways, gateway-1 to gateway-n, each on a free
// address with env, and waits until they are ready.
func startGateways(t *testing.T, n int, env []string) gateways {
	t.Helper()
	var g gateways
	for i := range n {
		addr := proctest.FreeAddr(t)
		g.procs = append(g.procs, start(t, fmt.Sprintf("gateway-%d", i+1), "gateway", append(slices.Clip(env), "ORDO_HTTP_ADDR="+addr)))
		g.addrs = append(g.addrs, addr)
		g.urls = append(g.urls, "http://"+addr)
	}
	for _, u := range g.urls {
		proctest.WaitReady(t, u+"/ready", 30*time.Second)
	}
	return g
}
