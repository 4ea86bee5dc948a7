package e2e

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/ordo-pipeline/ordo/internal/checker"
	"github.com/ordo-pipeline/ordo/internal/pgtest"
)

// checkGuarantees waits up to within for every acknowledged event of h to
// reach each of its destinations, delivered or dead-lettered on one of
// nodes, then checks the history (see package checker) and fails t for
// every problem it finds under limits. It logs the figures and returns
// the report.
func checkGuarantees(t *testing.T, h *checker.History, nodes []*pgtest.Cluster, within time.Duration, limits checker.Limits) checker.Report {
	t.Helper()
	deadline := time.Now().Add(within)
	began := time.Now()
	for {
		h.SetDeadLetters(deadLetters(t, nodes))
		if h.Delivered() || time.Now().After(deadline) {
			break
		}
		time.Sleep(250 * time.Millisecond)
	}
	// Copies in flight when the last event arrived land in the history
	// before it is checked.
	time.Sleep(200 * time.Millisecond)
	r := h.Check()
	t.Logf("drained in %v; checker:\n%s", time.Since(began).Round(time.Millisecond), r)
	for _, p := range r.Problems(limits) {
		t.Error(p)
	}
	return r
}

// deadLetters reads the dead letters of every node. A node that is not a
// member yet (no ordo schema) holds none.
func deadLetters(t *testing.T, nodes []*pgtest.Cluster) []checker.DeadLetter {
	t.Helper()
	var out []checker.DeadLetter
	for _, n := range nodes {
		ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
		dl, err := nodeDeadLetters(ctx, n.URL())
		cancel()
		if err != nil {
			t.Errorf("reading the dead letters of %s: %v", n.Name(), err)
			continue
		}
		out = append(out, dl...)
	}
	return out
}

func nodeDeadLetters(ctx context.Context, url string) ([]checker.DeadLetter, error) {
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		return nil, err
	}
	defer conn.Close(context.WithoutCancel(ctx))
	rows, _ := conn.Query(ctx, `SELECT destination_id, message_id, failed_at FROM ordo.dead_letters`)
	dl, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (checker.DeadLetter, error) {
		var d checker.DeadLetter
		err := row.Scan(&d.Destination, &d.MessageID, &d.At)
		return d, err
	})
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) && pgErr.Code == "42P01" { // undefined_table
		return nil, nil
	}
	return dl, err
}
