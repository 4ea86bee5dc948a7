package rebalance

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/ordo-pipeline/ordo/internal/failpoint"
	"github.com/ordo-pipeline/ordo/schema"
)

// Steps of a move, in order, as recorded in ordo_catalog.moves.step. A
// move resumes at the step after the one recorded; every step is
// idempotent, so repeating one after a crash is safe.
const (
	StepPlanned       = "planned"        // recorded, nothing done yet
	StepTargetReady   = "target_ready"   // the target has the shard's table at the new epoch
	StepFenced        = "fenced"         // the source table refuses new rows
	StepFlipped       = "flipped"        // the catalog points at the target; new writes go there
	StepCopied        = "copied"         // pending rows and dead letters are on the target, verified
	StepSourceDropped = "source_dropped" // the source table and its dead letters are gone
	StepDone          = "done"           // the shard is active on the target
)

// stepOrder ranks the steps.
var stepOrder = map[string]int{StepPlanned: 0, StepTargetReady: 1, StepFenced: 2, StepFlipped: 3, StepCopied: 4, StepSourceDropped: 5, StepDone: 6}

// flippedAlready reports whether a move at step has passed the cut-over,
// after which it can only roll forward.
func flippedAlready(step string) bool { return stepOrder[step] >= stepOrder[StepFlipped] }

// moveColumns are the columns of ordo_catalog.moves that moveRow holds,
// for pgx.RowToStructByName.
const moveColumns = "id, shard, source, target, from_epoch, to_epoch, step, state"

// moveRow is a move as recorded in the catalog.
type moveRow struct {
	ID        int64
	Shard     int
	Source    string
	Target    string
	FromEpoch int64
	ToEpoch   int64
	Step      string
	State     string
}

// querier runs a query: a connection, a pool or a transaction.
type querier interface {
	Query(context.Context, string, ...any) (pgx.Rows, error)
}

// queryMoves returns the rows of the moves that sql selects as T, a
// moveRow or a struct that embeds one; what names them in errors.
func queryMoves[T any](ctx context.Context, q querier, what, sql string, args ...any) ([]T, error) {
	rows, err := q.Query(ctx, sql, args...)
	if err != nil {
		return nil, fmt.Errorf("reading %s: %w", what, err)
	}
	out, err := pgx.CollectRows(rows, pgx.RowToStructByName[T])
	if err != nil {
		return nil, fmt.Errorf("reading %s: %w", what, err)
	}
	return out, nil
}

// Tuning of the move steps (variables so tests can shorten them).
var (
	fenceLockTimeout = 2 * time.Second  // per attempt to fence the source
	fenceAttempts    = 10               // per job attempt, before it fails
	shardLockWait    = 2 * time.Minute  // for a worker to let go of the shard
	copyTimeout      = 30 * time.Minute // for one shard's copy
)

// mover executes one move. catalog is the session that holds the move's
// lock: every catalog write of the move goes through it, so once that
// session is gone (and another process may take the move over) this one
// can no longer change the move.
type mover struct {
	catalog *pgx.Conn
	log     *slog.Logger
	mv      moveRow
	urls    map[string]string // node name → URL

	source, target *pgx.Conn // opened on demand, holding the shard's advisory lock once locked
	srcLocked      bool
	dstLocked      bool

	metrics  *metrics
	migrator *nodeMigrator
	stepFrom time.Time // when the current step began
}

func (m *mover) close() {
	ctx := context.Background()
	if m.source != nil {
		m.source.Close(ctx)
	}
	if m.target != nil {
		m.target.Close(ctx)
	}
}

// run executes the move's remaining steps.
func (m *mover) run(ctx context.Context) error {
	steps := []struct {
		from string
		do   func(context.Context) error
	}{
		{StepPlanned, m.prepareTarget},
		{StepTargetReady, m.fenceAndFlip},
		{StepFenced, m.fenceAndFlip}, // resuming after a crash between the two
		{StepFlipped, m.copy},
		{StepCopied, m.dropSource},
		{StepSourceDropped, m.finish},
	}
	m.stepFrom = time.Now()
	for _, s := range steps {
		if stepOrder[m.mv.Step] > stepOrder[s.from] {
			continue
		}
		if err := s.do(ctx); err != nil {
			return err
		}
	}
	return nil
}

func (m *mover) nodeConn(ctx context.Context, node string) (*pgx.Conn, error) {
	url, ok := m.urls[node]
	if !ok {
		return nil, fmt.Errorf("node %s is not in the catalog", node)
	}
	conn, err := connectNode(ctx, url)
	if err != nil {
		return nil, fmt.Errorf("connecting to node %s: %w", node, err)
	}
	return conn, nil
}

// sourceConn returns the session with the move's source node, opened and
// claimed (claimNode) on first use.
func (m *mover) sourceConn(ctx context.Context) (*pgx.Conn, error) {
	return m.claimedConn(ctx, &m.source, m.mv.Source)
}

// targetConn returns the session with the move's target node, opened and
// claimed (claimNode) on first use.
func (m *mover) targetConn(ctx context.Context) (*pgx.Conn, error) {
	return m.claimedConn(ctx, &m.target, m.mv.Target)
}

// claimedConn returns *held, first opening a session with node into it
// and claiming the node for the move there.
func (m *mover) claimedConn(ctx context.Context, held **pgx.Conn, node string) (*pgx.Conn, error) {
	if *held == nil {
		c, err := m.nodeConn(ctx, node)
		if err != nil {
			return nil, err
		}
		if err := m.claimNode(ctx, c, node); err != nil {
			c.Close(context.WithoutCancel(ctx))
			return nil, err
		}
		*held = c
	}
	return *held, nil
}

// executorLockClass is the first key of the lock ("omxe") that a move's
// executor holds, keyed by shard, on its session with each node.
const executorLockClass int32 = 0x6f6d7865

// claimTimeout bounds how long claimNode waits for an earlier executor's
// session to end.
const claimTimeout = 15 * time.Second

// claimNode takes the executor lock of the move's shard on conn, a new
// session with node. Its holder, if any, is an earlier executor of a move
// of this shard that lost the move's lock (this process holds it) but may
// still be at work on the node, cut off from the catalog: its session is
// ended, so that it can no longer fence, unfence, drop or copy anything
// there, before this executor changes anything. It is ended only while
// this process's catalog session still answers, that is while it still
// holds the move.
func (m *mover) claimNode(ctx context.Context, conn *pgx.Conn, node string) error {
	deadline := time.Now().Add(claimTimeout)
	for {
		var ok bool
		if err := conn.QueryRow(ctx, `SELECT pg_try_advisory_lock($1, $2::int)`, executorLockClass, m.mv.Shard).Scan(&ok); err != nil {
			return fmt.Errorf("node %s: taking the executor lock of shard %d: %w", node, m.mv.Shard, err)
		}
		if ok {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("node %s: an earlier executor of shard %d still holds its session after %s", node, m.mv.Shard, claimTimeout)
		}
		if _, err := m.catalog.Exec(ctx, `SELECT 1`); err != nil {
			return fmt.Errorf("checking the catalog session before ending an earlier executor's: %w", err)
		}
		rows, err := conn.Query(ctx, `SELECT pid, pg_terminate_backend(pid) FROM pg_locks
			WHERE locktype = 'advisory' AND granted AND classid = $1::int::oid AND objid = $2::int::oid AND objsubid = 2
			  AND database = (SELECT oid FROM pg_database WHERE datname = current_database()) AND pid <> pg_backend_pid()`,
			executorLockClass, m.mv.Shard)
		if err != nil {
			return fmt.Errorf("node %s: ending an earlier executor's session: %w", node, err)
		}
		var pid int32
		var ended bool
		if _, err := pgx.ForEachRow(rows, []any{&pid, &ended}, func() error {
			m.log.Warn("ended the session of an earlier executor of the move's shard", "move", m.mv.ID, "shard", m.mv.Shard, "node", node, "pid", pid, "ended", ended)
			return nil
		}); err != nil {
			return fmt.Errorf("node %s: ending an earlier executor's session: %w", node, err)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// setStep records that the move reached step, then acts on it (reached).
func (m *mover) setStep(ctx context.Context, step string) error {
	if err := recordStep(ctx, m.catalog, m.mv.ID, step); err != nil {
		return err
	}
	m.reached(step)
	return nil
}

// recordStep writes step into the move's row, in q: the move's session, or
// a transaction that also makes the step's change.
func recordStep(ctx context.Context, q interface {
	Exec(context.Context, string, ...any) (pgconn.CommandTag, error)
}, id int64, step string) error {
	if _, err := q.Exec(ctx, `UPDATE ordo_catalog.moves SET step = $2, updated_at = now(), error = NULL WHERE id = $1`, id, step); err != nil {
		return fmt.Errorf("recording step %s: %w", step, err)
	}
	return nil
}

// reached does what follows a step once it is committed: the log line,
// the step's duration, and the step's fail point.
func (m *mover) reached(step string) {
	m.log.Info("move step", "move", m.mv.ID, "shard", m.mv.Shard, "source", m.mv.Source, "target", m.mv.Target, "step", step)
	if m.metrics != nil && !m.stepFrom.IsZero() {
		m.metrics.stepSeconds.WithLabelValues(step).Observe(time.Since(m.stepFrom).Seconds())
	}
	m.stepFrom = time.Now()
	m.mv.Step = step
	failpoint.Hit("move.after_" + step)
}

// prepareTarget migrates the target and makes the shard's table there
// afresh at the new epoch, fenced: a table left by an earlier, abandoned
// move or bootstrap would keep its old epoch, and until the flip the
// target must refuse rows. A gateway whose map predates an earlier move of
// the shard away from the target node still places the shard there; rows
// it wrote before the flip would sort after newer rows written on the
// source, and a rollback would drop them. The flip lifts the fence.
func (m *mover) prepareTarget(ctx context.Context) error {
	if err := m.migrator.one(ctx, m.mv.Target, m.urls[m.mv.Target]); err != nil {
		return fmt.Errorf("migrating target: %w", err)
	}
	conn, err := m.targetConn(ctx)
	if err != nil {
		return err
	}
	if err := schema.Drop(ctx, conn, m.mv.Shard); err != nil {
		return err
	}
	if err := m.createTarget(ctx, true); err != nil {
		return err
	}
	return m.setStep(ctx, StepTargetReady)
}

// createTarget creates the shard's table on the target at the new epoch,
// if it does not exist, fenced or not, in one transaction.
func (m *mover) createTarget(ctx context.Context, fenced bool) error {
	conn, err := m.targetConn(ctx)
	if err != nil {
		return err
	}
	return pgx.BeginFunc(ctx, conn, func(tx pgx.Tx) error {
		exists, err := schema.Exists(ctx, tx, m.mv.Shard)
		if err != nil || exists {
			return err
		}
		if err := schema.Create(ctx, tx, m.mv.Shard, m.mv.ToEpoch); err != nil {
			return err
		}
		if !fenced {
			return nil
		}
		return schema.Fence(ctx, tx, m.mv.Shard)
	})
}

// openTarget lets the target table take rows, once the catalog points at
// it. A table that is missing took no row, so it is made afresh.
func (m *mover) openTarget(ctx context.Context) error {
	conn, err := m.targetConn(ctx)
	if err != nil {
		return err
	}
	err = schema.Unfence(ctx, conn, m.mv.Shard)
	if isUndefinedTable(err) {
		err = m.createTarget(ctx, false)
	}
	if err != nil {
		return fmt.Errorf("opening target: %w", err)
	}
	return nil
}

// fenceSource makes the source table refuse new rows, after waiting for
// the inserts in flight to finish. Gateways that hit the fence reload the
// map and retry; until the flip they find the shard still on the source,
// so the flip follows at once.
func (m *mover) fenceSource(ctx context.Context) error {
	conn, err := m.sourceConn(ctx)
	if err != nil {
		return err
	}
	var lastErr error
	for attempt := 1; attempt <= fenceAttempts; attempt++ {
		lastErr = pgx.BeginFunc(ctx, conn, func(tx pgx.Tx) error {
			if _, err := tx.Exec(ctx, fmt.Sprintf("SET LOCAL lock_timeout = '%dms'", fenceLockTimeout.Milliseconds())); err != nil {
				return err
			}
			return schema.Fence(ctx, tx, m.mv.Shard)
		})
		if lastErr == nil {
			return m.setStep(ctx, StepFenced)
		}
		if !isLockTimeout(lastErr) {
			return lastErr
		}
		m.log.Warn("fencing source: table busy, retrying", "shard", m.mv.Shard, "source", m.mv.Source, "attempt", attempt)
	}
	return fmt.Errorf("fencing shard %d on %s: %w", m.mv.Shard, m.mv.Source, lastErr)
}

// fenceTimeout bounds fencing and flipping together.
func fenceTimeout() time.Duration {
	return time.Duration(fenceAttempts)*fenceLockTimeout + 30*time.Second
}

// fenceAndFlip fences the source and flips the catalog to the target as
// one critical section: an interruption (SIGTERM) does not stop it midway,
// and when the flip fails the fence is lifted again, so that the shard
// does not refuse writes while nobody moves it. Only SIGKILL between the
// two leaves the source fenced and unflipped; such moves are resumed
// first, by any process that executes moves.
//
// A move resumed here may find the target table gone and the source open
// again (a rollback interrupted before it could record itself): the target
// table is made again and the source fenced again, both idempotent, before
// the flip.
func (m *mover) fenceAndFlip(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), fenceTimeout())
	defer cancel()
	if err := m.createTarget(ctx, true); err != nil {
		return err
	}
	if err := m.fenceSource(ctx); err != nil {
		return err
	}
	err := m.flip(ctx)
	if err == nil {
		return m.openTarget(ctx)
	}
	// Lift the fence only once the catalog says the flip did not commit:
	// unfencing a flipped shard would let old maps write behind new rows.
	var node string
	var epoch int64
	if cerr := m.catalog.QueryRow(ctx, `SELECT node, epoch FROM ordo_catalog.shards WHERE shard = $1`, m.mv.Shard).Scan(&node, &epoch); cerr != nil {
		return fmt.Errorf("%w (the source stays fenced until the move is resumed: %w)", err, cerr)
	}
	if node == m.mv.Target && epoch == m.mv.ToEpoch {
		m.reached(StepFlipped) // the commit went through after all
		return m.openTarget(ctx)
	}
	if uerr := m.unfence(ctx); uerr != nil {
		return fmt.Errorf("%w (and lifting the fence: %w)", err, uerr)
	}
	return err
}

// unfence lifts the source's fence and records the move as back at
// target_ready, for a move that has not flipped.
func (m *mover) unfence(ctx context.Context) error {
	src, err := m.sourceConn(ctx)
	if err != nil {
		return err
	}
	if err := schema.Unfence(ctx, src, m.mv.Shard); err != nil {
		return err
	}
	if err := recordStep(ctx, m.catalog, m.mv.ID, StepTargetReady); err != nil {
		return err
	}
	m.mv.Step = StepTargetReady
	return nil
}

// flip points the catalog at the target with the new epoch, in state
// moving: new writes go to the target at once, and no worker delivers the
// shard until the copy is done. The step is recorded in the same
// transaction.
func (m *mover) flip(ctx context.Context) error {
	err := pgx.BeginFunc(ctx, m.catalog, func(tx pgx.Tx) error {
		tag, err := tx.Exec(ctx, `UPDATE ordo_catalog.shards SET node = $2, epoch = $3, state = 'moving', updated_at = now()
			WHERE shard = $1 AND node = $4 AND epoch = $5`, m.mv.Shard, m.mv.Target, m.mv.ToEpoch, m.mv.Source, m.mv.FromEpoch)
		if err != nil {
			return fmt.Errorf("flipping shard %d: %w", m.mv.Shard, err)
		}
		if tag.RowsAffected() == 0 {
			var node string
			var epoch int64
			if err := tx.QueryRow(ctx, `SELECT node, epoch FROM ordo_catalog.shards WHERE shard = $1`, m.mv.Shard).Scan(&node, &epoch); err != nil {
				return fmt.Errorf("reading shard %d: %w", m.mv.Shard, err)
			}
			if node != m.mv.Target || epoch != m.mv.ToEpoch {
				return fmt.Errorf("shard %d is on %s at epoch %d, not on %s at epoch %d as the move expects", m.mv.Shard, node, epoch, m.mv.Source, m.mv.FromEpoch)
			}
		}
		if err := recordStep(ctx, tx, m.mv.ID, StepFlipped); err != nil {
			return err
		}
		return flipHook(m, false)
	})
	if err == nil {
		err = flipHook(m, true)
	}
	if err != nil {
		return err
	}
	m.reached(StepFlipped)
	return nil
}

// testFlipHook, set by tests, runs in the flip's transaction before its
// commit and again after it, where a lost connection matters most.
var testFlipHook func(m *mover, committed bool) error

func flipHook(m *mover, committed bool) error {
	if testFlipHook == nil {
		return nil
	}
	return testFlipHook(m, committed)
}

// lockShard takes shard's advisory lock on conn, waiting up to
// shardLockWait for a worker that holds it to let go (workers release a
// shard once the map shows it moved).
func (m *mover) lockShard(ctx context.Context, conn *pgx.Conn, node string) error {
	deadline := time.Now().Add(shardLockWait)
	lastLog := time.Now()
	for {
		var ok bool
		if err := conn.QueryRow(ctx, schema.TryLockSQL, m.mv.Shard).Scan(&ok); err != nil {
			return fmt.Errorf("locking shard %d on %s: %w", m.mv.Shard, node, err)
		}
		if ok {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("shard %d on %s: still locked by a worker after %s", m.mv.Shard, node, shardLockWait)
		}
		if time.Since(lastLog) > 5*time.Second {
			m.log.Info("waiting for a worker to let go of the shard", "shard", m.mv.Shard, "node", node)
			lastLog = time.Now()
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// StepProgress says how far a move at step has come: done of total steps.
// An unknown step counts as not started.
func StepProgress(step string) (done, total int) {
	return stepOrder[step], stepOrder[StepDone]
}
