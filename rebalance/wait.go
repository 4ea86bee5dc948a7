package rebalance

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/riverqueue/river"
)

// shutdownWait bounds how long an interrupted run waits for moves in
// flight to reach a step boundary before exiting.
const shutdownWait = 10 * time.Second

// resumeEvery is how often a waiting run looks for abandoned moves.
const resumeEvery = 3 * time.Second

// wait polls the catalog until every move in ids is done or failed,
// showing progress, and returns an error naming the moves that failed.
func wait(ctx context.Context, pool *pgxpool.Pool, client *river.Client[pgx.Tx], ids []int64, opts Options) error {
	if len(ids) == 0 {
		return nil
	}
	start := time.Now()
	lastPlain := time.Time{}
	lastResume := time.Now()
	tick := time.NewTicker(250 * time.Millisecond)
	defer tick.Stop()
	for {
		moves, err := loadMoves(ctx, pool, ids)
		if err != nil {
			return err
		}
		p := summarize(moves)
		switch {
		case opts.Terminal:
			fmt.Fprintf(opts.Out, "\r\033[K%s", p.line(time.Since(start)))
		case time.Since(lastPlain) >= 2*time.Second || p.finished():
			fmt.Fprintln(opts.Out, p.line(time.Since(start)))
			lastPlain = time.Now()
		}
		if p.finished() {
			if opts.Terminal {
				fmt.Fprintln(opts.Out)
			}
			return p.err()
		}
		// A concurrent run that executed some of these moves may have died.
		if time.Since(lastResume) > resumeEvery {
			if _, err := expireLeases(ctx, pool, opts.Logger); err != nil {
				opts.Logger.Warn("looking for silent move executors failed", "error", err)
			}
			if err := resumeOrphans(ctx, pool, client, opts.Logger); err != nil {
				opts.Logger.Warn("resuming abandoned moves failed", "error", err)
			}
			lastResume = time.Now()
		}
		select {
		case <-ctx.Done():
			if opts.Terminal {
				fmt.Fprintln(opts.Out)
			}
			return fmt.Errorf("interrupted with %d moves unfinished; run rebalance again to finish them: %w", p.total-p.done-len(p.failed), ctx.Err())
		case <-tick.C:
		}
	}
}

// moveProgress is one poll of the moves a run waits for.
type moveProgress struct {
	total, done int
	rows        int64
	active      []moveStatusRow
	failed      []moveStatusRow
}

type moveStatusRow struct {
	moveRow
	RowsCopied int64
	Error      string
}

func summarize(moves []moveStatusRow) moveProgress {
	p := moveProgress{total: len(moves)}
	for _, m := range moves {
		p.rows += m.RowsCopied
		switch {
		case m.State == "done":
			p.done++
		case m.State == "failed":
			p.failed = append(p.failed, m)
		case m.Step != StepPlanned:
			p.active = append(p.active, m)
		}
	}
	return p
}

func (p moveProgress) finished() bool { return p.done+len(p.failed) == p.total }

func (p moveProgress) line(elapsed time.Duration) string {
	s := fmt.Sprintf("moves: %d/%d done, %d rows copied, %s", p.done, p.total, p.rows, elapsed.Round(time.Second))
	if len(p.failed) > 0 {
		s += fmt.Sprintf(", %d failed", len(p.failed))
	}
	var parts []string
	for i, m := range p.active {
		if i == 3 {
			parts = append(parts, fmt.Sprintf("+%d more", len(p.active)-3))
			break
		}
		part := fmt.Sprintf("shard %d %s→%s %s", m.Shard, m.Source, m.Target, m.Step)
		if m.Error != "" {
			part += " (retrying: " + firstLine(m.Error) + ")"
		}
		parts = append(parts, part)
	}
	if len(parts) > 0 {
		s += "; " + strings.Join(parts, "; ")
	}
	return s
}

func (p moveProgress) err() error {
	if len(p.failed) == 0 {
		return nil
	}
	var b strings.Builder
	fmt.Fprintf(&b, "%d of %d moves failed:", len(p.failed), p.total)
	for _, m := range p.failed {
		fmt.Fprintf(&b, "\n  move %d (shard %d %s→%s) at step %s: %s", m.ID, m.Shard, m.Source, m.Target, m.Step, m.Error)
		if flippedAlready(m.Step) {
			b.WriteString(" [past the cut-over: re-run rebalance to finish it]")
		} else {
			b.WriteString(" [rolled back: the shard stays on its source]")
		}
	}
	return fmt.Errorf("%s", b.String())
}

func firstLine(s string) string {
	s, _, _ = strings.Cut(s, "\n")
	if len(s) > 120 {
		s = s[:120] + "…"
	}
	return s
}

func loadMoves(ctx context.Context, pool *pgxpool.Pool, ids []int64) ([]moveStatusRow, error) {
	return queryMoves[moveStatusRow](ctx, pool, "moves", `SELECT `+moveColumns+`, rows_copied, coalesce(error, '') AS error
		FROM ordo_catalog.moves WHERE id = ANY($1) ORDER BY id`, ids)
}
