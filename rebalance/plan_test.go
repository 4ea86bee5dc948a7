package rebalance

import (
	"fmt"
	"math/rand/v2"
	"testing"
)

// apply returns placement after moves, failing t on a move whose source
// is wrong.
func apply(t *testing.T, placement []string, moves []Move) []string {
	t.Helper()
	out := append([]string(nil), placement...)
	for _, m := range moves {
		if out[m.Shard] != m.Source {
			t.Fatalf("move %+v: shard is on %q", m, out[m.Shard])
		}
		out[m.Shard] = m.Target
	}
	return out
}

// checkBalanced fails t unless every desired node holds ⌊S/N⌋ or ⌈S/N⌉
// shards and no other node holds any.
func checkBalanced(t *testing.T, placement, desired []string) {
	t.Helper()
	count := map[string]int{}
	for _, n := range placement {
		count[n]++
	}
	lo, hi := len(placement)/len(desired), (len(placement)+len(desired)-1)/len(desired)
	total := 0
	for _, d := range desired {
		if count[d] < lo || count[d] > hi {
			t.Errorf("node %s holds %d shards, want %d..%d", d, count[d], lo, hi)
		}
		total += count[d]
	}
	if total != len(placement) {
		t.Errorf("desired nodes hold %d of %d shards", total, len(placement))
	}
}

// minMoves is the least number of moves any plan needs: every shard off
// an undesired node, plus what desired nodes lack beyond that, with the
// ceiling quota given to the fullest nodes.
func minMoves(placement, desired []string) int {
	count := map[string]int{}
	for _, n := range placement {
		count[n]++
	}
	want := map[string]bool{}
	for _, d := range desired {
		want[d] = true
	}
	// Sort desired counts descending to hand out ceilings.
	counts := make([]int, 0, len(desired))
	for _, d := range desired {
		counts = append(counts, count[d])
	}
	for i := range counts {
		for j := i + 1; j < len(counts); j++ {
			if counts[j] > counts[i] {
				counts[i], counts[j] = counts[j], counts[i]
			}
		}
	}
	s, n := len(placement), len(desired)
	need := 0
	for i, c := range counts {
		q := s / n
		if i < s%n {
			q++
		}
		if c < q {
			need += q - c
		}
	}
	return need
}

func TestPlan(t *testing.T) {
	t.Parallel()
	rr := func(s int, nodes ...string) []string {
		out := make([]string, s)
		for i := range out {
			out[i] = nodes[i%len(nodes)]
		}
		return out
	}
	for _, tc := range []struct {
		name      string
		placement []string
		desired   []string
		moves     int
	}{
		{"converged", rr(128, "a", "b"), []string{"a", "b"}, 0},
		{"add third", rr(128, "a", "b"), []string{"a", "b", "c"}, 42},
		{"remove b of three", rr(128, "a", "b", "c"), []string{"a", "c"}, 43},
		{"replace b with c", rr(128, "a", "b"), []string{"a", "c"}, 64},
		{"to one", rr(10, "a", "b", "c"), []string{"z"}, 10},
		{"more nodes than shards", rr(3, "a"), []string{"a", "b", "c", "d", "e"}, 2},
		{"uneven", append(rr(20, "a"), rr(2, "b")...), []string{"a", "b"}, 9},
	} {
		t.Run(tc.name, func(t *testing.T) {
			moves := Plan(tc.placement, tc.desired)
			if len(moves) != tc.moves {
				t.Errorf("Plan made %d moves, want %d: %v", len(moves), tc.moves, moves)
			}
			checkBalanced(t, apply(t, tc.placement, moves), tc.desired)
		})
	}
}

// TestPlanRandom checks balance, minimality, drain-first order and that no
// shard moves twice, on random placements.
func TestPlanRandom(t *testing.T) {
	t.Parallel()
	r := rand.New(rand.NewPCG(1, 2))
	names := []string{"a", "b", "c", "d", "e", "f"}
	for i := range 500 {
		s := 1 + r.IntN(300)
		cur := names[:1+r.IntN(len(names))]
		placement := make([]string, s)
		for j := range placement {
			placement[j] = cur[r.IntN(len(cur))]
		}
		desired := []string{}
		for _, n := range names {
			if r.IntN(2) == 0 {
				desired = append(desired, n)
			}
		}
		if len(desired) == 0 {
			desired = []string{"f"}
		}
		t.Run(fmt.Sprint(i), func(t *testing.T) {
			moves := Plan(placement, desired)
			checkBalanced(t, apply(t, placement, moves), desired)
			if got, want := len(moves), minMoves(placement, desired); got != want {
				t.Errorf("Plan made %d moves, want the minimum %d", got, want)
			}
			want := map[string]bool{}
			for _, d := range desired {
				want[d] = true
			}
			seen := map[int]bool{}
			drainDone := false
			for _, m := range moves {
				if seen[m.Shard] {
					t.Errorf("shard %d moves twice", m.Shard)
				}
				seen[m.Shard] = true
				if !want[m.Target] {
					t.Errorf("move %+v targets an undesired node", m)
				}
				if want[m.Source] {
					drainDone = true
				} else if drainDone {
					t.Errorf("move %+v drains after a balancing move", m)
				}
			}
		})
	}
}
