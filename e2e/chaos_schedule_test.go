package e2e

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
	"time"
)

// faultKind is one kind of fault the chaos run's nemesis injects.
type faultKind string

const (
	killWorker        faultKind = "kill-worker"         // SIGKILL a worker, restart it after Down
	killGateway       faultKind = "kill-gateway"        // SIGKILL a gateway, restart it on its address after Down
	stopNodeFast      faultKind = "stop-node-fast"      // fast shutdown of a node's Postgres, start it after Down
	stopNodeImmediate faultKind = "stop-node-immediate" // immediate shutdown (crash recovery at start)
	killNode          faultKind = "kill-node"           // SIGKILL a node's Postgres and its children
	restartCatalog    faultKind = "restart-catalog"     // fast shutdown of the catalog, start it after Down
	hangDestination   faultKind = "hang-destination"    // the flaky webhook holds every request past its timeout for Down
	partitionPart     faultKind = "partition"           // cut a process from a node or the catalog, silently, for Down
)

// faultKinds are every kind.
var faultKinds = []faultKind{killWorker, killGateway, stopNodeFast, stopNodeImmediate, killNode, restartCatalog, hangDestination, partitionPart}

// crashes are the kinds that kill what holds delivered events not yet
// acknowledged (a worker, or the node its claims are on): each makes
// about the last 50 ms of the shards' deliveries go again. disturbances
// are the others. A schedule alternates the two, so that crashes come at
// a steady rate whatever the seed.
var (
	crashes      = []faultKind{killWorker, stopNodeFast, stopNodeImmediate, killNode}
	disturbances = []faultKind{killGateway, restartCatalog, hangDestination, partitionPart}
)

// fault is one step of the nemesis.
type fault struct {
	Pause  time.Duration // wait before it, after the previous fault healed
	Kind   faultKind
	Target int // the worker, gateway or node (0-based); for a partition, the process
	Peer   int // for a partition: the node (0-based), or -1 for the catalog
	Down   time.Duration
}

func (f fault) String() string {
	what := string(f.Kind)
	switch f.Kind {
	case killWorker:
		what += fmt.Sprintf(" worker-%d", f.Target+1)
	case killGateway:
		what += fmt.Sprintf(" gateway-%d", f.Target+1)
	case stopNodeFast, stopNodeImmediate, killNode:
		what += fmt.Sprintf(" node%d", f.Target+1)
	case partitionPart:
		what += fmt.Sprintf(" %s from %s", partName(f.Target), peerName(f.Peer))
	}
	return fmt.Sprintf("after %v: %s for %v", f.Pause, what, f.Down)
}

// move is one step of the mover: a rebalance that adds node3 (Out) or
// drains it, first run with a way to die mid-move, then run again until
// it converges.
type move struct {
	Pause time.Duration // wait before it, after the previous move converged
	Out   bool
	// Failpoint is the ORDO_FAILPOINTS step the first run dies at; when
	// empty, KillAfter (if not 0) SIGKILLs the first run that long after
	// it starts.
	Failpoint string
	KillAfter time.Duration
}

func (m move) String() string {
	what := "drain node3"
	if m.Out {
		what = "add node3"
	}
	switch {
	case m.Failpoint != "":
		what += ", killed at " + m.Failpoint
	case m.KillAfter > 0:
		what += fmt.Sprintf(", SIGKILLed %v in", m.KillAfter)
	}
	return fmt.Sprintf("after %v: %s", m.Pause, what)
}

// moveFailpoints are the steps of a rebalance it may die at.
var moveFailpoints = []string{
	"rebalance.after_plan", "move.after_target_ready", "move.after_fenced", "move.after_flipped",
	"move.after_copied", "move.after_source_dropped", "move.after_done",
}

// chaosShape is what a schedule picks targets among.
type chaosShape struct {
	Workers, Gateways, Nodes int
}

// schedule is a chaos run's faults and moves, drawn from its seed alone:
// the same seed and duration give the same schedule.
type schedule struct {
	Faults []fault
	Moves  []move
}

// plannedFaultCost and plannedMoveCost are what a schedule counts a step
// as taking besides its pause and down time, to fill the duration.
const (
	plannedFaultCost = 500 * time.Millisecond
	plannedMoveCost  = 6 * time.Second
)

// newSchedule draws the faults and moves of a run of duration d: twice as
// many as d would hold if every step took its planned time, since a run
// stops at d wherever it is in its schedule. Faults alternate crashes and
// disturbances, a crash first; the first round holds every kind once, in
// a random order, so that a run of two minutes or more injects each. The
// moves alternate too, adding node3 first.
func newSchedule(seed uint64, d time.Duration, shape chaosShape) schedule {
	var s schedule
	rng := rand.New(rand.NewPCG(seed, 1))
	between := func(lo, hi time.Duration) time.Duration {
		return lo + time.Duration(rng.Int64N(int64(hi-lo)))/time.Millisecond*time.Millisecond
	}
	var round []faultKind
	c, o := slices.Clone(crashes), slices.Clone(disturbances)
	rng.Shuffle(len(c), func(i, j int) { c[i], c[j] = c[j], c[i] })
	rng.Shuffle(len(o), func(i, j int) { o[i], o[j] = o[j], o[i] })
	for i := range c {
		round = append(round, c[i], o[i])
	}
	var planned time.Duration
	for i := 0; planned < 2*d; i++ {
		var k faultKind
		switch {
		case i < len(round):
			k = round[i]
		case i%2 == 0:
			k = crashes[rng.IntN(len(crashes))]
		default:
			k = disturbances[rng.IntN(len(disturbances))]
		}
		f := fault{Pause: between(8*time.Second, 16*time.Second), Kind: k, Peer: -1}
		switch k {
		case killWorker:
			f.Target, f.Down = rng.IntN(shape.Workers), between(300*time.Millisecond, 3*time.Second)
		case killGateway:
			f.Target, f.Down = rng.IntN(shape.Gateways), between(300*time.Millisecond, 2*time.Second)
		case stopNodeFast, stopNodeImmediate, killNode:
			f.Target, f.Down = rng.IntN(shape.Nodes), between(time.Second, 4*time.Second)
		case restartCatalog:
			f.Down = between(time.Second, 3*time.Second)
		case hangDestination:
			f.Down = between(2*time.Second, 5*time.Second)
		case partitionPart:
			f.Target = rng.IntN(shape.Workers + shape.Gateways)
			f.Peer = rng.IntN(shape.Nodes+1) - 1
			f.Down = between(2*time.Second, 8*time.Second)
		}
		s.Faults = append(s.Faults, f)
		planned += f.Pause + f.Down + plannedFaultCost
	}

	rng = rand.New(rand.NewPCG(seed, 2))
	planned = 0
	for i := 0; planned < 2*d || len(s.Moves) < 2; i++ {
		m := move{Pause: between(2*time.Second, 6*time.Second), Out: i%2 == 0}
		switch c := rng.IntN(len(moveFailpoints) + 2); {
		case c < len(moveFailpoints):
			m.Failpoint = moveFailpoints[c]
		case c == len(moveFailpoints):
			m.KillAfter = between(100*time.Millisecond, 2*time.Second)
		}
		s.Moves = append(s.Moves, m)
		planned += m.Pause + plannedMoveCost
	}
	return s
}

func (s schedule) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%d faults:", len(s.Faults))
	for i, f := range s.Faults {
		fmt.Fprintf(&b, "\n  %2d %s", i+1, f)
	}
	fmt.Fprintf(&b, "\n%d moves:", len(s.Moves))
	for i, m := range s.Moves {
		fmt.Fprintf(&b, "\n  %2d %s", i+1, m)
	}
	return b.String()
}

func partName(i int) string {
	if i < chaosWorkers {
		return fmt.Sprintf("worker-%d", i+1)
	}
	return fmt.Sprintf("gateway-%d", i-chaosWorkers+1)
}

func peerName(i int) string {
	if i < 0 {
		return "the catalog"
	}
	return fmt.Sprintf("node%d", i+1)
}

func TestChaosScheduleReplays(t *testing.T) {
	t.Parallel()
	shape := chaosShape{Workers: chaosWorkers, Gateways: chaosGateways, Nodes: 3}
	a, b := newSchedule(42, 5*time.Minute, shape), newSchedule(42, 5*time.Minute, shape)
	if a.String() != b.String() {
		t.Fatalf("seed 42 gave two schedules:\n%s\n\n%s", a, b)
	}
	if c := newSchedule(43, 5*time.Minute, shape); c.String() == a.String() {
		t.Errorf("seeds 42 and 43 gave the same schedule:\n%s", a)
	}
	// A minute holds a round of every kind.
	round := newSchedule(7, time.Minute, shape)
	seen := map[faultKind]bool{}
	for _, f := range round.Faults {
		seen[f.Kind] = true
	}
	if len(seen) != len(faultKinds) {
		t.Errorf("a one-minute schedule holds %d kinds of fault, want all %d:\n%s", len(seen), len(faultKinds), round)
	}
	short := newSchedule(7, 10*time.Second, shape)
	if len(short.Moves) < 2 || !short.Moves[0].Out || short.Moves[1].Out {
		t.Errorf("a short schedule's moves do not add then drain node3:\n%s", short)
	}
	for i, f := range newSchedule(9, 10*time.Minute, shape).Faults {
		if slices.Contains(crashes, f.Kind) != (i%2 == 0) {
			t.Fatalf("fault %d is %s: crashes and disturbances do not alternate", i+1, f.Kind)
		}
	}
}
