package worker

import (
	"context"
	"log/slog"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
)

// owners keeps ordo_catalog.shard_owners, the record of which worker holds
// which shard and since when (a NULL worker: nobody, since then), for
// `rebalance status`. It is written on a goroutine of its own, so that a
// slow catalog never holds up claiming; when it falls behind, changes are
// dropped (the truth is the shard locks, which status also reads) and the
// next claim or release of the shard puts the row right.
type owners struct {
	id      string
	catalog *pgxpool.Pool
	timeout time.Duration
	log     *slog.Logger
	changes chan ownerChange
}

// ownerChange is one statement for a shard's row.
type ownerChange struct {
	shard int
	node  string
	// kind says what happened: claimed (by this worker), released (by
	// it), freed (the silent holder was ended) or unheld (seen free for
	// age).
	kind   string
	holder string        // freed: the worker whose session was ended
	age    time.Duration // freed, unheld: how long nobody has held it
}

func newOwners(id string, catalog *pgxpool.Pool, timeout time.Duration, log *slog.Logger) *owners {
	return &owners{id: id, catalog: catalog, timeout: timeout, log: log, changes: make(chan ownerChange, 1024)}
}

func (o *owners) note(c ownerChange) {
	select {
	case o.changes <- c:
	default: // behind: see the type's comment
	}
}

func (o *owners) run(ctx context.Context) {
	for {
		var c ownerChange
		select {
		case <-ctx.Done():
			return
		case c = <-o.changes:
		}
		if err := o.apply(ctx, c); err != nil && ctx.Err() == nil {
			o.log.Debug("recording shard ownership failed", "shard", c.shard, "change", c.kind, "error", err)
		}
	}
}

func (o *owners) apply(ctx context.Context, c ownerChange) error {
	ctx, cancel := context.WithTimeout(ctx, o.timeout)
	defer cancel()
	var err error
	switch c.kind {
	case "claimed":
		_, err = o.catalog.Exec(ctx, `INSERT INTO ordo_catalog.shard_owners (shard, worker, node, since) VALUES ($1, $2, $3, now())
			ON CONFLICT (shard) DO UPDATE SET worker = excluded.worker, node = excluded.node, since = excluded.since`, c.shard, o.id, c.node)
	case "released":
		_, err = o.catalog.Exec(ctx, `UPDATE ordo_catalog.shard_owners SET worker = NULL, since = now() WHERE shard = $1 AND worker = $2`, c.shard, o.id)
	case "freed":
		_, err = o.catalog.Exec(ctx, `UPDATE ordo_catalog.shard_owners SET worker = NULL, since = now() - make_interval(secs => $3)
			WHERE shard = $1 AND worker = $2`, c.shard, c.holder, c.age.Seconds())
	case "unheld":
		// Only over a row older than the observation: a claim since then
		// is newer than what was seen.
		_, err = o.catalog.Exec(ctx, `INSERT INTO ordo_catalog.shard_owners (shard, worker, node, since)
			VALUES ($1, NULL, $2, now() - make_interval(secs => $3))
			ON CONFLICT (shard) DO UPDATE SET worker = NULL, node = excluded.node, since = excluded.since
			WHERE shard_owners.worker IS NOT NULL AND shard_owners.since < excluded.since`, c.shard, c.node, c.age.Seconds())
	}
	return err
}
