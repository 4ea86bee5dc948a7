package pgtest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"maps"
	"net"
	"net/url"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5"
)

// testSettings are the server settings of a test cluster: fast, and unsafe
// only if the machine crashes.
//
// synchronous_commit stays on: with fsync off a commit costs one write to the
// page cache (measured: no slower than off), and a server killed by Kill
// keeps every commit it acknowledged, as a real Postgres does. With it off,
// Kill would lose the last ~200ms of acknowledged commits and crash tests
// would report losses that ordo did not cause.
var testSettings = map[string]string{
	"fsync":              "off",
	"synchronous_commit": "on",
	"full_page_writes":   "off",
	"max_connections":    "300",
	"shared_buffers":     "32MB",
	"listen_addresses":   "127.0.0.1",
	// Dynamic shared memory in files under the data folder: those of a
	// killed server go with the folder, instead of piling up in /dev/shm.
	"dynamic_shared_memory_type": "mmap",
}

// Prefixes of the folders this package makes under os.TempDir(). Folders
// named tempPrefix+PID+"-" belong to process PID and are deleted by a later
// process once PID is gone.
const (
	tempPrefix = "ordo-pgtest-"
	keepPrefix = "ordo-pgtest-keep-"
	logName    = "postgres.log"
)

// installedBinGlob matches the folders of the server binaries installed by
// Debian and Ubuntu packages. A variable for tests.
var installedBinGlob = "/usr/lib/postgresql/*/bin"

// binaries are the PostgreSQL server programs of one installation.
type binaries struct {
	initdb   string
	postgres string
}

var findBinaries = sync.OnceValues(func() (binaries, error) {
	var dirs []string
	if p, err := exec.LookPath("initdb"); err == nil {
		if real, err := filepath.EvalSymlinks(p); err == nil {
			dirs = append(dirs, filepath.Dir(real))
		}
		dirs = append(dirs, filepath.Dir(p))
	}
	installed, _ := filepath.Glob(installedBinGlob)
	// Newest version first: /usr/lib/postgresql/16/bin before .../9.6/bin.
	slices.SortFunc(installed, func(a, b string) int {
		va, _ := strconv.ParseFloat(filepath.Base(filepath.Dir(a)), 64)
		vb, _ := strconv.ParseFloat(filepath.Base(filepath.Dir(b)), 64)
		return int(vb*100) - int(va*100)
	})
	dirs = append(dirs, installed...)
	for _, dir := range dirs {
		b := binaries{initdb: filepath.Join(dir, "initdb"), postgres: filepath.Join(dir, "postgres")}
		if isExecutable(b.initdb) && isExecutable(b.postgres) {
			return b, nil
		}
	}
	return binaries{}, errors.New("PostgreSQL server binaries (initdb, postgres) not found on PATH or under /usr/lib/postgresql/*/bin")
})

func isExecutable(path string) bool {
	fi, err := os.Stat(path)
	return err == nil && fi.Mode().IsRegular() && fi.Mode()&0o111 != 0
}

// serverUser returns the credential to run initdb and postgres with: nil
// normally, the postgres system user when running as root (initdb refuses
// root).
var serverUser = sync.OnceValues(func() (*syscall.Credential, error) {
	if os.Geteuid() != 0 {
		return nil, nil
	}
	u, err := user.Lookup("postgres")
	if err != nil {
		return nil, fmt.Errorf("running as root, so the server must run as the postgres system user: %w", err)
	}
	uid, err := strconv.ParseUint(u.Uid, 10, 32)
	if err != nil {
		return nil, fmt.Errorf("postgres user id %q: %w", u.Uid, err)
	}
	gid, err := strconv.ParseUint(u.Gid, 10, 32)
	if err != nil {
		return nil, fmt.Errorf("postgres group id %q: %w", u.Gid, err)
	}
	return &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}, nil
})

func chown(path string, cred *syscall.Credential) error {
	if cred == nil {
		return nil
	}
	return os.Chown(path, int(cred.Uid), int(cred.Gid))
}

// templateOnce runs initdb once per process; every local cluster of the
// process starts as a copy of its result.
var templateOnce struct {
	sync.Once
	dir string
	err error
}

func templateDir(ctx context.Context, bins binaries, cred *syscall.Credential) (string, error) {
	templateOnce.Do(func() {
		// Not bound to the first caller's cancellation: later callers share
		// the result.
		ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 2*time.Minute)
		defer cancel()
		sweepTempDirs()
		templateOnce.dir, templateOnce.err = makeTemplate(ctx, bins, cred)
	})
	return templateOnce.dir, templateOnce.err
}

func makeTemplate(ctx context.Context, bins binaries, cred *syscall.Credential) (string, error) {
	dir, err := os.MkdirTemp("", fmt.Sprintf("%s%d-template-", tempPrefix, os.Getpid()))
	if err != nil {
		return "", fmt.Errorf("making template folder: %w", err)
	}
	if err := chown(dir, cred); err != nil {
		os.RemoveAll(dir)
		return "", fmt.Errorf("making template folder: %w", err)
	}
	cmd := exec.CommandContext(ctx, bins.initdb,
		"--pgdata="+dir, "--auth=trust", "--username=postgres", "--no-sync",
		"--encoding=UTF8", "--locale=C")
	cmd.Dir = os.TempDir() // the server user may not be able to enter ours
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: cred}
	cmd.Env = serverEnv()
	if out, err := cmd.CombinedOutput(); err != nil {
		os.RemoveAll(dir)
		return "", fmt.Errorf("%s: %w\n%s", bins.initdb, err, bytes.TrimSpace(out))
	}
	return dir, nil
}

// serverEnv is the environment of initdb and postgres: ours without the
// libpq variables, which could point them elsewhere.
func serverEnv() []string {
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "PG") {
			env = append(env, kv)
		}
	}
	return append(env, "LC_ALL=C")
}

// sweepTempDirs deletes the folders left under os.TempDir() by processes
// that died before cleaning up, such as a test binary killed on timeout.
func sweepTempDirs() {
	paths, _ := filepath.Glob(filepath.Join(os.TempDir(), tempPrefix+"[0-9]*-*"))
	for _, path := range paths {
		pidText, _, _ := strings.Cut(strings.TrimPrefix(filepath.Base(path), tempPrefix), "-")
		pid, err := strconv.Atoi(pidText)
		if err != nil || pid == os.Getpid() || processAlive(pid) {
			continue
		}
		if pm, err := os.ReadFile(filepath.Join(path, "postmaster.pid")); err == nil {
			first, _, _ := strings.Cut(string(pm), "\n")
			if pmPID, err := strconv.Atoi(strings.TrimSpace(first)); err == nil && processAlive(pmPID) {
				continue
			}
		}
		os.RemoveAll(path)
	}
}

func processAlive(pid int) bool {
	return pid > 0 && !errors.Is(syscall.Kill(pid, 0), syscall.ESRCH) && !isZombie(pid)
}

// localServer is a postgres process started from the local binaries.
type localServer struct {
	bins      binaries
	cred      *syscall.Credential
	dataDir   string
	logPath   string
	port      int
	portFixed bool // the port may not change: asked for, or used before
	settings  []string
	keep      bool

	netns string // network namespace to run in; "" for the caller's
	ready *url.URL

	cmd    *exec.Cmd     // nil when not started
	exited chan struct{} // closed once cmd has exited
}

func startLocal(ctx context.Context, opts Options) (*Cluster, error) {
	bins, err := findBinaries()
	if err != nil {
		return nil, err
	}
	cred, err := serverUser()
	if err != nil {
		return nil, err
	}
	tmpl, err := templateDir(ctx, bins, cred)
	if err != nil {
		return nil, err
	}
	port := opts.Port
	if port == 0 {
		if port, err = FreePort(); err != nil {
			return nil, err
		}
	}
	dataDir, created, err := prepareDataDir(opts, tmpl, cred)
	if err != nil {
		return nil, err
	}
	s := &localServer{
		bins:      bins,
		cred:      cred,
		dataDir:   dataDir,
		logPath:   filepath.Join(dataDir, logName),
		port:      port,
		portFixed: opts.Port != 0,
		keep:      opts.Keep,
	}
	settings := maps.Clone(testSettings)
	socket := len(dataDir)+len("/.s.PGSQL.65535") < 100 && !strings.ContainsAny(dataDir, ", \\")
	if socket {
		settings["unix_socket_directories"] = dataDir
	} else {
		settings["unix_socket_directories"] = ""
	}
	s.ready = localURL("127.0.0.1", s.port)
	if opts.NetNS != "" {
		if !socket {
			if created && !opts.Keep {
				os.RemoveAll(dataDir)
			}
			return nil, fmt.Errorf("NetNS needs a Unix socket, and the data folder %s is too long a path for one", dataDir)
		}
		if err := trustNetwork(dataDir); err != nil {
			if created && !opts.Keep {
				os.RemoveAll(dataDir)
			}
			return nil, err
		}
		s.netns = opts.NetNS
		settings["listen_addresses"] = "*"
		s.ready = socketURL(dataDir, s.port)
	}
	maps.Copy(settings, opts.Settings)
	for _, name := range slices.Sorted(maps.Keys(settings)) {
		s.settings = append(s.settings, "-c", name+"="+settings[name])
	}

	if err := s.start(ctx); err != nil {
		if created && !opts.Keep {
			os.RemoveAll(dataDir)
		}
		return nil, err
	}
	return &Cluster{
		name:    opts.Name,
		backend: BackendLocal,
		url:     s.ready,
		port:    s.port,
		dataDir: dataDir,
		logf:    opts.Logf,
		srv:     s,
	}, nil
}

// trustNetwork makes the cluster in dir trust TCP connections from any
// address, for a server in a network namespace of the test's own.
func trustNetwork(dir string) error {
	const line = "host all all 0.0.0.0/0 trust\n"
	path := filepath.Join(dir, "pg_hba.conf")
	b, err := os.ReadFile(path)
	if err != nil {
		return fmt.Errorf("reading pg_hba.conf: %w", err)
	}
	if strings.Contains(string(b), line) {
		return nil
	}
	f, err := os.OpenFile(path, os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		return fmt.Errorf("writing pg_hba.conf: %w", err)
	}
	defer f.Close()
	if _, err := f.WriteString(line); err != nil {
		return fmt.Errorf("writing pg_hba.conf: %w", err)
	}
	return nil
}

// prepareDataDir returns the data folder for opts, copied from the template
// unless it already holds a cluster, and whether it made the folder.
func prepareDataDir(opts Options, tmpl string, cred *syscall.Credential) (dir string, created bool, err error) {
	dir = opts.DataDir
	if dir == "" {
		prefix := fmt.Sprintf("%s%d-%s-", tempPrefix, os.Getpid(), opts.Name)
		if opts.Keep {
			prefix = keepPrefix + opts.Name + "-"
		}
		if dir, err = os.MkdirTemp("", prefix); err != nil {
			return "", false, fmt.Errorf("making data folder: %w", err)
		}
		created = true
	} else {
		if dir, err = filepath.Abs(dir); err != nil {
			return "", false, fmt.Errorf("data folder: %w", err)
		}
		if _, err := os.Stat(filepath.Join(dir, "PG_VERSION")); err == nil {
			return dir, false, nil // an existing cluster: start it as is
		}
		entries, err := os.ReadDir(dir)
		switch {
		case errors.Is(err, os.ErrNotExist):
			if err := os.MkdirAll(dir, 0o700); err != nil {
				return "", false, fmt.Errorf("making data folder: %w", err)
			}
			created = true
		case err != nil:
			return "", false, fmt.Errorf("data folder: %w", err)
		case len(entries) > 0:
			return "", false, fmt.Errorf("data folder %s is not empty and holds no cluster", dir)
		}
	}
	fail := func(err error) (string, bool, error) {
		if created {
			os.RemoveAll(dir)
		}
		return "", false, err
	}
	// Postgres wants its data folder private.
	if err := os.Chmod(dir, 0o700); err != nil {
		return fail(fmt.Errorf("data folder: %w", err))
	}
	if err := chown(dir, cred); err != nil {
		return fail(fmt.Errorf("data folder: %w", err))
	}
	if out, err := exec.Command("cp", "-a", tmpl+"/.", dir+"/").CombinedOutput(); err != nil {
		return fail(fmt.Errorf("copying template cluster: %w: %s", err, bytes.TrimSpace(out)))
	}
	return dir, created, nil
}

func (s *localServer) running() bool {
	if s.cmd == nil {
		return false
	}
	select {
	case <-s.exited:
		return false
	default:
		return true
	}
}

// start starts postgres and waits until it accepts connections. It retries
// on a taken port (with another port, unless the port is fixed) and while
// processes of a killed server still hold its shared memory.
func (s *localServer) start(ctx context.Context) error {
	if s.running() {
		return nil
	}
	deadline := time.Now().Add(connectTimeout)
	for attempt := 1; ; attempt++ {
		logStart, err := s.launch()
		if err != nil {
			return err
		}
		err = waitReady(ctx, s.ready.String(), s.exited)
		if err == nil {
			err = s.answersOwnPort(ctx)
		}
		if err == nil {
			s.portFixed = true
			return nil
		}
		if errors.Is(err, errOtherServer) && attempt < 5 && time.Now().Before(deadline) {
			// Another cluster took the port between FreePort and our
			// bind, and answered for us: ours fails to bind, or is
			// stopped here.
			s.signalAndWait(syscall.SIGKILL)
			if !s.portFixed {
				if s.port, err = FreePort(); err != nil {
					return err
				}
				s.ready = withPort(s.ready, s.port)
			}
			continue
		}
		if !errors.Is(err, errServerExited) {
			s.signalAndWait(syscall.SIGKILL)
			return fmt.Errorf("postgres on port %d: %w\n%s", s.port, err, s.logTail())
		}
		log := s.logSince(logStart)
		switch {
		case strings.Contains(log, "Address already in use") && attempt < 5 && time.Now().Before(deadline):
			if s.portFixed {
				time.Sleep(100 * time.Millisecond)
				continue
			}
			if s.port, err = FreePort(); err != nil {
				return err
			}
			s.ready = withPort(s.ready, s.port)
		case strings.Contains(log, "shared memory block") && time.Now().Before(deadline):
			// Children of a killed server are still exiting.
			time.Sleep(50 * time.Millisecond)
		default:
			return fmt.Errorf("postgres on port %d exited during startup: %s\n%s", s.port, s.cmd.ProcessState, strings.TrimSpace(log))
		}
	}
}

// withPort returns u, a URL of localURL's or socketURL's, with port.
func withPort(u *url.URL, port int) *url.URL {
	v := *u
	if v.Host != "" {
		v.Host = net.JoinHostPort(v.Hostname(), strconv.Itoa(port))
		return &v
	}
	q := v.Query()
	q.Set("port", strconv.Itoa(port))
	v.RawQuery = q.Encode()
	return &v
}

// errOtherServer says the server that answered on a cluster's port is
// not the cluster's own.
var errOtherServer = errors.New("another server answers on the port")

// answersOwnPort checks that the server answering at s.ready is this one,
// by its data directory: a port FreePort found free may be taken by a
// cluster started at the same moment, which would then answer for ours.
func (s *localServer) answersOwnPort(ctx context.Context) error {
	conn, err := pgx.Connect(ctx, s.ready.String())
	if err != nil {
		return err
	}
	defer conn.Close(context.WithoutCancel(ctx))
	var dir string
	if err := conn.QueryRow(ctx, "SELECT current_setting('data_directory')").Scan(&dir); err != nil {
		return err
	}
	ours, err := os.Stat(s.dataDir)
	if err != nil {
		return err
	}
	if theirs, err := os.Stat(dir); err != nil || !os.SameFile(ours, theirs) {
		return fmt.Errorf("%w: %d is served from %s, not %s", errOtherServer, s.port, dir, s.dataDir)
	}
	return nil
}

// launch starts the postgres process, logging to logPath, and returns the
// size of the log before it.
func (s *localServer) launch() (logStart int64, err error) {
	logFile, err := os.OpenFile(s.logPath, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o600)
	if err != nil {
		return 0, fmt.Errorf("opening server log: %w", err)
	}
	defer logFile.Close()
	if fi, err := logFile.Stat(); err == nil {
		logStart = fi.Size()
	}
	args := append([]string{"-D", s.dataDir, "-p", strconv.Itoa(s.port)}, s.settings...)
	cmd := exec.Command(s.bins.postgres, args...)
	cmd.Dir = os.TempDir()
	cmd.Env = serverEnv()
	cmd.Stdout = logFile
	cmd.Stderr = logFile
	cmd.SysProcAttr = serverProcAttr(s.cred)
	if err := startProcess(cmd, s.netns); err != nil {
		return 0, fmt.Errorf("starting %s: %w", s.bins.postgres, err)
	}
	exited := make(chan struct{})
	go func() {
		_ = cmd.Wait()
		close(exited)
	}()
	s.cmd, s.exited = cmd, exited
	return logStart, nil
}

// signalAndWait sends sig to the postmaster and waits for it to exit; with
// SIGKILL it also kills the postmaster's children, as a crash of the whole
// server would.
func (s *localServer) signalAndWait(sig syscall.Signal) {
	if !s.running() {
		return
	}
	var children []int
	if sig == syscall.SIGKILL {
		children = childPIDs(s.cmd.Process.Pid)
	}
	_ = s.cmd.Process.Signal(sig)
	for _, pid := range children {
		_ = syscall.Kill(pid, syscall.SIGKILL)
	}
	<-s.exited
}

func (s *localServer) stop(ctx context.Context) error {
	return s.shutdown(ctx, syscall.SIGINT, "fast")
}

func (s *localServer) stopImmediate(ctx context.Context) error {
	return s.shutdown(ctx, syscall.SIGQUIT, "immediate")
}

// shutdown sends sig to the postmaster, asking for the shutdown mode
// (SIGINT: fast, SIGQUIT: immediate), and waits for it to exit; when ctx
// ends first it kills the server and says so.
func (s *localServer) shutdown(ctx context.Context, sig syscall.Signal, mode string) error {
	if !s.running() {
		return nil
	}
	_ = s.cmd.Process.Signal(sig)
	select {
	case <-s.exited:
		return nil
	case <-ctx.Done():
		s.signalAndWait(syscall.SIGKILL)
		return fmt.Errorf("%s shutdown did not finish, killed the server: %w", mode, ctx.Err())
	}
}

func (s *localServer) kill() error {
	s.signalAndWait(syscall.SIGKILL)
	return nil
}

func (s *localServer) remove(ctx context.Context) error {
	if s.keep {
		return s.stop(ctx)
	}
	// Immediate shutdown: the data is going away. A server that had to
	// be killed is gone as well.
	_ = s.shutdown(ctx, syscall.SIGQUIT, "immediate")
	if err := os.RemoveAll(s.dataDir); err != nil {
		return fmt.Errorf("deleting data folder: %w", err)
	}
	return nil
}

const logTailSize = 4 << 10

// logTail returns the last 4 KiB of the log.
func (s *localServer) logTail() string { return s.logSince(0) }

// logSince returns the log written after offset, up to its last 4 KiB.
func (s *localServer) logSince(offset int64) string {
	f, err := os.Open(s.logPath)
	if err != nil {
		return ""
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return ""
	}
	if tail := fi.Size() - logTailSize; tail > offset {
		return readTail(f, tail)
	}
	b, _ := io.ReadAll(io.NewSectionReader(f, offset, logTailSize))
	return string(b)
}

// readTail reads f from offset to its end, dropping a first partial line.
func readTail(f *os.File, offset int64) string {
	offset = max(offset, 0)
	b, err := io.ReadAll(io.NewSectionReader(f, offset, logTailSize))
	if err != nil {
		return ""
	}
	if offset > 0 {
		if i := bytes.IndexByte(b, '\n'); i >= 0 {
			b = b[i+1:]
		}
	}
	return string(b)
}
