package rebalance

import (
	"cmp"
	"slices"
)

// Move is one planned shard move.
type Move struct {
	Shard  int
	Source string
	Target string
}

// Plan returns the fewest moves that leave every node of desired holding
// ⌊S/N⌋ or ⌈S/N⌉ of the S shards and no shard on any other node.
//
// placement[i] is the node of shard i. Moves off nodes that are not
// desired come first; then moves from the fullest nodes to the emptiest.
// The result does not depend on map iteration order. Every prefix of the
// plan leaves each shard on exactly one node, so stopping after any move
// is safe.
func Plan(placement []string, desired []string) []Move {
	if len(desired) == 0 {
		return nil
	}
	s, n := len(placement), len(desired)
	want := map[string]bool{}
	for _, d := range desired {
		want[d] = true
	}
	held := map[string][]int{} // node → its shards, ascending
	for shard, node := range placement {
		held[node] = append(held[node], shard)
	}

	// The ⌈S/N⌉ quota goes to the nodes holding the most shards already,
	// which is what keeps the move count minimal.
	order := slices.Clone(desired)
	slices.SortStableFunc(order, func(a, b string) int {
		return cmp.Or(cmp.Compare(len(held[b]), len(held[a])), cmp.Compare(a, b))
	})
	quota := map[string]int{}
	for i, d := range order {
		quota[d] = s / n
		if i < s%n {
			quota[d]++
		}
	}

	// Shards that must leave: every shard of an undesired node, then the
	// highest-numbered surplus shards of overfull desired nodes.
	var leaving []Move
	var others []string
	for node := range held {
		if !want[node] {
			others = append(others, node)
		}
	}
	slices.Sort(others)
	for _, node := range others {
		for _, sh := range held[node] {
			leaving = append(leaving, Move{Shard: sh, Source: node})
		}
	}
	for _, node := range order {
		if extra := len(held[node]) - quota[node]; extra > 0 {
			shards := held[node]
			for _, sh := range shards[len(shards)-extra:] {
				leaving = append(leaving, Move{Shard: sh, Source: node})
			}
		}
	}

	// Fill the emptiest nodes first, so an interrupted plan has still
	// evened out the worst imbalance.
	var moves []Move
	count := map[string]int{}
	for _, d := range desired {
		count[d] = len(held[d])
	}
	for _, m := range leaving {
		var best string
		for _, d := range desired {
			if count[d] >= quota[d] {
				continue
			}
			if best == "" || count[d] < count[best] || (count[d] == count[best] && d < best) {
				best = d
			}
		}
		if best == "" {
			break // cannot happen: the quotas sum to S
		}
		count[best]++
		m.Target = best
		moves = append(moves, m)
	}
	return moves
}
