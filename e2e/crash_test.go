package e2e

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/ordo-pipeline/ordo/internal/checker"
	"github.com/ordo-pipeline/ordo/internal/pgtest"
)

// TestCrashes kills every kind of part under traffic: a gateway, a worker
// and a Postgres node with SIGKILL, each then restarted. Requests may fail
// while a part is down (the client retries them with the same messageId);
// every event answered 200 must still be delivered, and first deliveries
// must keep each key's order.
func TestCrashes(t *testing.T) {
	nodes := pgtest.Start(t, 2)
	catalog := "ORDO_CATALOG_URL=" + nodes[0].URL()
	h := checker.NewHistory()
	hook := newWebhook(t, h, "hook", 5*time.Second, 0.05)
	ws := "ORDO_WORKSPACE_CONFIG=" + workspaceWith(t, hook)
	out, ps := runOnce(t, "rebalance", []string{catalog, "ORDO_SHARDS=16", nodesEnv(nodes, 1, 2)})
	if ps.ExitCode() != 0 {
		t.Fatalf("bootstrap: exit %d\n%s", ps.ExitCode(), out)
	}

	addrs := []string{freeAddr(t), freeAddr(t)}
	gws := make([]*proc, 2)
	var urls []string
	for i, a := range addrs {
		gws[i] = start(t, fmt.Sprintf("gateway-%d", i+1), "gateway", []string{catalog, ws, "ORDO_HTTP_ADDR=" + a})
		urls = append(urls, "http://"+a)
	}
	workerEnv := []string{catalog, ws, "ORDO_ADMIN_ADDR=127.0.0.1:0"}
	w1 := start(t, "worker-1", "worker", workerEnv)
	start(t, "worker-2", "worker", workerEnv)
	for _, u := range urls {
		waitReady(t, u+"/ready", 30*time.Second)
	}

	tr := newTraffic(h, urls, writeKey, hook.id)
	tr.start(30, 5*time.Millisecond)
	time.Sleep(2 * time.Second)

	t.Log("SIGKILL gateway-1, then restart it")
	gws[0].kill()
	time.Sleep(500 * time.Millisecond)
	start(t, "gateway-1b", "gateway", []string{catalog, ws, "ORDO_HTTP_ADDR=" + addrs[0]})
	time.Sleep(1500 * time.Millisecond)

	t.Log("SIGKILL worker-1, then restart it")
	w1.kill()
	time.Sleep(1500 * time.Millisecond)
	start(t, "worker-1b", "worker", workerEnv)

	t.Log("SIGKILL node2's Postgres, then restart it")
	if err := nodes[1].Kill(); err != nil {
		t.Fatal(err)
	}
	time.Sleep(time.Second)
	if err := nodes[1].Start(t.Context()); err != nil {
		t.Fatal(err)
	}
	time.Sleep(3 * time.Second)
	tr.finish()

	// Duplicates come from the killed worker's last moments and from
	// requests retried after the gateway's death.
	r := checkGuarantees(t, h, nodes, 60*time.Second, checker.Limits{MaxNotTimeoutDuplicates: 0.01})
	if r.Acked < 1000 {
		t.Errorf("only %d events acknowledged: the traffic barely ran", r.Acked)
	}
	n, errs := tr.failures(3)
	t.Logf("%d requests failed while parts were down, e.g.:\n%s", n, strings.Join(errs, "\n"))
}
