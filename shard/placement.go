package shard

import (
	"context"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"
)

// State values of a shard in the catalog.
const (
	// StateActive is a shard that lives on one node and is delivered there.
	StateActive = "active"
	// StateMoving is a shard whose new writes already go to its new node
	// while its older rows are still being copied there; workers do not
	// deliver it until the move ends.
	StateMoving = "moving"
)

// Placement says where one shard lives.
type Placement struct {
	Shard int
	Node  string
	// Epoch grows by one each time the shard moves. Rows are delivered in
	// (epoch, sequence) order.
	Epoch int64
	State string
}

// Node is a storage node as the catalog knows it.
type Node struct {
	Name  string
	URL   string
	State string
}

// ErrNotBootstrapped is returned when the catalog holds no cluster yet.
var ErrNotBootstrapped = errors.New("the catalog holds no cluster yet: run rebalance to bootstrap it")

// Snapshot is the placement of every shard at one moment. It is never
// modified once built, so it can be shared between goroutines.
type Snapshot struct {
	// Shards[i] is the placement of shard i.
	Shards []Placement
	Nodes  map[string]Node
}

// Count returns the number of shards.
func (s *Snapshot) Count() int { return len(s.Shards) }

// Lookup returns the placement of the shard that key hashes to.
func (s *Snapshot) Lookup(key string) Placement {
	return s.Shards[For(key, len(s.Shards))]
}

// Node returns the node that holds shard.
func (s *Snapshot) Node(shard int) Node {
	return s.Nodes[s.Shards[shard].Node]
}

// Querier is what Load needs: a *pgx.Conn, a pgxpool.Pool or a pgx.Tx.
type Querier interface {
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
}

// Load reads the placement map from the catalog. It returns
// ErrNotBootstrapped when the catalog is migrated but holds no cluster,
// and an error when the catalog is not migrated at all.
func Load(ctx context.Context, q Querier) (*Snapshot, error) {
	var count int
	err := q.QueryRow(ctx, `SELECT shard_count FROM ordo_catalog.cluster`).Scan(&count)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, ErrNotBootstrapped
	}
	if err != nil {
		return nil, fmt.Errorf("reading cluster: %w", err)
	}
	rows, err := q.Query(ctx, `SELECT name, url, state FROM ordo_catalog.nodes`)
	if err != nil {
		return nil, fmt.Errorf("reading nodes: %w", err)
	}
	nodes, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (Node, error) {
		var n Node
		err := r.Scan(&n.Name, &n.URL, &n.State)
		return n, err
	})
	if err != nil {
		return nil, fmt.Errorf("reading nodes: %w", err)
	}
	s := &Snapshot{Shards: make([]Placement, count), Nodes: make(map[string]Node, len(nodes))}
	for _, n := range nodes {
		s.Nodes[n.Name] = n
	}
	rows, err = q.Query(ctx, `SELECT shard, node, epoch, state FROM ordo_catalog.shards ORDER BY shard`)
	if err != nil {
		return nil, fmt.Errorf("reading shards: %w", err)
	}
	seen := 0
	var p Placement
	_, err = pgx.ForEachRow(rows, []any{&p.Shard, &p.Node, &p.Epoch, &p.State}, func() error {
		if p.Shard < 0 || p.Shard >= count {
			return fmt.Errorf("shard %d is outside 0..%d", p.Shard, count-1)
		}
		if _, ok := s.Nodes[p.Node]; !ok {
			return fmt.Errorf("shard %d is on unknown node %q", p.Shard, p.Node)
		}
		s.Shards[p.Shard] = p
		seen++
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("reading shards: %w", err)
	}
	if seen != count {
		return nil, fmt.Errorf("catalog has %d shard rows, want %d", seen, count)
	}
	return s, nil
}
