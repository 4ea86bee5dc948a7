package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/ordo-pipeline/ordo/internal/pgtest"
	"github.com/ordo-pipeline/ordo/workspace"
)

// readyTimeout bounds the wait for the programs to answer once started.
const readyTimeout = 2 * time.Minute

// run starts the system cfg describes, prints the banner once it is ready,
// and stops it on SIGINT, SIGTERM or SIGHUP (its terminal closed). It returns the exit status: 0 after a
// signal, 1 when starting failed or a program exited on its own.
func run(cfg config, stdout, stderr io.Writer) int {
	names := []string{"ordo-dev", "rebalance", "gateway", "sink"}
	for i := range cfg.Workers {
		names = append(names, workerName(i))
	}
	con := newConsole(stdout, stderr, names...)
	logger := newLogger(con, cfg)

	// The first signal stops the system, a second one kills the programs
	// instead of waiting for them.
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	force := make(chan struct{})
	sigs := make(chan os.Signal, 2)
	signal.Notify(sigs, os.Interrupt, syscall.SIGTERM, syscall.SIGHUP)
	defer signal.Stop(sigs)
	go func() {
		sig := <-sigs
		logger.Info("stopping", "signal", sig.String())
		cancel()
		<-sigs
		logger.Warn("second signal: killing the programs")
		close(force)
	}()

	d := &dev{cfg: cfg, con: con, logger: logger, force: force, began: time.Now()}
	err := d.start(ctx)
	if err == nil {
		err = d.wait(ctx)
	}
	status := 0
	switch {
	case err != nil && ctx.Err() != nil:
		// Interrupted while starting: a program stopped by the signal is no failure.
		logger.Debug("start interrupted", "err", err)
	case err != nil:
		logger.Error(err.Error())
		status = 1
	}
	if err := d.stop(); err != nil {
		logger.Error("error stopping", "err", err)
		status = 1
	}
	if status == 0 {
		logger.Info("stopped")
	}
	return status
}

// newLogger returns ordo-dev's own logger, writing to con behind
// "[ordo-dev]": info level, debug with -v or ORDO_LOG_LEVEL=debug.
func newLogger(con *console, cfg config) *slog.Logger {
	level := slog.LevelInfo
	if cfg.Verbose || strings.EqualFold(cfg.LogLevel, "debug") {
		level = slog.LevelDebug
	}
	opts := &slog.HandlerOptions{
		Level: level,
		// The programs' lines carry the time; ordo-dev's few lines read
		// better without it.
		ReplaceAttr: func(groups []string, a slog.Attr) slog.Attr {
			if len(groups) == 0 && a.Key == slog.TimeKey {
				return slog.Attr{}
			}
			return a
		},
	}
	w := con.writer("ordo-dev", false, styleBold)
	if strings.EqualFold(cfg.LogFormat, "json") {
		return slog.New(slog.NewJSONHandler(w, opts))
	}
	return slog.New(slog.NewTextHandler(w, opts))
}

// workerName returns the name of worker i, counting from 0.
func workerName(i int) string { return fmt.Sprintf("worker-%d", i+1) }

// dev is one run of ordo-dev: what it started, to stop it.
type dev struct {
	cfg    config
	con    *console
	logger *slog.Logger
	force  <-chan struct{} // closed when programs are to be killed at once
	began  time.Time

	dir          string            // the dev folder, absolute
	madeDir      bool              // whether ordo-dev made the dev folder
	wroteWS      string            // the generated workspace file, "" when none
	nodes        []*pgtest.Cluster // node1 first
	gateway      *program
	workers      []*program
	sink         *program
	exits        chan *program     // programs that exited, in order
	programPaths map[string]string // path of each ordo program by name
}

// start starts Postgres, bootstraps the cluster, starts the programs, waits
// until they are ready and prints the banner. What it started is recorded
// in d for stop, also when it fails.
func (d *dev) start(ctx context.Context) error {
	l, err := d.prepare()
	if err != nil {
		return err
	}
	if err := d.startCluster(ctx, l); err != nil {
		return err
	}
	if err := d.startPrograms(ctx, l); err != nil {
		return err
	}
	d.con.print(d.banner(l).String())
	return nil
}

// layout is where everything goes, decided before anything starts.
type layout struct {
	workspace  string   // path of the workspace file
	writeKey   string   // for the banner's curl command
	httpAddr   string   // the gateway's listen address
	sinkAddr   string   // the sink's listen address
	adminAddrs []string // the workers' admin listen addresses
	env        []string // of every program, once the cluster is up
}

// prepare checks everything it can before Postgres starts: the workspace,
// the programs, the listen addresses and the dev folder, which it makes.
func (d *dev) prepare() (*layout, error) {
	cfg := d.cfg
	var err error
	if d.dir, err = filepath.Abs(cfg.Dir); err != nil {
		return nil, fmt.Errorf("dev folder: %w", err)
	}
	l := &layout{workspace: filepath.Join(d.dir, workspaceName), writeKey: devWriteKey}
	if cfg.Workspace != "" {
		if l.workspace, err = filepath.Abs(cfg.Workspace); err != nil {
			return nil, fmt.Errorf("workspace: %w", err)
		}
		ws, err := workspace.Load(l.workspace)
		if err != nil {
			return nil, err
		}
		l.writeKey = exampleWriteKey(ws)
	}
	d.programPaths = map[string]string{}
	for _, name := range []string{"rebalance", "gateway", "worker", "sink"} {
		if d.programPaths[name], err = findProgram(name); err != nil {
			return nil, err
		}
	}
	if l.httpAddr, err = claimAddr(cfg.HTTPAddr, "gateway", "http-addr"); err != nil {
		return nil, err
	}
	if l.sinkAddr, err = claimAddr(cfg.SinkAddr, "sink", "sink-addr"); err != nil {
		return nil, err
	}
	l.adminAddrs = make([]string, cfg.Workers)
	for i := range l.adminAddrs {
		port := 0
		if cfg.AdminPort != 0 {
			port = cfg.AdminPort + i
		}
		if l.adminAddrs[i], err = claimAddr(fmt.Sprintf("127.0.0.1:%d", port), workerName(i)+" admin", "admin-port"); err != nil {
			return nil, err
		}
	}

	if err := checkServerCanEnter(d.dir); err != nil {
		return nil, err
	}
	if _, err := os.Stat(d.dir); errors.Is(err, os.ErrNotExist) {
		d.madeDir = true
	}
	// Open to others: Postgres may run as another user (see checkServerCanEnter).
	if err := os.MkdirAll(d.dir, 0o755); err != nil {
		return nil, fmt.Errorf("making dev folder: %w", err)
	}
	return l, nil
}

// startCluster starts the Postgres nodes, writes the workspace file unless
// one was given, and runs rebalance to the end. It sets l.env.
func (d *dev) startCluster(ctx context.Context, l *layout) error {
	cfg := d.cfg
	began := time.Now()
	kept := keptData(d.dir)
	if kept {
		d.logger.Info("starting Postgres with the data already in the dev folder", "nodes", cfg.Nodes, "dir", d.dir)
	} else {
		d.logger.Info("starting Postgres", "nodes", cfg.Nodes, "dir", d.dir)
	}
	var err error
	if d.nodes, err = startNodes(ctx, d.dir, cfg.Nodes, cfg.PGPort, cfg.Keep, d.logger); err != nil {
		return fmt.Errorf("starting Postgres: %w", err)
	}
	d.logger.Debug("Postgres started", "took", time.Since(began).Round(time.Millisecond))

	if cfg.Workspace == "" {
		if err := writeDevWorkspace(l.workspace, httpURL(l.sinkAddr)+"/events"); err != nil {
			return err
		}
		d.wroteWS = l.workspace
	}

	l.env = append(os.Environ(),
		"ORDO_LOG_FORMAT="+cfg.LogFormat,
		"ORDO_LOG_LEVEL="+cfg.programLogLevel(),
		"ORDO_CATALOG_URL="+d.nodes[0].URL(),
		"ORDO_WORKSPACE_CONFIG="+l.workspace,
	)
	nodes := make([]string, len(d.nodes))
	for i, n := range d.nodes {
		nodes[i] = n.Name() + "=" + n.URL()
	}
	began = time.Now()
	env := append(slices.Clip(l.env), "ORDO_NODES="+strings.Join(nodes, ","), fmt.Sprintf("ORDO_SHARDS=%d", cfg.Shards))
	if err := d.runRebalance(ctx, env, kept); err != nil {
		return err
	}
	d.logger.Debug("rebalance done", "took", time.Since(began).Round(time.Millisecond))
	return nil
}

// startPrograms starts the sink, the workers and the gateway, and waits
// until they are ready.
func (d *dev) startPrograms(ctx context.Context, l *layout) error {
	d.logger.Info("starting the sink, the workers and the gateway", "workers", d.cfg.Workers)
	d.exits = make(chan *program, d.cfg.Workers+2)
	with := func(kv ...string) []string { return append(slices.Clip(l.env), kv...) }
	var err error
	// The sink first, so that early deliveries find it.
	if d.sink, err = d.startProgram("sink", "sink", with("ORDO_SINK_ADDR="+l.sinkAddr), styleSink); err != nil {
		return err
	}
	for i, addr := range l.adminAddrs {
		p, err := d.startProgram(workerName(i), "worker", with("ORDO_ADMIN_ADDR="+addr), styleDim)
		if err != nil {
			return err
		}
		d.workers = append(d.workers, p)
	}
	if d.gateway, err = d.startProgram("gateway", "gateway", with("ORDO_HTTP_ADDR="+l.httpAddr), styleDim); err != nil {
		return err
	}

	urls := []string{httpURL(l.sinkAddr) + "/health", httpURL(l.httpAddr) + "/ready"}
	for _, addr := range l.adminAddrs {
		urls = append(urls, httpURL(addr)+"/ready")
	}
	return d.waitReady(ctx, urls)
}

// banner returns the banner for the running system.
func (d *dev) banner(l *layout) *banner {
	b := &banner{
		took:       time.Since(d.began),
		gatewayURL: httpURL(l.httpAddr),
		sinkURL:    httpURL(l.sinkAddr),
		workspace:  displayPath(l.workspace),
		writeKey:   l.writeKey,
		dir:        displayPath(d.dir),
		keep:       d.cfg.Keep,
		rebalance:  displayPath(d.programPaths["rebalance"]),
	}
	for _, addr := range l.adminAddrs {
		b.workerURLs = append(b.workerURLs, httpURL(addr))
	}
	for _, n := range d.nodes {
		b.nodes = append(b.nodes, namedURL{n.Name(), n.URL()})
	}
	return b
}

// startProgram starts the ordo program prog as name with env.
func (d *dev) startProgram(name, prog string, env []string, style string) (*program, error) {
	p, err := startProgram(d.con, name, style, d.programPaths[prog], env, d.exits)
	if err != nil {
		return nil, err
	}
	d.logger.Debug("started", "program", name, "pid", p.cmd.Process.Pid)
	return p, nil
}

// runRebalance runs rebalance with env until it exits; when ctx is done
// first, it stops it. kept says the cluster may be bootstrapped already.
func (d *dev) runRebalance(ctx context.Context, env []string, kept bool) error {
	if kept {
		d.logger.Info("running rebalance")
	} else {
		d.logger.Info("running rebalance", "shards", d.cfg.Shards)
	}
	p, err := startProgram(d.con, "rebalance", styleDim, d.programPaths["rebalance"], env, nil)
	if err != nil {
		return err
	}
	select {
	case <-p.done:
	case <-ctx.Done():
		p.stop(d.cfg.StopTimeout, d.force)
		return ctx.Err()
	}
	if p.err != nil {
		return fmt.Errorf("rebalance failed (%s): see its lines above", p.exitStatus())
	}
	return nil
}

// waitReady waits until every URL of urls answers 200, failing when a
// program exits or readyTimeout passes first.
func (d *dev) waitReady(ctx context.Context, urls []string) error {
	ctx, cancel := context.WithTimeoutCause(ctx, readyTimeout, fmt.Errorf("not ready after %s", readyTimeout))
	defer cancel()
	ready := make(chan error, 1)
	go func() { ready <- waitReady(ctx, urls) }()
	select {
	case err := <-ready:
		return err
	case p := <-d.exits:
		return unexpectedExit(p)
	}
}

// wait returns nil once ctx is done, or an error when a program exits first.
func (d *dev) wait(ctx context.Context) error {
	select {
	case <-ctx.Done():
		return nil
	case p := <-d.exits:
		return unexpectedExit(p)
	}
}

// unexpectedExit is the error for a program that exited on its own.
func unexpectedExit(p *program) error {
	return fmt.Errorf("%s exited unexpectedly (%s): stopping everything", p.name, p.exitStatus())
}

// stop stops the gateway and the workers together, then the sink, then
// Postgres, and removes the dev folder unless -keep.
func (d *dev) stop() error {
	d.stopPrograms(append([]*program{d.gateway}, d.workers...))
	d.stopPrograms([]*program{d.sink})

	var errs []error
	if len(d.nodes) > 0 {
		d.logger.Debug("stopping Postgres")
		if err := removeNodes(d.nodes, d.logger); err != nil {
			errs = append(errs, err)
		}
	}
	if d.cfg.Keep {
		if len(d.nodes) > 0 {
			d.logger.Info("kept the data for the next start", "dir", d.dir)
		}
		return errors.Join(errs...)
	}
	if d.wroteWS != "" {
		if err := os.Remove(d.wroteWS); err != nil && !errors.Is(err, os.ErrNotExist) {
			errs = append(errs, err)
		}
	}
	if len(errs) == 0 && (d.madeDir || len(d.nodes) > 0) {
		// Only when empty: never delete what ordo-dev did not put there.
		if err := os.Remove(d.dir); err != nil && !errors.Is(err, os.ErrNotExist) {
			d.logger.Warn("left the dev folder in place: it holds other files", "dir", d.dir)
		}
	}
	return errors.Join(errs...)
}

// stopPrograms stops the programs together, skipping nil ones.
func (d *dev) stopPrograms(programs []*program) {
	var wg sync.WaitGroup
	for _, p := range programs {
		if p == nil {
			continue
		}
		wg.Go(func() {
			if p.stop(d.cfg.StopTimeout, d.force) {
				d.logger.Warn("killed a program that did not stop in time", "program", p.name, "timeout", d.cfg.StopTimeout)
			}
		})
	}
	wg.Wait()
}

// displayPath returns path relative to the working folder when it lies
// inside it, as a user would type it, else path.
func displayPath(path string) string {
	wd, err := os.Getwd()
	if err != nil {
		return path
	}
	rel, err := filepath.Rel(wd, path)
	if err != nil || rel == ".." || strings.HasPrefix(rel, ".."+string(filepath.Separator)) {
		return path
	}
	if !strings.Contains(rel, string(filepath.Separator)) && rel != "." {
		// A bare name would be looked up on PATH.
		return "." + string(filepath.Separator) + rel
	}
	return rel
}
