package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/ordo-pipeline/ordo/internal/pgtest"
	"github.com/ordo-pipeline/ordo/internal/proctest"
	"github.com/ordo-pipeline/ordo/shard"
)

// fixableHook is a webhook that refuses every event with 400 while
// broken, and records what it accepts once fixed.
type fixableHook struct {
	broken atomic.Bool
	srv    *httptest.Server
	mu     sync.Mutex
	got    []string // messageIds accepted, in arrival order
	keys   map[string][]string
}

func newFixableHook(t *testing.T) *fixableHook {
	h := &fixableHook{keys: map[string][]string{}}
	h.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var ev struct {
			MessageID string `json:"messageId"`
			UserID    string `json:"userId"`
		}
		body, _ := io.ReadAll(r.Body)
		if h.broken.Load() {
			http.Error(w, `{"error":"field plan is not allowed"}`, http.StatusBadRequest)
			return
		}
		if err := json.Unmarshal(body, &ev); err != nil {
			http.Error(w, err.Error(), http.StatusUnprocessableEntity)
			return
		}
		h.mu.Lock()
		h.got = append(h.got, ev.MessageID)
		h.keys[ev.UserID] = append(h.keys[ev.UserID], ev.MessageID)
		h.mu.Unlock()
	}))
	t.Cleanup(h.srv.Close)
	return h
}

func (h *fixableHook) received() []string {
	h.mu.Lock()
	defer h.mu.Unlock()
	return slices.Clone(h.got)
}

// ctl runs ordoctl and returns its standard output, standard error and
// exit status.
func ctl(t *testing.T, env []string, stdin string, args ...string) (string, string, int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, binary(t, "ordoctl"), args...)
	cmd.Env = append(os.Environ(), env...)
	cmd.Stdin = strings.NewReader(stdin)
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	err := cmd.Run()
	if err != nil && cmd.ProcessState == nil {
		t.Fatalf("ordoctl %v: %v", args, err)
	}
	return out.String(), errOut.String(), cmd.ProcessState.ExitCode()
}

func ctlJSON(t *testing.T, env []string, v any, args ...string) {
	t.Helper()
	out, errOut, code := ctl(t, env, "", append(args, "--json")...)
	if code != 0 {
		t.Fatalf("ordoctl %v: exit %d\n%s%s", args, code, out, errOut)
	}
	if err := json.Unmarshal([]byte(out), v); err != nil {
		t.Fatalf("ordoctl %v: %v in %s", args, err, out)
	}
}

type ctlCounts struct {
	Total int64 `json:"total"`
	Nodes []struct {
		Node  string `json:"node"`
		Count int64  `json:"count"`
	} `json:"nodes"`
}

func sendBatch(t *testing.T, gateway string, events []map[string]any) {
	t.Helper()
	body, _ := json.Marshal(map[string]any{"batch": events})
	req, _ := http.NewRequest(http.MethodPost, gateway+"/v1/batch", bytes.NewReader(body))
	req.SetBasicAuth(writeKey, "")
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	msg, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("batch: %d %s", resp.StatusCode, msg)
	}
}

func waitFor(t *testing.T, what string, within time.Duration, ok func() bool) {
	t.Helper()
	deadline := time.Now().Add(within)
	for !ok() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within %s", what, within)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// TestOperators is issue 13's "done when": a destination answering 400
// dead-letters events on two nodes; ordoctl lists and counts them across
// both; the console shows the same figures; once the destination is
// fixed, one dead letter is replayed from the console and the rest with
// ordoctl, and each event is delivered once, in order per key; purge asks
// first and then deletes.
func TestOperators(t *testing.T) {
	nodes := pgtest.Start(t, 2)
	catalogURL := nodes[0].URL()
	env := []string{"ORDO_CATALOG_URL=" + catalogURL, "ORDO_LOG_LEVEL=warn"}
	hook := newFixableHook(t)
	hook.broken.Store(true)
	ws := "ORDO_WORKSPACE_CONFIG=" + workspaceFor(t, hook.srv.URL)

	runRebalance(t, "bootstrap", append(env, "ORDO_SHARDS=8", nodesEnv(nodes, 1, 2)))
	gwAddr := proctest.FreeAddr(t)
	start(t, "gateway", "gateway", append(env, ws, "ORDO_HTTP_ADDR="+gwAddr))
	start(t, "worker", "worker", append(env, ws, "ORDO_ADMIN_ADDR=127.0.0.1:0", "ORDO_WORKER_ID=w1"))
	gateway := "http://" + gwAddr
	proctest.WaitReady(t, gateway+"/ready", 30*time.Second)

	// Two keys on each node, three events each, and one key with one.
	conn, err := pgx.Connect(t.Context(), catalogURL)
	if err != nil {
		t.Fatal(err)
	}
	snap, err := shard.Load(t.Context(), conn)
	conn.Close(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	perNode := map[string][]string{}
	for i := 0; len(perNode["node1"]) < 2 || len(perNode["node2"]) < 2; i++ {
		k := fmt.Sprintf("user-%d", i)
		n := snap.Lookup(k).Node
		if len(perNode[n]) < 2 {
			perNode[n] = append(perNode[n], k)
		}
	}
	keys := append(perNode["node1"], perNode["node2"]...)
	var events []map[string]any
	for _, k := range keys {
		for n := 1; n <= 3; n++ {
			events = append(events, map[string]any{"type": "track", "userId": k, "event": "Upgraded",
				"messageId": fmt.Sprintf("%s-%d", k, n), "properties": map[string]any{"n": n, "plan": "pro"}})
		}
	}
	events = append(events, map[string]any{"type": "identify", "userId": "solo", "messageId": "solo-1", "traits": map[string]any{"plan": "pro"}})
	sendBatch(t, gateway, events)
	want := len(events)

	// ordoctl sees them all, across both nodes.
	var counts ctlCounts
	waitFor(t, "every event dead-lettered", 30*time.Second, func() bool {
		ctlJSON(t, env, &counts, "dead-letters", "count")
		return counts.Total == int64(want)
	})
	var list struct {
		Letters []struct {
			Node         string `json:"node"`
			MessageID    string `json:"messageId"`
			LastStatus   *int   `json:"lastStatus"`
			LastResponse string `json:"lastResponse"`
		} `json:"letters"`
		Total int64 `json:"total"`
	}
	ctlJSON(t, env, &list, "dead-letters", "list")
	seen := map[string]int{}
	for _, l := range list.Letters {
		seen[l.Node]++
		if l.LastStatus == nil || *l.LastStatus != 400 || !strings.Contains(l.LastResponse, "field plan is not allowed") {
			t.Errorf("dead letter %s: status %v, response %q", l.MessageID, l.LastStatus, l.LastResponse)
		}
	}
	if len(list.Letters) != want || seen["node1"] < 6 || seen["node2"] < 6 {
		t.Errorf("list: %d letters by node %v, want %d on both nodes", len(list.Letters), seen, want)
	}
	out, _, code := ctl(t, env, "", "dead-letters", "list", "--destination", "hook", "--status", "400", "--limit", "5")
	t.Logf("ordoctl dead-letters list --destination hook --status 400 --limit 5:\n%s", out)
	if code != 0 || !strings.Contains(out, fmt.Sprintf("5 of %d matching dead letters", want)) {
		t.Errorf("list --limit 5: exit %d", code)
	}
	out, _, _ = ctl(t, env, "", "dead-letters", "count")
	t.Logf("ordoctl dead-letters count:\n%s", out)
	if !strings.Contains(out, fmt.Sprintf("total: %d dead letters", want)) {
		t.Errorf("count output lacks the total")
	}
	_, errOut, code := ctl(t, env, "", "dead-letters", "list", "--status", "4xx")
	if code != 2 || !strings.Contains(errOut, "--status") {
		t.Errorf("bad filter: exit %d, %q; want 2 naming --status", code, errOut)
	}
	out, _, code = ctl(t, env, "", "status")
	t.Logf("ordoctl status:\n%s", out)
	if code != 0 || !strings.Contains(out, "workers: 1 live") || strings.Count(out, " w1\n") != 8 {
		t.Errorf("status: exit %d, want every shard held by w1", code)
	}

	// The console: refuses to start without a token, and API calls without it.
	if _, errOut, code := ctl(t, env, "", "console"); code != 2 || !strings.Contains(errOut, "ORDO_CONSOLE_TOKEN") {
		t.Errorf("console without a token: exit %d, %q", code, errOut)
	}
	token := "t0ken-for-the-e2e-console"
	consoleAddr := proctest.FreeAddr(t)
	start(t, "console", "ordoctl", append(env, "ORDO_CONSOLE_ADDR="+consoleAddr, "ORDO_CONSOLE_TOKEN="+token), "console")
	consoleURL := "http://" + consoleAddr
	proctest.WaitReady(t, consoleURL+"/health", 15*time.Second)
	if resp, err := http.Get(consoleURL + "/api/overview"); err != nil || resp.StatusCode != 401 {
		t.Errorf("API without the token: %v %v", resp, err)
	} else {
		resp.Body.Close()
	}

	page := startBrowser(t, consoleURL, token)
	page.do(nil, "open")
	var fig pageFigures
	page.do(&fig, "figures")
	ctlJSON(t, env, &counts, "dead-letters", "count")
	for _, n := range counts.Nodes {
		i := slices.IndexFunc(fig.Nodes, func(x struct {
			Name        string `json:"name"`
			State       string `json:"state"`
			Shards      int    `json:"shards"`
			Pending     int64  `json:"pending"`
			DeadLetters int64  `json:"deadLetters"`
		}) bool {
			return x.Name == n.Node
		})
		if i < 0 || fig.Nodes[i].DeadLetters != n.Count || fig.Nodes[i].Pending != 0 || fig.Nodes[i].Shards != 4 {
			t.Errorf("console node %s: %+v, want %d dead letters, 0 pending, 4 shards", n.Node, fig.Nodes, n.Count)
		}
	}
	if len(fig.Letters) != want || fig.DLTotal != fmt.Sprintf("%d matching", want) {
		t.Errorf("console lists %d dead letters (%q), want %d", len(fig.Letters), fig.DLTotal, want)
	}
	var shardDead int64
	for _, s := range fig.Shards {
		shardDead += s.DeadLetters
		if s.Holder != "w1" {
			t.Errorf("console shard %d: held by %q, want w1", s.Shard, s.Holder)
		}
	}
	if shardDead != int64(want) || len(fig.Workers) != 1 || fig.Workers[0].ID != "w1" || fig.Workers[0].Shards != 8 || fig.Moves != 0 {
		t.Errorf("console: %d dead letters by shard, workers %+v, %d moves", shardDead, fig.Workers, fig.Moves)
	}
	shot := filepath.Join(t.TempDir(), "console.png")
	if p := os.Getenv("ORDO_CONSOLE_SCREENSHOT"); p != "" {
		shot = p
	}
	page.do(nil, "screenshot", shot)
	t.Logf("console screenshot: %s", shot)

	// Fixed: replay one from the console, the rest with ordoctl.
	hook.broken.Store(false)
	var replayed struct{ Confirm, Toast string }
	page.do(nil, "filter", "key=solo")
	page.do(&replayed, "replay", "solo-1")
	t.Logf("console replay: confirm %q, then %q", replayed.Confirm, replayed.Toast)
	if !strings.Contains(replayed.Confirm, "Replay 1 dead letter") || !strings.Contains(replayed.Toast, "Replayed 1") {
		t.Errorf("console replay: confirm %q, toast %q", replayed.Confirm, replayed.Toast)
	}
	waitFor(t, "solo-1 delivered after the console's replay", 20*time.Second, func() bool { return slices.Contains(hook.received(), "solo-1") })

	out, _, code = ctl(t, env, "", "dead-letters", "replay", "--destination", "hook", "--dry-run")
	t.Logf("ordoctl dead-letters replay --destination hook --dry-run:\n%s", out)
	if code != 0 || !strings.Contains(out, fmt.Sprintf("would replay %d dead letters on 2 nodes", want-1)) {
		t.Errorf("replay dry run: exit %d", code)
	}
	out, _, code = ctl(t, env, "", "dead-letters", "replay", "--destination", "hook")
	t.Logf("ordoctl dead-letters replay --destination hook:\n%s", out)
	if code != 0 || !strings.Contains(out, fmt.Sprintf("replayed %d dead letters on 2 nodes", want-1)) ||
		!strings.Contains(out, "node1: replayed") || !strings.Contains(out, "node2: replayed") {
		t.Errorf("replay: exit %d", code)
	}
	if out, _, code = ctl(t, env, "", "dead-letters", "replay"); code != 0 || !strings.Contains(out, "replayed 0 dead letters") {
		t.Errorf("second replay: exit %d\n%s", code, out)
	}
	waitFor(t, "every replayed event delivered", 30*time.Second, func() bool { return len(hook.received()) >= want })
	time.Sleep(500 * time.Millisecond) // a duplicate would show now
	got := hook.received()
	if len(got) != want {
		t.Errorf("%d deliveries, want %d (once each): %v", len(got), want, got)
	}
	hook.mu.Lock()
	for _, k := range keys {
		if w := []string{k + "-1", k + "-2", k + "-3"}; !slices.Equal(hook.keys[k], w) {
			t.Errorf("key %s delivered %v, want %v", k, hook.keys[k], w)
		}
	}
	hook.mu.Unlock()

	// Purge asks first.
	hook.broken.Store(true)
	sendBatch(t, gateway, []map[string]any{
		{"type": "track", "userId": "purge-me", "event": "A", "messageId": "purge-me-1"},
		{"type": "track", "userId": "purge-me", "event": "B", "messageId": "purge-me-2"},
	})
	waitFor(t, "two more dead letters", 20*time.Second, func() bool {
		ctlJSON(t, env, &counts, "dead-letters", "count")
		return counts.Total == 2
	})
	out, errOut, code = ctl(t, env, "no\n", "dead-letters", "purge", "--key", "purge-me")
	if code != 1 || !strings.Contains(errOut, "Delete 2 dead letters") || !strings.Contains(errOut, "not confirmed") {
		t.Errorf("purge answered no: exit %d\n%s%s", code, out, errOut)
	}
	if ctlJSON(t, env, &counts, "dead-letters", "count"); counts.Total != 2 {
		t.Errorf("after a purge answered no: %d dead letters, want 2", counts.Total)
	}
	out, errOut, code = ctl(t, env, "y\n", "dead-letters", "purge", "--key", "purge-me")
	t.Logf("ordoctl dead-letters purge --key purge-me (answered y):\n%s%s", errOut, out)
	if code != 0 || !strings.Contains(out, "purged 2 dead letters on 2 nodes") {
		t.Errorf("purge: exit %d", code)
	}
	if ctlJSON(t, env, &counts, "dead-letters", "count"); counts.Total != 0 {
		t.Errorf("after purge: %d dead letters", counts.Total)
	}
	page.do(nil, "filter")
	page.do(&fig, "figures")
	for _, n := range fig.Nodes {
		if n.DeadLetters != 0 {
			t.Errorf("console after purge: node %s shows %d dead letters", n.Name, n.DeadLetters)
		}
	}
	if len(fig.Letters) != 0 {
		t.Errorf("console after purge lists %d dead letters", len(fig.Letters))
	}
}
