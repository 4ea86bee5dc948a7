package deadletter

import (
	"cmp"
	"context"
	"fmt"
	"slices"
	"strings"

	"github.com/jackc/pgx/v5"
	"github.com/ordo-pipeline/ordo/shard"
)

// Listing is a page of dead letters gathered from every node.
type Listing struct {
	// Letters are newest first (by failed_at, then node, shard, epoch, seq).
	Letters []Letter `json:"letters"`
	// Total is how many dead letters match on the nodes that could be read.
	Total int64      `json:"total"`
	Nodes []NodeRead `json:"nodes"`
}

// Err is nil when every node could be read.
func (l *Listing) Err() error { return readErr(l.Nodes) }

// Counts are the matching dead letters of every node, grouped.
type Counts struct {
	Groups []Group    `json:"groups"`
	Total  int64      `json:"total"`
	Nodes  []NodeRead `json:"nodes"`
}

// Err is nil when every node could be read.
func (c *Counts) Err() error { return readErr(c.Nodes) }

func readErr(nodes []NodeRead) error {
	var errs []string
	for _, n := range nodes {
		if n.Err != nil {
			errs = append(errs, n.Err.Error())
		}
	}
	if len(errs) == 0 {
		return nil
	}
	return fmt.Errorf("%d of %d nodes could not be read, the figures leave them out: %s", len(errs), len(nodes), strings.Join(errs, "; "))
}

// List returns the newest dead letters matching f across the cluster,
// skipping offset and returning at most limit (0: all). A node that
// cannot be read is left out, with its error in Nodes.
func (c *Cluster) List(ctx context.Context, f Filter, limit, offset int) *Listing {
	out := &Listing{Letters: []Letter{}}
	want := 0
	if limit > 0 {
		want = limit + offset
	}
	for _, n := range c.nodes {
		read := NodeRead{Node: n.Name}
		read.Err = onNode(ctx, n, func(conn *pgx.Conn) error {
			letters, err := newest(ctx, conn, n.Name, f, want)
			if err != nil {
				return err
			}
			counts, err := perShard(ctx, conn, f)
			if err != nil {
				return err
			}
			for _, k := range counts {
				read.Count += k
			}
			out.Letters = append(out.Letters, letters...)
			return nil
		})
		out.Total += read.Count
		out.Nodes = append(out.Nodes, read)
	}
	slices.SortFunc(out.Letters, func(a, b Letter) int {
		return cmp.Or(b.FailedAt.Compare(a.FailedAt), cmp.Compare(a.Node, b.Node), cmp.Compare(a.Shard, b.Shard),
			cmp.Compare(b.Epoch, a.Epoch), cmp.Compare(b.Seq, a.Seq))
	})
	out.Letters = out.Letters[min(offset, len(out.Letters)):]
	if limit > 0 && len(out.Letters) > limit {
		out.Letters = out.Letters[:limit]
	}
	return out
}

// Count counts the dead letters matching f across the cluster, by node,
// destination, reason and last status.
func (c *Cluster) Count(ctx context.Context, f Filter) *Counts {
	out := &Counts{Groups: []Group{}}
	for _, n := range c.nodes {
		read := NodeRead{Node: n.Name}
		read.Err = onNode(ctx, n, func(conn *pgx.Conn) error {
			gs, err := groups(ctx, conn, n.Name, f)
			if err != nil {
				return err
			}
			for _, g := range gs {
				read.Count += g.Count
			}
			out.Groups = append(out.Groups, gs...)
			return nil
		})
		out.Total += read.Count
		out.Nodes = append(out.Nodes, read)
	}
	return out
}

// onNode runs fn on a connection to n. A dead_letters table that does
// not exist (a node not migrated yet) reads as empty.
func onNode(ctx context.Context, n shard.Node, fn func(*pgx.Conn) error) error {
	conn, err := connect(ctx, n)
	if err != nil {
		return err
	}
	defer conn.Close(context.WithoutCancel(ctx))
	if err := fn(conn); err != nil {
		if isUndefinedTable(err) {
			return nil
		}
		return fmt.Errorf("node %s: %w", n.Name, err)
	}
	return nil
}
