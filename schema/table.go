package schema

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

// Schema is the Postgres schema that holds shard tables on a node.
const Schema = "ordo"

// FenceTrigger names the trigger that fences a shard table against new
// rows. It calls ordo.fenced() (a node migration), which raises
// FencedCode.
const FenceTrigger = "ordo_fence"

// FencedCode is the SQLSTATE of an insert into a fenced shard table.
const FencedCode = "OR001"

// Columns are the columns a writer supplies when it inserts into one
// shard's table directly, in COPY order. epoch, seq and shard come from
// the table's defaults; attempts and the retry bookkeeping start empty.
var Columns = []string{"ordering_key", "source_id", "destination_id", "message_id", "received_at", "event"}

// Parent is the partitioned table that holds every shard table of a node
// as a partition, listed by shard. A writer sends a batch for many shards
// as one COPY into it, with RoutedColumns.
var Parent = pgx.Identifier{Schema, "events"}

// RoutedColumns are the columns a writer supplies when it inserts through
// Parent: Columns, then the shard and the epoch its placement map gives
// for the shard. A row whose epoch is not the partition's current one is
// refused (IsStale), as is a row for a shard the node does not hold.
var RoutedColumns = append(append([]string(nil), Columns...), "shard", "epoch")

// Table returns the name of shard's table.
func Table(shard int) pgx.Identifier {
	return pgx.Identifier{Schema, "shard_" + strconv.Itoa(shard)}
}

// ShardOf parses a table name made by Table ("shard_12") back to its shard.
func ShardOf(table string) (int, bool) {
	n, ok := strings.CutPrefix(table, "shard_")
	if !ok {
		return 0, false
	}
	s, err := strconv.Atoi(n)
	return s, err == nil && s >= 0 && strconv.Itoa(s) == n
}

// Execer is what the functions here need: a *pgx.Conn, a pool or a tx.
type Execer interface {
	Exec(ctx context.Context, sql string, args ...any) (pgconn.CommandTag, error)
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
}

// Create makes shard's table on the node if it does not exist, with epoch
// as the default epoch of new rows, and attaches it to Parent. On an
// existing table it changes nothing, not even the epoch.
//
// The table is created on its own and then attached, which takes only a
// SHARE UPDATE EXCLUSIVE lock on Parent: writes to the node's other
// shards go on meanwhile (CREATE TABLE ... PARTITION OF would block them).
func Create(ctx context.Context, db Execer, shard int, epoch int64) error {
	if epoch <= 0 {
		return fmt.Errorf("creating shard %d table: epoch %d must be positive", shard, epoch)
	}
	if shard < 0 {
		return fmt.Errorf("creating shard %d table: shard must not be negative", shard)
	}
	// The statement is built from integers only. The columns, their order
	// and their defaults are Parent's (a node migration defines them); the
	// table adds its own defaults of shard and epoch, for writers that
	// insert into it directly.
	t := Table(shard).Sanitize()
	sql := fmt.Sprintf(`DO $$
BEGIN
IF to_regclass('%[1]s') IS NULL THEN
CREATE TABLE %[1]s (
    LIKE %[4]s INCLUDING DEFAULTS,
    PRIMARY KEY (epoch, seq),
    CONSTRAINT ordo_shard CHECK (shard = %[2]d),
    CONSTRAINT ordo_epoch CHECK (epoch = %[3]d OR copied)
) WITH (
    fillfactor = 90,
    autovacuum_vacuum_scale_factor = 0,
    autovacuum_vacuum_threshold = 10000,
    autovacuum_vacuum_insert_scale_factor = 0,
    autovacuum_vacuum_insert_threshold = 50000,
    autovacuum_vacuum_cost_delay = 0
);
ALTER TABLE %[1]s ALTER COLUMN epoch SET DEFAULT %[3]d, ALTER COLUMN shard SET DEFAULT %[2]d;
ALTER TABLE %[4]s ATTACH PARTITION %[1]s FOR VALUES IN (%[2]d);
END IF;
END
$$`, t, shard, epoch, Parent.Sanitize())
	if _, err := db.Exec(ctx, sql); err != nil {
		return fmt.Errorf("creating shard %d table: %w", shard, err)
	}
	return nil
}

// Drop removes shard's table and everything in it, if it exists. Dropping
// a partition takes an ACCESS EXCLUSIVE lock on Parent for a moment, so it
// waits for the writes in flight on the node and holds up new ones until
// it commits: run it with a lock_timeout, and commit soon.
func Drop(ctx context.Context, db Execer, shard int) error {
	if _, err := db.Exec(ctx, "DROP TABLE IF EXISTS "+Table(shard).Sanitize()); err != nil {
		return fmt.Errorf("dropping shard %d table: %w", shard, err)
	}
	return nil
}

// Exists reports whether shard's table exists on the node.
func Exists(ctx context.Context, db Execer, shard int) (bool, error) {
	var ok bool
	err := db.QueryRow(ctx, "SELECT to_regclass($1) IS NOT NULL", Table(shard).Sanitize()).Scan(&ok)
	if err != nil {
		return false, fmt.Errorf("looking up shard %d table: %w", shard, err)
	}
	return ok, nil
}

// List returns the shards that have a table on the node, in order.
func List(ctx context.Context, db Execer) ([]int, error) {
	rows, err := db.Query(ctx, `SELECT tablename FROM pg_tables WHERE schemaname = $1 AND tablename LIKE 'shard\_%' ORDER BY tablename`, Schema)
	if err != nil {
		return nil, fmt.Errorf("listing shard tables: %w", err)
	}
	names, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return nil, fmt.Errorf("listing shard tables: %w", err)
	}
	var shards []int
	for _, n := range names {
		if s, ok := ShardOf(n); ok {
			shards = append(shards, s)
		}
	}
	slices.Sort(shards)
	return shards, nil
}

// Pending counts the rows waiting in shard's table; 0 when it has none.
func Pending(ctx context.Context, db Execer, shard int) (int64, error) {
	ok, err := Exists(ctx, db, shard)
	if err != nil || !ok {
		return 0, err
	}
	var n int64
	if err := db.QueryRow(ctx, "SELECT count(*) FROM "+Table(shard).Sanitize()).Scan(&n); err != nil {
		return 0, fmt.Errorf("counting shard %d: %w", shard, err)
	}
	return n, nil
}

// PendingAll counts the rows waiting in each shard table on the node, in
// one query; shards without a table on the node are left out.
func PendingAll(ctx context.Context, db Execer) (map[int]int64, error) {
	shards, err := List(ctx, db)
	if err != nil || len(shards) == 0 {
		return map[int]int64{}, err
	}
	parts := make([]string, len(shards))
	for i, s := range shards {
		parts[i] = fmt.Sprintf("SELECT %d, count(*) FROM %s", s, Table(s).Sanitize())
	}
	rows, err := db.Query(ctx, strings.Join(parts, " UNION ALL "))
	if err != nil {
		return nil, fmt.Errorf("counting pending rows: %w", err)
	}
	out := make(map[int]int64, len(shards))
	var shard int
	var n int64
	_, err = pgx.ForEachRow(rows, []any{&shard, &n}, func() error {
		out[shard] = n
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("counting pending rows: %w", err)
	}
	return out, nil
}

// Fence makes shard's table refuse new rows, with SQLSTATE FencedCode,
// while workers can still update and delete the rows it holds. Run it in a
// transaction with a lock_timeout: it first takes an EXCLUSIVE lock, which
// waits for every in-flight insert into the table to commit or abort, so
// that once the transaction commits no row can be added to the table.
// Fencing a fenced table is a no-op.
func Fence(ctx context.Context, tx pgx.Tx, shard int) error {
	t := Table(shard).Sanitize()
	if _, err := tx.Exec(ctx, "LOCK TABLE "+t+" IN EXCLUSIVE MODE"); err != nil {
		return fmt.Errorf("locking shard %d table: %w", shard, err)
	}
	fenced, err := IsFencedTable(ctx, tx, shard)
	if err != nil || fenced {
		return err
	}
	// A row trigger: statement triggers of a partition do not fire for
	// rows routed through Parent.
	if _, err := tx.Exec(ctx, "CREATE TRIGGER "+FenceTrigger+" BEFORE INSERT ON "+t+" FOR EACH ROW EXECUTE FUNCTION ordo.fenced()"); err != nil {
		return fmt.Errorf("fencing shard %d table: %w", shard, err)
	}
	return nil
}

// Unfence lets shard's table take rows again. Unfencing an unfenced table
// is a no-op.
func Unfence(ctx context.Context, db Execer, shard int) error {
	if _, err := db.Exec(ctx, "DROP TRIGGER IF EXISTS "+FenceTrigger+" ON "+Table(shard).Sanitize()); err != nil {
		return fmt.Errorf("unfencing shard %d table: %w", shard, err)
	}
	return nil
}

// IsFencedTable reports whether shard's table carries the fence.
func IsFencedTable(ctx context.Context, db Execer, shard int) (bool, error) {
	var fenced bool
	err := db.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM pg_trigger WHERE tgrelid = to_regclass($1) AND tgname = $2)`,
		Table(shard).Sanitize(), FenceTrigger).Scan(&fenced)
	if err != nil {
		return false, fmt.Errorf("checking shard %d fence: %w", shard, err)
	}
	return fenced, nil
}

// IsStale reports whether err says the writer's placement is out of date:
// the shard's table on that node is fenced or gone, or holds the shard at
// another epoch than the writer named. The writer should reload the
// placement map and write to the shard's current node.
func IsStale(err error) bool {
	var pgErr *pgconn.PgError
	if !errors.As(err, &pgErr) {
		return false
	}
	switch pgErr.Code {
	case FencedCode, undefinedTable:
		return true
	case checkViolation:
		// No partition for the shard, or the partition's ordo_epoch or
		// ordo_shard constraint: the only checks on these tables.
		return pgErr.TableName == Parent[1] || strings.HasPrefix(pgErr.ConstraintName, "ordo_") ||
			strings.HasPrefix(pgErr.Message, "no partition of relation")
	}
	return false
}

// SQLSTATEs IsStale recognises besides FencedCode.
const (
	undefinedTable = "42P01"
	checkViolation = "23514"
)

// StaleShard returns the shard that a stale error (IsStale) names: the
// table that was fenced, or refused the row's epoch, or the shard no
// partition exists for.
func StaleShard(err error) (int, bool) {
	var pgErr *pgconn.PgError
	if !errors.As(err, &pgErr) || !IsStale(err) {
		return 0, false
	}
	if s, ok := ShardOf(pgErr.TableName); ok {
		return s, true
	}
	// "Partition key of the failing row contains (shard) = (12)."
	if _, rest, ok := strings.Cut(pgErr.Detail, "(shard) = ("); ok {
		if n, _, ok := strings.Cut(rest, ")"); ok {
			if s, err := strconv.Atoi(n); err == nil && s >= 0 {
				return s, true
			}
		}
	}
	return 0, false
}
