package worker

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/ordo-pipeline/ordo/schema"
)

// Watching the nodes: who holds which shard, and whether a holder went
// silent.
//
// A worker cut off from a node by a partition holds its shards' locks
// there for as long as the node keeps its sessions: the node sees no
// reset, and keepalives take several seconds to fail. A worker frozen (or
// whose host hangs) holds them for good, as its kernel still answers
// keepalives. Either way its shards wait undelivered. So every worker
// watches every node on a connection of its own: every Heartbeat it lists
// the shards' lock holders, and ends (pg_terminate_backend) the sessions
// of other workers that have been idle longer than ORDO_WORKER_SILENCE. A
// live worker pings each of its claim sessions every Heartbeat, so its
// sessions are never idle that long; a silent one's are. The shards are
// then free, and the watcher's worker claims them at once, above its fair
// share if it must (see orphans.go).
//
// The watch also tells the manager which shards nobody holds, and since
// when, and whether the node answers at all: the manager does not dial a
// node its watcher cannot reach.

// holder is a session that holds a shard's lock on a node.
type holder struct {
	pid    int32
	app    string
	state  string
	wait   string        // wait_event_type: "Client" while it waits for its client
	silent time.Duration // since the session last changed state
}

// workerOf returns the worker id of an application name of a worker's
// claim session ("ordo-worker <id>"), or "".
func workerOf(app string) string {
	id, ok := strings.CutPrefix(app, appPrefix)
	if !ok || strings.Contains(id, " ") {
		return ""
	}
	return id
}

// appPrefix starts the application name of every worker session.
const appPrefix = "ordo-worker "

// watchReport is one look at a node.
type watchReport struct {
	node string
	at   time.Time
	err  error
	// held is every shard whose lock is held, and by whom, after the
	// silent holders were ended.
	held map[int]holder
	// ended are the shards whose silent holder this look ended, with the
	// holder: free now, and orphaned since the holder went silent.
	ended map[int]holder
}

// watcher looks at one node every Heartbeat and reports to the manager.
type watcher struct {
	node, url string
	self      string // this worker's application name
	tuning    *Tuning
	log       *slog.Logger
	metrics   *metrics
	reports   chan<- watchReport
	conn      *pgx.Conn
}

func (w *watcher) run(ctx context.Context) {
	defer func() {
		if w.conn != nil {
			w.conn.Close(context.Background()) //nolint:errcheck // a connection we give up on
		}
	}()
	tick := time.NewTicker(w.tuning.Heartbeat)
	defer tick.Stop()
	for {
		r := w.look(ctx)
		select {
		case w.reports <- r:
		case <-ctx.Done():
			return
		}
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
	}
}

// endWait is how long ending a silent worker's session waits for its
// backend to exit; one that takes longer is ended again at the next look.
const endWait = time.Second

// look lists the node's shard lock holders and ends the silent ones.
func (w *watcher) look(ctx context.Context) watchReport {
	r := watchReport{node: w.node, at: time.Now()}
	// A look that takes longer than the silence says the node is silent
	// to us; the connection is dropped and dialled again next time.
	ctx, cancel := context.WithTimeout(ctx, w.tuning.Silence)
	defer cancel()
	if w.conn == nil || w.conn.IsClosed() {
		cfg, err := pgx.ParseConfig(w.url)
		if err != nil {
			r.err = fmt.Errorf("node %s: parsing url: %w", w.node, err)
			return r
		}
		configure(&cfg.Config, w.tuning.KeepAlive, w.self+" watch")
		conn, err := pgx.ConnectConfig(ctx, cfg)
		if err != nil {
			r.err = fmt.Errorf("node %s: connecting: %w", w.node, err)
			return r
		}
		w.conn = conn
	}
	held, writers, err := holders(ctx, w.conn)
	if err != nil {
		w.conn.Close(context.Background()) //nolint:errcheck // dialled again next time
		w.conn = nil
		r.err = fmt.Errorf("node %s: listing shard holders: %w", w.node, err)
		return r
	}
	for s, h := range held {
		if !w.isSilent(h) {
			continue
		}
		var ok bool
		// With a timeout, pg_terminate_backend returns once the backend
		// has exited and released its locks (false if it did not within
		// endWait): only then are its shards free to claim.
		if err := w.conn.QueryRow(ctx, `SELECT pg_terminate_backend($1, $2)`, h.pid, endWait.Milliseconds()).Scan(&ok); err != nil {
			w.log.Warn("ending a silent worker's session failed", "node", w.node, "shard", s, "pid", h.pid, "holder", h.app, "error", err)
			continue
		}
		if !ok {
			continue
		}
		w.log.Warn("ended a silent worker's session; its shards are free", "node", w.node, "shard", s, "pid", h.pid,
			"holder", workerOf(h.app), "silent", h.silent.Round(time.Millisecond))
		w.metrics.silentEnded.Inc()
		if r.ended == nil {
			r.ended = map[int]holder{}
		}
		r.ended[s] = h
		// Every shard of the same session is free too.
		for s2, h2 := range held {
			if h2.pid == h.pid {
				r.ended[s2] = h2
			}
		}
	}
	for s := range r.ended {
		delete(held, s)
	}
	r.held = held
	w.endSilentWriters(ctx, writers)
	return r
}

// endSilentWriters ends the transactions of writers (gateways) that hold
// shards' write locks (schema.LockForWrite) while they wait, past the
// silence, for their client: a gateway cut off from the node in the
// middle of a write. Every other writer of those shards waits behind such
// a transaction, through any gateway, until the node ends the session,
// which without keepalives takes hours. Nothing it wrote was committed,
// so nothing is lost: its request failed, and the client retries it.
func (w *watcher) endSilentWriters(ctx context.Context, writers []holder) {
	done := map[int32]bool{}
	for _, h := range writers {
		if done[h.pid] || h.silent <= w.tuning.Silence {
			continue
		}
		if h.state != "idle in transaction" && (h.state != "active" || h.wait != "Client") {
			continue
		}
		done[h.pid] = true
		var ok bool
		if err := w.conn.QueryRow(ctx, `SELECT pg_terminate_backend($1)`, h.pid).Scan(&ok); err != nil {
			w.log.Warn("ending a silent writer's session failed", "node", w.node, "pid", h.pid, "application", h.app, "error", err)
			continue
		}
		if ok {
			w.log.Warn("ended a silent writer's session, which held shards' write locks", "node", w.node, "pid", h.pid,
				"application", h.app, "state", h.state, "silent", h.silent.Round(time.Millisecond))
			w.metrics.silentEnded.Inc()
		}
	}
}

// isSilent reports whether h is another worker's claim session that has
// been idle past the silence.
func (w *watcher) isSilent(h holder) bool {
	if h.app == w.self || workerOf(h.app) == "" {
		return false
	}
	if h.state != "idle" && h.state != "idle in transaction" {
		return false
	}
	return h.silent > w.tuning.Silence
}

// holders returns the sessions that hold shard locks on the node, by
// shard, and those that hold shards' write locks.
func holders(ctx context.Context, conn *pgx.Conn) (map[int]holder, []holder, error) {
	rows, err := conn.Query(ctx, `SELECT l.classid::int, l.objid::int, a.pid, coalesce(a.application_name, ''), coalesce(a.state, ''),
			coalesce(a.wait_event_type, ''), coalesce(extract(epoch FROM clock_timestamp() - a.state_change), 0)::float8
		FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid
		WHERE l.locktype = 'advisory' AND l.granted AND l.classid IN ($1::int::oid, $2::int::oid) AND l.objsubid = 2
		  AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database())`, schema.LockClass, schema.WriteLockClass)
	if err != nil {
		return nil, nil, err
	}
	held := map[int]holder{}
	var writers []holder
	var class int32
	var s int
	var h holder
	var secs float64
	_, err = pgx.ForEachRow(rows, []any{&class, &s, &h.pid, &h.app, &h.state, &h.wait, &secs}, func() error {
		h.silent = time.Duration(secs * float64(time.Second))
		if class == schema.LockClass {
			held[s] = h
		} else {
			writers = append(writers, h)
		}
		return nil
	})
	return held, writers, err
}
