package gateway

import (
	"encoding/json"
	"fmt"
	"net/http"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/ordo-pipeline/ordo/shard"
)

var uuidRE = regexp.MustCompile(`^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$`)

// TestEndpointsStoreEvents posts one event to each single-event endpoint
// and checks what was stored: one row per destination, in the shard table
// of the event's ordering key on the node that holds that shard, enriched
// and otherwise as sent.
func TestEndpointsStoreEvents(t *testing.T) {
	t.Parallel()
	b := setup(t, sharedClusterFor(t), nil)
	bodies := map[string]string{
		"track":    `{"userId": "track-user", "event": "Order Completed", "properties": {"revenue": 12.50, "big": 12345678901234567890, "tags": ["a", "<b>"]}, "type": "page", "receivedAt": "1999-01-01T00:00:00Z"}`,
		"identify": `{"anonymousId": "anon-1", "traits": {"email": "a@example.com"}, "messageId": "client-id-1"}`,
		"page":     `{"userId": "", "anonymousId": "anon-2", "name": "Home", "context": {"page": {"url": "https://example.com/?a=1&b=2"}}}`,
		"screen":   `{"userId": "screen-user", "name": "Main"}`,
		"group":    `{"userId": "group-user", "groupId": "g1", "traits": {"seats": 1e3}}`,
		"alias":    `{"userId": "alias-user", "previousId": "anon-3"}`,
	}
	before := time.Now().UTC().Truncate(time.Millisecond)
	for _, typ := range Types {
		resp := b.post(t, "/v1/"+typ, bodies[typ])
		if resp.status != http.StatusOK {
			t.Fatalf("POST /v1/%s: status %d (%s), want 200", typ, resp.status, resp.body)
		}
		if resp.body != "{\"success\":true}\n" || resp.header.Get("Content-Type") != "application/json" {
			t.Errorf("POST /v1/%s: answer %s %q, want application/json {\"success\":true}", typ, resp.header.Get("Content-Type"), resp.body)
		}
	}
	after := time.Now().UTC()

	rows := b.c.rows(t, b.prefix+"-web")
	if len(rows) != 2*len(Types) {
		t.Fatalf("stored %d rows, want %d (one per event and destination)", len(rows), 2*len(Types))
	}
	snap := b.c.placement(t)
	byType := map[string][]storedRow{}
	for _, r := range rows {
		checkPlacement(t, snap, r)
		typ, _ := r.event["type"].(string)
		byType[typ] = append(byType[typ], r)

		if got := r.event["messageId"]; got != r.messageID {
			t.Errorf("event messageId %v, row message_id %q", got, r.messageID)
		}
		ra, err := time.Parse(time.RFC3339, r.event["receivedAt"].(string))
		if err != nil || !strings.HasSuffix(r.event["receivedAt"].(string), "Z") {
			t.Errorf("receivedAt %q is not RFC 3339 in UTC: %v", r.event["receivedAt"], err)
		}
		if ra.Before(before) || ra.After(after) || !ra.Equal(r.receivedAt) {
			t.Errorf("receivedAt %v (row %v), want between %v and %v", ra, r.receivedAt, before, after)
		}
	}
	for _, typ := range Types {
		rs := byType[typ]
		if len(rs) != 2 {
			t.Fatalf("%d rows of type %s, want 2", len(rs), typ)
		}
		dests := []string{rs[0].destination, rs[1].destination}
		slices.Sort(dests)
		if !slices.Equal(dests, []string{"a", "b"}) || rs[0].messageID != rs[1].messageID {
			t.Errorf("%s rows: destinations %v messageIds %q %q, want a and b with one messageId", typ, dests, rs[0].messageID, rs[1].messageID)
		}
	}
	// Kept as sent: numbers, nested values and HTML characters, byte for
	// byte; the client's own type and receivedAt are replaced.
	track := byType["track"][0]
	for _, want := range []string{`12.50`, `12345678901234567890`, `"<b>"`, `"Order Completed"`} {
		if !strings.Contains(track.raw, want) {
			t.Errorf("stored track event %s lacks %s as sent", track.raw, want)
		}
	}
	if strings.Contains(track.raw, "1999") {
		t.Errorf("stored track event %s kept the client's receivedAt", track.raw)
	}
	if !strings.Contains(byType["group"][0].raw, `1e3`) || !strings.Contains(byType["page"][0].raw, `?a=1&b=2`) {
		t.Errorf("stored events changed values: %s %s", byType["group"][0].raw, byType["page"][0].raw)
	}
	if got := byType["identify"][0].messageID; got != "client-id-1" {
		t.Errorf("identify messageId %q, want the client's client-id-1", got)
	}
	if got := byType["track"][0].messageID; !uuidRE.MatchString(got) {
		t.Errorf("generated messageId %q is not a random UUID", got)
	}
	if got := byType["page"][0].key; got != "anon-2" {
		t.Errorf("page ordering key %q, want anonymousId anon-2 (userId is empty)", got)
	}
	if got := byType["identify"][0].key; got != "anon-1" {
		t.Errorf("identify ordering key %q, want anon-1", got)
	}
}

// checkPlacement fails when r is not in the shard table of its ordering
// key on the node that holds that shard.
func checkPlacement(t *testing.T, snap *shard.Snapshot, r storedRow) {
	t.Helper()
	want := shard.For(r.key, snap.Count())
	if r.shard != want || r.node != snap.Shards[want].Node {
		t.Errorf("key %q stored in shard %d on %s, want shard %d on %s", r.key, r.shard, r.node, want, snap.Shards[want].Node)
	}
}

// TestBatchLandsInOrder posts batches whose events span every shard and
// both nodes, and checks each event is stored on its shard's node, once
// per destination, each key's events in array order.
func TestBatchLandsInOrder(t *testing.T) {
	t.Parallel()
	b := setup(t, sharedClusterFor(t), nil)
	const users, perUser = 24, 5
	var events []string
	for i := range perUser {
		for u := range users {
			events = append(events, fmt.Sprintf(`{"type": "track", "userId": "user-%d", "event": "step", "properties": {"n": %d}, "messageId": "m-%d-%d"}`, u, i, u, i))
		}
	}
	resp := b.post(t, "/v1/batch", `{"batch": [`+strings.Join(events, ",")+`]}`)
	resp.checkOK(t)
	rows := b.c.storedRows(t, b.prefix+"-web", users*perUser*2)
	snap := b.c.placement(t)
	nodes := map[string]bool{}
	seen := map[string][]int{} // key and destination → n in stored order
	for _, r := range rows {
		checkPlacement(t, snap, r)
		nodes[r.node] = true
		n64, _ := r.event["properties"].(map[string]any)["n"].(json.Number).Int64()
		n := int(n64)
		if want := fmt.Sprintf("m-%s-%d", strings.TrimPrefix(r.key, "user-"), n); r.messageID != want {
			t.Errorf("row of %s n=%d has messageId %q, want %q", r.key, n, r.messageID, want)
		}
		seen[r.key+"/"+r.destination] = append(seen[r.key+"/"+r.destination], n)
	}
	if len(nodes) != 2 {
		t.Errorf("events landed on nodes %v, want both", nodes)
	}
	for k, ns := range seen {
		if !slices.Equal(ns, []int{0, 1, 2, 3, 4}) {
			t.Errorf("%s stored in order %v, want 0..4", k, ns)
		}
	}
}

// TestGzipBatch posts a gzipped batch.
func TestGzipBatch(t *testing.T) {
	t.Parallel()
	b := setup(t, sharedClusterFor(t), nil)
	body := gzipped(t, []byte(`{"batch": [{"type": "identify", "userId": "gz-1"}, {"type": "track", "userId": "gz-2", "event": "e"}]}`))
	resp := b.request(t, http.MethodPost, "/v1/batch", b.key, body, "Content-Encoding", "gzip")
	resp.checkOK(t)
	b.c.storedRows(t, b.prefix+"-web", 4)
}

// TestBatchWithOneBadEventStoresNothing checks a batch is all or nothing.
func TestBatchWithOneBadEventStoresNothing(t *testing.T) {
	t.Parallel()
	b := setup(t, sharedClusterFor(t), nil)
	var events []string
	for i := range 50 {
		events = append(events, fmt.Sprintf(`{"type": "track", "userId": "bad-batch-%d", "event": "e"}`, i))
	}
	events[37] = `{"type": "track", "userId": 37, "event": "e"}`
	resp := b.post(t, "/v1/batch", `{"batch": [`+strings.Join(events, ",")+`]}`)
	if resp.status != http.StatusBadRequest || !strings.HasPrefix(resp.errorMessage(t), "batch[37]: ") {
		t.Fatalf("status %d (%s), want 400 naming batch[37]", resp.status, resp.body)
	}
	b.c.storedRows(t, b.prefix+"-web", 0)
}

// TestSourceWithoutDestinations answers 200 and stores nothing.
func TestSourceWithoutDestinations(t *testing.T) {
	t.Parallel()
	b := setup(t, sharedClusterFor(t), nil)
	resp := b.request(t, http.MethodPost, "/v1/track", b.prefix+"-key0", []byte(`{"userId": "u", "event": "e"}`))
	resp.checkOK(t)
	b.c.storedRows(t, b.prefix+"-none", 0)
}

// TestBatchSharedFields checks that context, integrations and sentAt at
// the top of a batch apply to the events that lack their own.
func TestBatchSharedFields(t *testing.T) {
	t.Parallel()
	b := setup(t, sharedClusterFor(t), nil)
	resp := b.request(t, http.MethodPost, "/v1/batch", b.prefix+"-key1", []byte(`{
		"batch": [
			{"type": "identify", "userId": "shared-1", "messageId": "own", "context": {"own": true}},
			{"type": "identify", "userId": "shared-1", "messageId": "inherited"}
		],
		"context": {"library": {"name": "analytics-go"}},
		"sentAt": "2024-05-01T10:00:00.000Z",
		"writeKey": "ignored"
	}`))
	resp.checkOK(t)
	rows := b.c.storedRows(t, b.prefix+"-one", 2)
	for _, r := range rows {
		ctx, _ := json.Marshal(r.event["context"])
		want := `{"library":{"name":"analytics-go"}}`
		if r.messageID == "own" {
			want = `{"own":true}`
		}
		if string(ctx) != want || r.event["sentAt"] != "2024-05-01T10:00:00.000Z" || r.event["writeKey"] != nil {
			t.Errorf("event %s: context %s sentAt %v writeKey %v, want context %s and the batch's sentAt only", r.messageID, ctx, r.event["sentAt"], r.event["writeKey"], want)
		}
	}
}

// TestHealthReadyMetrics checks the operational endpoints.
func TestHealthReadyMetrics(t *testing.T) {
	t.Parallel()
	b := setup(t, sharedClusterFor(t), nil)
	if resp := b.post(t, "/v1/identify", `{"userId": "metrics-user"}`); resp.status != 200 {
		t.Fatalf("identify: status %d (%s)", resp.status, resp.body)
	}
	b.post(t, "/v1/identify", `{}`)
	for _, path := range []string{"/health", "/ready"} {
		if resp := b.request(t, http.MethodGet, path, "", nil); resp.status != 200 {
			t.Errorf("GET %s: status %d (%s), want 200", path, resp.status, resp.body)
		}
	}
	resp := b.request(t, http.MethodGet, "/metrics", "", nil)
	if resp.status != 200 {
		t.Fatalf("GET /metrics: status %d", resp.status)
	}
	for _, want := range []string{
		`ordo_gateway_requests_total{path="/v1/identify",status="200"} 1`,
		`ordo_gateway_requests_total{path="/v1/identify",status="400"} 1`,
		`ordo_gateway_events_accepted_total{type="identify"} 1`,
		`ordo_gateway_ack_seconds_count{path="/v1/identify"} 1`,
		`ordo_store_batch_rows_count 1`,
		`ordo_store_commit_seconds_count{node=`,
		`go_goroutines `,
		`process_cpu_seconds_total `,
	} {
		if !strings.Contains(resp.body, want) {
			t.Errorf("/metrics lacks %s", want)
		}
	}
}

// TestCORSPreflight checks that browser SDKs may post from any origin.
func TestCORSPreflight(t *testing.T) {
	t.Parallel()
	b := setup(t, sharedClusterFor(t), nil)
	resp := b.request(t, http.MethodOptions, "/v1/batch", "", nil, "Origin", "https://shop.example", "Access-Control-Request-Headers", "authorization,content-type")
	if resp.status != http.StatusNoContent || resp.header.Get("Access-Control-Allow-Origin") != "https://shop.example" {
		t.Errorf("preflight: status %d, headers %v; want 204 allowing the origin", resp.status, resp.header)
	}
}

// TestTrickyEventsAreStored posts events that encoding/json accepts but
// that could trip Postgres's JSON input: NUL and lone surrogate escapes
// outside the ordering key, huge and precise numbers, nesting at the
// depth limit. Each must be stored as sent.
func TestTrickyEventsAreStored(t *testing.T) {
	t.Parallel()
	b := setup(t, sharedClusterFor(t), nil)
	events := []string{
		`{"userId": "tricky", "event": "nul", "properties": {"s": "a\u0000b"}}`,
		`{"userId": "tricky", "event": "surrogates", "properties": {"s": "\ud800 \udc00 \ud83d\ude00"}}`,
		`{"userId": "tricky", "event": "numbers", "properties": {"a": 1e999999, "b": -0, "c": 0.1000000000000000000001}}`,
		`{"userId": "tricky", "event": "deep", "properties": ` + strings.Repeat(`{"a":`, MaxDepth-2) + `1` + strings.Repeat(`}`, MaxDepth-2) + `}`,
		`{"userId": "tricky", "event": "unicode", "\u00e9t\u00e9": "\u2028", "emoji": "😀"}`,
	}
	for _, ev := range events {
		if resp := b.post(t, "/v1/track", ev); resp.status != 200 {
			t.Errorf("POST %.60s: status %d (%s), want 200", ev, resp.status, resp.body)
		}
	}
	rows := b.c.storedRows(t, b.prefix+"-web", 2*len(events))
	for _, want := range []string{`"a\u0000b"`, `"\ud800 \udc00 \ud83d\ude00"`, `1e999999`, `0.1000000000000000000001`, `😀`} {
		found := false
		for _, r := range rows {
			found = found || strings.Contains(r.raw, want)
		}
		if !found {
			t.Errorf("no stored event holds %s as sent", want)
		}
	}
}

// TestNonStringGroupAndPreviousIDs posts group and alias events whose
// groupId and previousId are not strings, as Segment SDKs may send: each
// is stored as sent, byte for byte.
func TestNonStringGroupAndPreviousIDs(t *testing.T) {
	t.Parallel()
	b := setup(t, sharedClusterFor(t), nil)
	posts := []struct{ path, body, want string }{
		{"/v1/group", `{"userId": "ids", "groupId": 12345}`, `"groupId": 12345`},
		{"/v1/alias", `{"userId": "ids", "previousId": 678}`, `"previousId": 678`},
		{"/v1/batch", `{"batch": [{"type": "group", "userId": "ids", "groupId": {"org": 9}}]}`, `"groupId": {"org": 9}`},
	}
	for _, p := range posts {
		if resp := b.post(t, p.path, p.body); resp.status != 200 {
			t.Errorf("POST %s %s: status %d (%s), want 200", p.path, p.body, resp.status, resp.body)
		}
	}
	rows := b.c.storedRows(t, b.prefix+"-web", 2*len(posts))
	for _, p := range posts {
		found := false
		for _, r := range rows {
			found = found || strings.Contains(r.raw, p.want)
		}
		if !found {
			t.Errorf("no stored event holds %s as sent", p.want)
		}
	}
}
