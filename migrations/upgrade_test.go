package migrations_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/ordo-pipeline/ordo/internal/pgtest"
	"github.com/ordo-pipeline/ordo/migrations"
	"github.com/ordo-pipeline/ordo/schema"
)

// v1ShardTable is how version 1 made a shard table (schema.Create before
// the tables became partitions), kept here to build a node as it was.
const v1ShardTable = `CREATE TABLE ordo.shard_%[1]d (
    epoch           bigint NOT NULL DEFAULT %[2]d,
    seq             bigint NOT NULL DEFAULT nextval('ordo.event_seq'),
    ordering_key    text NOT NULL,
    source_id       text NOT NULL,
    destination_id  text NOT NULL,
    message_id      text NOT NULL,
    received_at     timestamptz NOT NULL,
    event           json NOT NULL,
    attempts        int NOT NULL DEFAULT 0,
    first_attempt_at timestamptz,
    next_attempt_at timestamptz,
    last_status     int,
    last_response   text,
    PRIMARY KEY (epoch, seq)
) WITH (fillfactor = 90)`

// TestUpgradeFromPerShardTables builds a node at version 1 with pending
// events (some copied in at an older epoch, one with retry state), dead
// letters and an open move (a fenced source table), upgrades it, and
// checks that nothing was lost and that the upgraded tables behave like
// new ones: writes through the parent land in order, a fenced table and a
// stale epoch are refused as stale, and the rows keep their order.
func TestUpgradeFromPerShardTables(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	url := pgtest.Start(t, 1)[0].URL()
	if err := migrations.NodeTo(ctx, url, 1); err != nil {
		t.Fatal(err)
	}
	conn := pgtest.Connect(t, url)
	exec := func(sql string, args ...any) {
		t.Helper()
		if _, err := conn.Exec(ctx, sql, args...); err != nil {
			t.Fatalf("%s: %v", sql, err)
		}
	}
	// Shard 1 at epoch 3 holds rows copied from epoch 2 and its own; shard
	// 2 is the fenced source of an open move; shard 3 is empty.
	for _, s := range []struct{ shard, epoch int }{{1, 3}, {2, 1}, {3, 1}} {
		exec(fmt.Sprintf(v1ShardTable, s.shard, s.epoch))
	}
	insert := `INSERT INTO ordo.shard_%d (epoch, ordering_key, source_id, destination_id, message_id, received_at, event, attempts, next_attempt_at, last_status)
		VALUES (%d, 'u1', 'web', 'hook', $1, now(), '{"n": 1}', $2, $3, $4)`
	exec(fmt.Sprintf(insert, 1, 2), "copied-1", 0, nil, nil)
	exec(fmt.Sprintf(insert, 1, 3), "own-1", 2, time.Now().Add(time.Minute), 503)
	exec(fmt.Sprintf(insert, 2, 1), "moving-1", 0, nil, nil)
	exec(`INSERT INTO ordo.dead_letters (shard, epoch, seq, ordering_key, source_id, destination_id, message_id, received_at, event, attempts, last_status, last_response, reason)
		VALUES (1, 2, 1, 'u0', 'web', 'hook', 'dead-1', now(), '{}', 3, 400, 'bad', 'status')`)
	exec(`CREATE TRIGGER ordo_fence BEFORE INSERT ON ordo.shard_2 FOR EACH STATEMENT EXECUTE FUNCTION ordo.fenced()`)

	if err := migrations.Node(ctx, url); err != nil {
		t.Fatalf("upgrading: %v", err)
	}
	if err := migrations.Node(ctx, url); err != nil {
		t.Fatalf("upgrading twice: %v", err)
	}

	var parts int
	if err := conn.QueryRow(ctx, `SELECT count(*) FROM pg_inherits WHERE inhparent = 'ordo.events'::regclass`).Scan(&parts); err != nil || parts != 3 {
		t.Fatalf("partitions of ordo.events: %d, %v; want 3", parts, err)
	}
	if shards, err := schema.List(ctx, conn); err != nil || fmt.Sprint(shards) != "[1 2 3]" {
		t.Errorf("List = %v, %v", shards, err)
	}
	var deadLetters int
	if err := conn.QueryRow(ctx, `SELECT count(*) FROM ordo.dead_letters`).Scan(&deadLetters); err != nil || deadLetters != 1 {
		t.Errorf("dead letters: %d, %v; want 1", deadLetters, err)
	}
	var attempts, status int
	if err := conn.QueryRow(ctx, `SELECT attempts, last_status FROM ordo.shard_1 WHERE message_id = 'own-1'`).Scan(&attempts, &status); err != nil || attempts != 2 || status != 503 {
		t.Errorf("retry state: attempts %d, status %d, %v; want 2, 503", attempts, status, err)
	}

	// Writes through the parent, as the gateway makes them.
	write := func(shard int, epoch int64, id string) error {
		_, err := conn.CopyFrom(ctx, schema.Parent, schema.RoutedColumns, pgx.CopyFromRows([][]any{
			{"u1", "web", "hook", id, time.Now(), []byte(`{"n": 2}`), int32(shard), epoch},
		}))
		return err
	}
	if err := write(1, 3, "own-2"); err != nil {
		t.Fatalf("writing shard 1 at its epoch: %v", err)
	}
	for _, c := range []struct {
		shard int
		epoch int64
		why   string
	}{
		{1, 2, "an older epoch"},
		{2, 1, "a fenced table"},
		{4, 1, "a shard the node does not hold"},
	} {
		err := write(c.shard, c.epoch, "stale")
		if s, ok := schema.StaleShard(err); !ok || s != c.shard {
			t.Errorf("writing %s: %v (StaleShard %d, %v), want stale shard %d", c.why, err, s, ok, c.shard)
		}
	}
	// Direct inserts still take the table's defaults.
	exec(`INSERT INTO ordo.shard_3 (ordering_key, source_id, destination_id, message_id, received_at, event) VALUES ('u3', 'web', 'hook', 'direct', now(), '{}')`)

	rows, err := conn.Query(ctx, `SELECT message_id FROM ordo.shard_1 ORDER BY epoch, seq`)
	if err != nil {
		t.Fatal(err)
	}
	ids, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil || fmt.Sprint(ids) != "[copied-1 own-1 own-2]" {
		t.Errorf("shard 1 rows in order: %v, %v", ids, err)
	}
	if fenced, err := schema.IsFencedTable(ctx, conn, 2); err != nil || !fenced {
		t.Errorf("shard 2 fenced after the upgrade: %v, %v", fenced, err)
	}
	if err := schema.Unfence(ctx, conn, 2); err != nil {
		t.Fatal(err)
	}
	if err := write(2, 1, "moving-2"); err != nil {
		t.Errorf("writing shard 2 once unfenced: %v", err)
	}
}
