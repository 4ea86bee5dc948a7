package sdktest

import (
	"bufio"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ordo-pipeline/ordo/internal/buildtest"
	"github.com/ordo-pipeline/ordo/internal/pgtest"
	"github.com/ordo-pipeline/ordo/internal/proctest"
)

func TestMain(m *testing.M) {
	code := m.Run()
	buildtest.Cleanup()
	os.Exit(code)
}

// stack is a running ordo: one Postgres node (also the catalog), a gateway,
// a worker and the demo sink, whose verbose output is the record of what
// was delivered.
type stack struct {
	gateway string // http://127.0.0.1:port
	sinkOut string // path of the sink's standard output
}

// sourceKey is the write key of the source a scenario sends to.
func sourceKey(scenario string) string { return "wk-" + scenario }

// startStack starts a stack whose workspace has one source per scenario,
// each delivering to the sink.
func startStack(t *testing.T, scenarios []string) *stack {
	t.Helper()
	if _, err := buildtest.Programs("gateway", "worker", "rebalance", "sink"); err != nil {
		t.Fatal(err)
	}
	node := pgtest.Start(t, 1)[0]
	dir := t.TempDir()
	sinkAddr := proctest.FreeAddr(t)
	var sources []any
	for _, s := range scenarios {
		sources = append(sources, map[string]any{"id": s, "writeKey": sourceKey(s), "destinations": []string{"sink"}})
	}
	ws := proctest.WriteJSON(t, dir, "workspace.json", map[string]any{
		"sources": sources,
		"destinations": []any{map[string]any{
			"id": "sink", "type": "webhook",
			"config": map[string]any{"url": "http://" + sinkAddr + "/events", "timeout": "5s"},
			"retry":  map[string]any{"initialBackoff": "50ms", "maxBackoff": "500ms"},
		}},
	})
	catalog := "ORDO_CATALOG_URL=" + node.URL()
	if out, err := run(t, "rebalance", catalog, "ORDO_NODES=n1="+node.URL(), "ORDO_SHARDS=8"); err != nil {
		t.Fatalf("bootstrap: %v\n%s", err, out)
	}
	st := &stack{sinkOut: filepath.Join(dir, "sink.out")}
	start(t, "sink", st.sinkOut, "ORDO_SINK_ADDR="+sinkAddr, "ORDO_SINK_VERBOSE=true")
	gwAddr := proctest.FreeAddr(t)
	st.gateway = "http://" + gwAddr
	start(t, "gateway", "", catalog, "ORDO_WORKSPACE_CONFIG="+ws, "ORDO_HTTP_ADDR="+gwAddr)
	start(t, "worker", "", catalog, "ORDO_WORKSPACE_CONFIG="+ws, "ORDO_ADMIN_ADDR=127.0.0.1:0")
	proctest.WaitReady(t, st.gateway+"/ready", 30*time.Second)
	proctest.WaitReady(t, "http://"+sinkAddr+"/health", 10*time.Second)
	return st
}

// program returns the path of a built program.
func program(t *testing.T, name string) string {
	t.Helper()
	return buildtest.Program(t, name)
}

// run runs program to completion with env added to the test's.
func run(t *testing.T, name string, env ...string) (string, error) {
	t.Helper()
	cmd := exec.CommandContext(t.Context(), program(t, name))
	cmd.Env = append(os.Environ(), env...)
	out, err := cmd.CombinedOutput()
	return string(out), err
}

// start runs program until the test ends. Its standard output goes to
// stdout when not "", and its log to a file shown when the test fails.
func start(t *testing.T, name, stdout string, env ...string) {
	t.Helper()
	cmd := exec.Command(program(t, name))
	cmd.Env = append(os.Environ(), env...)
	if stdout != "" {
		out, err := os.Create(stdout)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { out.Close() })
		cmd.Stdout = out
	}
	proctest.Start(t, name, cmd, 30)
}

// delivered is one event as the sink printed it.
type delivered struct {
	raw   string
	event map[string]any
}

// deliveries reads every event the sink printed so far, in order.
func (st *stack) deliveries(t *testing.T) []delivered {
	t.Helper()
	f, err := os.Open(st.sinkOut)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var out []delivered
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 64<<20)
	for sc.Scan() {
		line := sc.Text()
		// sink: user=… type=… event=… messageId=… {json}
		i := strings.Index(line, " messageId=")
		j := strings.IndexByte(line[max(i, 0):], '{')
		if !strings.HasPrefix(line, "sink: ") || i < 0 || j < 0 {
			continue // a partly written line
		}
		raw := line[i+j:]
		var ev map[string]any
		if err := json.Unmarshal([]byte(raw), &ev); err != nil {
			continue
		}
		out = append(out, delivered{raw: raw, event: ev})
	}
	return out
}

// sent is one call a scenario made of its SDK: the event type and its
// mark, the member that tells it from the scenario's other events (see
// markOf).
type sent struct {
	Type string `json:"type"`
	Mark string `json:"mark"`
}

func (s sent) String() string { return s.Type + " " + s.Mark }

// markOf returns the mark of a delivered event: the name of a track, page
// or screen, traits.plan (or context.traits.plan) of an identify, the
// groupId of a group, the previousId of an alias.
func markOf(ev map[string]any) string {
	str := func(v any) string { s, _ := v.(string); return s }
	switch str(ev["type"]) {
	case "track":
		return str(ev["event"])
	case "page", "screen":
		return str(ev["name"])
	case "identify":
		traits, _ := ev["traits"].(map[string]any)
		if traits == nil { // RudderStack's JavaScript SDK sends them in context
			ctx, _ := ev["context"].(map[string]any)
			traits, _ = ctx["traits"].(map[string]any)
		}
		return str(traits["plan"])
	case "group":
		return fmt.Sprint(ev["groupId"])
	case "alias":
		return fmt.Sprint(ev["previousId"])
	}
	return ""
}

// scenarioResult is what the sink got of one scenario's user.
type scenarioResult struct {
	firsts  []sent           // distinct events, in the order of their first delivery
	events  []map[string]any // the first delivery of each
	missing []sent
}

// waitDelivered waits up to within for every event in want, sent as
// userID, to reach the sink.
func (st *stack) waitDelivered(t *testing.T, userID string, want []sent, within time.Duration) scenarioResult {
	t.Helper()
	deadline := time.Now().Add(within)
	for {
		var r scenarioResult
		seen := map[string]bool{}
		got := map[sent]bool{}
		for _, d := range st.deliveries(t) {
			user, _ := d.event["userId"].(string)
			id, _ := d.event["messageId"].(string)
			if user != userID || seen[id] {
				continue
			}
			seen[id] = true
			s := sent{Type: fmt.Sprint(d.event["type"]), Mark: markOf(d.event)}
			got[s] = true
			r.firsts = append(r.firsts, s)
			r.events = append(r.events, d.event)
		}
		for _, w := range want {
			if !got[w] {
				r.missing = append(r.missing, w)
			}
		}
		if len(r.missing) == 0 || time.Now().After(deadline) {
			return r
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// check waits for a scenario's events and reports what is missing; with
// ordered, it also checks the track events were first delivered in the
// order they were sent.
func (st *stack) check(t *testing.T, userID string, want []sent, ordered bool) scenarioResult {
	t.Helper()
	r := st.waitDelivered(t, userID, want, 30*time.Second)
	if len(r.missing) > 0 {
		t.Errorf("user %s: %d of %d events never reached the sink: %v (delivered: %v)", userID, len(r.missing), len(want), r.missing, r.firsts)
	}
	if len(r.firsts) > len(want) {
		t.Errorf("user %s: %d distinct events delivered, %d sent: %v", userID, len(r.firsts), len(want), r.firsts)
	}
	if ordered {
		var sentTracks, gotTracks []string
		for _, w := range want {
			if w.Type == "track" {
				sentTracks = append(sentTracks, w.Mark)
			}
		}
		for _, f := range r.firsts {
			if f.Type == "track" {
				gotTracks = append(gotTracks, f.Mark)
			}
		}
		if fmt.Sprint(sentTracks) != fmt.Sprint(gotTracks) {
			t.Errorf("user %s: track events delivered in the order %v, sent %v", userID, gotTracks, sentTracks)
		}
	}
	return r
}
