package rebalance

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ordo-pipeline/ordo/schema"
)

// TestLostFlipAnswerDoesNotRollBack loses the catalog session in the
// middle of a move's flip, on the move's last attempt: once with the flip
// committed (only its answer lost), once before its commit. The process
// cannot tell which from memory, so it must change nothing: rolling back a
// committed flip drops the target table the catalog points at; rolling
// back an uncommitted one without recording it leaves the catalog at
// "fenced" over a dropped target. Either way the move must finish, every
// row in place once and in order.
//
// Not parallel: it sets the package's flip hook and attempt count.
func TestLostFlipAnswerDoesNotRollBack(t *testing.T) {
	for _, committed := range []bool{true, false} {
		t.Run(fmt.Sprintf("committed=%v", committed), func(t *testing.T) {
			defer func(n int) { moveMaxAttempts, testFlipHook = n, nil }(moveMaxAttempts)
			moveMaxAttempts = 1
			b, written := setupFilled(t, 2, 2, 5)

			admin := connect(t, b.catalog)
			var once sync.Once
			var cut bool
			testFlipHook = func(m *mover, afterCommit bool) error {
				if afterCommit != committed {
					return nil
				}
				var err error
				once.Do(func() {
					cut = true
					pid := m.catalog.PgConn().PID()
					if _, terr := admin.Exec(context.Background(), `SELECT pg_terminate_backend($1)`, pid); terr != nil {
						t.Errorf("terminating the move's catalog session: %v", terr)
					}
					err = errors.New("test: the catalog session died during the flip")
				})
				return err
			}
			var out strings.Builder
			ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
			defer cancel()
			if err := Run(ctx, b.config(t, 2, 1, 2), Options{Out: &out, Logger: testLogger(t)}); err != nil {
				t.Fatalf("Run after a lost flip answer: %v\n%s", err, out.String())
			}
			if !cut {
				t.Fatal("the flip hook never cut the catalog session")
			}
			b.checkPlacement(t, 1, 2)
			b.checkRows(t, written)
			for i, c := range b.nodes {
				conn := connect(t, c.URL())
				tables, err := schema.List(t.Context(), conn)
				if err != nil {
					t.Fatal(err)
				}
				for _, sh := range tables {
					if fenced, err := schema.IsFencedTable(t.Context(), conn, sh); err != nil || fenced {
						t.Errorf("shard %d on node%d still fenced (err %v)", sh, i+1, err)
					}
				}
			}
		})
	}
}

// TestResumeRepairsAnInterruptedRollback leaves a move at "fenced" with
// the source open again and the target table dropped, as a rollback that
// died before it could record itself leaves it: resuming the move must
// fence again and make the target again before it flips, not flip onto a
// table that is gone.
func TestResumeRepairsAnInterruptedRollback(t *testing.T) {
	t.Parallel()
	b, written := setupFilled(t, 2, 2, 5)
	env := []string{"ORDO_CATALOG_URL=" + b.catalog, "ORDO_NODES=" + b.nodesEnv(1, 2), "ORDO_LOG_LEVEL=warn"}
	runKilled(t, env, "move.after_"+StepFenced)
	var shard int
	if err := connect(t, b.catalog).QueryRow(t.Context(), `SELECT shard FROM ordo_catalog.moves WHERE step = 'fenced'`).Scan(&shard); err != nil {
		t.Fatalf("finding the fenced move: %v", err)
	}
	src, dst := connect(t, b.nodes[0].URL()), connect(t, b.nodes[1].URL())
	if err := schema.Unfence(t.Context(), src, shard); err != nil {
		t.Fatal(err)
	}
	if err := schema.Drop(t.Context(), dst, shard); err != nil {
		t.Fatal(err)
	}
	out, ps := runProcess(t, env)
	if ps.ExitCode() != 0 {
		t.Fatalf("re-run: exit %d\n%s", ps.ExitCode(), out)
	}
	b.checkPlacement(t, 1, 2)
	b.checkRows(t, written)
}
