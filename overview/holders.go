package overview

import (
	"context"
	"fmt"
	"strings"

	"github.com/jackc/pgx/v5"
	"github.com/ordo-pipeline/ordo/schema"
)

// workerApp is the application_name prefix of a worker's sessions.
const workerApp = "ordo-worker "

// holders returns, for each shard whose lock (schema.LockSQL) is held on
// the node conn is on, who holds it: a worker's id, or for another
// session its application_name and pid.
func holders(ctx context.Context, conn *pgx.Conn) (map[int]string, error) {
	rows, err := conn.Query(ctx, `SELECT l.objid::int, coalesce(a.application_name, ''), l.pid
		FROM pg_locks l LEFT JOIN pg_stat_activity a ON a.pid = l.pid
		WHERE l.locktype = 'advisory' AND l.granted AND l.objsubid = 2 AND l.classid = $1::bigint::oid
		  AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database())`, int64(schema.LockClass))
	if err != nil {
		return nil, fmt.Errorf("reading shard locks: %w", err)
	}
	out := map[int]string{}
	var s, pid int
	var app string
	_, err = pgx.ForEachRow(rows, []any{&s, &app, &pid}, func() error {
		if id, ok := strings.CutPrefix(app, workerApp); ok {
			out[s] = id
		} else if app != "" {
			out[s] = fmt.Sprintf("%s (pid %d)", app, pid)
		} else {
			out[s] = fmt.Sprintf("pid %d", pid)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("reading shard locks: %w", err)
	}
	return out, nil
}
