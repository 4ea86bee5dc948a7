package e2e

import (
	"fmt"
	"strings"
	"testing"
	"time"

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
	hook := newRecorder(t, 0.05)
	ws := "ORDO_WORKSPACE_CONFIG=" + workspaceFor(t, hook.srv.URL)
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

	tr := newTraffic(urls, writeKey)
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

	deadline := time.Now().Add(60 * time.Second)
	var missing []string
	for {
		missing = missing[:0]
		tr.mu.Lock()
		for key, ns := range tr.acked {
			for _, n := range ns {
				if !hook.has(messageID(key, n)) {
					missing = append(missing, messageID(key, n))
				}
			}
		}
		tr.mu.Unlock()
		if len(missing) == 0 || time.Now().After(deadline) {
			break
		}
		time.Sleep(250 * time.Millisecond)
	}
	total := 0
	for _, ns := range tr.acked {
		total += len(ns)
	}
	if len(missing) > 0 {
		t.Errorf("%d of %d acknowledged events never delivered, e.g. %v", len(missing), total, missing[:min(10, len(missing))])
	}
	firsts, deliveries := hook.firstDeliveries()
	for key, ns := range firsts {
		for i := 1; i < len(ns); i++ {
			if ns[i] < ns[i-1] {
				t.Errorf("key %s: event %d first delivered after event %d", key, ns[i], ns[i-1])
				break
			}
		}
	}
	if total < 1000 {
		t.Errorf("only %d events acknowledged: the traffic barely ran", total)
	}
	t.Logf("%d events acknowledged, %d deliveries; %d requests failed while parts were down, e.g.:\n%s",
		total, deliveries, len(tr.errors), strings.Join(tr.errors[:min(3, len(tr.errors))], "\n"))
}
