package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ordo-pipeline/ordo/internal/pgtest"
	"github.com/ordo-pipeline/ordo/internal/proctest"
)

// The secrets TestSecretsStayOut plants: each holds a marker that no
// output may hold.
const (
	pgPassword   = "pg-s3cr3t-pw!" // "!" is sent percent-encoded
	pgMarker     = "s3cr3t"
	headerMarker = "T0ken"
	authHeader   = "Bearer hdr-T0ken-auth"
	apiKeyHeader = "key-T0ken-api"
	secretKey    = "wk_Wr1teKey_secret" // the write key, a credential too
	keyMarker    = "Wr1teKey"
)

// internals are what an error body must never echo of the database.
var internals = []string{"SQLSTATE", "ERROR:", "FATAL:", "pgx", "postgres", "relation", "violates", "connection refused", "dial tcp"}

// withPassword returns c's URL with the password set.
func withPassword(c *pgtest.Cluster) string {
	u, err := url.Parse(c.URL())
	if err != nil {
		panic(err)
	}
	u.User = url.UserPassword(u.User.Username(), pgPassword)
	return u.String()
}

// secretHook is a destination that checks it gets the configured headers
// and answers by the event's name: "ok" 200, "retry" 500 (then 200),
// "reject" 400, which dead-letters it.
type secretHook struct {
	srv *httptest.Server

	mu      sync.Mutex
	headers int // requests that carried both secret headers
	seen    map[string]bool
}

func newSecretHook(t *testing.T) *secretHook {
	h := &secretHook{seen: map[string]bool{}}
	h.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var ev struct {
			Event     string `json:"event"`
			MessageID string `json:"messageId"`
		}
		body, _ := io.ReadAll(r.Body)
		_ = json.Unmarshal(body, &ev)
		h.mu.Lock()
		if r.Header.Get("Authorization") == authHeader && r.Header.Get("X-Api-Key") == apiKeyHeader {
			h.headers++
		}
		again := h.seen[ev.MessageID]
		h.seen[ev.MessageID] = true
		h.mu.Unlock()
		switch {
		case ev.Event == "reject":
			http.Error(w, "no thanks", http.StatusBadRequest)
		case ev.Event == "retry" && !again:
			http.Error(w, "later", http.StatusInternalServerError)
		default:
			w.WriteHeader(http.StatusOK)
		}
	}))
	t.Cleanup(h.srv.Close)
	return h
}

// outputs collects everything the programs said, to be searched for
// secrets.
type outputs struct {
	mu    sync.Mutex
	parts []string // "where: text"
}

func (o *outputs) add(where, text string) {
	o.mu.Lock()
	o.parts = append(o.parts, where+":\n"+text)
	o.mu.Unlock()
}

// TestSecretsStayOut runs every program with a password in each Postgres
// URL, a destination with secret headers and a secret write key, at the
// debug log level, through deliveries, retries, dead letters, a node and
// the catalog going down, unreachable and malformed settings; then no log
// line, error body, metric, status or dry-run output holds a password, a
// header or the write key, and no error body echoes the database.
func TestSecretsStayOut(t *testing.T) {
	nodes := pgtest.Start(t, 2)
	hook := newSecretHook(t)
	ws := proctest.WriteJSON(t, t.TempDir(), "workspace.json", map[string]any{
		"sources": []any{map[string]any{"id": "web", "writeKey": secretKey, "destinations": []string{"hook"}}},
		"destinations": []any{map[string]any{
			"id": "hook", "type": "webhook",
			"config": map[string]any{"url": hook.srv.URL + "/events", "timeout": "2s",
				"headers": map[string]string{"Authorization": authHeader, "X-Api-Key": apiKeyHeader}},
			"retry": map[string]any{"initialBackoff": "50ms", "maxBackoff": "200ms", "maxAttempts": 100, "maxAge": "1h"},
		}},
	})
	var out outputs
	catalog := "ORDO_CATALOG_URL=" + withPassword(nodes[0])
	nodesSetting := fmt.Sprintf("ORDO_NODES=node1=%s,node2=%s", withPassword(nodes[0]), withPassword(nodes[1]))
	debug := "ORDO_LOG_LEVEL=debug"
	rebalance := func(what string, env []string, args ...string) int {
		o, ps := runOnce(t, "rebalance", append([]string{debug}, env...), args...)
		out.add("rebalance "+what, o)
		return ps.ExitCode()
	}
	if code := rebalance("bootstrap", []string{catalog, nodesSetting, "ORDO_SHARDS=8"}); code != 0 {
		t.Fatalf("bootstrap: exit %d\n%s", code, out.parts[len(out.parts)-1])
	}

	gwAddr, adminAddr := proctest.FreeAddr(t), proctest.FreeAddr(t)
	gw := start(t, "gateway", "gateway", []string{catalog, "ORDO_WORKSPACE_CONFIG=" + ws, "ORDO_HTTP_ADDR=" + gwAddr, debug})
	wk := start(t, "worker", "worker", []string{catalog, "ORDO_WORKSPACE_CONFIG=" + ws, "ORDO_ADMIN_ADDR=" + adminAddr, debug})
	gwURL := "http://" + gwAddr
	proctest.WaitReady(t, gwURL+"/ready", 30*time.Second)

	client := &http.Client{Timeout: 10 * time.Second}
	send := func(what string, i int) int {
		body := fmt.Sprintf(`{"userId":"user-%d","event":%q,"messageId":"%s-%d"}`, i%7, what, what, i)
		req, _ := http.NewRequest("POST", gwURL+"/v1/track", strings.NewReader(body))
		req.SetBasicAuth(secretKey, "")
		resp, err := client.Do(req)
		if err != nil {
			out.add("gateway answer", err.Error())
			return 0
		}
		defer resp.Body.Close()
		msg, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != http.StatusOK {
			out.add(fmt.Sprintf("gateway answer %d", resp.StatusCode), string(msg))
			for _, internal := range internals {
				if bytes.Contains(msg, []byte(internal)) {
					t.Errorf("error body %s echoes the database (%q)", msg, internal)
				}
			}
		}
		return resp.StatusCode
	}
	for i := range 30 {
		for _, what := range []string{"ok", "retry", "reject"} {
			if status := send(what, i); status != http.StatusOK {
				t.Errorf("%s-%d: status %d", what, i, status)
			}
		}
	}
	// A wrong write key, a bad body.
	for _, body := range []string{`{"userId":5}`, `{"writeKey":"` + secretKey + `x","userId":"u","event":"e"}`} {
		req, _ := http.NewRequest("POST", gwURL+"/v1/track", strings.NewReader(body))
		if resp, err := client.Do(req); err == nil {
			msg, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			out.add("gateway answer", string(msg))
		}
	}

	// node2 stops, then node1 (the catalog too), while events keep coming:
	// the gateway answers 503s, every program logs connection errors.
	ctx := context.WithoutCancel(t.Context())
	for _, n := range []*pgtest.Cluster{nodes[1], nodes[0]} {
		if err := n.Stop(ctx); err != nil {
			t.Fatal(err)
		}
		for i := range 20 {
			send("ok", 1000+i)
			time.Sleep(50 * time.Millisecond)
		}
		o, _ := runOnce(t, "rebalance", []string{debug, catalog}, "status")
		out.add("rebalance status with a node down", o)
		rebalance("with a node down", []string{catalog, nodesSetting})
		if err := n.Start(ctx); err != nil {
			t.Fatal(err)
		}
	}
	proctest.WaitReady(t, gwURL+"/ready", 30*time.Second)

	// Status, dry runs, an unreachable node, the admin and metrics pages.
	unreachable := fmt.Sprintf("node3=postgres://postgres:%s@127.0.0.1:1/postgres?sslmode=disable", url.QueryEscape(pgPassword))
	rebalance("status", []string{catalog}, "status")
	rebalance("dry run", []string{catalog, nodesSetting}, "--dry-run")
	rebalance("dry run with an unreachable node", []string{catalog, nodesSetting + "," + unreachable}, "--dry-run")
	rebalance("with an unreachable node", []string{catalog, nodesSetting + "," + unreachable})
	for _, page := range []string{gwURL + "/metrics", gwURL + "/ready", "http://" + adminAddr + "/metrics", "http://" + adminAddr + "/ready"} {
		resp, err := http.Get(page)
		if err != nil {
			t.Errorf("%s: %v", page, err)
			continue
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		out.add(page, string(body))
	}

	// Malformed and unreachable settings: each program exits naming the
	// variable, never the password.
	// (Outputs are labelled by number: a label holding the setting would
	// hold the secret.)
	bad := []string{
		"ORDO_CATALOG_URL=postgres://postgres:" + url.QueryEscape(pgPassword) + "@127.0.0.1:1/postgres?sslmode=bogus",
		"ORDO_CATALOG_URL=postgres://postgres:" + pgMarker + "@[::1/postgres",
		"ORDO_CATALOG_URL=host=127.0.0.1 port=1 password=" + pgMarker + " sslmode=bogus",
	}
	for i, setting := range bad {
		for _, program := range []string{"gateway", "worker", "rebalance"} {
			env := []string{setting, "ORDO_WORKSPACE_CONFIG=" + ws, nodesSetting, "ORDO_HTTP_ADDR=127.0.0.1:0", "ORDO_ADMIN_ADDR="}
			o, ps := runOnce(t, program, env)
			out.add(fmt.Sprintf("%s with malformed catalog URL %d", program, i+1), o)
			if ps.ExitCode() != 2 {
				t.Errorf("%s with malformed catalog URL %d: exit %d, want 2", program, i+1, ps.ExitCode())
			}
		}
	}
	for i, setting := range []string{
		"ORDO_NODES=node1=postgres://postgres:" + url.QueryEscape(pgPassword) + "@127.0.0.1:1/postgres?sslmode=bogus",
		"ORDO_NODES=node1=postgres://postgres:" + pgMarker + "@127.0.0.1:1/postgres,node1=postgres://postgres:" + pgMarker + "@127.0.0.1:2/postgres",
		"ORDO_NODES=postgres://postgres:" + pgMarker + "@127.0.0.1:1/postgres",
		"ORDO_NODES=node1=mysql://root:" + pgMarker + "@127.0.0.1:1/db",
	} {
		o, ps := runOnce(t, "rebalance", []string{catalog, setting})
		out.add(fmt.Sprintf("rebalance with malformed ORDO_NODES %d", i+1), o)
		if ps.ExitCode() != 2 {
			t.Errorf("rebalance with malformed ORDO_NODES %d: exit %d, want 2", i+1, ps.ExitCode())
		}
	}
	// Catalogs that do not answer (the second one's '#' cuts the URL
	// short: it is the password, unencoded): the programs log and retry.
	var waiting []*proctest.Proc
	for i, setting := range []string{
		"ORDO_CATALOG_URL=postgres://postgres:" + url.QueryEscape(pgPassword) + "@127.0.0.1:1/postgres?sslmode=disable&connect_timeout=1",
		"ORDO_CATALOG_URL=postgres://postgres:pa#" + pgMarker + "@127.0.0.1:1/postgres",
	} {
		for _, program := range []string{"gateway", "worker"} {
			waiting = append(waiting, start(t, fmt.Sprintf("%s-no-catalog-%d", program, i+1), program,
				[]string{setting, "ORDO_WORKSPACE_CONFIG=" + ws, "ORDO_HTTP_ADDR=127.0.0.1:0", "ORDO_ADMIN_ADDR=", debug}))
		}
		rebalance(fmt.Sprintf("without catalog %d", i+1), []string{setting, nodesSetting})
	}
	time.Sleep(2 * time.Second)
	for _, p := range waiting {
		p.Kill()
		data, _ := os.ReadFile(p.Log)
		out.add(p.Name, string(data))
	}

	// The deliveries happened, with the headers: the secrets were in use.
	deadline := time.Now().Add(30 * time.Second)
	for {
		hook.mu.Lock()
		n, seen := hook.headers, len(hook.seen)
		hook.mu.Unlock()
		if seen >= 90 || time.Now().After(deadline) {
			if seen < 90 || n < 90 {
				t.Errorf("the destination saw %d events, %d requests with the configured headers; want 90 or more", seen, n)
			}
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	time.Sleep(time.Second) // the dead letters' flush
	rebalance("status with dead letters", []string{catalog}, "status")
	gw.Kill()
	wk.Kill()
	for _, p := range []*proctest.Proc{gw, wk} {
		data, _ := os.ReadFile(p.Log)
		out.add(p.Name+"'s log", string(data))
	}

	var all strings.Builder
	for _, part := range out.parts {
		all.WriteString(part)
		all.WriteString("\n")
		where, text, _ := strings.Cut(part, ":\n")
		for _, marker := range []string{pgMarker, headerMarker, keyMarker} {
			for _, line := range strings.Split(text, "\n") {
				if strings.Contains(line, marker) {
					t.Errorf("%s holds a secret (%s): %.400s", where, marker, line)
					break
				}
			}
		}
	}
	// The outputs show what was searched: URLs redacted, answers 503
	// while a node was down, dead letters counted.
	for _, want := range []string{"xxxxx", "gateway answer 503", "DEAD LETTERS", "connection refused"} {
		if !strings.Contains(all.String(), want) {
			t.Errorf("no output holds %q: the test did not reach what it searches", want)
		}
	}
	t.Logf("searched %d outputs, %d bytes, for passwords, headers and the write key", len(out.parts), all.Len())
}
