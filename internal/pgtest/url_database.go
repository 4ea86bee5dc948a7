package pgtest

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"net/url"
	"os"
	"strconv"
	"strings"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

// errSharedServer is returned by the url backend for what would affect the
// other databases on the shared server.
var errSharedServer = fmt.Errorf("the url backend (%s) shares one server between clusters: %w", EnvDatabaseURL, ErrUnsupported)

// urlDatabase is a database created on the server named by EnvDatabaseURL.
type urlDatabase struct {
	adminURL string
	name     string
	keep     bool
}

func startURLDatabase(ctx context.Context, opts Options) (*Cluster, error) {
	adminURL := os.Getenv(EnvDatabaseURL)
	u, err := url.Parse(adminURL)
	if err != nil || (u.Scheme != "postgres" && u.Scheme != "postgresql") {
		return nil, fmt.Errorf("%s must be a postgres:// URL", EnvDatabaseURL)
	}
	port := 5432
	if p := u.Port(); p != "" {
		if port, err = strconv.Atoi(p); err != nil {
			return nil, fmt.Errorf("%s: port %q: %w", EnvDatabaseURL, p, err)
		}
	}
	s := &urlDatabase{adminURL: adminURL, name: "ordo_test_" + strings.ToLower(rand.Text()), keep: opts.Keep}
	if err := s.exec(ctx, "CREATE DATABASE "+pgx.Identifier{s.name}.Sanitize()); err != nil {
		return nil, err
	}
	dbURL := *u
	dbURL.Path, dbURL.RawPath = "/"+s.name, ""
	if err := waitReady(ctx, dbURL.String(), nil); err != nil {
		_ = s.remove(context.WithoutCancel(ctx))
		return nil, err
	}
	return &Cluster{
		name:    opts.Name,
		backend: BackendURL,
		url:     &dbURL,
		port:    port,
		logf:    opts.Logf,
		srv:     s,
	}, nil
}

// exec runs sql on the server's administration database.
func (s *urlDatabase) exec(ctx context.Context, sql string) error {
	conn, err := pgx.Connect(ctx, s.adminURL)
	if err != nil {
		return fmt.Errorf("connecting to %s: %w", EnvDatabaseURL, err)
	}
	defer conn.Close(context.WithoutCancel(ctx))
	if _, err := conn.Exec(ctx, sql); err != nil {
		return fmt.Errorf("%s: %w", sql, err)
	}
	return nil
}

func (s *urlDatabase) start(context.Context) error         { return errSharedServer }
func (s *urlDatabase) stop(context.Context) error          { return errSharedServer }
func (s *urlDatabase) stopImmediate(context.Context) error { return errSharedServer }
func (s *urlDatabase) kill() error                         { return errSharedServer }
func (s *urlDatabase) logTail() string                     { return "" }

func (s *urlDatabase) remove(ctx context.Context) error {
	if s.keep {
		return nil
	}
	drop := "DROP DATABASE IF EXISTS " + pgx.Identifier{s.name}.Sanitize()
	err := s.exec(ctx, drop+" WITH (FORCE)")
	if pgErr := (*pgconn.PgError)(nil); errors.As(err, &pgErr) && pgErr.Code == "42601" {
		err = s.exec(ctx, drop) // before PostgreSQL 13, no FORCE
	}
	return err
}
