// Command bench measures the worker on a throwaway Postgres cluster: events
// delivered per second to a local webhook, one event per request and
// batched, and the size of the shard tables before, during and after a
// soak in which events are written and delivered at the same time.
//
//	go run ./worker/bench [-single 50000] [-batched 200000] [-soak 1000000]
//
// It needs the PostgreSQL server binaries (see internal/pgtest). Numbers
// from a shared machine are noisy: compare ratios, not absolutes.
package main

import (
	"bytes"
	"context"
	"flag"
	"fmt"
	"io"
	"log"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/ordo-pipeline/ordo/internal/cli"
	"github.com/ordo-pipeline/ordo/internal/pgtest"
	"github.com/ordo-pipeline/ordo/rebalance"
	"github.com/ordo-pipeline/ordo/schema"
	"github.com/ordo-pipeline/ordo/shard"
	"github.com/ordo-pipeline/ordo/worker"
)

func main() {
	single := flag.Int("single", 50000, "events for the one-event-per-request run (0 skips it)")
	batched := flag.Int("batched", 200000, "events for the batched run (0 skips it)")
	soak := flag.Int("soak", 1000000, "events written and delivered concurrently in the soak (0 skips it)")
	batch := flag.Int("batch", 100, "maxBatchSize of the batched runs")
	shards := flag.Int("shards", 16, "shards of the cluster")
	keys := flag.Int("keys", 10000, "distinct ordering keys")
	verbose := flag.Bool("v", false, "log the worker's debug lines")
	vacuumRows := flag.Int("vacuum-rows", 5000, "the worker's ORDO_WORKER_VACUUM_ROWS (0: autovacuum only)")
	flag.Parse()
	if err := run(*single, *batched, *soak, *batch, *shards, *keys, *verbose, *vacuumRows); err != nil {
		log.Fatal(err)
	}
}

type bench struct {
	ctx        context.Context
	catalogURL string
	nodeURLs   map[string]string
	snap       *shard.Snapshot
	keys       int
	dir        string
	hook       *hook
	verbose    bool
	vacuumRows int
}

func run(single, batched, soak, batch, shards, keys int, verbose bool, vacuumRows int) error {
	ctx := context.Background()
	c, err := pgtest.StartCluster(ctx, pgtest.Options{Name: "bench", Settings: map[string]string{"shared_buffers": "128MB"}})
	if err != nil {
		return err
	}
	defer c.Remove() //nolint:errcheck // best effort
	conn, err := pgx.Connect(ctx, c.URL())
	if err != nil {
		return err
	}
	for _, db := range []string{"catalog", "n1", "n2"} {
		if _, err := conn.Exec(ctx, "CREATE DATABASE "+db); err != nil {
			return err
		}
	}
	conn.Close(ctx)
	b := &bench{
		ctx:        ctx,
		catalogURL: c.DatabaseURL("catalog"),
		nodeURLs:   map[string]string{"n1": c.DatabaseURL("n1"), "n2": c.DatabaseURL("n2")},
		keys:       keys,
		verbose:    verbose,
		vacuumRows: vacuumRows,
	}
	cfg := rebalance.Config{CatalogURL: b.catalogURL, Nodes: "n1=" + b.nodeURLs["n1"] + ",n2=" + b.nodeURLs["n2"], Shards: shards}
	if err := cfg.Validate(); err != nil {
		return err
	}
	if err := rebalance.Run(ctx, &cfg, rebalance.Options{}); err != nil {
		return err
	}
	cconn, err := pgx.Connect(ctx, b.catalogURL)
	if err != nil {
		return err
	}
	b.snap, err = shard.Load(ctx, cconn)
	cconn.Close(ctx)
	if err != nil {
		return err
	}
	b.dir, err = os.MkdirTemp("", "ordo-bench-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(b.dir)
	b.hook, err = startHook()
	if err != nil {
		return err
	}

	fmt.Printf("cluster: %d shards on 2 node databases, %d keys, ORDO_WORKER_VACUUM_ROWS=%d\n\n", shards, keys, vacuumRows)
	fmt.Printf("%-28s %10s %12s %14s\n", "run", "events", "seconds", "delivered/s")
	if single > 0 {
		if err := b.drainRun("single (maxBatchSize 1)", single, 1); err != nil {
			return err
		}
	}
	if batched > 0 {
		if err := b.drainRun(fmt.Sprintf("batched (maxBatchSize %d)", batch), batched, batch); err != nil {
			return err
		}
	}
	if soak > 0 {
		if err := b.soak(soak, batch); err != nil {
			return err
		}
	}
	return nil
}

// drainRun writes n events, then starts a worker and times how long it
// takes to deliver them all.
func (b *bench) drainRun(name string, n, batch int) error {
	if err := b.insert(0, n); err != nil {
		return err
	}
	start := b.hook.events.Load()
	began := time.Now()
	w, err := b.startWorker(batch)
	if err != nil {
		return err
	}
	if err := b.waitDelivered(w, start, n); err != nil {
		return err
	}
	took := time.Since(began)
	if err := w.stop(); err != nil {
		return err
	}
	fmt.Printf("%-28s %10d %12.2f %14.0f\n", name, n, took.Seconds(), float64(n)/took.Seconds())
	return b.waitEmpty()
}

// soak writes n events in chunks while a worker delivers them, sampling
// the shard tables' total size.
func (b *bench) soak(n, batch int) error {
	base, err := b.tableSize()
	if err != nil {
		return err
	}
	w, err := b.startWorker(batch)
	if err != nil {
		return err
	}
	defer w.stop() //nolint:errcheck // a no-op once stopped below
	start := b.hook.events.Load()
	began := time.Now()
	const chunk = 5000
	peak := base
	var samples []string
	for done := 0; done < n; done += chunk {
		if err := b.insert(done, min(chunk, n-done)); err != nil {
			return err
		}
		if (done/chunk)%40 == 0 {
			size, err := b.tableSize()
			if err != nil {
				return err
			}
			peak = max(peak, size)
			samples = append(samples, fmt.Sprintf("%dk:%s", done/1000, mb(size)))
		}
	}
	written := time.Since(began)
	if err := b.waitDelivered(w, start, n); err != nil {
		return err
	}
	took := time.Since(began)
	if err := w.stop(); err != nil {
		return err
	}
	fmt.Printf("%-28s %10d %12.2f %14.0f   (written in %.1fs while delivering)\n", fmt.Sprintf("soak (maxBatchSize %d)", batch), n, took.Seconds(), float64(n)/took.Seconds(), written.Seconds())
	after, err := b.tableSize()
	if err != nil {
		return err
	}
	fmt.Printf("\nshard tables, pg_total_relation_size summed over %d shards:\n", b.snap.Count())
	fmt.Printf("  before the soak            %s\n", mb(base))
	fmt.Printf("  during (every 200k)        %s\n", strings.Join(samples, " "))
	fmt.Printf("  peak sampled               %s\n", mb(peak))
	fmt.Printf("  drained                    %s\n", mb(after))
	// Vacuum frees the dead rows' space for reuse; it shrinks a table only
	// by its empty trailing pages.
	var later []string
	for i := 1; i <= 4; i++ {
		time.Sleep(15 * time.Second)
		size, err := b.tableSize()
		if err != nil {
			return err
		}
		later = append(later, fmt.Sprintf("+%ds:%s", 15*i, mb(size)))
	}
	fmt.Printf("  after draining             %s\n", strings.Join(later, " "))
	return nil
}

func mb(n int64) string { return fmt.Sprintf("%.1fMB", float64(n)/(1<<20)) }

// runningWorker is a worker started by startWorker.
type runningWorker struct {
	cancel context.CancelFunc
	done   chan error // receives Run's result
	exited bool
	err    error
}

// stop stops the worker (SIGTERM-style drain) and returns Run's result.
func (w *runningWorker) stop() error {
	w.cancel()
	if !w.exited {
		w.err, w.exited = <-w.done, true
	}
	return w.err
}

// waitDelivered waits until the hook has counted n events more than start,
// or fails if the worker exits first.
func (b *bench) waitDelivered(w *runningWorker, start int64, n int) error {
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	for b.hook.events.Load()-start < int64(n) {
		select {
		case err := <-w.done:
			w.err, w.exited = err, true
			return fmt.Errorf("worker stopped with %d of %d events delivered: %w", b.hook.events.Load()-start, n, err)
		case <-tick.C:
		}
	}
	return nil
}

// startWorker runs a worker in this process with a workspace of one webhook
// of maxBatchSize batch.
func (b *bench) startWorker(batch int) (*runningWorker, error) {
	ws := fmt.Sprintf(`{"sources": [{"id": "web", "writeKey": "wk", "destinations": ["hook"]}],
		"destinations": [{"id": "hook", "type": "webhook", "config": {"url": %q, "maxBatchSize": %d}}]}`, b.hook.url, batch)
	path := filepath.Join(b.dir, fmt.Sprintf("ws-%d.json", batch))
	if err := os.WriteFile(path, []byte(ws), 0o600); err != nil {
		return nil, err
	}
	level := "warn"
	if b.verbose {
		level = "debug"
	}
	// Production defaults but for the admin server and logging.
	cfg, err := cli.ParseEnv[worker.Config](map[string]string{
		"ORDO_CATALOG_URL":        b.catalogURL,
		"ORDO_WORKSPACE_CONFIG":   path,
		"ORDO_LOG_LEVEL":          level,
		"ORDO_WORKER_VACUUM_ROWS": strconv.Itoa(b.vacuumRows),
	})
	if err != nil {
		return nil, err
	}
	cfg.AdminAddr = ""
	ctx, cancel := context.WithCancel(b.ctx)
	w := &runningWorker{cancel: cancel, done: make(chan error, 1)}
	go func() {
		w.done <- worker.Run(ctx, &cfg, worker.Options{Logger: cfg.Log.Logger(os.Stderr, "worker")})
	}()
	return w, nil
}

// insert writes n events numbered from first, round-robin over the keys,
// with one COPY per shard and one transaction per node, holding the write
// lock of the shards it writes as the gateway does.
func (b *bench) insert(first, n int) error {
	byShard := map[int][][]any{}
	byNode := map[string][]int{}
	now := time.Now().UTC()
	for i := first; i < first+n; i++ {
		key := fmt.Sprintf("user-%d", i%b.keys)
		s := shard.For(key, b.snap.Count())
		if _, ok := byShard[s]; !ok {
			node := b.snap.Shards[s].Node
			byNode[node] = append(byNode[node], s)
		}
		id := fmt.Sprintf("m-%d", i)
		payload := fmt.Sprintf(`{"type":"track","event":"Order Completed","userId":%q,"messageId":%q,"receivedAt":%q,"properties":{"i":%d,"total":12.5,"currency":"EUR"}}`,
			key, id, now.Format(time.RFC3339Nano), i)
		byShard[s] = append(byShard[s], []any{key, "web", "hook", id, now, payload})
	}
	for node, shards := range byNode {
		conn, err := pgx.Connect(b.ctx, b.nodeURLs[node])
		if err != nil {
			return err
		}
		err = pgx.BeginFunc(b.ctx, conn, func(tx pgx.Tx) error {
			if err := schema.LockForWrite(b.ctx, tx, shards); err != nil {
				return err
			}
			for _, s := range shards {
				if _, err := tx.CopyFrom(b.ctx, schema.Table(s), schema.Columns, pgx.CopyFromRows(byShard[s])); err != nil {
					return fmt.Errorf("writing shard %d: %w", s, err)
				}
			}
			return nil
		})
		conn.Close(b.ctx)
		if err != nil {
			return fmt.Errorf("writing to node %s: %w", node, err)
		}
	}
	return nil
}

// tableSize sums pg_total_relation_size over every shard table.
func (b *bench) tableSize() (int64, error) {
	var total int64
	for _, url := range b.nodeURLs {
		conn, err := pgx.Connect(b.ctx, url)
		if err != nil {
			return 0, err
		}
		var n int64
		err = conn.QueryRow(b.ctx, `SELECT coalesce(sum(pg_total_relation_size(format('%I.%I', schemaname, tablename))), 0)::bigint
			FROM pg_tables WHERE schemaname = $1 AND tablename LIKE 'shard\_%'`, schema.Schema).Scan(&n)
		conn.Close(b.ctx)
		if err != nil {
			return 0, err
		}
		total += n
	}
	return total, nil
}

// waitEmpty waits until every shard table is empty.
func (b *bench) waitEmpty() error {
	for range 200 {
		var pending int64
		for _, url := range b.nodeURLs {
			conn, err := pgx.Connect(b.ctx, url)
			if err != nil {
				return err
			}
			shards, err := schema.List(b.ctx, conn)
			if err != nil {
				return err
			}
			for _, s := range shards {
				n, err := schema.Pending(b.ctx, conn, s)
				if err != nil {
					return err
				}
				pending += n
			}
			conn.Close(b.ctx)
		}
		if pending == 0 {
			return nil
		}
		time.Sleep(50 * time.Millisecond)
	}
	return fmt.Errorf("rows still pending after the run")
}

// hook is a local webhook that answers 200 and counts events.
type hook struct {
	url    string
	events atomic.Int64
}

func startHook() (*hook, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	h := &hook{url: "http://" + ln.Addr().String() + "/events"}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		h.events.Add(int64(bytes.Count(body, []byte(`"messageId"`))))
	}), ErrorLog: slog.NewLogLogger(slog.DiscardHandler, slog.LevelError)}
	go srv.Serve(ln) //nolint:errcheck // lives as long as the process
	return h, nil
}
