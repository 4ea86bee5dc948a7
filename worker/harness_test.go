package worker_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/ordo-pipeline/ordo/internal/buildtest"

	"github.com/jackc/pgx/v5"
	"github.com/ordo-pipeline/ordo/internal/pgtest"
	"github.com/ordo-pipeline/ordo/rebalance"
	"github.com/ordo-pipeline/ordo/schema"
	"github.com/ordo-pipeline/ordo/shard"
)

// workerBin is the worker program, built once for the test binary.
var workerBin string

func TestMain(m *testing.M) {
	os.Exit(runTests(m))
}

func runTests(m *testing.M) int {
	defer buildtest.Cleanup()
	dir, err := buildtest.Programs("worker")
	if err != nil {
		fmt.Fprintln(os.Stderr, "building the worker:", err)
		return 1
	}
	workerBin = filepath.Join(dir, "worker")
	code := m.Run()
	stopShared()
	return code
}

// The tests share two Postgres clusters; each test gets databases of its
// own on them.
var (
	sharedOnce  sync.Once
	sharedNodes []*pgtest.Cluster
	sharedErr   error
)

func nodes(t *testing.T) []*pgtest.Cluster {
	t.Helper()
	sharedOnce.Do(func() {
		for i := range 2 {
			c, err := pgtest.StartCluster(context.Background(), pgtest.Options{Name: fmt.Sprintf("wnode%d", i+1)})
			if err != nil {
				sharedErr = err
				return
			}
			sharedNodes = append(sharedNodes, c)
		}
	})
	if sharedErr != nil {
		t.Fatalf("starting Postgres: %v", sharedErr)
	}
	return sharedNodes
}

func stopShared() {
	for _, c := range sharedNodes {
		c.Remove() //nolint:errcheck // best effort at exit
	}
}

// testBundle is one test's cluster: a catalog and two nodes, bootstrapped.
type testBundle struct {
	t          *testing.T
	catalogURL string
	nodeURLs   map[string]string
	snap       *shard.Snapshot
	wsPath     string
}

var dbSeq struct {
	sync.Mutex
	n int
}

// setup makes fresh databases for a catalog and two nodes, bootstraps a
// cluster of shards shards on them, and writes workspace (JSON in which
// each {{name}} is replaced by hooks[name]'s URL).
func setup(t *testing.T, shards int, workspace string, hooks map[string]*hook) *testBundle {
	t.Helper()
	return setupOn(t, shards, workspace, hooks, "n1", "n2")
}

// setupOn is setup with the cluster bootstrapped on the nodes named only
// (n1, n2 or both); the other node is made, empty, for moves to it.
func setupOn(t *testing.T, shards int, workspace string, hooks map[string]*hook, initial ...string) *testBundle {
	t.Helper()
	cs := nodes(t)
	dbSeq.Lock()
	dbSeq.n++
	name := fmt.Sprintf("w%d_%d", os.Getpid(), dbSeq.n)
	dbSeq.Unlock()
	ctx := context.Background()
	create := func(c *pgtest.Cluster, db string) string {
		conn, err := pgx.Connect(ctx, c.URL())
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close(ctx)
		if _, err := conn.Exec(ctx, "CREATE DATABASE "+db); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() {
			conn, err := pgx.Connect(ctx, c.URL())
			if err != nil {
				return
			}
			defer conn.Close(ctx)
			conn.Exec(ctx, "DROP DATABASE "+db+" WITH (FORCE)") //nolint:errcheck // best effort
		})
		return c.DatabaseURL(db)
	}
	b := &testBundle{t: t, nodeURLs: map[string]string{}}
	b.catalogURL = create(cs[0], name+"_cat")
	b.nodeURLs["n1"] = create(cs[0], name+"_n1")
	b.nodeURLs["n2"] = create(cs[1], name+"_n2")
	var listed []string
	for _, n := range initial {
		listed = append(listed, n+"="+b.nodeURLs[n])
	}
	cfg := rebalance.Config{CatalogURL: b.catalogURL, Nodes: strings.Join(listed, ","), Shards: shards}
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	if err := rebalance.Run(ctx, &cfg, rebalance.Options{}); err != nil {
		t.Fatalf("bootstrap: %v", err)
	}
	conn := b.connect(b.catalogURL)
	snap, err := shard.Load(ctx, conn)
	if err != nil {
		t.Fatal(err)
	}
	b.snap = snap
	for n, h := range hooks {
		workspace = strings.ReplaceAll(workspace, "{{"+n+"}}", h.srv.URL)
	}
	b.wsPath = filepath.Join(t.TempDir(), "workspace.json")
	if err := os.WriteFile(b.wsPath, []byte(workspace), 0o600); err != nil {
		t.Fatal(err)
	}
	return b
}

func (b *testBundle) connect(url string) *pgx.Conn {
	b.t.Helper()
	conn, err := pgx.Connect(context.Background(), url)
	if err != nil {
		b.t.Fatal(err)
	}
	b.t.Cleanup(func() { conn.Close(context.Background()) })
	return conn
}

// event is one test event: a key and its index among the key's events.
type event struct {
	Key string
	I   int
}

func (e event) messageID() string { return e.Key + "#" + strconv.Itoa(e.I) }

// insert stores events for source's destinations as the gateway would:
// one row per event and destination, each shard's rows in the order given,
// one transaction per node holding the write lock of the shards it writes.
func (b *testBundle) insert(source string, dests []string, events []event) {
	b.t.Helper()
	ctx := context.Background()
	byShard := map[int][][]any{}
	byNode := map[string][]int{}
	now := time.Now().UTC()
	for _, e := range events {
		s := shard.For(e.Key, b.snap.Count())
		if _, ok := byShard[s]; !ok {
			node := b.snap.Shards[s].Node
			byNode[node] = append(byNode[node], s)
		}
		payload := fmt.Sprintf(`{"type":"track","event":"e","userId":%q,"messageId":%q,"receivedAt":%q,"properties":{"i":%d}}`,
			e.Key, e.messageID(), now.Format(time.RFC3339Nano), e.I)
		for _, d := range dests {
			byShard[s] = append(byShard[s], []any{e.Key, source, d, e.messageID(), now, payload})
		}
	}
	for node, shards := range byNode {
		conn, err := pgx.Connect(ctx, b.nodeURLs[node])
		if err != nil {
			b.t.Fatal(err)
		}
		err = pgx.BeginFunc(ctx, conn, func(tx pgx.Tx) error {
			if err := schema.LockForWrite(ctx, tx, shards); err != nil {
				return err
			}
			for _, s := range shards {
				if _, err := tx.CopyFrom(ctx, schema.Table(s), schema.Columns, pgx.CopyFromRows(byShard[s])); err != nil {
					return fmt.Errorf("inserting into shard %d: %w", s, err)
				}
			}
			return nil
		})
		conn.Close(ctx)
		if err != nil {
			b.t.Fatalf("writing to node %s: %v", node, err)
		}
	}
}

// eachNode runs fn on a connection to every node in turn, failing the
// test at its first error.
func (b *testBundle) eachNode(fn func(ctx context.Context, conn *pgx.Conn) error) {
	b.t.Helper()
	ctx := context.Background()
	for _, url := range b.nodeURLs {
		conn := b.connect(url)
		err := fn(ctx, conn)
		conn.Close(ctx)
		if err != nil {
			b.t.Fatal(err)
		}
	}
}

// pending counts the rows left in every shard table.
func (b *testBundle) pending() int64 {
	b.t.Helper()
	var total int64
	b.eachNode(func(ctx context.Context, conn *pgx.Conn) error {
		shards, err := schema.List(ctx, conn)
		if err != nil {
			return err
		}
		for _, s := range shards {
			n, err := schema.Pending(ctx, conn, s)
			if err != nil {
				return err
			}
			total += n
		}
		return nil
	})
	return total
}

// shardLocks counts the shard advisory locks held on the nodes, from
// pg_locks.
func (b *testBundle) shardLocks() int {
	b.t.Helper()
	total := 0
	b.eachNode(func(ctx context.Context, conn *pgx.Conn) error {
		var n int
		err := conn.QueryRow(ctx, `SELECT count(*) FROM pg_locks
			WHERE locktype = 'advisory' AND granted AND classid = $1::oid AND objsubid = 2
			  AND database = (SELECT oid FROM pg_database WHERE datname = current_database())`, schema.LockClass).Scan(&n)
		total += n
		return err
	})
	return total
}

// deadLetter is a row of ordo.dead_letters.
type deadLetter struct {
	MessageID, Destination, Reason, Response string
	Status                                   *int
	Attempts                                 int
}

func (b *testBundle) deadLetters() []deadLetter {
	b.t.Helper()
	var out []deadLetter
	b.eachNode(func(ctx context.Context, conn *pgx.Conn) error {
		rows, err := conn.Query(ctx, `SELECT message_id, destination_id, reason, coalesce(last_response, ''), last_status, attempts FROM ordo.dead_letters ORDER BY shard, epoch, seq`)
		if err != nil {
			return err
		}
		var d deadLetter
		_, err = pgx.ForEachRow(rows, []any{&d.MessageID, &d.Destination, &d.Reason, &d.Response, &d.Status, &d.Attempts}, func() error {
			out = append(out, d)
			return nil
		})
		return err
	})
	return out
}

// proc is a running worker process.
type proc struct {
	t       *testing.T
	cmd     *exec.Cmd
	log     *syncBuffer
	admin   string
	done    chan struct{}
	waitErr error
}

// testEnv shortens every interval so tests run in seconds.
var testEnv = []string{
	"ORDO_ADMIN_ADDR=127.0.0.1:0",
	"ORDO_LOG_FORMAT=json",
	"ORDO_LOG_LEVEL=info",
	"ORDO_WORKER_HEARTBEAT=200ms",
	"ORDO_WORKER_LIVENESS=1500ms",
	"ORDO_WORKER_MAP_POLL=1s",
	"ORDO_WORKER_POLL=50ms",
	"ORDO_WORKER_FLUSH_INTERVAL=20ms",
	"ORDO_WORKER_KEEPALIVE=1s",
	"ORDO_WORKER_DRAIN_TIMEOUT=5s",
}

// startWorker runs a worker process for the bundle's cluster and waits for
// its admin server.
func (b *testBundle) startWorker(env ...string) *proc {
	b.t.Helper()
	p := &proc{t: b.t, log: &syncBuffer{}, done: make(chan struct{})}
	p.cmd = exec.Command(workerBin)
	p.cmd.Env = append(append(append(os.Environ(),
		"ORDO_CATALOG_URL="+b.catalogURL,
		"ORDO_WORKSPACE_CONFIG="+b.wsPath),
		testEnv...), env...)
	stderr, err := p.cmd.StderrPipe()
	if err != nil {
		b.t.Fatal(err)
	}
	if err := p.cmd.Start(); err != nil {
		b.t.Fatal(err)
	}
	addr := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stderr)
		sc.Buffer(make([]byte, 1<<20), 1<<20)
		for sc.Scan() {
			line := sc.Text()
			p.log.WriteString(line + "\n")
			if strings.Contains(line, "admin server listening") {
				var rec struct{ Addr string }
				if json.Unmarshal([]byte(line), &rec) == nil {
					addr <- rec.Addr
				}
			}
		}
		p.waitErr = p.cmd.Wait()
		close(p.done)
	}()
	b.t.Cleanup(func() {
		p.cmd.Process.Kill() //nolint:errcheck // may have exited
		<-p.done
		if strings.Contains(p.log.String(), "WARNING: DATA RACE") {
			b.t.Errorf("worker %d hit a data race", p.cmd.Process.Pid)
		}
		if b.t.Failed() {
			b.t.Logf("worker %d log:\n%s", p.cmd.Process.Pid, tail(p.log.String(), 60))
		}
	})
	select {
	case p.admin = <-addr:
	case <-p.done:
		b.t.Fatalf("worker exited at start: %v\n%s", p.waitErr, p.log.String())
	case <-time.After(15 * time.Second):
		b.t.Fatalf("worker did not start its admin server\n%s", p.log.String())
	}
	return p
}

func tail(s string, lines int) string {
	ls := strings.Split(s, "\n")
	if len(ls) > lines {
		ls = ls[len(ls)-lines:]
	}
	return strings.Join(ls, "\n")
}

// signal sends sig and, for SIGTERM, waits for the exit and returns the
// exit status.
func (p *proc) terminate() int {
	p.t.Helper()
	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		p.t.Fatal(err)
	}
	select {
	case <-p.done:
	case <-time.After(20 * time.Second):
		p.t.Fatalf("worker did not exit within 20s of SIGTERM")
	}
	return p.cmd.ProcessState.ExitCode()
}

func (p *proc) kill() {
	p.t.Helper()
	if err := p.cmd.Process.Kill(); err != nil {
		p.t.Fatal(err)
	}
	<-p.done
}

var gaugeRE = regexp.MustCompile(`(?m)^ordo_worker_shards_owned (\S+)$`)

// owned returns the worker's shards-owned gauge, or -1 if it cannot be read.
func (p *proc) owned() int {
	resp, err := http.Get("http://" + p.admin + "/metrics")
	if err != nil {
		return -1
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	m := gaugeRE.FindSubmatch(body)
	if m == nil {
		return -1
	}
	f, _ := strconv.ParseFloat(string(m[1]), 64)
	return int(f)
}

func (p *proc) metrics() string {
	resp, err := http.Get("http://" + p.admin + "/metrics")
	if err != nil {
		return ""
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return string(body)
}

// hook is a test webhook: it answers each request as decide says and
// records the events of every 2xx answer in the order answered.
type hook struct {
	srv *httptest.Server

	mu        sync.Mutex
	decide    func(events []event) (int, string)
	delivered []event
	first     map[string]int // messageId → index in delivered of its first delivery
	requests  int
	batches   int // requests with more than one event
}

// downHook returns a hook that answers every request 503 "down", and the
// count of requests that carried each messageId.
func downHook(t *testing.T) (h *hook, tries func(messageID string) int) {
	var mu sync.Mutex
	counts := map[string]int{}
	h = newHook(t, func(events []event) (int, string) {
		mu.Lock()
		defer mu.Unlock()
		for _, e := range events {
			counts[e.messageID()]++
		}
		return 503, "down"
	})
	return h, func(id string) int {
		mu.Lock()
		defer mu.Unlock()
		return counts[id]
	}
}

func newHook(t *testing.T, decide func(events []event) (int, string)) *hook {
	h := &hook{decide: decide, first: map[string]int{}}
	h.srv = httptest.NewServer(http.HandlerFunc(h.serve))
	t.Cleanup(h.srv.Close)
	return h
}

type payload struct {
	UserID     string `json:"userId"`
	Properties struct {
		I int `json:"i"`
	} `json:"properties"`
}

func (h *hook) serve(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(r.Body)
	if err != nil {
		return
	}
	var ps []payload
	if bytes.HasPrefix(body, []byte(`{"batch":`)) {
		var b struct{ Batch []payload }
		if err := json.Unmarshal(body, &b); err != nil {
			http.Error(w, err.Error(), 400)
			return
		}
		ps = b.Batch
	} else {
		var p payload
		if err := json.Unmarshal(body, &p); err != nil {
			http.Error(w, err.Error(), 400)
			return
		}
		ps = []payload{p}
	}
	events := make([]event, len(ps))
	for i, p := range ps {
		events[i] = event{Key: p.UserID, I: p.Properties.I}
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	h.requests++
	if len(events) > 1 {
		h.batches++
	}
	code, text := 200, "ok"
	if h.decide != nil {
		code, text = h.decide(events)
	}
	if code/100 == 2 {
		for _, e := range events {
			if _, ok := h.first[e.messageID()]; !ok {
				h.first[e.messageID()] = len(h.delivered)
			}
			h.delivered = append(h.delivered, e)
		}
	}
	w.WriteHeader(code)
	io.WriteString(w, text) //nolint:errcheck // test server
}

// distinct returns how many distinct events were delivered.
func (h *hook) distinct() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return len(h.first)
}

// deliveries returns how many events were delivered, copies included.
func (h *hook) deliveries() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return len(h.delivered)
}

// checkOrder fails the test if, for some key, an event was first delivered
// after a later event of the same key was.
func (h *hook) checkOrder(t *testing.T) {
	t.Helper()
	h.mu.Lock()
	defer h.mu.Unlock()
	last := map[string]int{} // key → highest I first-delivered so far
	for idx, e := range h.delivered {
		if h.first[e.messageID()] != idx {
			continue // a later copy
		}
		prev, ok := last[e.Key]
		if ok && e.I < prev {
			t.Errorf("key %s: event %d first delivered after event %d", e.Key, e.I, prev)
			continue
		}
		last[e.Key] = e.I
	}
}

// randomFailures fails a share of requests with 503.
func randomFailures(share float64) func([]event) (int, string) {
	return func([]event) (int, string) {
		if rand.Float64() < share {
			return 503, "try later"
		}
		return 200, "ok"
	}
}

// eventually polls cond every 50ms until it holds or d passes.
func eventually(t *testing.T, d time.Duration, what string, cond func() bool) time.Duration {
	t.Helper()
	start := time.Now()
	for !cond() {
		if time.Since(start) > d {
			t.Fatalf("%s: not within %s", what, d)
		}
		time.Sleep(50 * time.Millisecond)
	}
	return time.Since(start)
}

// syncBuffer is a bytes.Buffer safe for concurrent use.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) WriteString(str string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.b.WriteString(str)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// keys returns n keys and m events of each, interleaved as a stream.
func stream(n, m int, prefix string) []event {
	var out []event
	for i := range m {
		for k := range n {
			out = append(out, event{Key: fmt.Sprintf("%s%d", prefix, k), I: i})
		}
	}
	return out
}
