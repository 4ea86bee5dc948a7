package e2e

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/ordo-pipeline/ordo/internal/checker"
	"github.com/ordo-pipeline/ordo/internal/netns"
	"github.com/ordo-pipeline/ordo/internal/pgtest"
	"github.com/ordo-pipeline/ordo/internal/proctest"
)

// TestPartitions cuts links of a running cluster silently (packets
// dropped both ways: nobody sees a reset), under steady traffic, and
// checks after each cut that nothing acknowledged was lost or reordered,
// and how long failover took. Every part runs in a network namespace of
// its own: the catalog and two storage nodes (Postgres), two gateways,
// workers, rebalance, and the test's client and webhook; every pair that
// talks has a link of its own, so any one can be cut alone.
func TestPartitions(t *testing.T) {
	pt := newPartitionStack(t)
	t.Run("WorkerCutFromNodes", pt.workerCutFromNodes)
	t.Run("WorkerCutFromEverything", pt.workerCutFromEverything)
	t.Run("GatewayCutFromNode", pt.gatewayCutFromNode)
	t.Run("NodeCutThenHealed", pt.nodeCutThenHealed)
	t.Run("RebalanceCutFromCatalog", pt.rebalanceCutFromCatalog)
}

// partitionShards is the cluster's shard count.
const partitionShards = 16

type partitionStack struct {
	net     *netns.Net
	ns      map[string]*netns.NS
	links   map[string]*netns.Link // "a|b" in the order connected
	pg      map[string]*pgtest.Cluster
	h       *checker.History
	hook    *webhook
	client  *http.Client
	gws     []string // gateway URLs as the client reaches them
	workers map[string]*proctest.Proc
	wsPath  string
	base    []string // environment of every ordo program
}

func pgURL(host string) string {
	return fmt.Sprintf("postgres://postgres@%s:5432/postgres?sslmode=disable", host)
}

func newPartitionStack(t *testing.T) *partitionStack {
	began := time.Now()
	pt := &partitionStack{net: netns.New(t), ns: map[string]*netns.NS{}, links: map[string]*netns.Link{},
		pg: map[string]*pgtest.Cluster{}, workers: map[string]*proctest.Proc{}}
	for _, n := range []string{"catalog", "node1", "node2", "w1", "w2", "w3", "gw1", "gw2", "rb", "client"} {
		pt.ns[n] = pt.net.Add(n)
	}
	for _, p := range []string{"w1", "w2", "w3", "gw1", "gw2", "rb"} {
		for _, db := range []string{"catalog", "node1", "node2"} {
			pt.connect(p, db)
		}
	}
	for _, p := range []string{"gw1", "gw2", "w1", "w2", "w3"} {
		pt.connect("client", p)
	}
	errs := make(chan error, 3)
	for _, db := range []string{"catalog", "node1", "node2"} {
		go func() {
			c, err := pgtest.StartCluster(context.Background(), pgtest.Options{Name: db, NetNS: pt.ns[db].Full, Port: 5432, Logf: t.Logf})
			if err == nil {
				pt.pg[db] = c
				t.Cleanup(func() {
					if t.Failed() {
						t.Logf("end of %s's server log:\n%s", db, c.LogTail())
					}
					c.Remove() //nolint:errcheck // best effort
				})
			}
			errs <- err
		}()
	}
	for range 3 {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}

	ln, err := pt.ns["client"].Listen("tcp", "0.0.0.0:9000")
	if err != nil {
		t.Fatal(err)
	}
	pt.h = checker.NewHistory()
	pt.hook = newWebhookOn(t, ln, pt.h, "hook", 5*time.Second, 0.02)
	pt.client = &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{
		DialContext: pt.ns["client"].Dial, MaxIdleConnsPerHost: 64,
	}}
	pt.wsPath = workspaceFor(t, "http://client:9000")
	pt.base = []string{"ORDO_CATALOG_URL=" + pgURL("catalog"), "ORDO_WORKSPACE_CONFIG=" + pt.wsPath, "ORDO_LOG_LEVEL=info"}

	out, err := pt.runIn(t, "rb", "rebalance", nil, "ORDO_NODES=node1="+pgURL("node1")+",node2="+pgURL("node2"),
		"ORDO_SHARDS="+strconv.Itoa(partitionShards))
	if err != nil {
		t.Fatalf("bootstrap: %v\n%s", err, out)
	}
	for _, g := range []string{"gw1", "gw2"} {
		pt.startIn(t, g, "gateway", "ORDO_HTTP_ADDR=0.0.0.0:8080")
		pt.gws = append(pt.gws, "http://"+pt.link("client", g).AddrB+":8080")
	}
	// These workers execute no moves, so that the rebalance of the last
	// case executes its own; w3, started there, does.
	for _, w := range []string{"w1", "w2"} {
		pt.workers[w] = pt.startIn(t, w, "worker", "ORDO_ADMIN_ADDR=0.0.0.0:9090", "ORDO_WORKER_ID="+w, "ORDO_WORKER_MOVES=0")
	}
	for _, g := range pt.gws {
		pt.waitHTTP(t, g+"/ready", 30*time.Second)
	}
	pt.settle(t, "w1", "w2")
	t.Logf("partition stack up in %s", time.Since(began).Round(time.Millisecond))
	return pt
}

func (pt *partitionStack) connect(a, b string) {
	pt.links[a+"|"+b] = pt.net.Connect(pt.ns[a], pt.ns[b])
}

// link returns the link between a and b, named in the order connected.
func (pt *partitionStack) link(a, b string) *netns.Link {
	if l, ok := pt.links[a+"|"+b]; ok {
		return l
	}
	return pt.links[b+"|"+a]
}

// linksOf returns every link of part.
func (pt *partitionStack) linksOf(part string) []*netns.Link {
	var out []*netns.Link
	for k, l := range pt.links {
		a, b, _ := strings.Cut(k, "|")
		if a == part || b == part {
			out = append(out, l)
		}
	}
	return out
}

// startIn runs program in namespace ns, logging to a file.
func (pt *partitionStack) startIn(t *testing.T, ns, program string, env ...string) *proctest.Proc {
	t.Helper()
	cmd := pt.ns[ns].Command(binary(t, program))
	cmd.Env = append(append(os.Environ(), pt.base...), env...)
	return proctest.Start(t, ns+"-"+program, cmd, 80)
}

// runIn runs program with args in ns to completion.
func (pt *partitionStack) runIn(t *testing.T, ns, program string, args []string, env ...string) (string, error) {
	t.Helper()
	cmd := pt.ns[ns].Command(binary(t, program), args...)
	cmd.Env = append(append(os.Environ(), pt.base...), env...)
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	done := make(chan struct{})
	go func() {
		select {
		case <-ctx.Done():
			cmd.Process.Kill() //nolint:errcheck // timed out
		case <-done:
		}
	}()
	out, err := cmd.CombinedOutput()
	close(done)
	return string(out), err
}

func (pt *partitionStack) get(url string) (string, error) {
	resp, err := pt.client.Get(url)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 {
		return string(b), fmt.Errorf("%s: status %d", url, resp.StatusCode)
	}
	return string(b), err
}

func (pt *partitionStack) waitHTTP(t *testing.T, url string, within time.Duration) {
	t.Helper()
	deadline := time.Now().Add(within)
	for {
		if _, err := pt.get(url); err == nil {
			return
		} else if time.Now().After(deadline) {
			t.Fatalf("%s not ready within %s: %v", url, within, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

var ownedRE = regexp.MustCompile(`(?m)^ordo_worker_shards_owned (\S+)$`)

// owned returns how many shards worker w holds, or -1 if it cannot say.
func (pt *partitionStack) owned(w string) int {
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, "GET", "http://"+pt.link("client", w).AddrB+":9090/metrics", nil)
	resp, err := pt.client.Do(req)
	if err != nil {
		return -1
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	m := ownedRE.FindSubmatch(b)
	if m == nil {
		return -1
	}
	f, _ := strconv.ParseFloat(string(m[1]), 64)
	return int(f)
}

// settle waits until the workers named hold every shard between them.
func (pt *partitionStack) settle(t *testing.T, workers ...string) {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for {
		total := 0
		for _, w := range workers {
			total += max(0, pt.owned(w))
		}
		if total == partitionShards {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("workers %v hold %d of %d shards after 60s", workers, total, partitionShards)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// busiest returns the worker of workers that holds the most shards.
func (pt *partitionStack) busiest(workers ...string) string {
	best, most := workers[0], -1
	for _, w := range workers {
		if n := pt.owned(w); n > most {
			best, most = w, n
		}
	}
	return best
}

func (pt *partitionStack) traffic(prefix string) *traffic {
	tr := newTraffic(pt.h, pt.gws, writeKey, pt.hook.id)
	tr.client = pt.client
	tr.prefix = prefix
	tr.start(24, 20*time.Millisecond)
	return tr
}

func cut(t *testing.T, links []*netns.Link) time.Time {
	t.Helper()
	for _, l := range links {
		if err := l.Cut(); err != nil {
			t.Fatal(err)
		}
	}
	t.Cleanup(func() { heal(t, links) })
	return time.Now()
}

func heal(t *testing.T, links []*netns.Link) time.Time {
	t.Helper()
	for _, l := range links {
		if err := l.Heal(); err != nil {
			t.Error(err)
		}
	}
	return time.Now()
}

// failover is the longest an event acknowledged from a second before from
// until to waited, after from, for its first delivery: how long the shards
// a cut stranded went undelivered.
func failover(h *checker.History, from, to time.Time) (worst time.Duration, events int) {
	first := map[string]time.Time{}
	for _, d := range h.Deliveries() {
		if _, ok := first[d.MessageID]; !ok {
			first[d.MessageID] = d.At
		}
	}
	for _, ev := range h.Events() {
		at := ev.Acked
		if at.IsZero() || at.Before(from.Add(-time.Second)) || !at.Before(to) {
			continue
		}
		events++
		d, ok := first[ev.MessageID]
		if !ok {
			continue // checkGuarantees reports it
		}
		worst = max(worst, d.Sub(maxTime(at, from)))
	}
	return worst, events
}

// stall is the longest an event first sent between from and to took to be
// answered 200, retries included: what a client saw of the cut.
func stall(h *checker.History, from, to time.Time) time.Duration {
	var worst time.Duration
	for _, ev := range h.Events() {
		if ev.Sent.Before(from) || !ev.Sent.Before(to) || ev.Acked.IsZero() {
			continue
		}
		worst = max(worst, ev.Acked.Sub(ev.Sent))
	}
	return worst
}

// waited is the longest an event answered 200 between from and to had
// waited for it since first sent, retries included.
func waited(h *checker.History, from, to time.Time) time.Duration {
	var worst time.Duration
	for _, ev := range h.Events() {
		if ev.Acked.IsZero() || ev.Acked.Before(from) || !ev.Acked.Before(to) {
			continue
		}
		worst = max(worst, ev.Acked.Sub(ev.Sent))
	}
	return worst
}

func maxTime(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}

// finish stops the traffic, checks every acknowledged event was delivered
// in order, and logs what the client saw.
func finish(t *testing.T, pt *partitionStack, tr *traffic) {
	t.Helper()
	tr.finish()
	// A worker cut off delivers what it holds in flight without being
	// able to acknowledge it: the shard's next owner delivers it again.
	r := checkGuarantees(t, pt.h, []*pgtest.Cluster{pt.pg["node1"], pt.pg["node2"]}, 60*time.Second, checker.Limits{MaxNotTimeoutDuplicates: 0.05})
	if r.Acked < 200 {
		t.Errorf("only %d events acknowledged: the traffic barely ran", r.Acked)
	}
	n, _ := tr.failures(0)
	t.Logf("%d events acknowledged, %d deliveries in all so far; %d requests failed and were retried", r.Acked, r.Deliveries, n)
}

// workerCutFromNodes cuts the busiest worker off from both storage nodes;
// it still heartbeats to the catalog, so it counts in everyone's fair share.
func (pt *partitionStack) workerCutFromNodes(t *testing.T) {
	pt.cutBusiestWorker(t, "a", "the nodes", func(victim string) []*netns.Link {
		return []*netns.Link{pt.link(victim, "node1"), pt.link(victim, "node2")}
	})
}

// workerCutFromEverything cuts the busiest worker's every link: nodes,
// catalog and webhook.
func (pt *partitionStack) workerCutFromEverything(t *testing.T) {
	pt.cutBusiestWorker(t, "b", "everything", pt.linksOf)
}

// cutBusiestWorker cuts the busiest of w1 and w2 from what (the links
// linksOf returns for it) for 12 seconds under traffic of keys named
// prefix, and checks another worker took over its shards within 10
// seconds.
func (pt *partitionStack) cutBusiestWorker(t *testing.T, prefix, what string, linksOf func(victim string) []*netns.Link) {
	victim := pt.busiest("w1", "w2")
	tr := pt.traffic(prefix)
	time.Sleep(2 * time.Second)
	links := linksOf(victim)
	t.Logf("cutting %s (holding %d shards) from %s", victim, pt.owned(victim), what)
	at := cut(t, links)
	time.Sleep(12 * time.Second)
	healed := heal(t, links)
	worst, n := failover(pt.h, at, healed)
	time.Sleep(2 * time.Second)
	finish(t, pt, tr)
	t.Logf("FAILOVER worker cut from %s: %s (longest wait for a first delivery, over %d events acknowledged during the cut)", what, worst.Round(time.Millisecond), n)
	if worst > 10*time.Second {
		t.Errorf("failover took %s, want under 10s", worst)
	}
	pt.settle(t, "w1", "w2")
}

// gatewayCutFromNode cuts gw1 from node1: its requests for node1's shards
// fail (503 after the write timeout) and the client retries them on gw2.
func (pt *partitionStack) gatewayCutFromNode(t *testing.T) {
	tr := pt.traffic("c")
	time.Sleep(2 * time.Second)
	links := []*netns.Link{pt.link("gw1", "node1")}
	at := cut(t, links)
	time.Sleep(8 * time.Second)
	healed := heal(t, links)
	worst, n := failover(pt.h, at, healed)
	time.Sleep(3 * time.Second)
	client := waited(pt.h, at, time.Now())
	after := stall(pt.h, healed.Add(time.Second), time.Now())
	finish(t, pt, tr)
	t.Logf("FAILOVER gateway cut from a node: longest wait for a 200, retries on the other gateway included: %s; after the heal: %s; longest wait for a first delivery: %s (%d events)",
		client.Round(time.Millisecond), after.Round(time.Millisecond), worst.Round(time.Millisecond), n)
	if after > 5*time.Second {
		t.Errorf("a second after the heal, requests still waited %s for a 200", after)
	}
}

// nodeCutThenHealed cuts node1 from everyone for a while: nothing can
// fail over (only node1 holds its shards); once healed, its shards must
// take writes and be delivered again at once.
func (pt *partitionStack) nodeCutThenHealed(t *testing.T) {
	tr := pt.traffic("e")
	time.Sleep(2 * time.Second)
	links := pt.linksOf("node1")
	at := cut(t, links)
	time.Sleep(8 * time.Second)
	healed := heal(t, links)
	time.Sleep(6 * time.Second)
	recovery, n := failover(pt.h, healed, healed.Add(3*time.Second))
	during := waited(pt.h, at, time.Now())
	after := stall(pt.h, healed.Add(time.Second), time.Now())
	finish(t, pt, tr)
	t.Logf("FAILOVER node cut for 8s then healed: first deliveries of events acknowledged in the 3s after the heal waited up to %s (%d events); clients waited up to %s for a 200 for events of the cut node, retries included; %s for events first sent a second after the heal",
		recovery.Round(time.Millisecond), n, during.Round(time.Millisecond), after.Round(time.Millisecond))
	if recovery > 10*time.Second {
		t.Errorf("after the heal, deliveries resumed only after %s", recovery)
	}
	if after > 5*time.Second {
		t.Errorf("a second after the heal, requests still waited %s for a 200", after)
	}
	pt.settle(t, "w1", "w2")
}

// rebalanceCutFromCatalog freezes a rebalance right after it fenced a
// shard's source (the write pause) and cuts it from the catalog: its lease
// expires, a worker ends its catalog session and its sessions on the
// nodes, and finishes its moves. The workers until then execute no moves,
// so that the move is rebalance's; w3, which does, starts just before the
// cut.
func (pt *partitionStack) rebalanceCutFromCatalog(t *testing.T) {
	catalog, err := pgx.Connect(t.Context(), pt.pg["catalog"].URL())
	if err != nil {
		t.Fatal(err)
	}
	defer catalog.Close(context.Background())
	tr := pt.traffic("d")
	time.Sleep(2 * time.Second)
	rb := pt.startIn(t, "rb", "rebalance", "ORDO_NODES=node1="+pgURL("node1"), "ORDO_FAILPOINTS=move.after_fenced=pause")
	var shard int
	deadline := time.Now().Add(30 * time.Second)
	for {
		err := catalog.QueryRow(t.Context(), `SELECT shard FROM ordo_catalog.moves WHERE step = 'fenced' AND state = 'running'`).Scan(&shard)
		if err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no move fenced within 30s: %v", err)
		}
		time.Sleep(50 * time.Millisecond)
	}
	pt.workers["w3"] = pt.startIn(t, "w3", "worker", "ORDO_ADMIN_ADDR=0.0.0.0:9090", "ORDO_WORKER_ID=w3")
	pt.waitHTTP(t, "http://"+pt.link("client", "w3").AddrB+":9090/ready", 30*time.Second)
	links := []*netns.Link{pt.link("rb", "catalog")}
	at := cut(t, links)
	t.Logf("rebalance frozen with shard %d fenced; cut from the catalog", shard)
	var resumed, done time.Duration
	deadline = time.Now().Add(60 * time.Second)
	for done == 0 {
		var step string
		var open int
		if err := catalog.QueryRow(t.Context(), `SELECT (SELECT step FROM ordo_catalog.moves WHERE shard = $1 ORDER BY id DESC LIMIT 1),
				(SELECT count(*) FROM ordo_catalog.moves WHERE state <> 'done')`, shard).Scan(&step, &open); err != nil {
			t.Fatal(err)
		}
		if resumed == 0 && step != "fenced" {
			resumed = time.Since(at)
		}
		if open == 0 {
			done = time.Since(at)
		}
		if time.Now().After(deadline) {
			t.Fatalf("moves still open 60s after the cut (shard %d at %s)", shard, step)
		}
		time.Sleep(50 * time.Millisecond)
	}
	healed := heal(t, links)
	rb.Kill()
	time.Sleep(2 * time.Second)
	client := waited(pt.h, at.Add(-time.Second), time.Now())
	worst, n := failover(pt.h, at, healed)
	finish(t, pt, tr)
	out, err := pt.runIn(t, "rb", "rebalance", []string{"status"})
	t.Logf("status after the moves (%v):\n%s", err, out)
	t.Logf("FAILOVER rebalance cut from the catalog with a shard fenced: the fenced move flipped %s after the cut, every move done %s after it; clients waited up to %s for a 200, retries included (the fence came before the cut); first deliveries waited up to %s (%d events)",
		resumed.Round(time.Millisecond), done.Round(time.Millisecond), client.Round(time.Millisecond), worst.Round(time.Millisecond), n)
	if resumed > 10*time.Second {
		t.Errorf("the fenced shard took writes again only %s after the cut, want under 10s", resumed)
	}
	if !strings.Contains(out, "moves in progress: none") {
		t.Errorf("status after the moves:\n%s", out)
	}
}
