package worker

import (
	"context"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"
)

// pinger keeps this worker's claim connections from looking silent: every
// Heartbeat it runs a trivial statement on each of them, so that other
// workers watching the nodes (watch.go) see them idle for at most about a
// Heartbeat. A connection whose ping fails is marked lost, which ends its
// claims, sooner than a shard loop waiting for its next read would notice.
//
// It runs on a goroutine of its own, never held up by the claim manager
// (which may be dialling a node, or waiting for a lock): a worker whose
// pings stopped while it is well would lose its shards to the others.
type pinger struct {
	every    time.Duration
	sessions atomic.Pointer[[]*session] // published by the manager
	inFlight map[*session]*atomic.Bool  // pinger goroutine only
}

// publish replaces the sessions to ping.
func (p *pinger) publish(list []*session) {
	p.sessions.Store(&list)
}

func (p *pinger) run(ctx context.Context) {
	p.inFlight = map[*session]*atomic.Bool{}
	tick := time.NewTicker(p.every)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		list := p.sessions.Load()
		if list == nil {
			continue
		}
		live := make(map[*session]*atomic.Bool, len(*list))
		for _, s := range *list {
			busy := p.inFlight[s]
			if busy == nil {
				busy = &atomic.Bool{}
			}
			live[s] = busy
			if s.lost.Load() || !busy.CompareAndSwap(false, true) {
				continue // the last ping still waits for the connection
			}
			go func() {
				defer busy.Store(false)
				_ = s.do(ctx, func(ctx context.Context, conn *pgx.Conn) error {
					_, err := conn.Exec(ctx, "SELECT 1")
					return err
				})
			}()
		}
		p.inFlight = live
	}
}
