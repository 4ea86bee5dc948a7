package rebalance

import (
	"fmt"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/ordo-pipeline/ordo/migrations"
	"github.com/riverqueue/river"
	"github.com/riverqueue/river/rivertype"
)

// TestResumeGivesAnOrphanedMoveOneJob records open moves whose jobs are
// in every situation a run or a process that died leaves them in, and
// looks for orphans twice, as Heal does every second: a move nobody
// executes and nothing waits to run (no job, or its job killed while
// running, given up, or finished) gets exactly one new job, at the
// priority its step calls for; a move with a job waiting, or whose lock
// is held, gets none. The job killed while running is why River's unique
// jobs cannot do this (see orphanJobs).
func TestResumeGivesAnOrphanedMoveOneJob(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name        string
		step, state string // of the move
		job         rivertype.JobState
		locked      bool
		wantNew     bool
		wantPrio    int
	}{
		{name: "no job", step: StepPlanned, state: "pending", wantNew: true, wantPrio: priorityNew},
		{name: "killed while running", step: StepPlanned, state: "running", job: rivertype.JobStateRunning, wantNew: true, wantPrio: priorityNew},
		{name: "killed while running, fenced", step: StepFenced, state: "running", job: rivertype.JobStateRunning, wantNew: true, wantPrio: priorityFenced},
		{name: "discarded", step: StepTargetReady, state: "running", job: rivertype.JobStateDiscarded, wantNew: true, wantPrio: priorityNew},
		{name: "given up past the cut-over", step: StepFlipped, state: "failed", job: rivertype.JobStateCancelled, wantNew: true, wantPrio: priorityFenced},
		{name: "completed", step: StepFenced, state: "running", job: rivertype.JobStateCompleted, wantNew: true, wantPrio: priorityFenced},
		{name: "waiting", step: StepPlanned, state: "pending", job: rivertype.JobStateAvailable},
		{name: "snoozed", step: StepFenced, state: "running", job: rivertype.JobStateScheduled},
		{name: "retrying", step: StepFenced, state: "running", job: rivertype.JobStateRetryable},
		{name: "executing", step: StepFenced, state: "running", job: rivertype.JobStateRunning, locked: true},
	}
	b := setup(t, 2)
	b.run(t, b.config(t, len(cases), 1, 2))
	snap := b.snapshot(t)
	pool, err := catalogPool(t.Context(), b.catalog)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close)
	// Never started: jobs stay where the test puts them.
	client, err := newRiverClient(pool, testLogger(t), newMetrics(), &nodeMigrator{log: testLogger(t)}, 1, 1, healPoll)
	if err != nil {
		t.Fatal(err)
	}
	conn := connect(t, b.catalog)
	holder := connect(t, b.catalog)
	ids := make([]int64, len(cases))
	old := map[int64]int64{} // move id -> the job it had before
	for i, c := range cases {
		p := snap.Shards[i]
		target := "node1"
		if p.Node == target {
			target = "node2"
		}
		err := conn.QueryRow(t.Context(), `INSERT INTO ordo_catalog.moves (shard, source, target, from_epoch, to_epoch, step, state)
			VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING id`, i, p.Node, target, p.Epoch, p.Epoch+1, c.step, c.state).Scan(&ids[i])
		if err != nil {
			t.Fatal(err)
		}
		if c.job != "" {
			res, err := client.Insert(t.Context(), MoveArgs{MoveID: ids[i]}, &river.InsertOpts{Priority: priorityNew})
			if err != nil {
				t.Fatal(err)
			}
			old[ids[i]] = res.Job.ID
			// As the process that ran the job left it (River's own
			// transitions need a started client and a live worker).
			_, err = conn.Exec(t.Context(), fmt.Sprintf(`UPDATE %[1]s.river_job SET state = $2::text::%[1]s.river_job_state,
				attempt = 1, attempted_at = now(), finalized_at = CASE WHEN $2::text IN ('completed', 'cancelled', 'discarded') THEN now() END
				WHERE id = $1`, migrations.RiverSchema), res.Job.ID, string(c.job))
			if err != nil {
				t.Fatal(err)
			}
		}
		if c.locked {
			if _, err := holder.Exec(t.Context(), `SELECT pg_advisory_lock($1, $2::int)`, moveLockClass, ids[i]); err != nil {
				t.Fatal(err)
			}
		}
	}

	for range 2 {
		if err := resumeOrphans(t.Context(), pool, client, testLogger(t)); err != nil {
			t.Fatalf("resumeOrphans: %v", err)
		}
	}

	rows, err := conn.Query(t.Context(), `SELECT (args->>'move_id')::bigint, id, priority FROM `+migrations.RiverSchema+`.river_job WHERE kind = $1`, MoveArgs{}.Kind())
	if err != nil {
		t.Fatal(err)
	}
	type job struct{ id, prio int64 }
	fresh := map[int64][]job{} // move id -> its jobs other than the old one
	var move, id, prio int64
	if _, err := pgx.ForEachRow(rows, []any{&move, &id, &prio}, func() error {
		if old[move] != id {
			fresh[move] = append(fresh[move], job{id, prio})
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	for i, c := range cases {
		got := fresh[ids[i]]
		switch {
		case !c.wantNew && len(got) != 0:
			t.Errorf("%s: %d new jobs, want none", c.name, len(got))
		case c.wantNew && len(got) != 1:
			t.Errorf("%s: %d new jobs, want exactly one", c.name, len(got))
		case c.wantNew && got[0].prio != int64(c.wantPrio):
			t.Errorf("%s: new job at priority %d, want %d", c.name, got[0].prio, c.wantPrio)
		}
		var state string
		if err := conn.QueryRow(t.Context(), `SELECT state FROM ordo_catalog.moves WHERE id = $1`, ids[i]).Scan(&state); err != nil {
			t.Fatal(err)
		}
		want := c.state
		if want == "failed" {
			want = "running" // reopened, to be resumed
		}
		if state != want {
			t.Errorf("%s: move %s after resuming, want %s", c.name, state, want)
		}
	}
}
