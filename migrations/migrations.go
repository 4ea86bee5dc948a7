package migrations

import (
	"context"
	"embed"
	"errors"
	"fmt"
	"log/slog"

	"github.com/golang-migrate/migrate/v4"
	migratepgx "github.com/golang-migrate/migrate/v4/database/pgx/v5"
	"github.com/golang-migrate/migrate/v4/source/iofs"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/jackc/pgx/v5/stdlib"
	"github.com/ordo-pipeline/ordo/internal/dsn"
	"github.com/riverqueue/river/riverdriver/riverpgxv5"
	"github.com/riverqueue/river/rivermigrate"
)

//go:embed catalog/*.sql node/*.sql
var files embed.FS

// RiverSchema is the catalog schema that holds River's tables.
const RiverSchema = "ordo_river"

// set is one directory of migrations and where its bookkeeping lives.
type set struct {
	dir    string
	schema string
	table  string
}

var (
	catalogSet = set{dir: "catalog", schema: "ordo_catalog", table: "ordo_catalog_migrations"}
	nodeSet    = set{dir: "node", schema: "ordo", table: "ordo_node_migrations"}
)

// Catalog brings the catalog database at url up to date: ordo's catalog
// tables, then River's. Concurrent callers are safe: golang-migrate and
// the River step each run under an advisory lock.
func Catalog(ctx context.Context, url string, logger *slog.Logger) error {
	if err := apply(ctx, url, catalogSet); err != nil {
		return err
	}
	return river(ctx, url, logger)
}

// Node brings the storage node database at url up to date.
func Node(ctx context.Context, url string) error {
	return apply(ctx, url, nodeSet)
}

func apply(ctx context.Context, url string, s set) error {
	return applyTo(ctx, url, s, 0)
}

// applyTo applies s up to version, or every migration when version is 0.
func applyTo(ctx context.Context, url string, s set, version uint) error {
	cfg, err := pgx.ParseConfig(url)
	if err != nil {
		return fmt.Errorf("parsing database url: %w", err)
	}
	db := stdlib.OpenDB(*cfg)
	defer db.Close()
	if err := db.PingContext(ctx); err != nil {
		return fmt.Errorf("connecting to %s: %w", dsn.Redact(url), err)
	}
	// golang-migrate keeps its table in the current schema; we keep it in
	// public so that creating s.schema is itself a migration.
	driver, err := migratepgx.WithInstance(db, &migratepgx.Config{MigrationsTable: s.table})
	if err != nil {
		return fmt.Errorf("opening %s migrations: %w", s.dir, err)
	}
	src, err := iofs.New(files, s.dir)
	if err != nil {
		return fmt.Errorf("reading embedded %s migrations: %w", s.dir, err)
	}
	m, err := migrate.NewWithInstance("iofs", src, "pgx5", driver)
	if err != nil {
		return fmt.Errorf("preparing %s migrations: %w", s.dir, err)
	}
	up := m.Up
	if version > 0 {
		up = func() error { return m.Migrate(version) }
	}
	if err := up(); err != nil && !errors.Is(err, migrate.ErrNoChange) {
		return fmt.Errorf("applying %s migrations to %s: %w", s.dir, dsn.Redact(url), err)
	}
	return nil
}

// riverLockKey serialises River migrations between concurrent rebalance
// runs; rivermigrate does not lock by itself.
const riverLockKey = 0x6f72646f_72697672 // "ordorivr"

func river(ctx context.Context, url string, logger *slog.Logger) error {
	pool, err := pgxpool.New(ctx, url)
	if err != nil {
		return fmt.Errorf("connecting to catalog: %w", err)
	}
	defer pool.Close()
	conn, err := pool.Acquire(ctx)
	if err != nil {
		return fmt.Errorf("connecting to catalog: %w", err)
	}
	defer conn.Release()
	if _, err := conn.Exec(ctx, "SELECT pg_advisory_lock($1)", int64(riverLockKey)); err != nil {
		return fmt.Errorf("locking river migrations: %w", err)
	}
	defer conn.Exec(context.WithoutCancel(ctx), "SELECT pg_advisory_unlock($1)", int64(riverLockKey)) //nolint:errcheck // the lock also ends with the session

	if _, err := conn.Exec(ctx, "CREATE SCHEMA IF NOT EXISTS "+RiverSchema); err != nil {
		return fmt.Errorf("creating river schema: %w", err)
	}
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	migrator, err := rivermigrate.New(riverpgxv5.New(pool), &rivermigrate.Config{Schema: RiverSchema, Logger: logger})
	if err != nil {
		return fmt.Errorf("preparing river migrations: %w", err)
	}
	if _, err := migrator.Migrate(ctx, rivermigrate.DirectionUp, nil); err != nil {
		return fmt.Errorf("applying river migrations: %w", err)
	}
	return nil
}

// Versions reports the applied version of the catalog or node set at url,
// for status output and tests.
func Versions(ctx context.Context, conn *pgx.Conn, catalog bool) (uint, bool, error) {
	s := nodeSet
	if catalog {
		s = catalogSet
	}
	var version int64
	var dirty bool
	err := conn.QueryRow(ctx, fmt.Sprintf("SELECT version, dirty FROM %s LIMIT 1", pgx.Identifier{s.table}.Sanitize())).Scan(&version, &dirty)
	if errors.Is(err, pgx.ErrNoRows) {
		return 0, false, nil
	}
	if err != nil {
		return 0, false, fmt.Errorf("reading %s migration version: %w", s.dir, err)
	}
	return uint(version), dirty, nil
}

// Latest returns the newest version of the catalog or node set embedded
// in this build: what Versions reports once Catalog or Node has run.
func Latest(catalog bool) (uint, error) {
	s := nodeSet
	if catalog {
		s = catalogSet
	}
	src, err := iofs.New(files, s.dir)
	if err != nil {
		return 0, fmt.Errorf("reading embedded %s migrations: %w", s.dir, err)
	}
	defer src.Close()
	v, err := src.First()
	if err != nil {
		return 0, fmt.Errorf("reading embedded %s migrations: %w", s.dir, err)
	}
	for {
		next, err := src.Next(v)
		if err != nil {
			return v, nil //nolint:nilerr // no next version: v is the newest
		}
		v = next
	}
}
