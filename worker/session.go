package worker

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/ordo-pipeline/ordo/internal/keepalive"
	"github.com/ordo-pipeline/ordo/schema"
)

// errSessionLost says a claim connection is gone, and with it every lock
// and the right to acknowledge anything of the shards claimed on it.
var errSessionLost = errors.New("claim connection lost")

// configure sets keepalives on both ends of a connection
// (internal/keepalive), so that the node ends a session, and releases its
// advisory locks, soon after its worker vanishes from the network.
func configure(cfg *pgconn.Config, keepAlive time.Duration, app string) {
	keepalive.Configure(cfg, keepalive.Options{Interval: keepAlive, App: app})
}

// session is one claim connection to a node. Its statements are serialised;
// the advisory locks of the shards claimed on it live and die with it.
type session struct {
	node    string
	conn    *pgx.Conn
	timeout time.Duration

	mu   sync.Mutex // serialises statements on conn
	lost atomic.Bool

	shards int // claims pinned to it; guarded by the manager's mutex
}

// connect opens a claim connection to a node.
func connect(ctx context.Context, node, url string, t *Tuning, app string) (*session, error) {
	cfg, err := pgx.ParseConfig(url)
	if err != nil {
		return nil, fmt.Errorf("node %s: parsing url: %w", node, err)
	}
	configure(&cfg.Config, t.KeepAlive, app)
	ctx, cancel := context.WithTimeout(ctx, t.DBTimeout)
	defer cancel()
	conn, err := pgx.ConnectConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("node %s: connecting: %w", node, err)
	}
	return &session{node: node, conn: conn, timeout: t.DBTimeout}, nil
}

// do runs fn on the connection, alone, bounded by the session's timeout.
// The statements do not follow ctx's cancellation: cancelling a statement
// closes the connection, which would drop every claim on it. A failure that
// closed the connection marks the session lost and returns an error
// wrapping errSessionLost.
func (s *session) do(ctx context.Context, fn func(ctx context.Context, conn *pgx.Conn) error) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.lost.Load() || s.conn.IsClosed() {
		s.lost.Store(true)
		return errSessionLost
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), s.timeout)
	defer cancel()
	err := fn(ctx, s.conn)
	if err == nil {
		return nil
	}
	if s.conn.IsClosed() {
		s.lost.Store(true)
		return fmt.Errorf("%w: %w", errSessionLost, err)
	}
	if s.conn.PgConn().TxStatus() != 'I' {
		if _, rerr := s.conn.Exec(ctx, "ROLLBACK"); rerr != nil {
			s.lost.Store(true)
			s.closeLocked()
			return fmt.Errorf("%w: %w", errSessionLost, err)
		}
	}
	return err
}

// tryLock takes shard's advisory lock on the session, if it is free.
func (s *session) tryLock(ctx context.Context, shard int) (bool, error) {
	var ok bool
	err := s.do(ctx, func(ctx context.Context, conn *pgx.Conn) error {
		return conn.QueryRow(ctx, schema.TryLockSQL, shard).Scan(&ok)
	})
	return ok, err
}

// unlock releases shard's advisory lock.
func (s *session) unlock(ctx context.Context, shard int) error {
	return s.do(ctx, func(ctx context.Context, conn *pgx.Conn) error {
		var ok bool
		if err := conn.QueryRow(ctx, schema.UnlockSQL, shard).Scan(&ok); err != nil {
			return err
		}
		if !ok {
			return fmt.Errorf("shard %d lock was not held", shard)
		}
		return nil
	})
}

// close ends the connection, releasing every lock taken on it. It waits
// for a statement in progress.
func (s *session) close() {
	s.lost.Store(true)
	s.mu.Lock()
	defer s.mu.Unlock()
	s.closeLocked()
}

func (s *session) closeLocked() {
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	s.conn.Close(ctx) //nolint:errcheck // a connection we give up on
}
