package deadletter

import (
	"encoding/json"
	"fmt"
	"io"
	"slices"
	"strings"
)

// Left is dead letters of one shard that an operation left as they were,
// and why.
type Left struct {
	Shard int    `json:"shard"`
	Count int64  `json:"count"`
	Why   string `json:"why"`
}

// NodeOutcome is what a replay or purge did on one node.
type NodeOutcome struct {
	Node string `json:"node"`
	// Done is how many dead letters were replayed or purged (would be, in
	// a dry run); Shards are their shards.
	Done   int64 `json:"done"`
	Shards []int `json:"shards"`
	// Left are the matching dead letters left alone, by shard.
	Left []Left `json:"left,omitempty"`
	// Err says why nothing changed on the node (unreachable, or its
	// transaction failed and was rolled back).
	Err error `json:"-"`
}

// Outcome is what a replay or purge did, node by node.
type Outcome struct {
	Action string        `json:"action"` // replay or purge
	DryRun bool          `json:"dryRun"`
	Nodes  []NodeOutcome `json:"nodes"`
}

// MarshalJSON adds each node's error as text and the totals.
func (o *Outcome) MarshalJSON() ([]byte, error) {
	type node struct {
		NodeOutcome
		Error string `json:"error,omitempty"`
	}
	nodes := make([]node, len(o.Nodes))
	for i, n := range o.Nodes {
		nodes[i] = node{NodeOutcome: n}
		if n.Err != nil {
			nodes[i].Error = n.Err.Error()
		}
		if nodes[i].Shards == nil {
			nodes[i].Shards = []int{}
		}
	}
	return json.Marshal(struct {
		Action string `json:"action"`
		DryRun bool   `json:"dryRun"`
		Done   int64  `json:"done"`
		Left   int64  `json:"left"`
		Failed int    `json:"failedNodes"`
		Nodes  []node `json:"nodes"`
	}{o.Action, o.DryRun, o.Done(), o.LeftCount(), o.failedNodes(), nodes})
}

// Done is the number of dead letters replayed or purged on every node.
func (o *Outcome) Done() int64 {
	var n int64
	for _, x := range o.Nodes {
		n += x.Done
	}
	return n
}

// LeftCount is the number of matching dead letters left alone.
func (o *Outcome) LeftCount() int64 {
	var n int64
	for _, x := range o.Nodes {
		for _, l := range x.Left {
			n += l.Count
		}
	}
	return n
}

func (o *Outcome) failedNodes() int {
	n := 0
	for _, x := range o.Nodes {
		if x.Err != nil {
			n++
		}
	}
	return n
}

// Err is nil when the operation did everything it was asked on every
// node, else an error that says what was not done.
func (o *Outcome) Err() error {
	var parts []string
	if n := o.failedNodes(); n > 0 {
		var names []string
		for _, x := range o.Nodes {
			if x.Err != nil {
				names = append(names, x.Node)
			}
		}
		parts = append(parts, fmt.Sprintf("nothing changed on %s", strings.Join(names, ", ")))
	}
	if n := o.LeftCount(); n > 0 {
		parts = append(parts, fmt.Sprintf("%d matching dead letters left alone", n))
	}
	if len(parts) == 0 {
		return nil
	}
	verb := o.Action
	if o.DryRun {
		verb += " (dry run)"
	}
	return fmt.Errorf("%s incomplete: %s; see above", verb, strings.Join(parts, "; "))
}

// Print writes o for a person, one line per node.
func (o *Outcome) Print(w io.Writer) {
	verb := map[string]string{"replay": "replayed", "purge": "purged"}[o.Action]
	if o.DryRun {
		verb = "would " + o.Action
	}
	for _, n := range o.Nodes {
		switch {
		case n.Err != nil:
			fmt.Fprintf(w, "%s: nothing changed: %v\n", n.Node, n.Err)
		case n.Done == 0 && len(n.Left) == 0:
			fmt.Fprintf(w, "%s: no matching dead letters\n", n.Node)
		case n.Done > 0:
			fmt.Fprintf(w, "%s: %s %d dead letters of %s\n", n.Node, verb, n.Done, shardList(n.Shards))
		}
		for _, l := range n.Left {
			fmt.Fprintf(w, "%s: left %d dead letters of shard %d: %s\n", n.Node, l.Count, l.Shard, l.Why)
		}
	}
	fmt.Fprintf(w, "%s %d dead letters on %d nodes", verb, o.Done(), len(o.Nodes))
	if n := o.LeftCount(); n > 0 {
		fmt.Fprintf(w, "; %d left alone", n)
	}
	if n := o.failedNodes(); n > 0 {
		fmt.Fprintf(w, "; %d nodes unchanged after an error", n)
	}
	fmt.Fprintln(w)
}

func shardList(shards []int) string {
	s := slices.Clone(shards)
	slices.Sort(s)
	parts := make([]string, len(s))
	for i, x := range s {
		parts[i] = fmt.Sprint(x)
	}
	if len(parts) == 1 {
		return "shard " + parts[0]
	}
	return "shards " + strings.Join(parts, ", ")
}
