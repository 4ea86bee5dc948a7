package main

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/ordo-pipeline/ordo/internal/pgtest"
)

// measureIdle bootstraps a second cluster of shards shards in fresh
// databases on node1 and node2, runs two workers on it with no traffic at
// all, and measures, over d once every shard is claimed, the transactions
// per second its node databases commit and the CPU of the workers and the
// Postgres servers: what a cluster costs while nothing happens.
func measureIdle(ctx context.Context, st *stack, shards int, d, settle time.Duration) (metric, error) {
	m := metric{ID: idIdle, Name: fmt.Sprintf("idle, %d shards, 2 workers: node transactions", shards), Unit: "tx/s"}
	dbs := []string{"idle_catalog", "idle_n1", "idle_n2"}
	for i, db := range dbs {
		// The catalog and the first node on node1, the second on node2.
		pool := st.pools[i/2]
		if _, err := pool.Exec(ctx, "CREATE DATABASE "+db); err != nil {
			return m, fmt.Errorf("creating %s: %w", db, err)
		}
	}
	catalog := st.nodes[0].DatabaseURL(dbs[0])
	nodeURLs := []string{st.nodes[0].DatabaseURL(dbs[1]), st.nodes[1].DatabaseURL(dbs[2])}
	env := func(settings ...string) []string { return envFor(catalog, settings...) }
	reb, err := st.start("rebalance-idle", env("ORDO_NODES=n1="+nodeURLs[0]+",n2="+nodeURLs[1], "ORDO_SHARDS="+strconv.Itoa(shards)))
	if err != nil {
		return m, err
	}
	<-reb.done
	if reb.err != nil {
		return m, fmt.Errorf("bootstrapping %d shards: %w\n%s", shards, reb.err, reb.tail())
	}
	ws := filepath.Join(st.dir, "workspace-idle.json")
	if err := os.WriteFile(ws, []byte(workspaceJSON(st.sink.url, 1)), 0o600); err != nil {
		return m, err
	}
	var admins []string
	var workers []*proc
	defer func() {
		for _, w := range workers {
			w.stop() //nolint:errcheck // measured already
		}
	}()
	for i := range deliveryWorkers {
		port, err := pgtest.FreePort()
		if err != nil {
			return m, err
		}
		addr := "127.0.0.1:" + strconv.Itoa(port)
		w, err := st.start(fmt.Sprintf("worker-idle-%d", i+1), env("ORDO_WORKSPACE_CONFIG="+ws, "ORDO_ADMIN_ADDR="+addr, "ORDO_LOG_LEVEL=warn"))
		if err != nil {
			return m, err
		}
		workers = append(workers, w)
		admins = append(admins, "http://"+addr)
	}
	deadline := time.Now().Add(2 * time.Minute)
	for {
		owned := 0
		for _, a := range admins {
			owned += st.gauge(a+"/metrics", "ordo_worker_shards_owned")
		}
		if owned == shards {
			break
		}
		if time.Now().After(deadline) {
			return m, fmt.Errorf("the workers hold %d of %d shards after 2 minutes\n%s", owned, shards, workers[0].tail())
		}
		select {
		case <-ctx.Done():
			return m, ctx.Err()
		case <-time.After(200 * time.Millisecond):
		}
	}
	// Let the reads that follow the claims settle, and their counts reach
	// pg_stat_database: an idle backend reports its counts within 10s.
	time.Sleep(settle)
	xacts := func() (int64, error) {
		var total int64
		for i, db := range dbs[1:] {
			var n int64
			err := st.pools[i].QueryRow(ctx, `SELECT xact_commit + xact_rollback FROM pg_stat_database WHERE datname = $1`, db).Scan(&n)
			if err != nil {
				return 0, fmt.Errorf("reading %s's transactions: %w", db, err)
			}
			total += n
		}
		return total, nil
	}
	before, err := xacts()
	if err != nil {
		return m, err
	}
	cpu := startCPU()
	began := time.Now()
	select {
	case <-ctx.Done():
		return m, ctx.Err()
	case <-time.After(d):
	}
	cpuUse := cpu.done()
	elapsed := time.Since(began)
	after, err := xacts()
	if err != nil {
		return m, err
	}
	m = rateMetric(m.ID, m.Name, m.Unit, after-before, elapsed)
	m.CPU = map[string]float64{"postgres": cpuUse["postgres"], "worker": cpuUse["worker"]}
	return m, nil
}

// gauge reads the value of an unlabelled gauge from a Prometheus text
// page, or 0.
func (st *stack) gauge(url, name string) int {
	resp, err := st.client.Get(url)
	if err != nil {
		return 0
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return 0
	}
	var b strings.Builder
	buf := make([]byte, 32<<10)
	for {
		n, err := resp.Body.Read(buf)
		b.Write(buf[:n])
		if err != nil {
			break
		}
	}
	for line := range strings.SplitSeq(b.String(), "\n") {
		if v, ok := strings.CutPrefix(line, name+" "); ok {
			f, _ := strconv.ParseFloat(strings.TrimSpace(v), 64)
			return int(f)
		}
	}
	return 0
}

// idleSettle is how long measureIdle waits after the claims. Backends
// report their transaction counts to pg_stat_database within 10s of going
// idle, so a window of d counts between d-10s and d+10s of transactions:
// the full run measures a minute.
const idleSettle = 11 * time.Second
