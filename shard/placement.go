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

// loadSQL reads the whole map in one statement, so in one snapshot: read
// as separate statements, a move committed between them could show shards
// of one moment on the nodes of another.
const loadSQL = `SELECT c.shard_count,
	coalesce(n.names, '{}'), coalesce(n.urls, '{}'), coalesce(n.states, '{}'),
	coalesce(s.shards, '{}'), coalesce(s.nodes, '{}'), coalesce(s.epochs, '{}'), coalesce(s.states, '{}')
FROM ordo_catalog.cluster c,
	(SELECT array_agg(name ORDER BY name) AS names, array_agg(url ORDER BY name) AS urls,
		array_agg(state ORDER BY name) AS states FROM ordo_catalog.nodes) n,
	(SELECT array_agg(shard ORDER BY shard) AS shards, array_agg(node ORDER BY shard) AS nodes,
		array_agg(epoch ORDER BY shard) AS epochs, array_agg(state ORDER BY shard) AS states FROM ordo_catalog.shards) s`

// Load reads the placement map from the catalog, as of one moment. It
// returns ErrNotBootstrapped when the catalog is migrated but holds no
// cluster, and an error when the catalog is not migrated at all.
func Load(ctx context.Context, q Querier) (*Snapshot, error) {
	var count int
	var names, urls, nodeStates, nodes, states []string
	var shards []int
	var epochs []int64
	err := q.QueryRow(ctx, loadSQL).Scan(&count, &names, &urls, &nodeStates, &shards, &nodes, &epochs, &states)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, ErrNotBootstrapped
	}
	if err != nil {
		return nil, fmt.Errorf("reading the shard map: %w", err)
	}
	s := &Snapshot{Shards: make([]Placement, count), Nodes: make(map[string]Node, len(names))}
	for i, name := range names {
		s.Nodes[name] = Node{Name: name, URL: urls[i], State: nodeStates[i]}
	}
	for i, sh := range shards {
		if sh < 0 || sh >= count {
			return nil, fmt.Errorf("reading shards: shard %d is outside 0..%d", sh, count-1)
		}
		if _, ok := s.Nodes[nodes[i]]; !ok {
			return nil, fmt.Errorf("reading shards: shard %d is on unknown node %q", sh, nodes[i])
		}
		s.Shards[sh] = Placement{Shard: sh, Node: nodes[i], Epoch: epochs[i], State: states[i]}
	}
	if len(shards) != count {
		return nil, fmt.Errorf("catalog has %d shard rows, want %d", len(shards), count)
	}
	return s, nil
}
