package gateway

import (
	"bytes"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
)

// TestErrorStatuses checks every refusal: its status, its JSON error body
// and its message, and that none of them stored anything.
func TestErrorStatuses(t *testing.T) {
	t.Parallel()
	b := setup(t, sharedClusterFor(t), nil)
	valid := `{"userId": "u1", "event": "Signed Up"}`
	bigEvent := `{"userId": "u1", "event": "e", "properties": {"pad": "` + strings.Repeat("x", MaxEventBytes) + `"}}`
	bigBody := `{"batch": [` + strings.Repeat(`{"type": "track", "userId": "u1", "event": "e", "properties": {"pad": "`+strings.Repeat("y", 30000)+`"}},`, 140) + valid + `]}`
	// Highly compressible: well under 4 MiB gzipped, over it once inflated.
	bomb := gzipped(t, []byte(`{"batch": [`+strings.Repeat(`{"type": "identify", "userId": "u1"},`, 120000)+valid+`]}`))
	deep := `{"userId": "u1", "event": "e", "p": ` + strings.Repeat("[", MaxDepth+1) + strings.Repeat("]", MaxDepth+1) + `}`

	for _, tc := range []struct {
		name    string
		method  string
		path    string
		key     string // "-" for none
		body    []byte
		headers []string
		status  int
		msg     string // a part of the error message
	}{
		{name: "GET track", method: "GET", path: "/v1/track", body: nil, status: 405, msg: "POST"},
		{name: "PUT batch", method: "PUT", path: "/v1/batch", body: []byte(`{"batch": []}`), status: 405, msg: "POST"},
		{name: "POST health", method: "POST", path: "/health", status: 405, msg: "GET"},
		{name: "DELETE metrics", method: "DELETE", path: "/metrics", status: 405, msg: "GET"},
		{name: "no write key", key: "-", body: []byte(valid), status: 401, msg: "missing write key"},
		{name: "unknown write key", key: "nope", body: []byte(valid), status: 401, msg: "unknown write key"},
		{name: "malformed JSON", body: []byte(`{"userId": "u1",`), status: 400, msg: "malformed JSON"},
		{name: "not JSON", body: []byte(`userId=u1`), status: 400, msg: "malformed JSON"},
		{name: "empty body", body: []byte(``), status: 400, msg: "malformed JSON"},
		{name: "array", body: []byte(`[{"userId": "u1"}]`), status: 400, msg: "JSON object"},
		{name: "trailing data", body: []byte(valid + ` {}`), status: 400, msg: "after the object"},
		{name: "invalid UTF-8", body: []byte("{\"userId\": \"u\xff\", \"event\": \"e\"}"), status: 400, msg: "UTF-8"},
		{name: "no user", body: []byte(`{"event": "e"}`), status: 400, msg: `"userId" or "anonymousId" is required`},
		{name: "empty ids", body: []byte(`{"userId": "", "anonymousId": "", "event": "e"}`), status: 400, msg: `"userId" or "anonymousId" is required`},
		{name: "null ids", body: []byte(`{"userId": null, "anonymousId": null, "event": "e"}`), status: 400, msg: `"userId" or "anonymousId" is required`},
		{name: "numeric userId", body: []byte(`{"userId": 42, "event": "e"}`), status: 400, msg: `"userId" must be a string`},
		{name: "numeric anonymousId", body: []byte(`{"userId": "u1", "anonymousId": 7, "event": "e"}`), status: 400, msg: `"anonymousId" must be a string`},
		{name: "object userId", body: []byte(`{"userId": {"id": 1}, "event": "e"}`), status: 400, msg: `"userId" must be a string`},
		{name: "NUL in userId", body: []byte(`{"userId": "a\u0000b", "event": "e"}`), status: 400, msg: "NUL"},
		{name: "track without event", body: []byte(`{"userId": "u1"}`), status: 400, msg: `track event needs "event"`},
		{name: "track empty event", body: []byte(`{"userId": "u1", "event": ""}`), status: 400, msg: `track event needs "event"`},
		{name: "track numeric event", body: []byte(`{"userId": "u1", "event": 5}`), status: 400, msg: `"event" must be a string`},
		{name: "group without groupId", path: "/v1/group", body: []byte(`{"userId": "u1"}`), status: 400, msg: `group event needs "groupId"`},
		{name: "alias without previousId", path: "/v1/alias", body: []byte(`{"userId": "u1"}`), status: 400, msg: `alias event needs "previousId"`},
		{name: "group null groupId", path: "/v1/group", body: []byte(`{"userId": "u1", "groupId": null}`), status: 400, msg: `group event needs "groupId"`},
		{name: "group empty groupId", path: "/v1/group", body: []byte(`{"userId": "u1", "groupId": ""}`), status: 400, msg: `group event needs "groupId"`},
		{name: "alias null previousId", path: "/v1/alias", body: []byte(`{"userId": "u1", "previousId": null}`), status: 400, msg: `alias event needs "previousId"`},
		{name: "alias empty previousId", path: "/v1/alias", body: []byte(`{"userId": "u1", "previousId": ""}`), status: 400, msg: `alias event needs "previousId"`},
		{name: "numeric messageId", body: []byte(`{"userId": "u1", "event": "e", "messageId": 1}`), status: 400, msg: `"messageId" must be a string`},
		{name: "too deep", body: []byte(deep), status: 400, msg: "levels deep"},
		{name: "batch missing", path: "/v1/batch", body: []byte(`{}`), status: 400, msg: `"batch" is required`},
		{name: "batch null", path: "/v1/batch", body: []byte(`{"batch": null}`), status: 400, msg: `"batch" is required`},
		{name: "batch empty", path: "/v1/batch", body: []byte(`{"batch": []}`), status: 400, msg: `"batch" is empty`},
		{name: "batch not array", path: "/v1/batch", body: []byte(`{"batch": {"userId": "u1"}}`), status: 400, msg: `"batch" must be an array`},
		{name: "batch body array", path: "/v1/batch", body: []byte(`[{"type": "track"}]`), status: 400, msg: "JSON object"},
		{name: "batch malformed", path: "/v1/batch", body: []byte(`{"batch": [{"type": "track",]}`), status: 400, msg: "malformed JSON"},
		{name: "batch bad event", path: "/v1/batch", body: []byte(`{"batch": [{"type": "track", "userId": "u1", "event": "e"}, {"type": "track", "userId": "u1"}]}`), status: 400, msg: `batch[1]: track event needs "event"`},
		{name: "batch no type", path: "/v1/batch", body: []byte(`{"batch": [{"userId": "u1"}]}`), status: 400, msg: `batch[0]: "type" is required`},
		{name: "batch unknown type", path: "/v1/batch", body: []byte(`{"batch": [{"type": "identify", "userId": "u1"}, {"type": "purchase", "userId": "u1"}]}`), status: 400, msg: `batch[1]: "type" "purchase" is not one of`},
		{name: "batch numeric type", path: "/v1/batch", body: []byte(`{"batch": [{"type": 1, "userId": "u1"}]}`), status: 400, msg: `batch[0]: "type" must be a string`},
		{name: "batch element not object", path: "/v1/batch", body: []byte(`{"batch": [{"type": "identify", "userId": "u1"}, {"type": "identify", "userId": "u2"}, "x"]}`), status: 400, msg: "batch[2]: event must be a JSON object"},
		{name: "batch numeric userId", path: "/v1/batch", body: []byte(`{"batch": [{"type": "identify", "userId": 12}]}`), status: 400, msg: `batch[0]: "userId" must be a string`},
		{name: "unsupported encoding", body: []byte(valid), headers: []string{"Content-Encoding", "br"}, status: 400, msg: "Content-Encoding"},
		{name: "not gzip", body: []byte(valid), headers: []string{"Content-Encoding", "gzip"}, status: 400, msg: "gzip"},
		{name: "truncated gzip", body: gzipped(t, []byte(valid))[:20], headers: []string{"Content-Encoding", "gzip"}, status: 400, msg: "gzip"},
		{name: "event over 32 KiB", body: []byte(bigEvent), status: 413, msg: "32 KiB"},
		{name: "batch event over 32 KiB", path: "/v1/batch", body: []byte(`{"batch": [{"type": "identify", "userId": "u1"}, ` + strings.Replace(bigEvent, `{`, `{"type": "track", `, 1) + `]}`), status: 413, msg: "batch[1]: event is"},
		{name: "body over 4 MiB", path: "/v1/batch", body: []byte(bigBody), status: 413, msg: "4 MiB"},
		{name: "gzip body over 4 MiB", path: "/v1/batch", body: bomb, headers: []string{"Content-Encoding", "gzip"}, status: 413, msg: "decompressed"},
		{name: "unknown path", path: "/v1/purchase", body: []byte(valid), status: 404, msg: "no such endpoint"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			method, path, key := tc.method, tc.path, tc.key
			if method == "" {
				method = http.MethodPost
			}
			if path == "" {
				path = "/v1/track"
			}
			switch key {
			case "":
				key = b.key
			case "-":
				key = ""
			}
			resp := b.request(t, method, path, key, tc.body, tc.headers...)
			if resp.status != tc.status {
				t.Fatalf("%s %s: status %d, want %d (body %s)", method, path, resp.status, tc.status, resp.body)
			}
			if got := resp.header.Get("Content-Type"); got != "application/json" {
				t.Errorf("Content-Type %q, want application/json", got)
			}
			if msg := resp.errorMessage(t); !strings.Contains(msg, tc.msg) {
				t.Errorf("error %q, want it to hold %q", msg, tc.msg)
			}
			if tc.status == 405 && resp.header.Get("Allow") == "" {
				t.Error("405 without Allow header")
			}
		})
	}
	if rows := b.c.rows(t, b.prefix+"-web"); len(rows) != 0 {
		t.Errorf("refused requests stored %d rows, want 0", len(rows))
	}
}

// TestBodyLimitIsExact checks that a body of exactly 4 MiB is read and one
// byte more is refused, compressed or not.
func TestBodyLimitIsExact(t *testing.T) {
	t.Parallel()
	b := setup(t, sharedClusterFor(t), nil)
	body := func(size int) []byte {
		// A batch body padded with white space, which JSON ignores.
		core := []byte(`{"batch": [{"type": "identify", "userId": "limit"}]}`)
		return append(core, bytes.Repeat([]byte(" "), size-len(core))...)
	}
	for _, tc := range []struct {
		size    int
		gzip    bool
		chunked bool // sent without Content-Length
		status  int
	}{
		{MaxBodyBytes, false, false, 200},
		{MaxBodyBytes + 1, false, false, 413},
		{MaxBodyBytes, false, true, 200},
		{MaxBodyBytes + 1, false, true, 413},
		{MaxBodyBytes, true, false, 200},
		{MaxBodyBytes + 1, true, false, 413},
		{MaxBodyBytes + 1, true, true, 413},
	} {
		t.Run(fmt.Sprintf("%d gzip=%v chunked=%v", tc.size, tc.gzip, tc.chunked), func(t *testing.T) {
			data := body(tc.size)
			req, err := http.NewRequest(http.MethodPost, b.srv.URL+"/v1/batch", bytes.NewReader(data))
			if err != nil {
				t.Fatal(err)
			}
			if tc.gzip {
				data = gzipped(t, data)
				req.Body, req.ContentLength = io.NopCloser(bytes.NewReader(data)), int64(len(data))
				req.Header.Set("Content-Encoding", "gzip")
			}
			if tc.chunked {
				req.Body, req.ContentLength = io.NopCloser(io.MultiReader(bytes.NewReader(data))), -1
			}
			req.SetBasicAuth(b.key, "")
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			msg, _ := io.ReadAll(resp.Body)
			if resp.StatusCode != tc.status {
				t.Fatalf("status %d, want %d (%s)", resp.StatusCode, tc.status, msg)
			}
		})
	}
}
