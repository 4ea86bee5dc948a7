package pgtest

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"regexp"
	"strconv"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
)

// Environment variables read by this package.
const (
	// EnvDatabaseURL names a server on which each cluster is a fresh database.
	EnvDatabaseURL = "ORDO_TEST_DATABASE_URL"
	// EnvBackend forces a backend: "local", "docker" or "url".
	EnvBackend = "ORDO_TEST_PG_BACKEND"
	// EnvKeep, when "1" or "true", keeps the data folders of test clusters.
	EnvKeep = "ORDO_TEST_PG_KEEP"
)

// Backend names, as accepted by EnvBackend and returned by Cluster.Backend.
const (
	BackendLocal  = "local"
	BackendDocker = "docker"
	BackendURL    = "url"
)

// ErrNoPostgres is returned when no backend can provide a cluster.
var ErrNoPostgres = errors.New("pgtest: no PostgreSQL available: install the PostgreSQL server binaries (Debian: apt-get install postgresql) or Docker, or set " + EnvDatabaseURL)

// ErrUnsupported is returned by Stop, StopImmediate, Start and Kill on a
// backend that cannot do them (the url backend).
var ErrUnsupported = errors.New("not supported on this backend")

// connectTimeout bounds how long a starting server may take to accept
// connections.
const connectTimeout = 30 * time.Second

// Options configure StartCluster.
type Options struct {
	// Name labels the cluster in logs, folder and database names. It may only
	// hold letters, digits, '-' and '_'. Defaults to "pg".
	Name string

	// Port is the TCP port the server listens on at 127.0.0.1 (local and
	// docker backends). Defaults to 0, which picks a free port.
	Port int

	// DataDir is the data folder (local backend only). If it already holds a
	// cluster, that cluster is started with its data; otherwise it is created.
	// Defaults to "", a new folder under os.TempDir().
	DataDir string

	// Keep makes Remove stop the server but leave its data folder (or
	// database, on the url backend) in place, for inspection or reuse.
	// Defaults to false.
	Keep bool

	// Settings are extra server settings, passed as -c name=value; they
	// override the test settings this package uses. Defaults to none.
	Settings map[string]string

	// Logf receives one line per notable event (started, stopped, removed).
	// Defaults to discarding them.
	Logf func(format string, args ...any)

	// NetNS is the name of a network namespace (made with `ip netns add`)
	// to run the server in: local backend, Linux, as root. The server then
	// listens on Port at every address of the namespace and trusts TCP
	// connections from anywhere (the namespace is the test's own), and
	// URL connects through its Unix socket, which works from any
	// namespace. Defaults to "": the caller's namespace, on 127.0.0.1.
	NetNS string
}

var nameRE = regexp.MustCompile(`^[A-Za-z0-9_-]+$`)

// WithDefaults returns a copy of o with defaults filled in.
func (o Options) WithDefaults() Options {
	if o.Name == "" {
		o.Name = "pg"
	}
	if o.Logf == nil {
		o.Logf = func(string, ...any) {}
	}
	return o
}

func (o Options) validate() error {
	if !nameRE.MatchString(o.Name) {
		return fmt.Errorf("Name %q must only hold letters, digits, '-' and '_'", o.Name)
	}
	if o.Port < 0 || o.Port > 65535 {
		return fmt.Errorf("Port %d must be between 0 and 65535", o.Port)
	}
	return nil
}

// server is what a backend does for one cluster. Calls are serialized by
// Cluster.mu.
type server interface {
	start(ctx context.Context) error
	stop(ctx context.Context) error
	stopImmediate(ctx context.Context) error
	kill() error
	remove(ctx context.Context) error
	// logTail returns the end of the server log, or "" if there is none.
	logTail() string
}

// Cluster is one running throwaway Postgres server.
type Cluster struct {
	name    string
	backend string
	url     *url.URL // URL of the default database
	port    int
	dataDir string
	logf    func(format string, args ...any)

	mu      sync.Mutex
	srv     server
	removed bool
}

// URL returns the connection URL of the cluster's default database, such as
// postgres://postgres@127.0.0.1:PORT/postgres?sslmode=disable. Connections
// need no password.
func (c *Cluster) URL() string { return c.url.String() }

// DatabaseURL returns the connection URL of database db on the cluster. On
// the url backend it names db on the shared server.
func (c *Cluster) DatabaseURL(db string) string {
	u := *c.url
	u.Path = "/" + db
	u.RawPath = ""
	return u.String()
}

// Name returns the label given at start, such as "node1".
func (c *Cluster) Name() string { return c.name }

// Backend returns the backend serving the cluster: BackendLocal,
// BackendDocker or BackendURL.
func (c *Cluster) Backend() string { return c.backend }

// Port returns the TCP port of the server. It does not change across Stop and
// Start.
func (c *Cluster) Port() int { return c.port }

// DataDir returns the data folder of a local cluster, or "" on other backends.
func (c *Cluster) DataDir() string { return c.dataDir }

// Stop shuts the server down (fast shutdown: open transactions are rolled
// back) and keeps its data. Stopping a stopped cluster does nothing. ctx
// bounds the wait; when it ends first, the server is killed and ctx's error
// returned.
func (c *Cluster) Stop(ctx context.Context) error {
	return c.stopServer(ctx, c.srv.stop, "")
}

// StopImmediate shuts the server down at once (immediate shutdown, as
// pg_ctl stop -m immediate: no checkpoint, crash recovery at the next
// start) and keeps its data. Stopping a stopped cluster does nothing. ctx
// bounds the wait; when it ends first, the server is killed and ctx's
// error returned.
func (c *Cluster) StopImmediate(ctx context.Context) error {
	return c.stopServer(ctx, c.srv.stopImmediate, " (immediate)")
}

// stopServer stops the server with stop unless the cluster was removed;
// how (such as " (immediate)") follows the cluster's name in the error
// and the log.
func (c *Cluster) stopServer(ctx context.Context, stop func(context.Context) error, how string) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.removed {
		return nil
	}
	if err := stop(ctx); err != nil {
		return fmt.Errorf("stopping %s%s: %w", c.name, how, err)
	}
	c.logf("pgtest: %s stopped%s", c.name, how)
	return nil
}

// Start restarts a stopped or killed server on the same port with the same
// data, and waits until it accepts connections. Starting a running cluster
// does nothing. ctx bounds the whole start; the wait is also limited to 30
// seconds.
func (c *Cluster) Start(ctx context.Context) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.removed {
		return fmt.Errorf("starting %s: cluster was removed", c.name)
	}
	began := time.Now()
	if err := c.srv.start(ctx); err != nil {
		return fmt.Errorf("starting %s: %w", c.name, err)
	}
	c.logf("pgtest: %s started at %s in %v", c.name, c.url.Host, time.Since(began).Round(time.Millisecond))
	return nil
}

// Kill sends SIGKILL to the server, as in a crash, and keeps its data. Start
// brings it back through crash recovery.
func (c *Cluster) Kill() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.removed {
		return nil
	}
	if err := c.srv.kill(); err != nil {
		return fmt.Errorf("killing %s: %w", c.name, err)
	}
	c.logf("pgtest: %s killed", c.name)
	return nil
}

// Remove stops the server and deletes its data folder (or drops its
// database), unless Options.Keep is set. Removing twice does nothing.
func (c *Cluster) Remove() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.removed {
		return nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), connectTimeout)
	defer cancel()
	if err := c.srv.remove(ctx); err != nil {
		return fmt.Errorf("removing %s: %w", c.name, err)
	}
	c.removed = true
	c.logf("pgtest: %s removed", c.name)
	return nil
}

// LogTail returns the last lines of the server log, for failure messages.
// It returns "" when the backend keeps no log.
func (c *Cluster) LogTail() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.srv.logTail()
}

// StartCluster starts one cluster from the first available backend (see the
// package documentation) and waits until it accepts connections. ctx bounds
// the start only, not the life of the server. The caller must call Remove (or
// Stop) when done; a local server also dies with the calling process on Linux.
func StartCluster(ctx context.Context, opts Options) (*Cluster, error) {
	backend, err := pickBackend(ctx)
	if err != nil {
		return nil, err
	}
	return startOn(ctx, backend, opts)
}

// startOn starts one cluster on backend.
func startOn(ctx context.Context, backend string, opts Options) (*Cluster, error) {
	opts = opts.WithDefaults()
	if err := opts.validate(); err != nil {
		return nil, fmt.Errorf("invalid options: %w", err)
	}
	if opts.DataDir != "" && backend != BackendLocal {
		return nil, fmt.Errorf("DataDir %q is only supported by the local backend, not %s", opts.DataDir, backend)
	}
	if opts.NetNS != "" && backend != BackendLocal {
		return nil, fmt.Errorf("NetNS %q is only supported by the local backend, not %s", opts.NetNS, backend)
	}
	began := time.Now()
	var c *Cluster
	var err error
	switch backend {
	case BackendLocal:
		c, err = startLocal(ctx, opts)
	case BackendDocker:
		c, err = startDocker(ctx, opts)
	case BackendURL:
		c, err = startURLDatabase(ctx, opts)
	default:
		err = fmt.Errorf("unknown backend %q", backend)
	}
	if err != nil {
		return nil, fmt.Errorf("starting %s (%s backend): %w", opts.Name, backend, err)
	}
	where := c.url.Host
	if c.dataDir != "" {
		where += ", data in " + c.dataDir
	}
	opts.Logf("pgtest: %s started (%s backend) at %s in %v", c.name, backend, where, time.Since(began).Round(time.Millisecond))
	return c, nil
}

// pickBackend returns the backend forced by EnvBackend, or else the first
// available one.
func pickBackend(ctx context.Context) (string, error) {
	switch forced := os.Getenv(EnvBackend); forced {
	case "":
	case BackendLocal:
		if _, err := findBinaries(); err != nil {
			return "", fmt.Errorf("%s=%s: %w", EnvBackend, forced, err)
		}
		return forced, nil
	case BackendDocker:
		if err := dockerAvailable(ctx); err != nil {
			return "", fmt.Errorf("%s=%s: %w", EnvBackend, forced, err)
		}
		return forced, nil
	case BackendURL:
		if os.Getenv(EnvDatabaseURL) == "" {
			return "", fmt.Errorf("%s=%s but %s is not set", EnvBackend, forced, EnvDatabaseURL)
		}
		return forced, nil
	default:
		return "", fmt.Errorf("%s=%q must be %s, %s or %s", EnvBackend, forced, BackendLocal, BackendDocker, BackendURL)
	}
	if _, err := findBinaries(); err == nil {
		return BackendLocal, nil
	}
	if dockerAvailable(ctx) == nil {
		return BackendDocker, nil
	}
	if os.Getenv(EnvDatabaseURL) != "" {
		return BackendURL, nil
	}
	return "", ErrNoPostgres
}

// FreePort returns a TCP port on 127.0.0.1 that was free a moment ago.
func FreePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("finding a free port: %w", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// localURL returns the URL of the default database of a server on
// host:port with trust authentication.
func localURL(host string, port int) *url.URL {
	return &url.URL{
		Scheme:   "postgres",
		User:     url.User("postgres"),
		Host:     net.JoinHostPort(host, strconv.Itoa(port)),
		Path:     "/postgres",
		RawQuery: "sslmode=disable",
	}
}

// socketURL returns the URL of the default database of a server whose
// Unix socket is in dir.
func socketURL(dir string, port int) *url.URL {
	q := url.Values{"host": {dir}, "port": {strconv.Itoa(port)}, "sslmode": {"disable"}}
	return &url.URL{Scheme: "postgres", User: url.User("postgres"), Host: "", Path: "/postgres", RawQuery: q.Encode()}
}

// waitReady connects to connURL until it answers SELECT 1, exited is
// closed (the server died), ctx ends or connectTimeout passes.
func waitReady(ctx context.Context, connURL string, exited <-chan struct{}) error {
	ctx, cancel := context.WithTimeout(ctx, connectTimeout)
	defer cancel()
	var lastErr error
	for {
		attemptCtx, attemptCancel := context.WithTimeout(ctx, 2*time.Second)
		conn, err := pgx.Connect(attemptCtx, connURL)
		if err == nil {
			_, err = conn.Exec(attemptCtx, "SELECT 1")
			conn.Close(attemptCtx)
		}
		attemptCancel()
		if err == nil {
			return nil
		}
		lastErr = err
		select {
		case <-exited:
			return errServerExited
		case <-ctx.Done():
			return fmt.Errorf("server not accepting connections: %w (last error: %w)", ctx.Err(), lastErr)
		case <-time.After(20 * time.Millisecond):
		}
	}
}

var errServerExited = errors.New("server exited")
