package deadletter

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/ordo-pipeline/ordo/internal/dsn"
	"github.com/ordo-pipeline/ordo/shard"
)

// ConnectTimeout bounds connecting to the catalog or to one node.
const ConnectTimeout = 5 * time.Second

// Cluster is the placement map read from the catalog, and a way to reach
// every node that is not detached.
type Cluster struct {
	snap  *shard.Snapshot
	nodes []shard.Node // not detached, by name
}

// Open reads the placement map from the catalog at catalogURL. It returns
// shard.ErrNotBootstrapped when the catalog holds no cluster.
func Open(ctx context.Context, catalogURL string) (*Cluster, error) {
	cctx, cancel := context.WithTimeout(ctx, ConnectTimeout)
	defer cancel()
	conn, err := pgx.Connect(cctx, catalogURL)
	if err != nil {
		return nil, fmt.Errorf("connecting to the catalog %s: %s", dsn.Redact(catalogURL), strings.Join(strings.Fields(err.Error()), " "))
	}
	defer conn.Close(context.WithoutCancel(ctx))
	snap, err := shard.Load(ctx, conn)
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) && pgErr.Code == "42P01" {
		return nil, shard.ErrNotBootstrapped
	}
	if err != nil {
		return nil, fmt.Errorf("reading the placement map: %w", err)
	}
	return FromSnapshot(snap), nil
}

// FromSnapshot is a Cluster for an already loaded placement map.
func FromSnapshot(snap *shard.Snapshot) *Cluster {
	c := &Cluster{snap: snap}
	for _, n := range snap.Nodes {
		if n.State != "detached" {
			c.nodes = append(c.nodes, n)
		}
	}
	slices.SortFunc(c.nodes, func(a, b shard.Node) int { return strings.Compare(a.Name, b.Name) })
	return c
}

// Nodes returns the names of the nodes operations visit, in order.
func (c *Cluster) Nodes() []string {
	names := make([]string, len(c.nodes))
	for i, n := range c.nodes {
		names[i] = n.Name
	}
	return names
}

// connect opens a connection to node n.
func connect(ctx context.Context, n shard.Node) (*pgx.Conn, error) {
	cfg, err := pgx.ParseConfig(n.URL)
	if err != nil {
		return nil, fmt.Errorf("node %s: bad url in the catalog: %w", n.Name, err)
	}
	if cfg.RuntimeParams["application_name"] == "" {
		cfg.RuntimeParams["application_name"] = "ordoctl"
	}
	ctx, cancel := context.WithTimeout(ctx, ConnectTimeout)
	defer cancel()
	conn, err := pgx.ConnectConfig(ctx, cfg)
	if err != nil {
		return nil, &unreachableError{node: n.Name, url: dsn.Redact(n.URL), err: err}
	}
	return conn, nil
}

// placementProblem says why dead letters of shard s found on node may
// not be replayed or purged there, or "" when they may.
func (c *Cluster) placementProblem(node string, s int) string {
	if s < 0 || s >= c.snap.Count() {
		return fmt.Sprintf("shard %d does not exist in this cluster of %d shards", s, c.snap.Count())
	}
	p := c.snap.Shards[s]
	switch {
	case p.State == shard.StateMoving && p.Node == node:
		return fmt.Sprintf("shard %d is being moved here; run rebalance to finish the move, then try again", s)
	case p.State == shard.StateMoving:
		return fmt.Sprintf("shard %d is being moved to node %s; run rebalance to finish the move, then try again", s, p.Node)
	case p.Node != node:
		return fmt.Sprintf("shard %d is held by node %s, not this one: its dead letters should have moved with it (an unfinished move? run rebalance, then check with ordoctl status)", s, p.Node)
	}
	return ""
}

// unreachableError is a node that could not be connected to, on one line.
type unreachableError struct {
	node, url string
	err       error
}

func (e *unreachableError) Error() string {
	return fmt.Sprintf("node %s unreachable (%s): %s", e.node, e.url, strings.Join(strings.Fields(e.err.Error()), " "))
}

func (e *unreachableError) Unwrap() error { return e.err }
