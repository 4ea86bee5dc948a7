package overview

import (
	"context"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/ordo-pipeline/ordo/internal/cli"
	"github.com/ordo-pipeline/ordo/internal/pgtest"
	"github.com/ordo-pipeline/ordo/rebalance"
	"github.com/ordo-pipeline/ordo/schema"
)

func TestRead(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	nodes := pgtest.Start(t, 2)
	catalog := nodes[0].URL()
	cfg, err := cli.ParseEnv[rebalance.Config](map[string]string{"ORDO_CATALOG_URL": catalog, "ORDO_SHARDS": "4",
		"ORDO_NODES": "node1=" + nodes[0].URL() + ",node2=" + nodes[1].URL()})
	if err != nil {
		t.Fatal(err)
	}
	if err := rebalance.Run(ctx, &cfg, rebalance.Options{Out: &strings.Builder{}, Logger: slog.New(slog.DiscardHandler)}); err != nil {
		t.Fatal(err)
	}
	o, err := Read(ctx, catalog)
	if err != nil {
		t.Fatal(err)
	}
	s := o.Shards[0]
	url := nodes[0].URL()
	if s.Node == "node2" {
		url = nodes[1].URL()
	}

	// A worker holds shard 0 (its lock, under its application_name) and a
	// heartbeat; shard 0 has two pending rows, the oldest a minute old.
	wcfg, err := pgx.ParseConfig(url)
	if err != nil {
		t.Fatal(err)
	}
	wcfg.RuntimeParams["application_name"] = "ordo-worker w-test"
	held, err := pgx.ConnectConfig(ctx, wcfg)
	if err != nil {
		t.Fatal(err)
	}
	defer held.Close(context.Background())
	if _, err := held.Exec(ctx, schema.LockSQL, 0); err != nil {
		t.Fatal(err)
	}
	for _, age := range []string{"1 minute", "1 second"} {
		if _, err := held.Exec(ctx, `INSERT INTO `+schema.Table(0).Sanitize()+` (ordering_key, source_id, destination_id, message_id, received_at, event)
			VALUES ('k', 's', 'd', gen_random_uuid()::text, now() - $1::interval, '{}')`, age); err != nil {
			t.Fatal(err)
		}
	}
	cat := pgtest.Connect(t, catalog)
	if _, err := cat.Exec(ctx, `INSERT INTO ordo_catalog.workers (id) VALUES ('w-test'), ('w-gone');
		UPDATE ordo_catalog.workers SET heartbeat_at = now() - interval '1 minute' WHERE id = 'w-gone'`); err != nil {
		t.Fatal(err)
	}

	o, err = Read(ctx, catalog)
	if err != nil {
		t.Fatal(err)
	}
	var out strings.Builder
	if err := o.Print(&out); err != nil {
		t.Fatal(err)
	}
	t.Log(out.String())
	s = o.Shards[0]
	if s.Holder != "w-test" || s.Pending != 2 || s.Lag < 59 || s.Lag > 120 {
		t.Errorf("shard 0 = %+v, want held by w-test, 2 pending, lag about 60s", s)
	}
	if s1 := o.Shards[1]; s1.Holder != "" || s1.Pending != 0 || s1.Lag != 0 {
		t.Errorf("shard 1 = %+v, want nobody, nothing pending", s1)
	}
	if len(o.Workers) != 2 || o.Workers[0].ID != "w-gone" || o.Workers[0].Live || !o.Workers[1].Live || len(o.Workers[1].Shards) != 1 {
		t.Errorf("workers = %+v", o.Workers)
	}
	for _, want := range []string{"workers: 1 live, 1 with a stale heartbeat", "0      " + s.Node + "  active  1      2        1m0s"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("output lacks %q", want)
		}
	}
	if err := o.Err(); err != nil {
		t.Error(err)
	}

	// An unreachable node shows as such.
	if _, err := cat.Exec(ctx, `UPDATE ordo_catalog.nodes SET url = 'postgres://x@127.0.0.1:1/none?connect_timeout=1' WHERE name = 'node2'`); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	o, err = Read(ctx, catalog)
	if err != nil {
		t.Fatal(err)
	}
	if o.Err() == nil || strings.Contains(o.Nodes[1].Error, "\n") || o.Nodes[1].Pending != -1 || time.Since(start) > 10*time.Second {
		t.Errorf("node2 unreachable: %+v, err %v", o.Nodes[1], o.Err())
	}
	for _, sh := range o.Shards {
		if sh.Node == "node2" && (sh.Pending != -1 || sh.Lag != -1) {
			t.Errorf("shard %d of the unreachable node = %+v", sh.Shard, sh)
		}
	}
}
