package rebalance

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/ordo-pipeline/ordo/migrations"
	"github.com/riverqueue/river"
	"github.com/riverqueue/river/riverdriver/riverpgxv5"
	"github.com/riverqueue/river/rivertype"
)

// Queue is the River queue that move jobs run on.
const Queue = "ordo_moves"

// moveMaxAttempts is how many times River runs a move job before giving
// up; a move past the cut-over that gives up stays open and the next
// rebalance run resumes it. A variable so tests can shorten it.
var moveMaxAttempts = 5

// MoveArgs is the River job that executes one move recorded in
// ordo_catalog.moves. The job carries only the move's id: the move row
// holds the step reached, so any job for the move, in any process,
// resumes it.
type MoveArgs struct {
	MoveID int64 `json:"move_id"`
}

// Kind is the River job kind.
func (MoveArgs) Kind() string { return "ordo_move" }

// InsertOpts puts move jobs on their queue.
func (MoveArgs) InsertOpts() river.InsertOpts {
	return river.InsertOpts{Queue: Queue, MaxAttempts: moveMaxAttempts}
}

// Advisory lock classes in the catalog (two-key form).
const (
	moveLockClass   int32 = 0x6f6d6f76 // "omov": one per move id
	sourceLockClass int32 = 0x6f737263 // "osrc": + slot, keyed by hashtext(source node)
)

// MoveWorker runs move jobs.
type MoveWorker struct {
	river.WorkerDefaults[MoveArgs]

	Catalog *pgxpool.Pool
	Logger  *slog.Logger
	// PerSource is how many moves may run at once from one source node.
	PerSource int

	metrics  *metrics
	migrator *nodeMigrator
}

// Timeout lets a move run as long as it needs; the copy step bounds itself.
func (w *MoveWorker) Timeout(*river.Job[MoveArgs]) time.Duration { return -1 }

// NextRetry retries a failed move attempt soon: most failures are a node
// restarting or a worker slow to let go of a shard.
func (w *MoveWorker) NextRetry(job *river.Job[MoveArgs]) time.Time {
	return time.Now().Add(time.Duration(job.Attempt) * time.Second)
}

// Work executes the move, unless another process is executing it (then the
// job waits and looks again) or it is finished.
func (w *MoveWorker) Work(ctx context.Context, job *river.Job[MoveArgs]) error {
	pooled, err := w.Catalog.Acquire(ctx)
	if err != nil {
		return fmt.Errorf("connecting to catalog: %w", err)
	}
	// The locks below are session locks: the connection is closed rather
	// than returned to the pool, which releases them even if unlocking
	// would fail.
	c := pooled.Hijack()
	defer c.Close(context.WithoutCancel(ctx)) //nolint:errcheck // closing releases the locks

	var mine bool
	if err := c.QueryRow(ctx, `SELECT pg_try_advisory_lock($1, $2::int)`, moveLockClass, job.Args.MoveID).Scan(&mine); err != nil {
		return fmt.Errorf("locking move %d: %w", job.Args.MoveID, err)
	}
	if !mine {
		return river.JobSnooze(2 * time.Second) // another process is executing it
	}
	mv, err := loadMove(ctx, c, job.Args.MoveID)
	if err != nil {
		return err
	}
	if mv.State == "done" || (mv.State == "failed" && !flippedAlready(mv.Step)) {
		return nil
	}
	// A move whose source is already fenced goes on without waiting for a
	// source slot: writes to its shard wait for it.
	if stepOrder[mv.Step] < stepOrder[StepFenced] {
		slot, err := w.sourceSlot(ctx, c, mv.Source)
		if err != nil {
			return err
		}
		if slot < 0 {
			return river.JobSnooze(500 * time.Millisecond) // the source is busy with other moves
		}
	}
	if _, err := c.Exec(ctx, `UPDATE ordo_catalog.moves SET state = 'running', updated_at = now(), heartbeat_at = now() WHERE id = $1`, mv.ID); err != nil {
		return fmt.Errorf("starting move %d: %w", mv.ID, err)
	}
	stopLease := keepLease(ctx, w.Catalog, mv.ID, w.Logger)
	defer stopLease()
	urls, err := nodeURLs(ctx, c)
	if err != nil {
		return err
	}
	m := &mover{catalog: c, log: w.Logger, mv: *mv, urls: urls, metrics: w.metrics, migrator: w.migrator}
	defer m.close()
	began := time.Now()
	err = m.run(ctx)
	w.metrics.moveSeconds.Observe(time.Since(began).Seconds())
	if err == nil {
		w.metrics.moves.WithLabelValues("done").Inc()
		return nil
	}
	if ctx.Err() != nil {
		return river.JobSnooze(0) // shutting down: the next run picks it up at once
	}
	// Record the error where `rebalance status` and the waiting run see it.
	_, _ = c.Exec(context.WithoutCancel(ctx), `UPDATE ordo_catalog.moves SET error = $2, updated_at = now() WHERE id = $1`, mv.ID, err.Error())
	if job.Attempt < job.MaxAttempts {
		w.metrics.moves.WithLabelValues("retried").Inc()
		return err
	}
	w.metrics.moves.WithLabelValues("failed").Inc()
	return giveUp(context.WithoutCancel(ctx), c, m, err)
}

// giveUp ends a move's last attempt, which failed with cause. Only the
// catalog, read on the session that holds the move's lock, says whether
// the flip committed (memory may be a step behind: a flip whose answer was
// lost did commit). Before the flip the move is rolled back; after it the
// move stays open, to be resumed. When the catalog does not answer,
// nothing is changed and the move stays open: rolling back a move that
// had flipped would drop the target table the catalog points at.
func giveUp(ctx context.Context, c *pgx.Conn, m *mover, cause error) error {
	cur, err := loadMove(ctx, c, m.mv.ID)
	if err != nil {
		return river.JobCancel(fmt.Errorf("move %d stopped at an unknown step and stays open, to be resumed (reading the catalog: %w): %w", m.mv.ID, err, cause))
	}
	m.mv.Step = cur.Step
	if !flippedAlready(cur.Step) {
		if rbErr := m.rollback(ctx, cause); rbErr != nil {
			return river.JobCancel(fmt.Errorf("%w (rolling back failed, so the move stays open, to be resumed: %w)", cause, rbErr))
		}
		return river.JobCancel(cause)
	}
	_, _ = c.Exec(ctx, `UPDATE ordo_catalog.moves SET state = 'failed', updated_at = now() WHERE id = $1`, m.mv.ID)
	return river.JobCancel(fmt.Errorf("move %d is past the cut-over and stopped at step %s; it is resumed: %w", m.mv.ID, cur.Step, cause))
}

// sourceSlot takes one of PerSource catalog locks for the source node on
// c, returning its number, or -1 when all are taken.
func (w *MoveWorker) sourceSlot(ctx context.Context, c *pgx.Conn, source string) (int, error) {
	for slot := range max(w.PerSource, 1) {
		var ok bool
		if err := c.QueryRow(ctx, `SELECT pg_try_advisory_lock($1 + $2::int, hashtext($3))`, sourceLockClass, slot, source).Scan(&ok); err != nil {
			return -1, fmt.Errorf("locking source %s: %w", source, err)
		}
		if ok {
			return slot, nil
		}
	}
	return -1, nil
}

// loadMove reads move id; a move that does not exist cancels the job.
func loadMove(ctx context.Context, q querier, id int64) (*moveRow, error) {
	mvs, err := queryMoves[moveRow](ctx, q, fmt.Sprintf("move %d", id), `SELECT `+moveColumns+` FROM ordo_catalog.moves WHERE id = $1`, id)
	if err != nil {
		return nil, err
	}
	if len(mvs) == 0 {
		return nil, river.JobCancel(fmt.Errorf("move %d does not exist", id))
	}
	return &mvs[0], nil
}

func nodeURLs(ctx context.Context, c *pgx.Conn) (map[string]string, error) {
	rows, err := c.Query(ctx, `SELECT name, url FROM ordo_catalog.nodes`)
	if err != nil {
		return nil, fmt.Errorf("reading nodes: %w", err)
	}
	urls := map[string]string{}
	var name, url string
	_, err = pgx.ForEachRow(rows, []any{&name, &url}, func() error {
		urls[name] = url
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("reading nodes: %w", err)
	}
	return urls, nil
}

// newRiverClient returns a River client on the catalog that works move
// jobs with at most concurrency at once, looking for new ones every poll
// when no notification comes.
func newRiverClient(pool *pgxpool.Pool, log *slog.Logger, m *metrics, nm *nodeMigrator, concurrency, perSource int, poll time.Duration) (*river.Client[pgx.Tx], error) {
	workers := river.NewWorkers()
	if err := river.AddWorkerSafely(workers, &MoveWorker{Catalog: pool, Logger: log, PerSource: perSource, metrics: m, migrator: nm}); err != nil {
		return nil, err
	}
	return river.NewClient(riverpgxv5.New(pool), &river.Config{
		Logger:  log.With("component", "river"),
		Queues:  map[string]river.QueueConfig{Queue: {MaxWorkers: concurrency}},
		Workers: workers,
		Schema:  migrations.RiverSchema,
		// Moves have no timeout, so River's rescuer never touches their
		// jobs: a move killed with its process is given a fresh job by the
		// next run, or by a run waiting on it (see orphanJobs), and its
		// dead job stays behind as running.
		JobTimeout:        -1,
		FetchCooldown:     50 * time.Millisecond,
		FetchPollInterval: poll,
	})
}

var _ rivertype.JobArgs = MoveArgs{}
