package rebalance

import (
	"context"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/ordo-pipeline/ordo/schema"
	"github.com/ordo-pipeline/ordo/shard"
)

// WorkerStatus is one worker's line of the status report.
type WorkerStatus struct {
	ID string
	// Heartbeat is the age of its heartbeat; -1 when it has no row.
	Heartbeat time.Duration
	// Shards are the shards it holds, in order.
	Shards []int
}

// UnownedShard is an active shard that no worker holds.
type UnownedShard struct {
	Shard int
	Node  string
	// For is how long nobody has held it; 0 when unknown.
	For time.Duration
	// Unknown says the node did not answer: nobody is known to hold it.
	Unknown bool
}

// workerApp starts the application name of a worker's claim sessions.
const workerApp = "ordo-worker "

// shardHolders returns who holds each shard lock on the node: a worker's
// id, or the application name of another kind of session (rebalance,
// while it copies a shard).
func shardHolders(ctx context.Context, conn *pgx.Conn) (map[int]string, error) {
	rows, err := conn.Query(ctx, `SELECT l.objid::int, coalesce(a.application_name, '')
		FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid
		WHERE l.locktype = 'advisory' AND l.granted AND l.classid = $1::int::oid AND l.objsubid = 2
		  AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database())`, schema.LockClass)
	if err != nil {
		return nil, fmt.Errorf("listing shard holders: %w", err)
	}
	out := map[int]string{}
	var s int
	var app string
	if _, err := pgx.ForEachRow(rows, []any{&s, &app}, func() error {
		if id, ok := strings.CutPrefix(app, workerApp); ok {
			app = id
		}
		out[s] = app
		return nil
	}); err != nil {
		return nil, fmt.Errorf("listing shard holders: %w", err)
	}
	return out, nil
}

// readOwners fills r.Workers and r.Unowned from the holders the nodes
// reported, the workers' heartbeats, and ordo_catalog.shard_owners (for
// how long a shard has been free).
func (r *Report) readOwners(ctx context.Context, conn *pgx.Conn, snap *shard.Snapshot, holders map[int]string) error {
	beats := map[string]time.Duration{}
	rows, err := conn.Query(ctx, `SELECT id, extract(epoch FROM now() - heartbeat_at)::float8 FROM ordo_catalog.workers`)
	if err != nil {
		return fmt.Errorf("reading workers: %w", err)
	}
	var id string
	var secs float64
	if _, err := pgx.ForEachRow(rows, []any{&id, &secs}, func() error {
		beats[id] = seconds(secs)
		return nil
	}); err != nil {
		return fmt.Errorf("reading workers: %w", err)
	}
	type owner struct {
		worker *string
		age    time.Duration
	}
	owners := map[int]owner{}
	rows, err = conn.Query(ctx, `SELECT shard, worker, extract(epoch FROM now() - since)::float8 FROM ordo_catalog.shard_owners`)
	if err != nil && !isUndefinedTable(err) {
		return fmt.Errorf("reading shard owners: %w", err)
	}
	if err == nil {
		var s int
		var o owner
		if _, err := pgx.ForEachRow(rows, []any{&s, &o.worker, &secs}, func() error {
			o.age = seconds(secs)
			owners[s] = o
			return nil
		}); err != nil {
			return fmt.Errorf("reading shard owners: %w", err)
		}
	}
	reachable := map[string]bool{}
	for _, n := range r.Nodes {
		reachable[n.Name] = n.Err == nil
	}
	byWorker := map[string][]int{}
	for _, p := range snap.Shards {
		if h, ok := holders[p.Shard]; ok {
			byWorker[h] = append(byWorker[h], p.Shard)
			continue
		}
		if p.State != shard.StateActive {
			continue // a moving shard is held by nobody on purpose
		}
		u := UnownedShard{Shard: p.Shard, Node: p.Node, Unknown: !reachable[p.Node]}
		if o, ok := owners[p.Shard]; ok && !u.Unknown {
			switch beat, known := beats[deref(o.worker)]; {
			case o.worker == nil:
				u.For = o.age
			case !known:
				u.For = o.age // its worker is gone; it held it until then at most
			default:
				u.For = min(o.age, beat) // held until its worker last beat, at most
			}
		}
		r.Unowned = append(r.Unowned, u)
	}
	for id := range beats {
		if _, ok := byWorker[id]; !ok {
			byWorker[id] = nil
		}
	}
	for id, shards := range byWorker {
		beat, ok := beats[id]
		if !ok {
			beat = -1
		}
		r.Workers = append(r.Workers, WorkerStatus{ID: id, Heartbeat: beat, Shards: shards})
	}
	slices.SortFunc(r.Workers, func(a, b WorkerStatus) int { return strings.Compare(a.ID, b.ID) })
	return nil
}

func deref(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}

func seconds(s float64) time.Duration {
	return time.Duration(s * float64(time.Second)).Round(100 * time.Millisecond)
}

// printOwners writes who holds which shard, and the shards nobody holds.
func (r *Report) printOwners(w io.Writer) error {
	fmt.Fprintf(w, "\nworkers: %d\n", len(r.Workers))
	if len(r.Workers) > 0 {
		tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
		fmt.Fprintln(tw, "WORKER\tHEARTBEAT\tSHARDS\tHOLDS")
		for _, ws := range r.Workers {
			beat := "none"
			if ws.Heartbeat >= 0 {
				beat = ws.Heartbeat.String() + " ago"
			}
			fmt.Fprintf(tw, "%s\t%s\t%d\t%s\n", ws.ID, beat, len(ws.Shards), ranges(ws.Shards))
		}
		if err := tw.Flush(); err != nil {
			return err
		}
	}
	if len(r.Unowned) == 0 {
		fmt.Fprintln(w, "\nshards nobody holds: none")
		return nil
	}
	fmt.Fprintf(w, "\nshards nobody holds: %d\n", len(r.Unowned))
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "SHARD\tNODE\tUNOWNED FOR")
	for _, u := range r.Unowned {
		since := u.For.String()
		switch {
		case u.Unknown:
			since = "unknown: node unreachable"
		case u.For == 0:
			since = "unknown"
		}
		fmt.Fprintf(tw, "%d\t%s\t%s\n", u.Shard, u.Node, since)
	}
	return tw.Flush()
}

// ranges writes sorted shards compactly: "0-3,7,9-10".
func ranges(shards []int) string {
	if len(shards) == 0 {
		return "-"
	}
	s := slices.Sorted(slices.Values(shards))
	var parts []string
	for i := 0; i < len(s); {
		j := i
		for j+1 < len(s) && s[j+1] == s[j]+1 {
			j++
		}
		if i == j {
			parts = append(parts, strconv.Itoa(s[i]))
		} else {
			parts = append(parts, strconv.Itoa(s[i])+"-"+strconv.Itoa(s[j]))
		}
		i = j + 1
	}
	return strings.Join(parts, ",")
}
