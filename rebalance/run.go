package rebalance

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/ordo-pipeline/ordo/internal/dsn"
	"github.com/ordo-pipeline/ordo/internal/failpoint"
	"github.com/ordo-pipeline/ordo/migrations"
	"github.com/ordo-pipeline/ordo/shard"
	"github.com/riverqueue/river"
	"github.com/riverqueue/river/rivertype"
)

// Options are the command-line choices of one rebalance run.
type Options struct {
	// DryRun prints the plan and changes nothing.
	DryRun bool
	// Concurrency is how many moves run at once in this process. Defaults
	// to 4.
	Concurrency int
	// PerSource is how many moves may copy from one source node at once,
	// across all rebalance processes. Defaults to 1.
	PerSource int
	// Out receives the plan and the progress display meant for the
	// operator.
	Out io.Writer
	// Terminal makes progress one line redrawn in place; otherwise progress
	// is a plain line every few seconds.
	Terminal bool
	// Logger defaults to a logger that discards.
	Logger *slog.Logger
	// MetricsAddr, when set, serves Prometheus metrics on /metrics there
	// while the run lasts.
	MetricsAddr string
}

func (o *Options) withDefaults() {
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.Out == nil {
		o.Out = io.Discard
	}
	if o.Concurrency <= 0 {
		o.Concurrency = 4
	}
	if o.PerSource <= 0 {
		o.PerSource = 1
	}
}

// River priorities of move jobs (1 runs first): a resumed move whose
// source is already fenced holds up writes to its shard, so it goes before
// moves that have not started.
const (
	priorityFenced = 1
	priorityNew    = 2
)

// maxRounds bounds plan-and-execute rounds; one is normal, a second
// happens when moves of a concurrent run changed the picture.
const maxRounds = 5

// Run converges the cluster to cfg's nodes: it bootstraps an empty
// catalog; otherwise it migrates the listed nodes, records new ones,
// plans the fewest moves to an even spread with nothing on unlisted
// nodes, executes them as River jobs, and detaches emptied nodes. It
// returns nil once the cluster is converged.
func Run(ctx context.Context, cfg *Config, opts Options) error {
	opts.withDefaults()
	log := opts.Logger
	if !opts.DryRun {
		log.Info("migrating catalog", "url", dsn.Redact(cfg.CatalogURL))
		if err := migrations.Catalog(ctx, cfg.CatalogURL, log); err != nil {
			return fmt.Errorf("catalog: %w", err)
		}
	}
	pool, err := catalogPool(ctx, cfg.CatalogURL)
	if err != nil {
		return err
	}
	defer pool.Close()

	if opts.DryRun {
		return dryRun(ctx, pool, cfg, opts.Out)
	}
	m := newMetrics()
	nm := &nodeMigrator{log: log}
	if opts.MetricsAddr != "" {
		if err := serveMetrics(ctx, opts.MetricsAddr, m, log); err != nil {
			return fmt.Errorf("serving metrics: %w", err)
		}
	}
	client, err := newRiverClient(pool, log, m, nm, opts.Concurrency, opts.PerSource, 200*time.Millisecond)
	if err != nil {
		return fmt.Errorf("preparing move executor: %w", err)
	}
	started := false
	defer func() {
		if started {
			stopCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), shutdownWait)
			defer cancel()
			_ = client.Stop(stopCtx)
		}
	}()
	for round := 1; ; round++ {
		if round > maxRounds {
			return fmt.Errorf("not converged after %d rounds of moves", maxRounds)
		}
		var open []int64
		converged := false
		err := withCatalogLock(ctx, pool, func(conn *pgx.Conn) error {
			var err error
			open, converged, err = prepare(ctx, conn, cfg, nm, client, opts)
			return err
		})
		if err != nil {
			return err
		}
		if converged {
			fmt.Fprintf(opts.Out, "converged: %s\n", summaryLine(ctx, pool))
			return nil
		}
		if !started {
			if err := client.Start(ctx); err != nil {
				return fmt.Errorf("starting move executor: %w", err)
			}
			started = true
		}
		if err := wait(ctx, pool, client, open, opts); err != nil {
			return err
		}
	}
}

// prepare runs under the catalog lock: it bootstraps or migrates, records
// node changes, and enqueues moves. It returns the moves to wait for, or
// converged when there are none and nothing is left to do.
func prepare(ctx context.Context, conn *pgx.Conn, cfg *Config, nm *nodeMigrator, client *river.Client[pgx.Tx], opts Options) (open []int64, converged bool, err error) {
	log := opts.Logger
	snap, err := shard.Load(ctx, conn)
	if errors.Is(err, shard.ErrNotBootstrapped) {
		log.Info("bootstrapping cluster", "shards", cfg.Shards, "nodes", len(cfg.DesiredNodes()))
		if err := bootstrap(ctx, conn, cfg, nm, log); err != nil {
			return nil, false, fmt.Errorf("bootstrap: %w", err)
		}
		fmt.Fprintf(opts.Out, "bootstrapped: %d shards on %d nodes\n", cfg.Shards, len(cfg.DesiredNodes()))
		return nil, true, nil
	}
	if err != nil {
		return nil, false, fmt.Errorf("loading shard map: %w", err)
	}
	if cfg.Shards != snap.Count() {
		log.Debug("ORDO_SHARDS only counts at bootstrap; keeping the cluster's shard count", "ORDO_SHARDS", cfg.Shards, "cluster_shards", snap.Count())
	}
	// New nodes are migrated and recorded before anything moves to them.
	if err := nm.all(ctx, cfg.DesiredNodes()); err != nil {
		return nil, false, err
	}
	if err := recordNodes(ctx, conn, cfg.DesiredNodes(), snap, log); err != nil {
		return nil, false, err
	}
	if snap, err = shard.Load(ctx, conn); err != nil {
		return nil, false, fmt.Errorf("loading shard map: %w", err)
	}
	openMoves, err := loadOpenMoves(ctx, conn)
	if err != nil {
		return nil, false, err
	}
	// New moves are planned only once no move is open: an open move may
	// target a node that is no longer wanted, and its shard must finish
	// moving before it is planned again.
	var plan []Move
	if len(openMoves) == 0 {
		plan = Plan(effectivePlacement(snap, nil), names(cfg.DesiredNodes()))
	}
	if len(openMoves) == 0 && len(plan) == 0 {
		if err := ensureTables(ctx, snap, cfg.DesiredNodes()); err != nil {
			return nil, false, err
		}
		return nil, true, detachEmpty(ctx, conn, log)
	}
	if len(plan) > 0 {
		fmt.Fprintf(opts.Out, "plan: %d moves\n", len(plan))
		log.Info("enqueueing moves", "moves", len(plan))
	}
	var jobs []river.InsertManyParams
	err = pgx.BeginFunc(ctx, conn, func(tx pgx.Tx) error {
		for _, m := range plan {
			var id int64
			from := snap.Shards[m.Shard].Epoch
			err := tx.QueryRow(ctx, `INSERT INTO ordo_catalog.moves (shard, source, target, from_epoch, to_epoch)
				VALUES ($1, $2, $3, $4, $5) RETURNING id`, m.Shard, m.Source, m.Target, from, from+1).Scan(&id)
			if err != nil {
				return fmt.Errorf("recording move of shard %d: %w", m.Shard, err)
			}
			open = append(open, id)
			jobs = append(jobs, river.InsertManyParams{Args: MoveArgs{MoveID: id}, InsertOpts: &river.InsertOpts{Priority: priorityNew}})
		}
		for _, mv := range openMoves {
			open = append(open, mv.ID)
		}
		resumed, err := orphanJobs(ctx, tx, client, openMoves, opts.Logger)
		if err != nil {
			return err
		}
		jobs = append(jobs, resumed...)
		if len(jobs) == 0 {
			return nil
		}
		if _, err := client.InsertManyTx(ctx, tx, jobs); err != nil {
			return fmt.Errorf("enqueueing move jobs: %w", err)
		}
		return nil
	})
	if err != nil {
		return nil, false, err
	}
	failpoint.Hit("rebalance.after_plan")
	return open, false, nil
}

// recordNodes adds new nodes, reactivates returning ones, updates URLs,
// and marks nodes no longer listed as draining.
func recordNodes(ctx context.Context, conn *pgx.Conn, desired []dsn.Node, snap *shard.Snapshot, log *slog.Logger) error {
	want := map[string]bool{}
	for _, n := range desired {
		want[n.Name] = true
		cur, ok := snap.Nodes[n.Name]
		switch {
		case !ok:
			log.Info("adding node", "node", n.Name)
			if _, err := conn.Exec(ctx, `INSERT INTO ordo_catalog.nodes (name, url) VALUES ($1, $2)`, n.Name, n.URL); err != nil {
				return fmt.Errorf("adding node %s: %w", n.Name, err)
			}
		case cur.URL != n.URL || cur.State != "active":
			log.Info("updating node", "node", n.Name, "url", dsn.Redact(n.URL), "state", "active")
			if _, err := conn.Exec(ctx, `UPDATE ordo_catalog.nodes SET url = $2, state = 'active', updated_at = now() WHERE name = $1`, n.Name, n.URL); err != nil {
				return fmt.Errorf("updating node %s: %w", n.Name, err)
			}
		}
	}
	for name, n := range snap.Nodes {
		if !want[name] && n.State == "active" {
			log.Info("draining node", "node", name)
			if _, err := conn.Exec(ctx, `UPDATE ordo_catalog.nodes SET state = 'draining', updated_at = now() WHERE name = $1`, name); err != nil {
				return fmt.Errorf("draining node %s: %w", name, err)
			}
		}
	}
	return nil
}

// detachEmpty marks draining nodes that hold no shard as detached: their
// Postgres can be switched off.
func detachEmpty(ctx context.Context, conn *pgx.Conn, log *slog.Logger) error {
	rows, err := conn.Query(ctx, `UPDATE ordo_catalog.nodes n SET state = 'detached', updated_at = now()
		WHERE state = 'draining' AND NOT EXISTS (SELECT 1 FROM ordo_catalog.shards s WHERE s.node = n.name)
		RETURNING name`)
	if err != nil {
		return fmt.Errorf("detaching drained nodes: %w", err)
	}
	detached, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return fmt.Errorf("detaching drained nodes: %w", err)
	}
	for _, n := range detached {
		log.Info("node drained and detached; it can be switched off", "node", n)
	}
	return nil
}

// loadOpenMoves returns the moves still to finish: pending or running,
// and failed ones that had passed the cut-over (they must roll forward).
func loadOpenMoves(ctx context.Context, q querier) ([]moveRow, error) {
	return queryMoves[moveRow](ctx, q, "open moves", `SELECT `+moveColumns+` FROM ordo_catalog.moves
		WHERE state IN ('pending', 'running') OR (state = 'failed' AND step IN ('flipped', 'copied', 'source_dropped'))
		ORDER BY id`)
}

// effectivePlacement is the placement once the open moves are done. A
// run plans only when no move is open (nil); the dry run shows the plan
// that follows the open ones.
func effectivePlacement(snap *shard.Snapshot, open []moveRow) []string {
	out := make([]string, snap.Count())
	for i, p := range snap.Shards {
		out[i] = p.Node
	}
	for _, mv := range open {
		out[mv.Shard] = mv.Target
	}
	return out
}

// orphanJobs returns a fresh job for every open move that nobody executes
// (its lock is free) and that has no job waiting to run: the moves of a
// killed run. River does not rescue them: move jobs have no timeout.
//
// River's unique jobs (InsertOpts.UniqueOpts with ByArgs) cannot replace
// this look-up. River requires ByState to hold running, and the job of a
// process killed in the middle of a move stays running for ever: with no
// timeout the rescuer leaves it, and no client call takes a job out of
// running (JobCancel only marks it, JobDelete and JobRetry skip it). A
// unique insert for that move would be skipped as a duplicate of its dead
// job, and the move, its shard possibly fenced, would never be resumed.
// Only the move's lock tells a live running job from a dead one, so jobs
// that run are judged by the lock and only waiting ones by their state.
func orphanJobs(ctx context.Context, tx pgx.Tx, client *river.Client[pgx.Tx], moves []moveRow, log *slog.Logger) ([]river.InsertManyParams, error) {
	if len(moves) == 0 {
		return nil, nil
	}
	queued, err := client.JobListTx(ctx, tx, river.NewJobListParams().Kinds(MoveArgs{}.Kind()).First(10000).
		States(rivertype.JobStateAvailable, rivertype.JobStatePending, rivertype.JobStateScheduled, rivertype.JobStateRetryable))
	if err != nil {
		return nil, fmt.Errorf("listing move jobs: %w", err)
	}
	waiting := map[int64]bool{}
	for _, j := range queued.Jobs {
		var a MoveArgs
		if json.Unmarshal(j.EncodedArgs, &a) == nil {
			waiting[a.MoveID] = true
		}
	}
	var jobs []river.InsertManyParams
	for _, mv := range moves {
		if waiting[mv.ID] {
			continue
		}
		busy, err := moveBusy(ctx, tx, mv.ID)
		if err != nil || busy {
			if err != nil {
				return nil, err
			}
			continue
		}
		log.Info("resuming move", "move", mv.ID, "shard", mv.Shard, "source", mv.Source, "target", mv.Target, "step", mv.Step)
		if mv.State == "failed" {
			if _, err := tx.Exec(ctx, `UPDATE ordo_catalog.moves SET state = 'running', updated_at = now() WHERE id = $1`, mv.ID); err != nil {
				return nil, fmt.Errorf("reopening move %d: %w", mv.ID, err)
			}
		}
		prio := priorityNew
		if stepOrder[mv.Step] >= stepOrder[StepFenced] {
			prio = priorityFenced // its shard refuses writes until it flips
		}
		jobs = append(jobs, river.InsertManyParams{Args: MoveArgs{MoveID: mv.ID}, InsertOpts: &river.InsertOpts{Priority: prio}})
	}
	return jobs, nil
}

// resumeOrphans enqueues jobs for the open moves nobody executes, for a
// run waiting on moves that a concurrent run was executing when it died.
//
// Every process that executes moves calls it every few seconds, and two
// may give the same move a job each: the second job waits (the move's
// lock) and then finds the move done. They take no lock to avoid that: a
// process cut off in the middle would hold it until its session timed out.
func resumeOrphans(ctx context.Context, pool *pgxpool.Pool, client *river.Client[pgx.Tx], log *slog.Logger) error {
	return pgx.BeginFunc(ctx, pool, func(tx pgx.Tx) error {
		moves, err := loadOpenMoves(ctx, tx)
		if err != nil {
			return err
		}
		jobs, err := orphanJobs(ctx, tx, client, moves, log)
		if err != nil || len(jobs) == 0 {
			return err
		}
		_, err = client.InsertManyTx(ctx, tx, jobs)
		return err
	})
}

// moveBusy reports whether some process holds move id's lock, i.e. is
// executing it now.
func moveBusy(ctx context.Context, tx pgx.Tx, id int64) (bool, error) {
	var busy bool
	err := tx.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM pg_locks WHERE locktype = 'advisory' AND granted
		AND classid = $1::int::oid AND objid = $2::int::oid AND objsubid = 2
		AND database = (SELECT oid FROM pg_database WHERE datname = current_database()))`, moveLockClass, id).Scan(&busy)
	if err != nil {
		return false, fmt.Errorf("checking move %d: %w", id, err)
	}
	return busy, nil
}

func names(nodes []dsn.Node) []string {
	out := make([]string, len(nodes))
	for i, n := range nodes {
		out[i] = n.Name
	}
	return out
}

// summaryLine describes the placement in one line, for the final message.
func summaryLine(ctx context.Context, pool *pgxpool.Pool) string {
	snap, err := shard.Load(ctx, pool)
	if err != nil {
		return "(could not read the catalog: " + err.Error() + ")"
	}
	counts := map[string]int{}
	for _, p := range snap.Shards {
		counts[p.Node]++
	}
	var ns []string
	for n := range counts {
		ns = append(ns, n)
	}
	slices.Sort(ns)
	s := fmt.Sprintf("%d shards on %d nodes (", snap.Count(), len(ns))
	for i, n := range ns {
		if i > 0 {
			s += ", "
		}
		s += fmt.Sprintf("%s %d", n, counts[n])
	}
	return s + ")"
}

func isUndefinedTable(err error) bool {
	var pgErr *pgconn.PgError
	return errors.As(err, &pgErr) && pgErr.Code == "42P01"
}
