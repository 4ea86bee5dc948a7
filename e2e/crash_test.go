package e2e

import (
	"strings"
	"testing"
	"time"

	"github.com/ordo-pipeline/ordo/internal/checker"
)

// TestCrashes kills every kind of part under traffic: a gateway, a worker
// and a Postgres node with SIGKILL, each then restarted. Requests may fail
// while a part is down (the client retries them with the same messageId);
// every event answered 200 must still be delivered, and first deliveries
// must keep each key's order.
func TestCrashes(t *testing.T) {
	c := newHooked(t, 2)
	runRebalance(t, "bootstrap", []string{c.catalog, "ORDO_SHARDS=16", nodesEnv(c.nodes, 1, 2)})
	workerEnv := []string{c.catalog, c.ws, "ORDO_ADMIN_ADDR=127.0.0.1:0"}
	w1 := start(t, "worker-1", "worker", workerEnv)
	start(t, "worker-2", "worker", workerEnv)
	gws := startGateways(t, 2, []string{c.catalog, c.ws})

	tr := newTraffic(c.h, gws.urls, writeKey, c.hook.id)
	tr.start(30, 5*time.Millisecond)
	time.Sleep(2 * time.Second)

	t.Log("SIGKILL gateway-1, then restart it")
	gws.procs[0].Kill()
	time.Sleep(500 * time.Millisecond)
	start(t, "gateway-1b", "gateway", []string{c.catalog, c.ws, "ORDO_HTTP_ADDR=" + gws.addrs[0]})
	time.Sleep(1500 * time.Millisecond)

	t.Log("SIGKILL worker-1, then restart it")
	w1.Kill()
	time.Sleep(1500 * time.Millisecond)
	start(t, "worker-1b", "worker", workerEnv)

	t.Log("SIGKILL node2's Postgres, then restart it")
	if err := c.nodes[1].Kill(); err != nil {
		t.Fatal(err)
	}
	time.Sleep(time.Second)
	if err := c.nodes[1].Start(t.Context()); err != nil {
		t.Fatal(err)
	}
	time.Sleep(3 * time.Second)
	tr.finish()

	// Duplicates come from the killed worker's last moments and from
	// requests retried after the gateway's death.
	r := checkGuarantees(t, c.h, c.nodes, 60*time.Second, checker.Limits{MaxNotTimeoutDuplicates: 0.01})
	if r.Acked < 1000 {
		t.Errorf("only %d events acknowledged: the traffic barely ran", r.Acked)
	}
	n, errs := tr.failures(3)
	t.Logf("%d requests failed while parts were down, e.g.:\n%s", n, strings.Join(errs, "\n"))
}
