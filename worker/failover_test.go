package worker_test

import (
	"context"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/ordo-pipeline/ordo/rebalance"
	"github.com/ordo-pipeline/ordo/schema"
	"github.com/ordo-pipeline/ordo/shard"
)

// TestSilentWorkerFailsOver freezes a worker that holds half the shards
// (SIGSTOP: its sockets stay open and its kernel answers keepalives, so no
// timeout ever ends its sessions, as with a worker whose peers see no
// reset): the other worker must deliver the frozen one's shards within the
// contract's 10 seconds, in order; thawed, the frozen one must not
// deliver anything out of order either.
func TestSilentWorkerFailsOver(t *testing.T) {
	t.Parallel()
	h := newHook(t, nil)
	b := setup(t, 8, workspaceJSON("hook|1|"+fastRetry), map[string]*hook{"hook": h})
	w1 := b.startWorker()
	w2 := b.startWorker()
	eventually(t, 15*time.Second, "each worker holds 4 shards", func() bool { return w1.owned() == 4 && w2.owned() == 4 })
	before := stream(20, 2, "a")
	b.insert("web", []string{"hook"}, before)
	eventually(t, 10*time.Second, "events delivered before the freeze", func() bool { return h.distinct() == len(before) })

	if err := w1.cmd.Process.Signal(syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	frozen := time.Now()
	after := stream(20, 3, "b")
	b.insert("web", []string{"hook"}, after)
	took := eventually(t, 20*time.Second, "every event delivered with a worker frozen", func() bool {
		return h.distinct() == len(before)+len(after)
	})
	t.Logf("shards of the frozen worker delivered %s after the freeze", time.Since(frozen).Round(time.Millisecond))
	if took > 10*time.Second {
		t.Errorf("failover took %s, want under 10s", took)
	}
	if n := w2.owned(); n != 8 {
		t.Errorf("the live worker holds %d shards, want all 8", n)
	}
	if n := strings.Count(w2.metrics(), "\nordo_worker_shard_held{"); n != 8 {
		t.Errorf("ordo_worker_shard_held has %d series, want 8", n)
	}
	if !strings.Contains(w2.metrics(), "ordo_worker_silent_sessions_ended_total") {
		t.Errorf("metrics lack ordo_worker_silent_sessions_ended_total")
	}
	if err := w1.cmd.Process.Signal(syscall.SIGCONT); err != nil {
		t.Fatal(err)
	}
	last := stream(20, 2, "c")
	b.insert("web", []string{"hook"}, last)
	eventually(t, 15*time.Second, "every event delivered after the thaw", func() bool {
		return h.distinct() == len(before)+len(after)+len(last)
	})
	h.checkOrder(t)
}

// TestUnreachableWorkerShardsFailOver keeps the heartbeat of a worker that
// claims nothing, as a worker cut off from every node but not from the
// catalog does: it counts in everyone's fair share, so the one real worker
// aims at half the shards. The other half must still be delivered, within
// 10 seconds: shards nobody holds past the liveness window are claimed
// above the share. `rebalance status` says who holds what.
func TestUnreachableWorkerShardsFailOver(t *testing.T) {
	t.Parallel()
	h := newHook(t, nil)
	b := setup(t, 8, workspaceJSON("hook|1|"+fastRetry), map[string]*hook{"hook": h})
	catalog := b.connect(b.catalogURL)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	ghost := make(chan struct{})
	go func() {
		defer close(ghost)
		for ctx.Err() == nil {
			catalog.Exec(ctx, `INSERT INTO ordo_catalog.workers (id) VALUES ('cut-off') ON CONFLICT (id) DO UPDATE SET heartbeat_at = now()`) //nolint:errcheck // until cancelled
			time.Sleep(200 * time.Millisecond)
		}
	}()
	defer func() { cancel(); <-ghost }()
	time.Sleep(300 * time.Millisecond)

	w := b.startWorker("ORDO_WORKER_ID=real", "ORDO_WORKER_LIVENESS=3s")
	// Until the liveness window passes, the worker holds its share and
	// says for how long nobody has held the others.
	eventually(t, 3*time.Second, "unowned shards in the metrics", func() bool {
		return strings.Count(w.metrics(), "\nordo_worker_shard_unowned_seconds{") == 4
	})
	events := stream(30, 3, "u")
	b.insert("web", []string{"hook"}, events)
	took := eventually(t, 20*time.Second, "every event delivered beside a worker that claims nothing", func() bool {
		return h.distinct() == len(events)
	})
	t.Logf("delivered %s after the worker started", took.Round(time.Millisecond))
	if took > 10*time.Second {
		t.Errorf("took %s, want under 10s", took)
	}
	h.checkOrder(t)
	if n := w.owned(); n != 8 {
		t.Errorf("the worker holds %d shards, want all 8", n)
	}
	// Kept above the share: no shard goes back and forth meanwhile.
	time.Sleep(2 * time.Second)
	if n := w.owned(); n != 8 {
		t.Errorf("the worker holds %d shards 2s later, want all 8 still", n)
	}

	r, err := rebalance.Status(context.Background(), b.catalogURL)
	if err != nil {
		t.Fatal(err)
	}
	var out strings.Builder
	if err := r.Print(&out); err != nil {
		t.Fatal(err)
	}
	t.Logf("status:\n%s", out.String())
	for _, want := range []string{"real", "cut-off", "0-7", "shards nobody holds: none"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("status lacks %q", want)
		}
	}
	if n := strings.Count(w.metrics(), "\nordo_worker_shard_held{"); n != 8 {
		t.Errorf("ordo_worker_shard_held has %d series, want 8", n)
	}

	// With the worker dead, status says for how long nobody has held each.
	w.kill()
	time.Sleep(1500 * time.Millisecond)
	r, err = rebalance.Status(context.Background(), b.catalogURL)
	if err != nil {
		t.Fatal(err)
	}
	if len(r.Unowned) != 8 {
		t.Fatalf("status lists %d unowned shards after the worker died, want 8: %+v", len(r.Unowned), r.Unowned)
	}
	for _, u := range r.Unowned {
		if u.For < time.Second || u.For > 10*time.Second || u.Unknown {
			t.Errorf("shard %d unowned for %s (unknown %v), want about 1.5s", u.Shard, u.For, u.Unknown)
		}
	}
	out.Reset()
	if err := r.Print(&out); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out.String(), "shards nobody holds: 8") {
		t.Errorf("status after the worker died:\n%s", out.String())
	}
}

// blockedSource is a COPY source that never yields a row, as a gateway cut
// off in the middle of a write sends none.
type blockedSource struct{ until <-chan struct{} }

func (s blockedSource) Next() bool             { <-s.until; return false }
func (s blockedSource) Values() ([]any, error) { return nil, nil }
func (s blockedSource) Err() error             { return nil }

// TestSilentWriterIsEnded holds a shard's write lock in a COPY that
// receives no data, as a gateway cut off from the node mid-write leaves
// it: every other writer of the shard, through any gateway, would wait
// behind it until the node ended the session (hours without keepalives).
// A worker must end it, so that the next writer commits.
func TestSilentWriterIsEnded(t *testing.T) {
	t.Parallel()
	h := newHook(t, nil)
	b := setup(t, 2, workspaceJSON("hook|1|"+fastRetry), map[string]*hook{"hook": h})
	b.startWorker("ORDO_WORKER_SILENCE=1s")
	ctx := context.Background()
	s := shard.For("k", 2)
	url := b.nodeURLs[b.snap.Shards[s].Node]
	stuck := b.connect(url)
	release := make(chan struct{})
	stuckDone := make(chan error, 1)
	go func() {
		stuckDone <- pgx.BeginFunc(ctx, stuck, func(tx pgx.Tx) error {
			if err := schema.LockForWrite(ctx, tx, []int{s}); err != nil {
				return err
			}
			_, err := tx.CopyFrom(ctx, schema.Table(s), schema.Columns, blockedSource{release})
			return err
		})
	}()
	time.Sleep(300 * time.Millisecond)
	next := b.connect(url)
	began := time.Now()
	wctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if err := pgx.BeginFunc(wctx, next, func(tx pgx.Tx) error { return writeRow(wctx, tx, s, event{Key: "k", I: 1}) }); err != nil {
		t.Fatalf("the next writer of the shard, behind the silent one: %v", err)
	}
	t.Logf("the next writer committed after %s behind the silent one", time.Since(began).Round(time.Millisecond))
	close(release)
	if err := <-stuckDone; err == nil {
		t.Error("the silent writer's transaction committed, want it ended")
	}
	eventually(t, 10*time.Second, "its event delivered", func() bool { return h.distinct() == 1 })
}
