package worker

import (
	"context"
	"log/slog"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/ordo-pipeline/ordo/schema"
)

// vacuumer vacuums shard tables soon after their worker deleted many rows,
// instead of waiting for autovacuum, whose launcher visits each database
// only once per autovacuum_naptime (a minute by default): at tens of
// thousands of deliveries a second, a minute of dead rows is hundreds of
// megabytes of table that new rows cannot reuse until a vacuum frees it.
// One connection per node, separate from the claim connections (a VACUUM
// does not need the shard's lock and must not hold up its deliveries),
// vacuums one table at a time; requests for a table already waiting are
// merged.
type vacuumer struct {
	tuning *Tuning
	log    *slog.Logger
	app    string

	mu    sync.Mutex
	nodes map[string]*nodeVacuum
	wg    sync.WaitGroup
	ctx   context.Context
}

type nodeVacuum struct {
	url     string
	wake    chan struct{}
	pending map[int]bool
}

func newVacuumer(ctx context.Context, t *Tuning, log *slog.Logger, app string) *vacuumer {
	return &vacuumer{tuning: t, log: log, app: app, nodes: map[string]*nodeVacuum{}, ctx: ctx}
}

// request asks for shard's table on node to be vacuumed. It never blocks.
func (v *vacuumer) request(node, url string, shard int) {
	v.mu.Lock()
	defer v.mu.Unlock()
	if v.ctx.Err() != nil {
		return
	}
	n := v.nodes[node]
	if n == nil {
		n = &nodeVacuum{url: url, wake: make(chan struct{}, 1), pending: map[int]bool{}}
		v.nodes[node] = n
		v.wg.Add(1)
		go v.run(node, n)
	}
	n.url = url
	n.pending[shard] = true
	select {
	case n.wake <- struct{}{}:
	default:
	}
}

// wait waits for the vacuums under way after the context ended.
func (v *vacuumer) wait() { v.wg.Wait() }

func (v *vacuumer) run(node string, n *nodeVacuum) {
	defer v.wg.Done()
	var conn *pgx.Conn
	defer func() {
		if conn != nil {
			conn.Close(context.Background()) //nolint:errcheck // at exit
		}
	}()
	for {
		select {
		case <-v.ctx.Done():
			return
		case <-n.wake:
		}
		v.mu.Lock()
		shards := make([]int, 0, len(n.pending))
		for s := range n.pending {
			shards = append(shards, s)
		}
		clear(n.pending)
		url := n.url
		v.mu.Unlock()
		for _, s := range shards {
			if conn == nil || conn.IsClosed() {
				c, err := connectVacuum(v.ctx, url, v.tuning, v.app)
				if err != nil {
					v.log.Debug("vacuum: cannot reach node", "node", node, "error", err)
					break
				}
				conn = c
			}
			began := time.Now()
			// Bounded by the statement timeout; SKIP_LOCKED passes over a
			// table being dropped or fenced.
			ctx, cancel := context.WithTimeout(v.ctx, 5*v.tuning.DBTimeout)
			_, err := conn.Exec(ctx, "VACUUM (SKIP_LOCKED) "+schema.Table(s).Sanitize())
			cancel()
			if err != nil {
				v.log.Debug("vacuum failed", "node", node, "shard", s, "error", err)
				continue
			}
			v.log.Debug("vacuumed shard table", "node", node, "shard", s, "took", time.Since(began))
		}
	}
}

func connectVacuum(ctx context.Context, url string, t *Tuning, app string) (*pgx.Conn, error) {
	cfg, err := pgx.ParseConfig(url)
	if err != nil {
		return nil, err
	}
	configure(&cfg.Config, t.KeepAlive, app+" vacuum")
	ctx, cancel := context.WithTimeout(ctx, t.DBTimeout)
	defer cancel()
	return pgx.ConnectConfig(ctx, cfg)
}

// vacuumPace is a shard loop's side of vacuuming: it asks for the shard's
// table to be vacuumed once the loop has deleted VacuumRows rows since the
// last ask, and not more often than VacuumEvery.
type vacuumPace struct {
	request func() // nil disables
	tuning  *Tuning
	deleted int // rows deleted since the last request
	last    time.Time
}

// deletedRows records that n rows were deleted at now, and asks for a
// vacuum when one is due.
func (v *vacuumPace) deletedRows(n int, now time.Time) {
	v.deleted += n
	if v.request != nil && v.deleted >= v.tuning.VacuumRows && now.Sub(v.last) >= v.tuning.VacuumEvery {
		v.request()
		v.deleted, v.last = 0, now
	}
}
