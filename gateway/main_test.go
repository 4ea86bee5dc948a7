package gateway

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ordo-pipeline/ordo/internal/buildtest"

	"github.com/jackc/pgx/v5"
	"github.com/ordo-pipeline/ordo/internal/pgtest"
	"github.com/ordo-pipeline/ordo/rebalance"
	"github.com/ordo-pipeline/ordo/schema"
	"github.com/ordo-pipeline/ordo/shard"
	"github.com/ordo-pipeline/ordo/workspace"
)

// testShards is the shard count of test clusters.
const testShards = 8

// cluster is a bootstrapped ordo cluster of two nodes; the catalog lives in
// node 1's database.
type cluster struct {
	catalogURL string
	nodes      []*pgtest.Cluster // n1, n2
}

// nodeURL returns the URL of the node named n1 or n2.
func (c *cluster) nodeURL(name string) string {
	return c.nodes[name[1]-'1'].URL()
}

// newCluster starts and bootstraps a cluster that lives as long as t.
func newCluster(t testing.TB) *cluster {
	t.Helper()
	nodes := pgtest.Start(t, 2)
	c := &cluster{catalogURL: nodes[0].URL(), nodes: nodes}
	if err := bootstrap(c); err != nil {
		t.Fatal(err)
	}
	return c
}

// bootstrap runs rebalance on c's nodes to create the cluster.
func bootstrap(c *cluster) error {
	cfg := rebalance.Config{
		CatalogURL: c.catalogURL,
		Nodes:      "n1=" + c.nodes[0].URL() + ",n2=" + c.nodes[1].URL(),
		Shards:     testShards,
	}
	if err := cfg.Validate(); err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	if err := rebalance.Run(ctx, &cfg, rebalance.Options{}); err != nil {
		return fmt.Errorf("bootstrapping the cluster: %w", err)
	}
	return nil
}

// shared is the cluster of the tests that do not stop nodes or move
// shards; they keep apart by using sources of their own.
var (
	sharedOnce    sync.Once
	sharedCluster *cluster
	sharedErr     error
	sharedNodes   []*pgtest.Cluster
)

func sharedClusterFor(t testing.TB) *cluster {
	t.Helper()
	sharedOnce.Do(func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		for _, name := range []string{"shared1", "shared2"} {
			n, err := pgtest.StartCluster(ctx, pgtest.Options{Name: name})
			if err != nil {
				sharedErr = err
				return
			}
			sharedNodes = append(sharedNodes, n)
		}
		sharedCluster = &cluster{catalogURL: sharedNodes[0].URL(), nodes: sharedNodes}
		sharedErr = bootstrap(sharedCluster)
	})
	if sharedErr != nil {
		t.Fatalf("shared cluster: %v", sharedErr)
	}
	return sharedCluster
}

func TestMain(m *testing.M) {
	code := m.Run()
	for _, n := range sharedNodes {
		n.Remove() //nolint:errcheck // best effort at exit
	}
	buildtest.Cleanup()
	os.Exit(code)
}

// testWorkspace returns a workspace of three sources, named after prefix:
// prefix+"-web" (write key prefix+"-key", destinations a and b),
// prefix+"-one" (key prefix+"-key1", destination a) and prefix+"-none"
// (key prefix+"-key0", no destination).
func testWorkspace(t testing.TB, prefix string) *workspace.Workspace {
	t.Helper()
	data := fmt.Sprintf(`{
  "sources": [
    {"id": %[1]q, "writeKey": %[2]q, "destinations": ["a", "b"]},
    {"id": %[3]q, "writeKey": %[4]q, "destinations": ["a"]},
    {"id": %[5]q, "writeKey": %[6]q, "destinations": []}
  ],
  "destinations": [
    {"id": "a", "type": "webhook", "config": {"url": "http://127.0.0.1:1/a"}},
    {"id": "b", "type": "webhook", "config": {"url": "http://127.0.0.1:1/b"}}
  ]
}`, prefix+"-web", prefix+"-key", prefix+"-one", prefix+"-key1", prefix+"-none", prefix+"-key0")
	ws, err := workspace.Parse([]byte(data))
	if err != nil {
		t.Fatalf("workspace: %v", err)
	}
	return ws
}

// testBundle is a gateway served over HTTP against a cluster.
type testBundle struct {
	c      *cluster
	g      *Gateway
	srv    *httptest.Server
	prefix string
	key    string // write key of prefix-web (destinations a and b)
}

// setup starts a gateway for c with a workspace of its own and waits until
// it is ready. mod, if not nil, changes the settings first.
func setup(t testing.TB, c *cluster, mod func(*Config)) *testBundle {
	t.Helper()
	prefix := strings.NewReplacer("/", "-", " ", "_").Replace(t.Name())
	cfg := Config{
		CatalogURL:   c.catalogURL,
		HTTPAddr:     "127.0.0.1:0",
		BatchMaxRows: 1000,
		BatchMaxWait: 2 * time.Millisecond,
		WriteTimeout: 3 * time.Second,
	}
	if mod != nil {
		mod(&cfg)
	}
	g, err := New(cfg, testWorkspace(t, prefix), Options{MapPoll: 200 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	b := &testBundle{c: c, g: g, srv: newServer(t, g), prefix: prefix, key: prefix + "-key"}
	waitFor(t, 20*time.Second, "gateway ready", g.Ready)
	return b
}

// newServer serves g over HTTP until t ends, then closes g.
func newServer(t testing.TB, g *Gateway) *httptest.Server {
	srv := httptest.NewServer(g.Handler())
	t.Cleanup(func() {
		srv.Close()
		g.Close()
	})
	return srv
}

// waitFor polls cond until it holds or timeout passes.
func waitFor(t testing.TB, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// response is an answer read in full.
type response struct {
	status int
	header http.Header
	body   string
}

// checkOK fails the test unless resp is a 200.
func (r response) checkOK(t testing.TB) {
	t.Helper()
	if r.status != http.StatusOK {
		t.Fatalf("status %d (%s), want 200", r.status, r.body)
	}
}

// errorMessage returns the "error" member of a JSON error body.
func (r response) errorMessage(t testing.TB) string {
	t.Helper()
	var body struct {
		Error *string `json:"error"`
	}
	if err := json.Unmarshal([]byte(r.body), &body); err != nil || body.Error == nil {
		t.Fatalf("status %d body %q is not {\"error\": ...}", r.status, r.body)
	}
	return *body.Error
}

// request sends method path with body, authenticated with key unless key
// is "", and with headers given as name, value pairs.
func (b *testBundle) request(t testing.TB, method, path, key string, body []byte, headers ...string) response {
	t.Helper()
	req, err := http.NewRequest(method, b.srv.URL+path, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if key != "" {
		req.SetBasicAuth(key, "")
	}
	req.Header.Set("Content-Type", "application/json")
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("%s %s: reading answer: %v", method, path, err)
	}
	return response{status: resp.StatusCode, header: resp.Header, body: string(data)}
}

// post sends body to path with the bundle's write key.
func (b *testBundle) post(t testing.TB, path, body string, headers ...string) response {
	t.Helper()
	return b.request(t, http.MethodPost, path, b.key, []byte(body), headers...)
}

// gzipped returns data compressed with gzip.
func gzipped(t testing.TB, data []byte) []byte {
	t.Helper()
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	if _, err := zw.Write(data); err != nil {
		t.Fatal(err)
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// storedRow is one row of a shard table.
type storedRow struct {
	node        string
	shard       int
	epoch, seq  int64
	key         string
	source      string
	destination string
	messageID   string
	receivedAt  time.Time
	event       map[string]any
	raw         string
}

// rows returns every row of source, from every shard table of every node,
// in (node, shard, epoch, seq) order.
func (c *cluster) rows(t testing.TB, source string) []storedRow {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var out []storedRow
	for _, name := range []string{"n1", "n2"} {
		conn, err := pgx.Connect(ctx, c.nodeURL(name))
		if err != nil {
			t.Fatalf("connecting to %s: %v", name, err)
		}
		shards, err := schema.List(ctx, conn)
		if err != nil {
			t.Fatal(err)
		}
		for _, s := range shards {
			rows, err := conn.Query(ctx, `SELECT epoch, seq, ordering_key, source_id, destination_id, message_id, received_at, event::text
				FROM `+schema.Table(s).Sanitize()+` WHERE source_id = $1 ORDER BY epoch, seq`, source)
			if err != nil {
				t.Fatal(err)
			}
			for rows.Next() {
				r := storedRow{node: name, shard: s}
				if err := rows.Scan(&r.epoch, &r.seq, &r.key, &r.source, &r.destination, &r.messageID, &r.receivedAt, &r.raw); err != nil {
					t.Fatal(err)
				}
				dec := json.NewDecoder(strings.NewReader(r.raw))
				dec.UseNumber()
				if err := dec.Decode(&r.event); err != nil {
					t.Fatalf("stored event %q: %v", r.raw, err)
				}
				out = append(out, r)
			}
			if err := rows.Err(); err != nil {
				t.Fatal(err)
			}
		}
		conn.Close(ctx)
	}
	return out
}

// storedRows returns the rows of source as rows does, failing the test
// unless there are want of them.
func (c *cluster) storedRows(t testing.TB, source string, want int) []storedRow {
	t.Helper()
	rows := c.rows(t, source)
	if len(rows) != want {
		t.Fatalf("stored %d rows, want %d", len(rows), want)
	}
	return rows
}

// placement loads the cluster's shard map.
func (c *cluster) placement(t testing.TB) *shard.Snapshot {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, c.catalogURL)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	snap, err := shard.Load(ctx, conn)
	if err != nil {
		t.Fatal(err)
	}
	return snap
}

// keyOnNode returns an ordering key, starting with prefix, whose shard is
// on node.
func keyOnNode(t testing.TB, snap *shard.Snapshot, prefix, node string) string {
	t.Helper()
	for i := range 10000 {
		k := fmt.Sprintf("%s-%d", prefix, i)
		if snap.Lookup(k).Node == node {
			return k
		}
	}
	t.Fatalf("no key on node %s", node)
	return ""
}
