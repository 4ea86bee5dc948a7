package main

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/ordo-pipeline/ordo/internal/pgtest"
	"github.com/ordo-pipeline/ordo/schema"
)

// writeKey is the bench source's write key.
const writeKey = "bench_key"

// pgSettings are server settings on top of pgtest's: durability as
// Postgres ships it (pgtest turns fsync and full_page_writes off for
// tests, which makes commits nearly free and hides what ingest is about),
// and enough shared buffers to hold the pending rows of the move.
var pgSettings = map[string]string{
	"fsync":            "on",
	"full_page_writes": "on",
	"shared_buffers":   "128MB",
	"max_wal_size":     "2GB",
}

// stack is the running system under test: three Postgres nodes (the third
// joins only for the move), the catalog on the first, the built programs,
// the webhook sink and the gateway.
type stack struct {
	dir        string // binaries, workspace files and process logs
	shards     int
	nodes      []*pgtest.Cluster
	pools      []*pgxpool.Pool // one per node
	catalogURL string
	sink       *sink
	workspaces map[int]string // maxBatchSize → workspace file
	gateway    *proc
	gatewayURL string
	client     *http.Client
	machine    machine
}

// machine describes where the numbers come from.
type machine struct {
	OS       string `json:"os"`
	CPUs     int    `json:"cpus"`
	Go       string `json:"go"`
	Postgres string `json:"postgres"`
}

// startStack starts the nodes and the sink, builds the programs and
// bootstraps a cluster of shards on the first two nodes.
func startStack(ctx context.Context, shards int, logf func(string, ...any)) (st *stack, err error) {
	dir, err := os.MkdirTemp("", "ordo-bench-")
	if err != nil {
		return nil, err
	}
	st = &stack{dir: dir, shards: shards, workspaces: map[int]string{}}
	defer func() {
		if err != nil {
			st.close() //nolint:errcheck // the first error is the one to report
			st = nil
		}
	}()

	logf("starting 3 Postgres nodes; building gateway, worker and rebalance into %s", dir)
	st.nodes = make([]*pgtest.Cluster, 3)
	errs := make([]error, len(st.nodes)+1)
	var wg sync.WaitGroup
	for i := range st.nodes {
		wg.Go(func() {
			st.nodes[i], errs[i] = pgtest.StartCluster(ctx, pgtest.Options{Name: fmt.Sprintf("node%d", i+1), Settings: pgSettings})
		})
	}
	wg.Go(func() { errs[len(st.nodes)] = build(ctx, dir) })
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return st, err
	}
	for _, n := range st.nodes {
		pool, err := pgxpool.New(ctx, n.URL())
		if err != nil {
			return st, fmt.Errorf("connecting to %s: %w", n.Name(), err)
		}
		st.pools = append(st.pools, pool)
	}
	st.catalogURL = st.nodes[0].URL()

	if st.sink, err = startSink(); err != nil {
		return st, err
	}
	for _, size := range []int{1, 100} {
		path := filepath.Join(dir, fmt.Sprintf("workspace-%d.json", size))
		if err := os.WriteFile(path, []byte(workspaceJSON(st.sink.url, size)), 0o600); err != nil {
			return st, err
		}
		st.workspaces[size] = path
	}
	st.client = &http.Client{
		Timeout:   30 * time.Second,
		Transport: &http.Transport{MaxIdleConnsPerHost: 1024, DisableCompression: true},
	}

	var pgVersion string
	if err := st.pools[0].QueryRow(ctx, "SHOW server_version").Scan(&pgVersion); err != nil {
		return st, fmt.Errorf("reading the server version: %w", err)
	}
	st.machine = machine{OS: runtime.GOOS + "/" + runtime.GOARCH, CPUs: runtime.NumCPU(), Go: runtime.Version(), Postgres: pgVersion}

	logf("bootstrapping %d shards on node1 and node2", shards)
	if err := st.rebalance(ctx, 2); err != nil {
		return st, err
	}
	return st, nil
}

// build compiles the programs the stack runs into dir.
func build(ctx context.Context, dir string) error {
	cmd := exec.CommandContext(ctx, "go", "build", "-o", dir+string(filepath.Separator),
		"github.com/ordo-pipeline/ordo/cmd/gateway",
		"github.com/ordo-pipeline/ordo/cmd/worker",
		"github.com/ordo-pipeline/ordo/cmd/rebalance")
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("building the programs: %w\n%s", err, out)
	}
	return nil
}

// workspaceJSON is a workspace of one source whose events go to the sink
// in requests of up to batchSize events.
func workspaceJSON(sinkURL string, batchSize int) string {
	return fmt.Sprintf(`{
  "sources": [{"id": "bench", "writeKey": %q, "destinations": ["sink"]}],
  "destinations": [{
    "id": "sink", "type": "webhook",
    "config": {"url": %q, "maxBatchSize": %d},
    "retry": {"initialBackoff": "100ms", "maxBackoff": "1s"}
  }]
}`, writeKey, sinkURL, batchSize)
}

// close stops every process and node and removes the temporary folder.
func (st *stack) close() error {
	var errs []error
	if st.gateway != nil {
		errs = append(errs, st.gateway.stop())
	}
	if st.sink != nil {
		st.sink.close()
	}
	for _, p := range st.pools {
		p.Close()
	}
	var mu sync.Mutex
	var wg sync.WaitGroup
	for _, n := range st.nodes {
		if n == nil {
			continue
		}
		wg.Go(func() {
			if err := n.Remove(); err != nil {
				mu.Lock()
				errs = append(errs, err)
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	errs = append(errs, os.RemoveAll(st.dir))
	return errors.Join(errs...)
}

// env is the environment of a program: PATH, the tuning settings of the
// benchmark's own environment (ORDO_BATCH_*, ORDO_WORKER_* and
// ORDO_WRITE_TIMEOUT, to compare settings), and the given settings.
func (st *stack) env(settings ...string) []string {
	return envFor(st.catalogURL, settings...)
}

// envFor is env for the cluster whose catalog is at catalogURL.
func envFor(catalogURL string, settings ...string) []string {
	env := []string{"PATH=" + os.Getenv("PATH"), "ORDO_CATALOG_URL=" + catalogURL}
	for _, kv := range os.Environ() {
		if strings.HasPrefix(kv, "ORDO_BATCH_") || strings.HasPrefix(kv, "ORDO_WORKER_") || strings.HasPrefix(kv, "ORDO_WRITE_TIMEOUT=") {
			env = append(env, kv)
		}
	}
	return append(env, settings...)
}

// nodeList is ORDO_NODES for the first n nodes.
func (st *stack) nodeList(n int) string {
	var parts []string
	for _, node := range st.nodes[:n] {
		parts = append(parts, node.Name()+"="+node.URL())
	}
	return strings.Join(parts, ",")
}

// rebalance runs the rebalance program to convergence on the first n
// nodes.
func (st *stack) rebalance(ctx context.Context, n int) error {
	p, err := st.start("rebalance", st.env("ORDO_NODES="+st.nodeList(n), "ORDO_SHARDS="+strconv.Itoa(st.shards)))
	if err != nil {
		return err
	}
	select {
	case <-p.done:
	case <-ctx.Done():
		p.stop() //nolint:errcheck // ctx's error is the one to report
		return ctx.Err()
	}
	if p.err != nil {
		return fmt.Errorf("rebalance: %w\n%s", p.err, p.tail())
	}
	return nil
}

// startGateway runs the gateway and waits until it is ready.
func (st *stack) startGateway(ctx context.Context) error {
	port, err := pgtest.FreePort()
	if err != nil {
		return err
	}
	addr := "127.0.0.1:" + strconv.Itoa(port)
	st.gatewayURL = "http://" + addr
	st.gateway, err = st.start("gateway", st.env("ORDO_WORKSPACE_CONFIG="+st.workspaces[1], "ORDO_HTTP_ADDR="+addr, "ORDO_LOG_LEVEL=warn"))
	if err != nil {
		return err
	}
	return st.waitReady(ctx, st.gateway, st.gatewayURL+"/ready")
}

// startWorkers runs n workers delivering with maxBatchSize batchSize,
// all at once so that none claims every shard before the others come,
// and waits until they are ready.
func (st *stack) startWorkers(ctx context.Context, n, batchSize int) (workers []*proc, err error) {
	defer func() {
		if err != nil {
			for _, w := range workers {
				w.stop() //nolint:errcheck // the first error is the one to report
			}
			workers = nil
		}
	}()
	var admins []string
	for i := range n {
		port, err := pgtest.FreePort()
		if err != nil {
			return workers, err
		}
		addr := "127.0.0.1:" + strconv.Itoa(port)
		name := fmt.Sprintf("worker-b%d-%d", batchSize, i+1)
		p, err := st.start(name, st.env("ORDO_WORKSPACE_CONFIG="+st.workspaces[batchSize], "ORDO_ADMIN_ADDR="+addr, "ORDO_LOG_LEVEL=warn"))
		if err != nil {
			return workers, err
		}
		workers = append(workers, p)
		admins = append(admins, "http://"+addr+"/ready")
	}
	for i, w := range workers {
		if err := st.waitReady(ctx, w, admins[i]); err != nil {
			return workers, err
		}
	}
	return workers, nil
}

// waitReady polls url until it answers 200, p exits, or 30 seconds pass.
func (st *stack) waitReady(ctx context.Context, p *proc, url string) error {
	deadline := time.Now().Add(30 * time.Second)
	for {
		resp, err := st.client.Get(url)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s not ready after 30s (last: %w)\n%s", p.name, err, p.tail())
		}
		select {
		case <-p.done:
			return fmt.Errorf("%s exited before it was ready: %w\n%s", p.name, p.err, p.tail())
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// pending counts the rows in the shard tables of the first n nodes.
func (st *stack) pending(ctx context.Context, n int) (int64, error) {
	var total int64
	for i, pool := range st.pools[:n] {
		shards, err := schema.List(ctx, pool)
		if err != nil {
			return 0, fmt.Errorf("%s: %w", st.nodes[i].Name(), err)
		}
		if len(shards) == 0 {
			continue
		}
		counts := make([]string, len(shards))
		for j, s := range shards {
			counts[j] = "(SELECT count(*) FROM " + schema.Table(s).Sanitize() + ")"
		}
		var c int64
		if err := pool.QueryRow(ctx, "SELECT "+strings.Join(counts, " + ")).Scan(&c); err != nil {
			return 0, fmt.Errorf("counting pending rows on %s: %w", st.nodes[i].Name(), err)
		}
		total += c
	}
	return total, nil
}

// shardPerNode returns the lowest shard of each node that holds one, in
// node order.
func (st *stack) shardPerNode(ctx context.Context) ([]copyTarget, error) {
	var targets []copyTarget
	for i, n := range st.nodes {
		var shard int
		err := st.pools[0].QueryRow(ctx, `SELECT min(shard) FROM ordo_catalog.shards WHERE node = $1 HAVING count(*) > 0`, n.Name()).Scan(&shard)
		if errors.Is(err, pgx.ErrNoRows) {
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("finding a shard on %s: %w", n.Name(), err)
		}
		targets = append(targets, copyTarget{shard: shard, pool: st.pools[i]})
	}
	if len(targets) == 0 {
		return nil, errors.New("no node holds a shard")
	}
	return targets, nil
}

// proc is one running program; its stdout and stderr go to a log file.
type proc struct {
	name string
	cmd  *exec.Cmd
	log  string
	done chan struct{} // closed when it exited; err is then set
	err  error
}

// start runs the built program named by the first word of name with env.
func (st *stack) start(name string, env []string) (*proc, error) {
	program, _, _ := strings.Cut(name, "-")
	p := &proc{name: name, log: filepath.Join(st.dir, name+".log"), done: make(chan struct{})}
	f, err := os.OpenFile(p.log, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	p.cmd = exec.Command(filepath.Join(st.dir, program))
	p.cmd.Env = env
	p.cmd.Stdout, p.cmd.Stderr = f, f
	p.cmd.SysProcAttr = dieWithParent()
	if err := p.cmd.Start(); err != nil {
		return nil, fmt.Errorf("starting %s: %w", name, err)
	}
	go func() {
		p.err = p.cmd.Wait()
		close(p.done)
	}()
	return p, nil
}

// stop sends SIGTERM, waits up to 40 seconds for the process to drain and
// exit, then kills it. An exit status other than 0 is an error.
func (p *proc) stop() error {
	select {
	case <-p.done:
		return p.exitErr()
	default:
	}
	p.cmd.Process.Signal(syscall.SIGTERM) //nolint:errcheck // it may have just exited
	select {
	case <-p.done:
		return p.exitErr()
	case <-time.After(40 * time.Second):
		p.cmd.Process.Kill() //nolint:errcheck // it may have just exited
		<-p.done
		return fmt.Errorf("%s did not exit within 40s of SIGTERM\n%s", p.name, p.tail())
	}
}

func (p *proc) exitErr() error {
	if p.err != nil {
		return fmt.Errorf("%s: %w\n%s", p.name, p.err, p.tail())
	}
	return nil
}

// tail returns the last lines of the process log.
func (p *proc) tail() string {
	data, err := os.ReadFile(p.log)
	if err != nil {
		return ""
	}
	lines := strings.Split(strings.TrimRight(string(data), "\n"), "\n")
	if len(lines) > 20 {
		lines = lines[len(lines)-20:]
	}
	return p.name + " log:\n  " + strings.Join(lines, "\n  ")
}
