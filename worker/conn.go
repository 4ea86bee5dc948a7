package worker

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/ordo-pipeline/ordo/schema"
)

// errSessionLost says a claim connection is gone, and with it every lock
// and the right to acknowledge anything of the shards claimed on it.
var errSessionLost = errors.New("claim connection lost")

// dialer returns a dialer with TCP keepalives (probes after keepAlive of
// silence, two more keepAlive apart) and, on Linux, TCP_USER_TIMEOUT, so a
// silent peer is given up after about three times keepAlive rather than
// the kernel's two hours.
func dialer(keepAlive time.Duration) *net.Dialer {
	return &net.Dialer{
		Timeout: 10 * time.Second,
		KeepAliveConfig: net.KeepAliveConfig{
			Enable:   true,
			Idle:     keepAlive,
			Interval: keepAlive,
			Count:    2,
		},
		Control: userTimeout(3 * keepAlive),
	}
}

// configure sets keepalives on both ends of a connection: the dialer for
// our end, and the server's tcp_* settings for its end, so that the node
// ends a session (and releases its advisory locks) soon after its worker
// vanishes from the network.
func configure(cfg *pgconn.Config, keepAlive time.Duration, app string) {
	cfg.DialFunc = dialer(keepAlive).DialContext
	if cfg.ConnectTimeout == 0 || cfg.ConnectTimeout > 10*time.Second {
		cfg.ConnectTimeout = 10 * time.Second
	}
	secs := strconv.Itoa(max(1, int(keepAlive.Seconds())))
	if cfg.RuntimeParams == nil {
		cfg.RuntimeParams = map[string]string{}
	}
	cfg.RuntimeParams["tcp_keepalives_idle"] = secs
	cfg.RuntimeParams["tcp_keepalives_interval"] = secs
	cfg.RuntimeParams["tcp_keepalives_count"] = "2"
	cfg.RuntimeParams["tcp_user_timeout"] = strconv.Itoa(int((3 * keepAlive).Milliseconds()))
	if _, ok := cfg.RuntimeParams["application_name"]; !ok {
		cfg.RuntimeParams["application_name"] = app
	}
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
