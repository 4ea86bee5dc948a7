package overview

import (
	"context"
	"fmt"
	"strings"

	"github.com/jackc/pgx/v5"
	"github.com/ordo-pipeline/ordo/schema"
)

// This file holds all the SQL of this package that touches shard tables.

// shardLag returns, for each shard table on the node, the age in seconds
// of its oldest pending row by the node's clock (0 when it has none), in
// one query.
func shardLag(ctx context.Context, conn *pgx.Conn) (map[int]float64, error) {
	shards, err := schema.List(ctx, conn)
	if err != nil || len(shards) == 0 {
		return map[int]float64{}, err
	}
	parts := make([]string, len(shards))
	for i, s := range shards {
		parts[i] = fmt.Sprintf("SELECT %d, coalesce(extract(epoch FROM now() - min(received_at))::float8, 0) FROM %s", s, schema.Table(s).Sanitize())
	}
	rows, err := conn.Query(ctx, strings.Join(parts, " UNION ALL "))
	if err != nil {
		return nil, fmt.Errorf("reading shard lag: %w", err)
	}
	out := make(map[int]float64, len(shards))
	var s int
	var lag float64
	_, err = pgx.ForEachRow(rows, []any{&s, &lag}, func() error {
		out[s] = max(0, lag)
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("reading shard lag: %w", err)
	}
	return out, nil
}
