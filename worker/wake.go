package worker

import (
	"context"
	"log/slog"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/ordo-pipeline/ordo/internal/dsn"
	"github.com/ordo-pipeline/ordo/schema"
	"github.com/ordo-pipeline/ordo/shard"
)

// Waking shard loops when rows commit.
//
// Every writer's transaction notifies schema.RowsChannel on its node with
// the shards it wrote (schema.LockForWrite), and Postgres delivers the
// notification when, and only if, the transaction commits. A worker keeps
// one listening connection per node; each notification wakes the loops of
// the shards it names, which then read at once. A loop also reads when it
// starts (after a claim), and every Tuning.Poll as the safety net.
//
// A wake-up can still be missed: while a listener is disconnected, or if
// the notification was lost. So while a node's listener is down, the loops
// of its shards poll every downPoll instead of Poll (they are woken when
// it fails, to reschedule), and a listener that (re)connects wakes every
// loop of its node once it listens, which reads whatever committed while
// it was away. Anything else missed waits at most one Poll.

// listenRetry is how long a listener waits before it connects again.
const listenRetry = time.Second

// downPoll is how often a shard is polled while its node's listener is
// down.
const downPoll = 500 * time.Millisecond

// waker routes notifications to shard loops. It is safe for concurrent
// use.
type waker struct {
	log       *slog.Logger
	keepAlive time.Duration
	timeout   time.Duration
	app       string
	metrics   *metrics

	mu        sync.Mutex
	loops     map[int]wakeEntry
	listeners map[string]*listener // by node name
	up        map[string]bool      // nodes whose listener listens
}

// wakeEntry is a registered loop: its node and its wake channel.
type wakeEntry struct {
	node string
	ch   chan struct{}
}

// listener is the listening connection of one node.
type listener struct {
	url  string
	stop context.CancelFunc
	done chan struct{}
}

func newWaker(log *slog.Logger, t *Tuning, app string, m *metrics) *waker {
	return &waker{
		log:       log,
		keepAlive: t.KeepAlive,
		timeout:   t.DBTimeout,
		app:       app,
		metrics:   m,
		loops:     map[int]wakeEntry{},
		listeners: map[string]*listener{},
		up:        map[string]bool{},
	}
}

// listening reports whether node's listener is up, so that its shards
// need only the slow safety-net poll.
func (w *waker) listening(node string) bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.up[node]
}

// setUp records whether node's listener is up.
func (w *waker) setUp(node string, up bool) {
	w.mu.Lock()
	w.up[node] = up
	w.mu.Unlock()
}

// register returns the channel on which the loop of shard, on node, is
// woken. The channel holds one wake-up, so wake-ups that come while the
// loop is busy collapse into one.
func (w *waker) register(s int, node string) chan struct{} {
	ch := make(chan struct{}, 1)
	w.mu.Lock()
	w.loops[s] = wakeEntry{node: node, ch: ch}
	w.mu.Unlock()
	return ch
}

// unregister forgets the loop of shard registered with ch.
func (w *waker) unregister(s int, ch chan struct{}) {
	w.mu.Lock()
	if e, ok := w.loops[s]; ok && e.ch == ch {
		delete(w.loops, s)
	}
	w.mu.Unlock()
}

// wake wakes the loops of shards on node, or every loop of node when all
// is set. A shard whose loop runs on another node (it moved) is left
// alone: that node announces its own rows.
func (w *waker) wake(node string, shards []int, all bool) {
	w.mu.Lock()
	defer w.mu.Unlock()
	poke := func(e wakeEntry) {
		if e.node != node {
			return
		}
		select {
		case e.ch <- struct{}{}:
		default:
		}
	}
	if all {
		for _, e := range w.loops {
			poke(e)
		}
		return
	}
	for _, s := range shards {
		if e, ok := w.loops[s]; ok {
			poke(e)
		}
	}
}

// run keeps one listener per node of the map until ctx ends. (Loops
// whose shard the map moved are let go by the manager: releaseMoved.)
func (w *waker) run(ctx context.Context, smap *shard.Map) {
	sub := smap.Subscribe()
	for {
		w.sync(ctx, smap.Current())
		select {
		case <-ctx.Done():
			w.sync(ctx, nil)
			return
		case <-sub:
		}
	}
}

// sync starts a listener for each node of snap that has none (or whose
// URL changed) and stops those of nodes snap does not hold; a nil snap
// stops them all.
func (w *waker) sync(ctx context.Context, snap *shard.Snapshot) {
	w.mu.Lock()
	var stopped []*listener
	for name, l := range w.listeners {
		if n, ok := nodeOf(snap, name); !ok || n.URL != l.url {
			l.stop()
			stopped = append(stopped, l)
			delete(w.listeners, name)
		}
	}
	if snap != nil && ctx.Err() == nil {
		for name, n := range snap.Nodes {
			if _, ok := w.listeners[name]; ok || n.State == "detached" {
				continue
			}
			lctx, cancel := context.WithCancel(ctx)
			l := &listener{url: n.URL, stop: cancel, done: make(chan struct{})}
			w.listeners[name] = l
			go func() {
				defer close(l.done)
				w.listen(lctx, name, n.URL)
			}()
		}
	}
	w.mu.Unlock()
	for _, l := range stopped {
		<-l.done
	}
}

func nodeOf(snap *shard.Snapshot, name string) (shard.Node, bool) {
	if snap == nil {
		return shard.Node{}, false
	}
	n, ok := snap.Nodes[name]
	return n, ok && n.State != "detached"
}

// listen keeps a listening connection to node until ctx ends, connecting
// again after every failure.
func (w *waker) listen(ctx context.Context, node, url string) {
	defer w.setUp(node, false)
	for ctx.Err() == nil {
		err := w.listenOnce(ctx, node, url)
		w.setUp(node, false)
		if ctx.Err() != nil {
			return
		}
		// Its loops poll every downPoll until it is back: wake them so that
		// they reschedule.
		w.wake(node, nil, true)
		w.metrics.listenerErrors.WithLabelValues(node).Inc()
		w.log.Warn("listening for new rows failed; shards of the node are polled until it is back",
			"node", node, "url", dsn.Redact(url), "error", err)
		select {
		case <-ctx.Done():
		case <-time.After(listenRetry):
		}
	}
}

// listenOnce connects, listens, wakes every loop of node (whatever
// committed before the listen began is read now), then wakes loops as
// notifications arrive, until the connection fails or ctx ends.
func (w *waker) listenOnce(ctx context.Context, node, url string) error {
	cfg, err := pgx.ParseConfig(url)
	if err != nil {
		return err
	}
	configure(&cfg.Config, w.keepAlive, w.app+" listener")
	cctx, cancel := context.WithTimeout(ctx, w.timeout)
	conn, err := pgx.ConnectConfig(cctx, cfg)
	if err == nil {
		_, err = conn.Exec(cctx, "LISTEN "+pgx.Identifier{schema.RowsChannel}.Sanitize())
	}
	cancel()
	if err != nil {
		if conn != nil {
			conn.Close(context.Background()) //nolint:errcheck // already failing
		}
		return err
	}
	defer conn.Close(context.Background()) //nolint:errcheck // nothing to do about it
	w.log.Debug("listening for new rows", "node", node)
	w.setUp(node, true)
	w.wake(node, nil, true)
	for {
		n, err := conn.WaitForNotification(ctx)
		if err != nil {
			return err
		}
		w.metrics.wakeups.WithLabelValues(node).Inc()
		shards, all := schema.ParsePayload(n.Payload)
		w.wake(node, shards, all)
	}
}
