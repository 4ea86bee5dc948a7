package overview

import (
	"cmp"
	"context"
	"fmt"
	"slices"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/ordo-pipeline/ordo/rebalance"
	"github.com/ordo-pipeline/ordo/shard"
)

// Liveness is how fresh a worker's heartbeat must be for it to show as
// live: the workers' default ORDO_WORKER_LIVENESS.
const Liveness = 5 * time.Second

// Shard is one shard's line.
type Shard struct {
	Shard       int     `json:"shard"`
	Node        string  `json:"node"`
	Epoch       int64   `json:"epoch"`
	State       string  `json:"state"`
	Pending     int64   `json:"pending"`     // -1: node unreachable
	DeadLetters int64   `json:"deadLetters"` // -1: node unreachable
	Lag         float64 `json:"lagSeconds"`  // age of the oldest pending event; 0 when none, -1 unknown
	// Holder is the worker that delivers the shard ("" for none); when
	// another session holds the shard's lock (rebalance copying it), Holder
	// names that session.
	Holder string `json:"holder"`
}

// Worker is one worker with a heartbeat row in the catalog.
type Worker struct {
	ID          string    `json:"id"`
	StartedAt   time.Time `json:"startedAt"`
	HeartbeatAt time.Time `json:"heartbeatAt"`
	// Age is how old its heartbeat was when read.
	Age    float64 `json:"heartbeatAgeSeconds"`
	Live   bool    `json:"live"`
	Shards []int   `json:"shards"`
}

// Move is a move in progress or failed, with how far it has come.
type Move struct {
	ID         int64     `json:"id"`
	Shard      int       `json:"shard"`
	Source     string    `json:"source"`
	Target     string    `json:"target"`
	Step       string    `json:"step"`
	State      string    `json:"state"`
	RowsCopied int64     `json:"rowsCopied"`
	Error      string    `json:"error,omitempty"`
	Since      time.Time `json:"since"`
	// StepsDone of StepsTotal is how far the move has come.
	StepsDone  int `json:"stepsDone"`
	StepsTotal int `json:"stepsTotal"`
}

// Node is one node's line of the report.
type Node struct {
	Name        string  `json:"name"`
	URL         string  `json:"url"` // redacted
	State       string  `json:"state"`
	Shards      int     `json:"shards"`
	Pending     int64   `json:"pending"`
	DeadLetters int64   `json:"deadLetters"`
	MaxLag      float64 `json:"maxLagSeconds"`
	Error       string  `json:"error,omitempty"`
}

// Overview is the whole picture at one moment.
type Overview struct {
	At         time.Time `json:"at"`
	ShardCount int       `json:"shardCount"`
	Nodes      []Node    `json:"nodes"`
	Shards     []Shard   `json:"shards"`
	Workers    []Worker  `json:"workers"`
	Moves      []Move    `json:"moves"`
	// Report is rebalance status's report the overview was built from.
	Report *rebalance.Report `json:"-"`
}

// nodeExtra is what Read adds to rebalance's reading of one node.
type nodeExtra struct {
	lag     map[int]float64
	holders map[int]string
}

// Read builds the overview from the catalog at catalogURL and every node.
// It returns shard.ErrNotBootstrapped for an empty catalog. A node that
// cannot be read shows with its error; its shards' figures are -1.
func Read(ctx context.Context, catalogURL string) (*Overview, error) {
	extra := map[string]*nodeExtra{}
	report, err := rebalance.StatusWith(ctx, catalogURL, func(ctx context.Context, n shard.Node, conn *pgx.Conn) error {
		x := &nodeExtra{}
		var err error
		if x.lag, err = shardLag(ctx, conn); err != nil {
			return err
		}
		if x.holders, err = holders(ctx, conn); err != nil {
			return err
		}
		extra[n.Name] = x
		return nil
	})
	if err != nil {
		return nil, oneLineError{err}
	}
	o := &Overview{At: time.Now().UTC(), ShardCount: report.ShardCount, Report: report, Shards: []Shard{}, Workers: []Worker{}, Moves: []Move{}}
	nodes := map[string]rebalance.NodeStatus{}
	for _, n := range report.Nodes {
		nodes[n.Name] = n
	}
	for _, p := range report.Shards {
		s := Shard{Shard: p.Shard, Node: p.Node, Epoch: p.Epoch, State: p.State, Pending: -1, DeadLetters: -1, Lag: -1}
		n := nodes[p.Node]
		if x := extra[p.Node]; x != nil && n.Err == nil {
			s.Pending, s.DeadLetters, s.Lag, s.Holder = n.PendingByShard[p.Shard], n.DeadByShard[p.Shard], x.lag[p.Shard], x.holders[p.Shard]
		}
		o.Shards = append(o.Shards, s)
	}
	for _, n := range report.Nodes {
		line := Node{Name: n.Name, URL: n.URL, State: n.State, Shards: n.Shards, Pending: n.Pending, DeadLetters: n.DeadLetters}
		if n.Err != nil {
			line.Error = oneLineError{n.Err}.Error()
			line.MaxLag = -1
		} else if x := extra[n.Name]; x != nil {
			for s, lag := range x.lag {
				if s < len(report.Shards) && report.Shards[s].Node == n.Name {
					line.MaxLag = max(line.MaxLag, lag)
				}
			}
		}
		o.Nodes = append(o.Nodes, line)
	}
	for _, m := range report.Moves {
		done, total := rebalance.StepProgress(m.Step)
		o.Moves = append(o.Moves, Move{ID: m.ID, Shard: m.Shard, Source: m.Source, Target: m.Target, Step: m.Step, State: m.State,
			RowsCopied: m.RowsCopied, Error: m.Error, Since: m.Since, StepsDone: done, StepsTotal: total})
	}
	if o.Workers, err = workers(ctx, catalogURL); err != nil {
		return nil, oneLineError{err}
	}
	byID := map[string]*Worker{}
	for i := range o.Workers {
		byID[o.Workers[i].ID] = &o.Workers[i]
	}
	for _, s := range o.Shards {
		if w := byID[s.Holder]; w != nil {
			w.Shards = append(w.Shards, s.Shard)
		}
	}
	return o, nil
}

func workers(ctx context.Context, catalogURL string) ([]Worker, error) {
	conn, err := pgx.Connect(ctx, catalogURL)
	if err != nil {
		return nil, fmt.Errorf("connecting to catalog: %w", err)
	}
	defer conn.Close(context.WithoutCancel(ctx))
	rows, err := conn.Query(ctx, `SELECT id, started_at, heartbeat_at, extract(epoch FROM now() - heartbeat_at)::float8
		FROM ordo_catalog.workers ORDER BY id`)
	if err != nil {
		return nil, fmt.Errorf("reading workers: %w", err)
	}
	ws, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (Worker, error) {
		w := Worker{Shards: []int{}}
		err := r.Scan(&w.ID, &w.StartedAt, &w.HeartbeatAt, &w.Age)
		w.Live = w.Age < Liveness.Seconds()
		return w, err
	})
	if err != nil {
		return nil, fmt.Errorf("reading workers: %w", err)
	}
	slices.SortFunc(ws, func(a, b Worker) int { return cmp.Compare(a.ID, b.ID) })
	return ws, nil
}
