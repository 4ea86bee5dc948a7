package rebalance

import (
	"context"
	"fmt"
	"io"
	"slices"
	"text/tabwriter"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/ordo-pipeline/ordo/internal/dsn"
	"github.com/ordo-pipeline/ordo/schema"
	"github.com/ordo-pipeline/ordo/shard"
)

// NodeStatus is one node's line of the status report.
type NodeStatus struct {
	Name        string
	URL         string // redacted
	State       string
	Shards      int
	Pending     int64 // rows waiting in the node's shard tables; -1 if unreachable
	DeadLetters int64 // -1 if unreachable
	Err         error // why the node could not be read, if it could not

	// PendingByShard and DeadByShard break Pending and DeadLetters down
	// by shard (shards with none are left out of DeadByShard); nil when
	// the node was not read.
	PendingByShard map[int]int64
	DeadByShard    map[int]int64
	// Holders says who holds each shard lock on the node: a worker's id,
	// or the application name of another session; nil when not read.
	Holders map[int]string
}

// MoveStatus is one unfinished move.
type MoveStatus struct {
	ID         int64
	Shard      int
	Source     string
	Target     string
	Step       string
	State      string
	RowsCopied int64
	Error      string
	Since      time.Time
}

// Report is what `rebalance status` prints.
type Report struct {
	ShardCount int
	Nodes      []NodeStatus
	Moves      []MoveStatus
	// Shards is the placement map the report was built from.
	Shards []shard.Placement
	// Workers are the workers with a heartbeat row or a shard, and the
	// shards each holds (as the nodes' locks say).
	Workers []WorkerStatus
	// Unowned are the active shards that no worker holds.
	Unowned []UnownedShard
}

// NodeReader reads more of a reachable node, on the connection Status
// read it with; its error marks the node unreachable like Status's own.
type NodeReader func(ctx context.Context, node shard.Node, conn *pgx.Conn) error

// NodeTimeout bounds how long status waits for one node.
const NodeTimeout = 5 * time.Second

// Status reads the cluster's state from the catalog at catalogURL and
// from every node it lists.
func Status(ctx context.Context, catalogURL string) (*Report, error) {
	return StatusWith(ctx, catalogURL, nil)
}

// StatusWith is Status that also calls more, when not nil, for every node
// that is not detached and could be read.
func StatusWith(ctx context.Context, catalogURL string, more NodeReader) (*Report, error) {
	conn, err := connectCatalog(ctx, catalogURL)
	if err != nil {
		return nil, fmt.Errorf("connecting to catalog: %w", err)
	}
	defer conn.Close(context.WithoutCancel(ctx))
	snap, err := shard.Load(ctx, conn)
	if isUndefinedTable(err) {
		return nil, shard.ErrNotBootstrapped
	}
	if err != nil {
		return nil, err
	}
	r := &Report{ShardCount: snap.Count(), Shards: snap.Shards}
	counts := map[string]int{}
	for _, p := range snap.Shards {
		counts[p.Node]++
	}
	holders := map[int]string{} // shard → holder, on the nodes that answered
	for _, n := range snap.Nodes {
		ns := NodeStatus{Name: n.Name, URL: dsn.Redact(n.URL), State: n.State, Shards: counts[n.Name]}
		if n.State != "detached" {
			ns.Err = readNode(ctx, n, &ns, more)
			if ns.Err != nil {
				ns.Pending, ns.DeadLetters, ns.PendingByShard, ns.DeadByShard = -1, -1, nil, nil
			}
			for sh, h := range ns.Holders {
				if sh < snap.Count() && snap.Shards[sh].Node == n.Name {
					holders[sh] = h
				}
			}
		}
		r.Nodes = append(r.Nodes, ns)
	}
	if err := r.readOwners(ctx, conn, snap, holders); err != nil {
		return nil, err
	}
	slices.SortFunc(r.Nodes, func(a, b NodeStatus) int {
		switch {
		case a.Name < b.Name:
			return -1
		case a.Name > b.Name:
			return 1
		}
		return 0
	})
	rows, err := conn.Query(ctx, `SELECT id, shard, source, target, step, state, rows_copied, coalesce(error, ''), updated_at
		FROM ordo_catalog.moves
		WHERE state IN ('pending', 'running')
		   OR (state = 'failed' AND step IN ('flipped', 'copied', 'source_dropped'))
		   OR (state = 'failed' AND updated_at > now() - interval '1 day')
		ORDER BY id`)
	if err != nil {
		return nil, fmt.Errorf("reading moves: %w", err)
	}
	var m MoveStatus
	_, err = pgx.ForEachRow(rows, []any{&m.ID, &m.Shard, &m.Source, &m.Target, &m.Step, &m.State, &m.RowsCopied, &m.Error, &m.Since}, func() error {
		r.Moves = append(r.Moves, m)
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("reading moves: %w", err)
	}
	return r, nil
}

// readNode reads a node's pending rows and dead letters, and who holds its
// shard locks.
func readNode(ctx context.Context, n shard.Node, ns *NodeStatus, more NodeReader) error {
	ctx, cancel := context.WithTimeout(ctx, NodeTimeout)
	defer cancel()
	conn, err := connectNode(ctx, n.URL)
	if err != nil {
		return err
	}
	defer conn.Close(context.WithoutCancel(ctx))
	ns.PendingByShard, err = schema.PendingAll(ctx, conn)
	if err != nil {
		return err
	}
	for _, c := range ns.PendingByShard {
		ns.Pending += c
	}
	ns.DeadByShard = map[int]int64{}
	rows, err := conn.Query(ctx, `SELECT shard, count(*) FROM ordo.dead_letters GROUP BY shard`)
	if err != nil && !isUndefinedTable(err) {
		return fmt.Errorf("counting dead letters: %w", err)
	}
	if err == nil {
		var s int
		var c int64
		if _, err := pgx.ForEachRow(rows, []any{&s, &c}, func() error {
			ns.DeadByShard[s] = c
			ns.DeadLetters += c
			return nil
		}); err != nil && !isUndefinedTable(err) {
			return fmt.Errorf("counting dead letters: %w", err)
		}
	}
	if ns.Holders, err = shardHolders(ctx, conn); err != nil {
		return err
	}
	if more != nil {
		return more(ctx, n, conn)
	}
	return nil
}

// Print writes r as the table `rebalance status` shows.
func (r *Report) Print(w io.Writer) error {
	fmt.Fprintf(w, "cluster: %d shards on %d nodes\n\n", r.ShardCount, countActive(r.Nodes))
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "NODE\tSTATE\tSHARDS\tPENDING\tDEAD LETTERS\tURL")
	for _, n := range r.Nodes {
		pending, dead := fmt.Sprint(n.Pending), fmt.Sprint(n.DeadLetters)
		if n.Err != nil {
			pending, dead = "unreachable", "-"
		} else if n.State == "detached" {
			pending, dead = "-", "-"
		}
		fmt.Fprintf(tw, "%s\t%s\t%d\t%s\t%s\t%s\n", n.Name, n.State, n.Shards, pending, dead, n.URL)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	for _, n := range r.Nodes {
		if n.Err != nil {
			fmt.Fprintf(w, "node %s unreachable: %v\n", n.Name, n.Err)
		}
	}
	var open, rolledBack []MoveStatus
	for _, m := range r.Moves {
		if m.State == "failed" && !flippedAlready(m.Step) {
			rolledBack = append(rolledBack, m)
		} else {
			open = append(open, m)
		}
	}
	if len(open) == 0 {
		fmt.Fprintln(w, "\nmoves in progress: none")
	} else {
		fmt.Fprintf(w, "\nmoves in progress: %d (run rebalance to finish them)\n", len(open))
		if err := printMoves(w, open); err != nil {
			return err
		}
	}
	if len(rolledBack) > 0 {
		fmt.Fprintf(w, "\nmoves that failed and were rolled back in the last day: %d\n", len(rolledBack))
		if err := printMoves(w, rolledBack); err != nil {
			return err
		}
	}
	return r.printOwners(w)
}

func printMoves(w io.Writer, moves []MoveStatus) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "MOVE\tSHARD\tFROM\tTO\tSTATE\tSTEP\tROWS COPIED\tSINCE\tERROR")
	for _, m := range moves {
		fmt.Fprintf(tw, "%d\t%d\t%s\t%s\t%s\t%s\t%d\t%s\t%s\n", m.ID, m.Shard, m.Source, m.Target, m.State, m.Step, m.RowsCopied,
			m.Since.UTC().Format(time.RFC3339), firstLine(m.Error))
	}
	return tw.Flush()
}

func countActive(nodes []NodeStatus) int {
	n := 0
	for _, s := range nodes {
		if s.State != "detached" {
			n++
		}
	}
	return n
}
