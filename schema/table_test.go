package schema_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/ordo-pipeline/ordo/internal/pgtest"
	"github.com/ordo-pipeline/ordo/migrations"
	"github.com/ordo-pipeline/ordo/schema"
)

func setup(t *testing.T) *pgx.Conn {
	t.Helper()
	c := pgtest.Start(t, 1)[0]
	if err := migrations.Node(t.Context(), c.URL()); err != nil {
		t.Fatal(err)
	}
	return pgtest.Connect(t, c.URL())
}

func insert(ctx context.Context, conn *pgx.Conn, shard int) error {
	_, err := conn.Exec(ctx, "INSERT INTO "+schema.Table(shard).Sanitize()+
		` (ordering_key, source_id, destination_id, message_id, received_at, event) VALUES ('k', 's', 'd', 'm', now(), '{"a":1}')`)
	return err
}

func TestCreateFenceDrop(t *testing.T) {
	t.Parallel()
	conn := setup(t)
	ctx := t.Context()

	for range 2 { // idempotent
		if err := schema.Create(ctx, conn, 5, 3); err != nil {
			t.Fatal(err)
		}
	}
	if err := schema.Create(ctx, conn, 5, 9); err != nil { // an existing table keeps its epoch
		t.Fatal(err)
	}
	if err := insert(ctx, conn, 5); err != nil {
		t.Fatal(err)
	}
	var epoch int64
	if err := conn.QueryRow(ctx, "SELECT epoch FROM ordo.shard_5").Scan(&epoch); err != nil || epoch != 3 {
		t.Errorf("row epoch = %d (err %v), want the table's epoch 3", epoch, err)
	}
	if shards, err := schema.List(ctx, conn); err != nil || len(shards) != 1 || shards[0] != 5 {
		t.Errorf("List = %v, %v; want [5]", shards, err)
	}
	if n, err := schema.Pending(ctx, conn, 5); err != nil || n != 1 {
		t.Errorf("Pending = %d, %v; want 1", n, err)
	}

	// Fenced: inserts fail recognisably; updates and deletes still work.
	for range 2 {
		if err := pgx.BeginFunc(ctx, conn, func(tx pgx.Tx) error { return schema.Fence(ctx, tx, 5) }); err != nil {
			t.Fatal(err)
		}
	}
	if fenced, err := schema.IsFencedTable(ctx, conn, 5); err != nil || !fenced {
		t.Errorf("IsFencedTable = %v, %v; want true", fenced, err)
	}
	err := insert(ctx, conn, 5)
	if !schema.IsStale(err) {
		t.Errorf("insert into a fenced table: %v, want a stale-placement error", err)
	}
	if _, err := conn.Exec(ctx, "UPDATE ordo.shard_5 SET attempts = attempts + 1"); err != nil {
		t.Errorf("update in a fenced table: %v", err)
	}
	if _, err := conn.Exec(ctx, "DELETE FROM ordo.shard_5"); err != nil {
		t.Errorf("delete in a fenced table: %v", err)
	}
	if err := schema.Unfence(ctx, conn, 5); err != nil {
		t.Fatal(err)
	}
	if err := insert(ctx, conn, 5); err != nil {
		t.Errorf("insert after unfence: %v", err)
	}

	// Dropped: inserts fail as stale too; dropping twice is fine.
	for range 2 {
		if err := schema.Drop(ctx, conn, 5); err != nil {
			t.Fatal(err)
		}
	}
	if ok, err := schema.Exists(ctx, conn, 5); err != nil || ok {
		t.Errorf("Exists after drop = %v, %v", ok, err)
	}
	if err := insert(ctx, conn, 5); !schema.IsStale(err) {
		t.Errorf("insert into a dropped table: %v, want a stale-placement error", err)
	}
	if schema.IsStale(nil) {
		t.Error("IsStale(nil) = true")
	}
}

func TestShardOf(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		in   string
		want int
		ok   bool
	}{{"shard_0", 0, true}, {"shard_127", 127, true}, {"shard_", 0, false}, {"shard_01", 0, false}, {"other", 0, false}, {"shard_-1", 0, false}} {
		got, ok := schema.ShardOf(tc.in)
		if ok != tc.ok || (ok && got != tc.want) {
			t.Errorf("ShardOf(%q) = %d, %v; want %d, %v", tc.in, got, ok, tc.want, tc.ok)
		}
	}
}

func TestPendingAll(t *testing.T) {
	t.Parallel()
	conn := setup(t)
	ctx := t.Context()
	for _, s := range []int{1, 2, 7} {
		if err := schema.Create(ctx, conn, s, 1); err != nil {
			t.Fatal(err)
		}
	}
	for range 3 {
		if err := insert(ctx, conn, 2); err != nil {
			t.Fatal(err)
		}
	}
	if err := insert(ctx, conn, 7); err != nil {
		t.Fatal(err)
	}
	got, err := schema.PendingAll(ctx, conn)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 3 || got[1] != 0 || got[2] != 3 || got[7] != 1 {
		t.Errorf("PendingAll = %v, want map[1:0 2:3 7:1]", got)
	}
}

// TestRoutedWrites writes through the parent table as the gateway does:
// rows land in their shard's table at its epoch, and a stale writer (an
// older epoch, a fenced table, a shard the node lacks) is refused with the
// shard at fault, while a move's copy of older rows is taken.
func TestRoutedWrites(t *testing.T) {
	t.Parallel()
	conn := setup(t)
	ctx := t.Context()
	for s, epoch := range map[int]int64{1: 4, 2: 1} {
		if err := schema.Create(ctx, conn, s, epoch); err != nil {
			t.Fatal(err)
		}
	}
	write := func(rows ...[]any) error {
		_, err := conn.CopyFrom(ctx, schema.Parent, schema.RoutedColumns, pgx.CopyFromRows(rows))
		return err
	}
	row := func(shard int, epoch int64, id string) []any {
		return []any{"k", "s", "d", id, time.Now(), []byte(`{"a": 1}`), int32(shard), epoch}
	}
	if err := write(row(1, 4, "a"), row(2, 1, "b"), row(1, 4, "c")); err != nil {
		t.Fatalf("routed write: %v", err)
	}
	rows, err := conn.Query(ctx, `SELECT message_id FROM ordo.shard_1 ORDER BY epoch, seq`)
	if err != nil {
		t.Fatal(err)
	}
	if ids, err := pgx.CollectRows(rows, pgx.RowTo[string]); err != nil || fmt.Sprint(ids) != "[a c]" {
		t.Errorf("shard 1 holds %v, %v; want [a c]", ids, err)
	}
	// A move's copy: older epochs, marked copied.
	if _, err := conn.Exec(ctx, `INSERT INTO ordo.shard_1 (epoch, seq, ordering_key, source_id, destination_id, message_id, received_at, event, copied)
		VALUES (3, 1, 'k', 's', 'd', 'old', now(), '{}', true)`); err != nil {
		t.Errorf("copying an older row in: %v", err)
	}
	if err := pgx.BeginFunc(ctx, conn, func(tx pgx.Tx) error { return schema.Fence(ctx, tx, 2) }); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		row   []any
		shard int
		why   string
	}{
		{row(1, 3, "x"), 1, "older epoch"},
		{row(1, 5, "x"), 1, "newer epoch"},
		{row(2, 1, "x"), 2, "fenced table"},
		{row(7, 1, "x"), 7, "no table"},
	} {
		err := write(row(1, 4, "ok"), c.row)
		if !schema.IsStale(err) {
			t.Errorf("%s: %v, want a stale-placement error", c.why, err)
		}
		if s, ok := schema.StaleShard(err); !ok || s != c.shard {
			t.Errorf("%s: StaleShard = %d, %v; want %d", c.why, s, ok, c.shard)
		}
	}
}
