package shard_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/ordo-pipeline/ordo/internal/pgtest"
	"github.com/ordo-pipeline/ordo/migrations"
	"github.com/ordo-pipeline/ordo/rebalance"
	"github.com/ordo-pipeline/ordo/shard"
)

// bootstrapped starts one Postgres node and bootstraps a cluster of
// shards on it, the catalog on the same node. It returns a pool of
// connections to it, closed when the test ends, and its URL.
func bootstrapped(t *testing.T, shards int) (*pgxpool.Pool, string) {
	t.Helper()
	url := pgtest.Start(t, 1)[0].URL()
	cfg := &rebalance.Config{CatalogURL: url, Nodes: "n1=" + url, Shards: shards}
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	if err := rebalance.Run(t.Context(), cfg, rebalance.Options{}); err != nil {
		t.Fatal(err)
	}
	pool, err := pgxpool.New(t.Context(), url)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close)
	return pool, url
}

// TestMapFollowsNotifications checks that a Map with a poll far in the
// future still sees a placement change at once: through LISTEN/NOTIFY.
func TestMapFollowsNotifications(t *testing.T) {
	t.Parallel()
	pool, _ := bootstrapped(t, 8)

	m := shard.NewMap(pool, shard.MapConfig{Poll: time.Hour})
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() { done <- m.Run(ctx) }()
	defer func() {
		cancel()
		if err := <-done; !errors.Is(err, context.Canceled) {
			t.Errorf("Run returned %v, want context.Canceled", err)
		}
	}()
	changed := m.Subscribe()
	waitFor(t, func() bool { return m.Current() != nil })
	if got := m.Current().Shards[3].Epoch; got != 1 {
		t.Fatalf("shard 3 epoch = %d, want 1", got)
	}
	if _, err := pool.Exec(t.Context(), `UPDATE ordo_catalog.shards SET epoch = 7 WHERE shard = 3`); err != nil {
		t.Fatal(err)
	}
	select {
	case <-changed:
	case <-time.After(5 * time.Second):
		t.Fatal("no reload within 5s of a placement change")
	}
	waitFor(t, func() bool { return m.Current().Shards[3].Epoch == 7 })
	if p := m.Current().Lookup("user-1"); p.Shard != shard.For("user-1", 8) {
		t.Errorf("Lookup(user-1) = shard %d, want %d", p.Shard, shard.For("user-1", 8))
	}
}

func TestLoadBeforeBootstrap(t *testing.T) {
	t.Parallel()
	nodes := pgtest.Start(t, 1)
	if err := migrations.Catalog(t.Context(), nodes[0].URL(), nil); err != nil {
		t.Fatal(err)
	}
	pool, err := pgxpool.New(t.Context(), nodes[0].URL())
	if err != nil {
		t.Fatal(err)
	}
	defer pool.Close()
	if _, err := shard.Load(t.Context(), pool); !errors.Is(err, shard.ErrNotBootstrapped) {
		t.Errorf("Load on an empty catalog = %v, want ErrNotBootstrapped", err)
	}
}

func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition not met within 5s")
		}
		time.Sleep(20 * time.Millisecond)
	}
}
