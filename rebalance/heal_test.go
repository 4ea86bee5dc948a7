package rebalance

import (
	"bytes"
	"context"
	"errors"
	"os"
	"os/exec"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/ordo-pipeline/ordo/internal/buildtest"
)

// startProcess starts the rebalance binary with env, without waiting for
// it; it is killed when the test ends.
func startProcess(t *testing.T, env []string, args ...string) (*exec.Cmd, *bytes.Buffer) {
	t.Helper()
	cmd := exec.Command(buildtest.Program(t, "rebalance"), args...)
	cmd.Env = append(os.Environ(), env...)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() {
		cmd.Wait() //nolint:errcheck // killed below
		close(done)
	}()
	t.Cleanup(func() {
		cmd.Process.Signal(syscall.SIGCONT) //nolint:errcheck // may have exited
		cmd.Process.Kill()                  //nolint:errcheck // may have exited
		<-done
		if t.Failed() {
			t.Logf("rebalance output:\n%s", out.String())
		}
	})
	return cmd, &out
}

// heal runs Heal until the test ends.
func heal(t *testing.T, catalog string) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- Heal(ctx, catalog, HealConfig{Logger: testLogger(t)}) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Heal: %v", err)
		}
	})
}

// moveState returns the step and state of the latest move, or "" when
// there is none yet. Tests poll it, so its session ends on return.
func (b *testBundle) moveState(t *testing.T) (step, state string) {
	t.Helper()
	conn, err := pgx.Connect(t.Context(), b.catalog)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())
	err = conn.QueryRow(t.Context(), `SELECT step, state FROM ordo_catalog.moves ORDER BY id DESC LIMIT 1`).Scan(&step, &state)
	if errors.Is(err, pgx.ErrNoRows) {
		return "", ""
	}
	if err != nil {
		t.Fatal(err)
	}
	return step, state
}

func waitUntil(t *testing.T, within time.Duration, what string, cond func() bool) time.Duration {
	t.Helper()
	began := time.Now()
	for !cond() {
		if time.Since(began) > within {
			t.Fatalf("%s: not within %s", what, within)
		}
		time.Sleep(50 * time.Millisecond)
	}
	return time.Since(began)
}

// TestHealResumesAbandonedMoves kills rebalance with SIGKILL between the
// fence and the flip, and after the flip: a process running Heal (as every
// worker does) must finish the move without anyone running rebalance
// again, so the shard neither refuses writes nor waits undelivered.
func TestHealResumesAbandonedMoves(t *testing.T) {
	t.Parallel()
	for _, step := range []string{StepFenced, StepFlipped} {
		t.Run(step, func(t *testing.T) {
			t.Parallel()
			b, written := setupFilled(t, 2, 2, 5)
			env := []string{"ORDO_CATALOG_URL=" + b.catalog, "ORDO_NODES=" + b.nodesEnv(1, 2), "ORDO_LOG_LEVEL=warn"}
			runKilled(t, env, "move.after_"+step)
			heal(t, b.catalog)
			took := waitUntil(t, 20*time.Second, "the abandoned move done", func() bool {
				_, state := b.moveState(t)
				return state == "done"
			})
			t.Logf("move abandoned at %s finished by Heal in %s", step, took.Round(time.Millisecond))
			b.checkPlacement(t, 1, 2)
			b.checkRows(t, written)
		})
	}
}

// TestHealTakesOverASilentExecutor freezes a rebalance in the middle of a
// move, its source fenced: while its lease is kept it keeps the move (a
// slow executor is not one to replace), and once it is frozen (SIGSTOP:
// its sockets stay open, so no keepalive ever fails, like a process cut
// off by a partition whose peers see no reset) Heal must end its sessions
// and finish the move within seconds.
func TestHealTakesOverASilentExecutor(t *testing.T) {
	t.Parallel()
	b, written := setupFilled(t, 2, 2, 5)
	env := []string{"ORDO_CATALOG_URL=" + b.catalog, "ORDO_NODES=" + b.nodesEnv(1, 2), "ORDO_LOG_LEVEL=info",
		"ORDO_FAILPOINTS=move.after_" + StepFenced + "=pause"}
	cmd, _ := startProcess(t, env)
	waitUntil(t, 30*time.Second, "the move fenced", func() bool {
		step, _ := b.moveState(t)
		return step == StepFenced
	})
	heal(t, b.catalog)
	time.Sleep(2 * leaseTimeout)
	if step, state := b.moveState(t); step != StepFenced || state != "running" {
		t.Fatalf("while its executor is alive, the move went to %s/%s, want it left at fenced/running", step, state)
	}
	if err := cmd.Process.Signal(syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	took := waitUntil(t, 20*time.Second, "the frozen executor's move done", func() bool {
		_, state := b.moveState(t)
		return state == "done"
	})
	t.Logf("move of a frozen executor finished %s after the freeze (lease %s)", took.Round(time.Millisecond), leaseTimeout)
	if took > 10*time.Second {
		t.Errorf("took %s, want under 10s", took)
	}
	b.checkPlacement(t, 1, 2)
	b.checkRows(t, written)
	// Thawed, the old executor can no longer change anything.
	if err := cmd.Process.Signal(syscall.SIGCONT); err != nil {
		t.Fatal(err)
	}
	time.Sleep(time.Second)
	b.checkPlacement(t, 1, 2)
	b.checkRows(t, written)
}
