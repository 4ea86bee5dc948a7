package e2e

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/ordo-pipeline/ordo/internal/checker"
	"github.com/ordo-pipeline/ordo/internal/pgtest"
	"github.com/ordo-pipeline/ordo/internal/proctest"
	"github.com/ordo-pipeline/ordo/schema"
)

// The chaos run's settings, from the environment (`make chaos` sets
// them).
const (
	// EnvChaosSeed seeds the fault schedule; the same seed replays the
	// same schedule. Defaults to a random seed, printed at the start.
	envChaosSeed = "ORDO_CHAOS_SEED"
	// EnvChaosDuration is how long faults are injected, such as 5m.
	// Defaults to chaosShort, the run `make test` holds.
	envChaosDuration = "ORDO_CHAOS_DURATION"
)

// The chaos run's shape.
const (
	chaosShort    = 35 * time.Second
	chaosWorkers  = 3
	chaosGateways = 2
	chaosShards   = 24
	// chaosKeys is how many keys send, each one request at a time. Each
	// crash redelivers about what one lane per key had in flight or not
	// yet acknowledged, whereas the traffic is as fast as the machine:
	// more keys, on the same machine, make more duplicates per crash for
	// the same deliveries.
	chaosKeys = 40
	// flakyTimeout is the flaky destination's timeout; a hang holds its
	// requests for hangFactor times as long.
	flakyTimeout = time.Second
	hangFactor   = 2.5
	// chaosMaxOtherDuplicates is the share of deliveries that duplicates
	// not caused by a timeout must stay under (issue 12), in `make chaos`.
	chaosMaxOtherDuplicates = 0.001
	// chaosShortMaxOtherDuplicates is that share in the short run of `make
	// test`: a crash costs a roughly fixed number of redeliveries (the
	// acknowledgements of the last flush interval, see
	// docs/reliability.md), so a 35-second run with two or three crashes
	// lands on either side of 0.1% by chance. Lost and out of order stay 0
	// in both.
	chaosShortMaxOtherDuplicates = 0.01
)

// TestChaos runs three nodes, a catalog, two gateways and three workers
// under steady traffic from many keys to two destinations, one healthy
// and one flaky (5% of requests answered 503, and hanging past its
// timeout when the schedule says), while a nemesis injects the faults of
// a schedule drawn from a seed (SIGKILLed workers and gateways, nodes
// stopped fast or immediately or killed, the catalog restarted, the
// destination hanging, partitions where the network can cut) and a mover
// adds node3 and drains it again, each rebalance first killed mid-move.
// Then it heals everything, drains node3, waits for the deliveries and
// checks the history: nothing lost, nothing out of order, duplicates not
// caused by a timeout under 0.1% of deliveries, and no process crashed.
func TestChaos(t *testing.T) {
	seed, duration := chaosSettings(t)
	t.Logf("chaos: seed %d, faults for %v (replay with %s=%d %s=%v)", seed, duration, envChaosSeed, seed, envChaosDuration, duration)
	sched := newSchedule(seed, duration, chaosShape{Workers: chaosWorkers, Gateways: chaosGateways, Nodes: 3})
	t.Logf("chaos: schedule (the run stops at %v, wherever it is in it)\n%s", duration, sched)

	c := newChaosCluster(t)
	keys := chaosKeys
	tr := newTraffic(c.h, c.gatewayURLs, writeKey, c.healthy.id, c.flaky.id)
	tr.batchShare = 0.2
	tr.start(keys, 10*time.Millisecond)
	time.Sleep(2 * time.Second)

	began := time.Now()
	ctx, cancel := context.WithTimeout(t.Context(), duration)
	defer cancel()
	var wg sync.WaitGroup
	wg.Go(func() { c.nemesis(ctx, sched.Faults) })
	wg.Go(func() { c.mover(ctx, sched.Moves) })
	wg.Wait()
	t.Logf("chaos: faults over after %v; healing", time.Since(began).Round(time.Millisecond))

	c.heal()
	c.converge(t.Context(), false, 3*time.Minute) // node3 drained
	time.Sleep(2 * time.Second)
	tr.finish()
	failed, examples := tr.failures(5)
	t.Logf("chaos: traffic stopped: %d keys, %d requests, %d failed and sent again, e.g.:\n%s\nby cause:\n%s",
		keys, tr.requests(), failed, strings.Join(examples, "\n"), tr.failureCauses())

	maxOther := chaosMaxOtherDuplicates
	if duration <= chaosShort {
		maxOther = chaosShortMaxOtherDuplicates
	}
	r := checkGuarantees(t, c.h, c.nodes, 3*time.Minute, checker.Limits{MaxNotTimeoutDuplicates: maxOther})
	t.Logf("chaos: %s", c.blame(r.Copies))
	c.checkCrashes()
	c.checkDrained()
	t.Logf("chaos: seed %d, %v of faults: %s\n%s", seed, duration, c.figures(), r)
	if r.Acked == 0 {
		t.Errorf("the run proves nothing: no event acknowledged")
	}
	if c.injected[string(hangDestination)] > 0 && r.ByDestination[c.flaky.id].Duplicates.AfterTimeout == 0 {
		t.Errorf("%s hung past its timeout, yet no duplicate after a timeout: the webhook's lateness is not seen", c.flaky.id)
	}
}

// chaosSettings reads the seed and the duration from the environment.
func chaosSettings(t *testing.T) (uint64, time.Duration) {
	seed := rand.Uint64() % 1_000_000
	if s := os.Getenv(envChaosSeed); s != "" {
		n, err := strconv.ParseUint(s, 10, 64)
		if err != nil {
			t.Fatalf("%s=%q: not a whole number", envChaosSeed, s)
		}
		seed = n
	}
	duration := chaosShort
	if s := os.Getenv(envChaosDuration); s != "" {
		d, err := time.ParseDuration(s)
		if err != nil || d <= 0 {
			t.Fatalf("%s=%q: not a positive duration such as 5m", envChaosDuration, s)
		}
		duration = d
	}
	return seed, duration
}

// slot is a process the run keeps running: killed and started again.
type slot struct {
	name, program string
	env           []string

	mu       sync.Mutex
	p        *proctest.Proc
	recorded bool // p's crash is in crashs
	starts   int
	crashs   []string // how earlier processes of the slot crashed
}

func (s *slot) start(t *testing.T) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.recordExit()
	s.starts++
	s.p = start(t, fmt.Sprintf("%s#%d", s.name, s.starts), s.program, s.env)
	s.recorded = false
}

// recordExit records how the slot's process exited, if it did by
// itself. The caller holds s.mu.
func (s *slot) recordExit() {
	if s.p == nil || s.recorded {
		return
	}
	if crashed, err := s.p.Crashed(); crashed {
		s.crashs = append(s.crashs, fmt.Sprintf("%s exited by itself (%v):\n%s", s.p.Name, err, proctest.Tail(s.p.Log, 20)))
		s.recorded = true
	}
}

func (s *slot) kill() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.p.Kill()
}

// running reports whether the slot's process runs.
func (s *slot) running() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	select {
	case <-s.p.Done():
		return false
	default:
		return true
	}
}

// chaosCluster is the system under test and what the run did to it.
type chaosCluster struct {
	t           *testing.T
	h           *checker.History
	catalog     *pgtest.Cluster
	nodes       []*pgtest.Cluster
	base        []string // ORDO_CATALOG_URL and ORDO_SHARDS
	workers     []*slot
	gateways    []*slot
	gatewayURLs []string
	healthy     *webhook
	flaky       *webhook
	net         network

	mu       sync.Mutex
	injected map[string]int // fault kind, or move outcome → count
	marks    []mark         // when each fault and move began
}

// mark is one fault or move, and when it began.
type mark struct {
	at   time.Time
	what string
}

// note records that what begins now.
func (c *chaosCluster) note(what string) {
	c.mu.Lock()
	c.marks = append(c.marks, mark{time.Now(), what})
	c.mu.Unlock()
	c.t.Logf("chaos: %s %s", time.Now().Format("15:04:05.000"), what)
}

// blame sets each duplicate not caused by a timeout against the last
// fault or move that began before it arrived, and says how many each
// caused.
func (c *chaosCluster) blame(copies []checker.Copy) string {
	c.mu.Lock()
	defer c.mu.Unlock()
	counts := make([]int, len(c.marks))
	before := 0
	for _, cp := range copies {
		if cp.Cause == checker.CauseTimeout {
			continue
		}
		i := sort.Search(len(c.marks), func(i int) bool { return c.marks[i].at.After(cp.At) }) - 1
		if i < 0 {
			before++
			continue
		}
		counts[i]++
	}
	var b strings.Builder
	fmt.Fprintf(&b, "duplicates not caused by a timeout, by the last fault or move before them (%d before any):", before)
	for i, m := range c.marks {
		fmt.Fprintf(&b, "\n  %5d  %s %s", counts[i], m.at.Format("15:04:05.000"), m.what)
	}
	first := map[[2]string]time.Time{}
	for _, d := range c.h.Deliveries() {
		if _, ok := first[[2]string{d.Destination, d.MessageID}]; !ok {
			first[[2]string{d.Destination, d.MessageID}] = d.At
		}
	}
	n := 0
	for _, cp := range copies {
		if cp.Cause == checker.CauseTimeout || n == 40 {
			continue
		}
		n++
		fmt.Fprintf(&b, "\n  %s %s %s first at %s, again at %s", cp.Cause, cp.Destination, cp.MessageID,
			first[[2]string{cp.Destination, cp.MessageID}].Format("15:04:05.000"), cp.At.Format("15:04:05.000"))
	}
	return b.String()
}

func newChaosCluster(t *testing.T) *chaosCluster {
	c := &chaosCluster{t: t, h: checker.NewHistory(), net: chaosNetwork(t), injected: map[string]int{}}
	var catalogErr error
	var wg sync.WaitGroup
	wg.Go(func() {
		c.catalog, catalogErr = pgtest.StartCluster(t.Context(), pgtest.Options{Name: "catalog", Logf: t.Logf})
	})
	c.nodes = pgtest.Start(t, 3)
	wg.Wait()
	if catalogErr != nil {
		t.Fatal(catalogErr)
	}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("pgtest: end of the catalog's server log:\n%s", c.catalog.LogTail())
		}
		if err := c.catalog.Remove(); err != nil {
			t.Errorf("pgtest: %v", err)
		}
	})

	c.healthy = newWebhook(t, c.h, "healthy", 5*time.Second, 0)
	c.flaky = newWebhook(t, c.h, "flaky", flakyTimeout, 0.05)
	ws := "ORDO_WORKSPACE_CONFIG=" + workspaceWith(t, c.healthy, c.flaky)
	catalog := "ORDO_CATALOG_URL=" + c.catalog.URL()
	c.base = []string{catalog, fmt.Sprintf("ORDO_SHARDS=%d", chaosShards)}
	c.converge(t.Context(), false, time.Minute) // bootstrap on node1 and node2

	for i := range chaosGateways {
		addr := proctest.FreeAddr(t)
		s := &slot{name: fmt.Sprintf("gateway-%d", i+1), program: "gateway", env: []string{catalog, ws, "ORDO_HTTP_ADDR=" + addr}}
		s.start(t)
		c.gateways = append(c.gateways, s)
		c.gatewayURLs = append(c.gatewayURLs, "http://"+addr)
	}
	for i := range chaosWorkers {
		s := &slot{name: fmt.Sprintf("worker-%d", i+1), program: "worker", env: []string{catalog, ws, "ORDO_ADMIN_ADDR=127.0.0.1:0"}}
		s.start(t)
		c.workers = append(c.workers, s)
	}
	for _, u := range c.gatewayURLs {
		proctest.WaitReady(t, u+"/ready", 30*time.Second)
	}
	return c
}

// count adds one to what's count.
func (c *chaosCluster) count(what string) {
	c.mu.Lock()
	c.injected[what]++
	c.mu.Unlock()
}

// figures says what the run injected.
func (c *chaosCluster) figures() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	var parts []string
	total := 0
	for _, k := range faultKinds {
		total += c.injected[string(k)]
		parts = append(parts, fmt.Sprintf("%s %d", k, c.injected[string(k)]))
	}
	for _, k := range []string{"partition skipped", "rebalance killed", "rebalance failed", "rebalance converged"} {
		parts = append(parts, fmt.Sprintf("%s %d", k, c.injected[k]))
	}
	return fmt.Sprintf("%d faults injected (%s)", total, strings.Join(parts, ", "))
}

// nodesEnv is ORDO_NODES for node1 and node2, and node3 when withThird.
func (c *chaosCluster) nodesEnv(withThird bool) string {
	if withThird {
		return nodesEnv(c.nodes, 1, 2, 3)
	}
	return nodesEnv(c.nodes, 1, 2)
}

// heal undoes every fault still in place: the servers and the processes
// run, the flaky destination answers at once, and no link is cut.
func (c *chaosCluster) heal() {
	t := c.t
	c.flaky.setHang(0)
	if err := c.net.healAll(); err != nil {
		t.Errorf("healing the network: %v", err)
	}
	for _, n := range append([]*pgtest.Cluster{c.catalog}, c.nodes...) {
		if err := n.Start(t.Context()); err != nil {
			t.Fatalf("healing: %v", err)
		}
	}
	for _, s := range append(append([]*slot{}, c.workers...), c.gateways...) {
		if !s.running() {
			s.start(t)
		}
	}
}

// checkCrashes fails the test for every process that exited without
// being killed.
func (c *chaosCluster) checkCrashes() {
	for _, s := range append(append([]*slot{}, c.workers...), c.gateways...) {
		s.mu.Lock()
		s.recordExit()
		for _, crash := range s.crashs {
			c.t.Errorf("%s", crash)
		}
		s.mu.Unlock()
	}
}

// checkDrained checks that rebalance converged with node3 drained: no move
// open, and node3 holds no shard table and no dead letter.
func (c *chaosCluster) checkDrained() {
	t := c.t
	out, ps := runOnce(t, "rebalance", c.base, "status")
	t.Logf("chaos: rebalance status:\n%s", out)
	if ps.ExitCode() != 0 || !strings.Contains(out, "moves in progress: none") {
		t.Errorf("rebalance status: exit %d, moves open:\n%s", ps.ExitCode(), out)
	}
	conn, err := pgx.Connect(t.Context(), c.nodes[2].URL())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())
	if tables, err := schema.List(t.Context(), conn); err != nil || len(tables) != 0 {
		t.Errorf("node3, drained, still holds shard tables %v (err %v)", tables, err)
	}
	if dead, err := nodeDeadLetters(t.Context(), c.nodes[2].URL()); err != nil || len(dead) != 0 {
		t.Errorf("node3, drained, still holds %d dead letters (err %v)", len(dead), err)
	}
}
