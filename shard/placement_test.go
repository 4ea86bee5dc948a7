package shard_test

import (
	"context"
	"fmt"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/ordo-pipeline/ordo/shard"
)

// interleaved is a Querier that runs hook before every statement sent
// through it but the first: what a concurrent move commits between two of
// Load's statements.
type interleaved struct {
	pool *pgxpool.Pool
	sent int
	hook func(n int)
}

func (q *interleaved) before() {
	q.sent++
	if q.sent > 1 {
		q.hook(q.sent - 1)
	}
}

func (q *interleaved) Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error) {
	q.before()
	return q.pool.Query(ctx, sql, args...)
}

func (q *interleaved) QueryRow(ctx context.Context, sql string, args ...any) pgx.Row {
	q.before()
	return q.pool.QueryRow(ctx, sql, args...)
}

// TestLoadIsOneSnapshot commits, between statements of Load, what a move
// to a new node commits (the node, and a shard placed on it): Load must
// return the map of one moment, never shards of one moment on the nodes
// of another (which fails as "shard on unknown node", or silently mixes
// two maps).
func TestLoadIsOneSnapshot(t *testing.T) {
	t.Parallel()
	pool, url := bootstrapped(t, 4)
	ctx := t.Context()
	// Change n adds node "x<n>" and moves shard 1 there at epoch n+1.
	q := &interleaved{pool: pool, hook: func(n int) {
		node := fmt.Sprintf("x%d", n)
		err := pgx.BeginFunc(ctx, pool, func(tx pgx.Tx) error {
			if _, err := tx.Exec(ctx, `INSERT INTO ordo_catalog.nodes (name, url) VALUES ($1, $2)`, node, url); err != nil {
				return err
			}
			_, err := tx.Exec(ctx, `UPDATE ordo_catalog.shards SET node = $1, epoch = $2 WHERE shard = 1`, node, n+1)
			return err
		})
		if err != nil {
			t.Errorf("committing a concurrent move: %v", err)
		}
	}}
	snap, err := shard.Load(ctx, q)
	if err != nil {
		t.Fatalf("Load while moves committed: %v", err)
	}
	// The map of one moment: the last node added is shard 1's, and its
	// epoch says how many moves the moment had seen.
	p := snap.Shards[1]
	moves := len(snap.Nodes) - 1
	want := "n1"
	if moves > 0 {
		want = fmt.Sprintf("x%d", moves)
	}
	if p.Node != want || p.Epoch != int64(moves+1) {
		t.Errorf("Load mixed moments: %d nodes %v, shard 1 %+v", len(snap.Nodes), snap.Nodes, p)
	}
}
