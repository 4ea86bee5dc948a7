package e2e

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ordo-pipeline/ordo/internal/checker"
	"github.com/ordo-pipeline/ordo/internal/pgtest"
	"github.com/ordo-pipeline/ordo/internal/proctest"
)

// The hostile-input test's gateway settings: short timeouts so that slow
// clients are cut within the test, and a small in-flight limit so that a
// barrage reaches it.
const (
	hostileInflightMiB   = 64
	hostileHeaderTimeout = time.Second
	hostileReadTimeout   = 3 * time.Second
	// junkKey is the write key of a source whose events go to a webhook
	// outside the checked history: random and fuzzed bodies use it.
	junkKey = "wk_junk"
)

// hostileStack is a node (the catalog too), a gateway, a worker, the
// checked webhook and the junk one.
type hostileStack struct {
	node    *pgtest.Cluster
	h       *checker.History
	gateway *proctest.Proc
	url     string
	addr    string

	mu     sync.Mutex
	bodies []string // every error body the gateway answered
}

func newHostileStack(t *testing.T) *hostileStack {
	s := &hostileStack{node: pgtest.Start(t, 1)[0], h: checker.NewHistory()}
	hook := newWebhook(t, s.h, "hook", 5*time.Second, 0)
	junk := newWebhook(t, checker.NewHistory(), "junk", 5*time.Second, 0)
	ws := proctest.WriteJSON(t, t.TempDir(), "workspace.json", map[string]any{
		"sources": []any{
			map[string]any{"id": "web", "writeKey": writeKey, "destinations": []string{"hook"}},
			map[string]any{"id": "junk", "writeKey": junkKey, "destinations": []string{"junk"}},
		},
		"destinations": []any{hook.destination(), junk.destination()},
	})
	catalog := "ORDO_CATALOG_URL=" + s.node.URL()
	runRebalance(t, "bootstrap", []string{catalog, "ORDO_SHARDS=8", nodesEnv([]*pgtest.Cluster{s.node}, 1)})
	s.addr = proctest.FreeAddr(t)
	s.url = "http://" + s.addr
	s.gateway = start(t, "gateway", "gateway", []string{catalog, "ORDO_WORKSPACE_CONFIG=" + ws, "ORDO_HTTP_ADDR=" + s.addr,
		"ORDO_MAX_INFLIGHT_MIB=" + strconv.Itoa(hostileInflightMiB),
		"ORDO_READ_HEADER_TIMEOUT=" + hostileHeaderTimeout.String(), "ORDO_READ_TIMEOUT=" + hostileReadTimeout.String()})
	start(t, "worker", "worker", []string{catalog, "ORDO_WORKSPACE_CONFIG=" + ws, "ORDO_ADMIN_ADDR=127.0.0.1:0"})
	proctest.WaitReady(t, s.url+"/ready", 30*time.Second)
	return s
}

// hostileCase is one request and the status it must get.
type hostileCase struct {
	name    string
	path    string // defaults to /v1/track
	key     string // defaults to junkKey; "-" sends none
	body    []byte
	headers []string // name, value, …
	status  int
	// key and ids of the events of an accepted request to the checked
	// source, recorded in the history and checked as delivered.
	evKey string
	ids   []string
}

// send sends c and returns the status and body.
func (s *hostileStack) send(t *testing.T, client *http.Client, c hostileCase) (int, []byte) {
	t.Helper()
	path := c.path
	if path == "" {
		path = "/v1/track"
	}
	req, err := http.NewRequest("POST", s.url+path, bytes.NewReader(c.body))
	if err != nil {
		t.Fatal(err)
	}
	switch c.key {
	case "":
		req.SetBasicAuth(junkKey, "")
	case "-":
	default:
		req.SetBasicAuth(c.key, "")
	}
	for i := 0; i+1 < len(c.headers); i += 2 {
		req.Header.Set(c.headers[i], c.headers[i+1])
	}
	if c.ids != nil {
		s.h.Send(c.evKey, []string{"hook"}, c.ids...)
	}
	resp, err := client.Do(req)
	if err != nil {
		return 0, []byte(err.Error())
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode == http.StatusOK && c.ids != nil {
		s.h.Ack(c.ids...)
	}
	if resp.StatusCode != http.StatusOK {
		s.mu.Lock()
		s.bodies = append(s.bodies, string(body))
		s.mu.Unlock()
		s.checkErrorBody(t, c.name, resp, body)
	}
	return resp.StatusCode, body
}

// checkErrorBody checks an error answer: a JSON {"error": ...} body that
// echoes nothing of the database, and Retry-After on a 503.
func (s *hostileStack) checkErrorBody(t *testing.T, name string, resp *http.Response, body []byte) {
	t.Helper()
	var e struct {
		Error string `json:"error"`
	}
	if err := json.Unmarshal(body, &e); err != nil || e.Error == "" {
		t.Errorf("%s: status %d with body %q, not {\"error\": ...}", name, resp.StatusCode, body)
	}
	for _, internal := range []string{"SQLSTATE", "ERROR:", "pgx", "postgres", "relation", "violates", "syntax error at"} {
		if strings.Contains(e.Error, internal) {
			t.Errorf("%s: error body %q holds database internals (%q)", name, e.Error, internal)
		}
	}
	if resp.StatusCode == http.StatusServiceUnavailable && resp.Header.Get("Retry-After") == "" {
		t.Errorf("%s: 503 without Retry-After", name)
	}
}

func gz(data []byte) []byte {
	var b bytes.Buffer
	zw := gzip.NewWriter(&b)
	zw.Write(data)
	zw.Close()
	return b.Bytes()
}

// hostileCases are the cases with one expected status each.
func hostileCases() []hostileCase {
	valid := []byte(`{"userId":"u1","event":"e"}`)
	pad := strings.Repeat("x", 30000)
	bigBatch := []byte(`{"batch":[` + strings.Repeat(`{"type":"track","userId":"u1","event":"e","properties":{"p":"`+pad+`"}},`, 140) + string(valid) + `]}`)
	bomb := gz([]byte(`{"batch":[` + strings.Repeat(`{"type":"identify","userId":"u1"},`, 150000) + `{"type":"identify","userId":"u1"}]}`))
	validGz := gz(valid)
	return []hostileCase{
		{name: "truncated gzip", body: validGz[:len(validGz)/2], headers: []string{"Content-Encoding", "gzip"}, status: 400},
		{name: "gzip header only", body: validGz[:10], headers: []string{"Content-Encoding", "gzip"}, status: 400},
		{name: "not gzip", body: valid, headers: []string{"Content-Encoding", "gzip"}, status: 400},
		{name: "gzip bomb", path: "/v1/batch", body: bomb, headers: []string{"Content-Encoding", "gzip"}, status: 413},
		{name: "gzipped event", body: validGz, headers: []string{"Content-Encoding", "gzip"}, status: 200},
		{name: "brotli", body: valid, headers: []string{"Content-Encoding", "br"}, status: 400},
		{name: "deep nesting", body: []byte(`{"userId":"u1","event":"e","p":` + strings.Repeat("[", 100000) + strings.Repeat("]", 100000) + `}`), status: 413},
		{name: "deep but small", body: []byte(`{"userId":"u1","event":"e","p":` + strings.Repeat("[", 600) + strings.Repeat("]", 600) + `}`), status: 400},
		{name: "deep in a batch", path: "/v1/batch", body: []byte(`{"batch":[{"type":"track","userId":"u1","event":"e","p":` + strings.Repeat(`{"a":`, 5000) + `1` + strings.Repeat(`}`, 5000) + `}]}`), status: 400},
		{name: "unclosed nesting", body: []byte(`{"userId":"u1","event":"e","p":` + strings.Repeat("[", 5000)), status: 400},
		{name: "huge string", body: []byte(`{"userId":"u1","event":"e","p":"` + strings.Repeat("s", 5<<20) + `"}`), status: 413},
		{name: "string over 32 KiB", body: []byte(`{"userId":"u1","event":"e","p":"` + strings.Repeat("s", 40000) + `"}`), status: 413},
		{name: "batch over 4 MiB", path: "/v1/batch", body: bigBatch, status: 413},
		{name: "huge key", body: []byte(`{"userId":"` + strings.Repeat("k", 20000) + `","event":"e"}`), status: 200},
		{name: "many members", body: []byte(`{"userId":"u1","event":"e"` + strings.Repeat(`,"a":1`, 5000) + `}`), status: 200},
		{name: "invalid UTF-8", body: []byte("{\"userId\":\"u1\",\"event\":\"\xc3\x28\"}"), status: 400},
		{name: "invalid UTF-8 in a key", body: []byte("{\"userId\":\"u1\",\"event\":\"e\",\"\xff\":1}"), status: 400},
		{name: "NUL escape in userId", body: []byte(`{"userId":"a\u0000b","event":"e"}`), status: 400},
		{name: "NUL escape in messageId", body: []byte(`{"userId":"u1","event":"e","messageId":"m\u0000"}`), status: 400},
		{name: "raw NUL byte", body: []byte("{\"userId\":\"u1\",\"event\":\"e\x00\"}"), status: 400},
		{name: "wrong type: userId", body: []byte(`{"userId":12,"event":"e"}`), status: 400},
		{name: "wrong type: event", body: []byte(`{"userId":"u1","event":{"x":1}}`), status: 400},
		{name: "wrong type: messageId", body: []byte(`{"userId":"u1","event":"e","messageId":[1]}`), status: 400},
		{name: "wrong type: batch", path: "/v1/batch", body: []byte(`{"batch":{"type":"track"}}`), status: 400},
		{name: "wrong type: batch element", path: "/v1/batch", body: []byte(`{"batch":[1,2]}`), status: 400},
		{name: "wrong type: type", path: "/v1/batch", body: []byte(`{"batch":[{"type":7,"userId":"u1","event":"e"}]}`), status: 400},
		{name: "event is an array", body: []byte(`[{"userId":"u1","event":"e"}]`), status: 400},
		{name: "event is a string", body: []byte(`"hello"`), status: 400},
		{name: "empty body", body: nil, status: 400},
		{name: "whitespace body", body: []byte(" \n\t "), status: 400},
		{name: "trailing garbage", body: append(append([]byte{}, valid...), "garbage"...), status: 400},
		{name: "two objects", body: append(append([]byte{}, valid...), valid...), status: 400},
		{name: "number overflow", body: []byte(`{"userId":"u1","event":"e","n":1e999999}`), status: 200},
		{name: "unknown write key", key: "nope", body: valid, status: 401},
		{name: "no write key", key: "-", body: valid, status: 401},
		{name: "write key in a bad body", key: "-", body: []byte(`{"writeKey":`), status: 401},
		{name: "empty batch", path: "/v1/batch", body: []byte(`{"batch":[]}`), status: 400},
		{name: "null batch", path: "/v1/batch", body: []byte(`{"batch":null}`), status: 400},
	}
}

// checkedCases are accepted events of the checked source, with their
// message ids, and refused batches whose good events must never be
// delivered.
func checkedCases() []hostileCase {
	return []hostileCase{
		// Duplicate keys: the last value counts, as in Postgres's jsonb.
		{name: "duplicate userId", key: writeKey, body: []byte(`{"userId":"dup-a","userId":"dup-b","event":"e","messageId":"h-dup-1"}`), status: 200, evKey: "dup-b", ids: []string{"h-dup-1"}},
		{name: "duplicate messageId", key: writeKey, body: []byte(`{"userId":"dup-c","event":"e","messageId":"h-dup-x","messageId":"h-dup-2"}`), status: 200, evKey: "dup-c", ids: []string{"h-dup-2"}},
		// NUL and lone surrogates as escapes, outside the key fields: kept
		// as sent.
		{name: "NUL escape in properties", key: writeKey, body: []byte(`{"userId":"esc","event":"e","messageId":"h-esc-1","properties":{"s":"a\u0000b"}}`), status: 200, evKey: "esc", ids: []string{"h-esc-1"}},
		{name: "lone surrogate", key: writeKey, body: []byte(`{"userId":"esc","event":"e\ud800","messageId":"h-esc-2","properties":{"s":"\udfff"}}`), status: 200, evKey: "esc", ids: []string{"h-esc-2"}},
		{name: "escaped key", key: writeKey, body: []byte(`{"userId":"\u0065sc","event":"e","messageId":"h-esc-3"}`), status: 200, evKey: "esc", ids: []string{"h-esc-3"}},
		// A batch with one bad event stores none of its events.
		{name: "batch with a bad event", key: writeKey, path: "/v1/batch", status: 400, evKey: "mixed", ids: []string{"h-mixed-1", "h-mixed-2"},
			body: []byte(`{"batch":[{"type":"track","userId":"mixed","event":"e","messageId":"h-mixed-1"},{"type":"track","userId":5,"event":"e"},{"type":"track","userId":"mixed","event":"e","messageId":"h-mixed-2"}]}`)},
		{name: "batch with a big event", key: writeKey, path: "/v1/batch", status: 413, evKey: "mixed", ids: []string{"h-mixed-3"},
			body: []byte(`{"batch":[{"type":"track","userId":"mixed","event":"e","messageId":"h-mixed-3"},{"type":"track","userId":"mixed","event":"e","p":"` + strings.Repeat("z", 40000) + `"}]}`)},
	}
}

// TestHostileInput sends a running gateway every kind of bad request
// while good traffic goes through the same gateway: each must get its
// defined status and a JSON error body that holds nothing of the
// database; slow clients are cut by the timeouts; a barrage of large
// bodies, gzip bombs and huge batches is held to the in-flight limit and
// leaves the gateway's memory bounded; and every event acknowledged meanwhile
// is delivered, none of a refused request.
func TestHostileInput(t *testing.T) {
	s := newHostileStack(t)
	tr := newTraffic(s.h, []string{s.url}, writeKey, "hook")
	tr.start(8, 5*time.Millisecond)
	client := &http.Client{Timeout: 30 * time.Second}

	t.Run("cases", func(t *testing.T) {
		cases := append(hostileCases(), checkedCases()...)
		var wg sync.WaitGroup
		for _, c := range cases {
			wg.Go(func() {
				if status, body := s.send(t, client, c); status != c.status {
					t.Errorf("%s: status %d, want %d (%.200s)", c.name, status, c.status, body)
				}
			})
		}
		wg.Wait()
	})

	t.Run("random bodies", func(t *testing.T) {
		rng := rand.New(rand.NewPCG(12, 34))
		seeds := [][]byte{
			[]byte(`{"userId":"u1","event":"e","properties":{"a":[1,2,{"b":null}],"s":"x\"y"}}`),
			[]byte(`{"batch":[{"type":"identify","anonymousId":"a","traits":{"t":true}},{"type":"track","userId":"u","event":"e"}],"sentAt":"x"}`),
		}
		for i := range 400 {
			body := mutate(rng, seeds[i%len(seeds)])
			path := "/v1/track"
			if i%len(seeds) == 1 {
				path = "/v1/batch"
			}
			status, msg := s.send(t, client, hostileCase{name: fmt.Sprintf("random body %d", i), path: path, body: body})
			if status != 200 && status != 400 && status != 413 {
				t.Errorf("random body %d %q: status %d (%s)", i, body, status, msg)
			}
		}
	})

	t.Run("pixels", func(t *testing.T) {
		deep := strings.Repeat("a.", 600) + "b=1"
		for _, c := range []struct {
			name, query string
			status      int
		}{
			{"pixel", "userId=u1&event=e", 200},
			{"invalid UTF-8", "userId=u%ff&event=e", 400},
			{"NUL in userId", "userId=u%00&event=e", 400},
			{"no user", "event=e", 400},
			{"dotted names 600 deep", "userId=u1&event=e&properties." + deep, 400},
			{"a name both value and object", "userId=u1&event=e&properties=x&properties.a=1", 400},
			{"empty names", "userId=u1&event=e&properties..=1&.=2&=3", 400},
			{"bad escape", "userId=u1&event=e%zz", 400},
			{"unknown write key", "userId=u1&event=e&writeKey=nope", 401},
		} {
			u := s.url + "/pixel/v1/track?" + c.query
			if !strings.Contains(c.query, "writeKey=") {
				u += "&writeKey=" + junkKey
			}
			resp, err := client.Get(u)
			if err != nil {
				t.Errorf("pixel %s: %v", c.name, err)
				continue
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != c.status || !bytes.HasPrefix(body, []byte("GIF89a")) {
				t.Errorf("pixel %s: status %d (%s), body %.10q; want %d and the GIF", c.name, resp.StatusCode, resp.Header.Get("X-Ordo-Error"), body, c.status)
			}
		}
		// A query well over the 64 KiB header limit: Go's server answers 431.
		resp, err := client.Get(s.url + "/pixel/v1/track?writeKey=" + junkKey + "&userId=u1&event=e&p=" + strings.Repeat("x", 100<<10))
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusRequestHeaderFieldsTooLarge {
			t.Errorf("a 100 KiB pixel query: status %d, want 431", resp.StatusCode)
		}
	})

	t.Run("slow clients", func(t *testing.T) { s.slowClients(t) })
	t.Run("memory", func(t *testing.T) { s.barrage(t) })

	tr.finish()
	r := checkGuarantees(t, s.h, []*pgtest.Cluster{s.node}, time.Minute, checker.Limits{})
	if r.UnackedDelivered > 0 {
		t.Errorf("%d events of refused requests were delivered", r.UnackedDelivered)
	}
	if r.Acked < 100 {
		t.Errorf("only %d events acknowledged beside the hostile requests", r.Acked)
	}
	if crashed, err := s.gateway.Crashed(); crashed {
		t.Fatalf("the gateway exited: %v\n%s", err, proctest.Tail(s.gateway.Log, 30))
	}
	proctest.WaitReady(t, s.url+"/health", 5*time.Second)
	if data, _ := os.ReadFile(s.gateway.Log); bytes.Contains(data, []byte("panic")) {
		t.Errorf("the gateway's log holds a panic:\n%s", proctest.Tail(s.gateway.Log, 30))
	}
}

// mutate returns a copy of seed with a few random edits: bytes flipped,
// inserted from JSON's alphabet, deleted, or the body cut short.
func mutate(rng *rand.Rand, seed []byte) []byte {
	b := append([]byte{}, seed...)
	const alphabet = "{}[]\":,\\ 0123456789.eE+-truefalsnul\x00\xff\xc3u"
	for range 1 + rng.IntN(4) {
		switch i := rng.IntN(len(b) + 1); rng.IntN(4) {
		case 0:
			if i < len(b) {
				b[i] = byte(rng.IntN(256))
			}
		case 1:
			b = append(b[:i], append([]byte{alphabet[rng.IntN(len(alphabet))]}, b[i:]...)...)
		case 2:
			if i < len(b) {
				b = append(b[:i], b[i+1:]...)
			}
		case 3:
			b = b[:i]
		}
	}
	return b
}

// slowClients holds connections that send their headers, or their body,
// a byte at a time: each is cut by its timeout, headers with a 400 or no
// answer, bodies with 408; while slow bodies reserve the in-flight limit,
// a request that needs room is answered 503 with Retry-After, and once
// they are cut requests go through again.
func (s *hostileStack) slowClients(t *testing.T) {
	var wg sync.WaitGroup
	for i := range 4 {
		wg.Go(func() {
			conn, err := net.Dial("tcp", s.addr)
			if err != nil {
				t.Error(err)
				return
			}
			defer conn.Close()
			began := time.Now()
			header := "POST /v1/track HTTP/1.1\r\nHost: x\r\nX-Slow: " + strings.Repeat("a", 100)
			for j := 0; j < len(header); j++ {
				if _, err := conn.Write([]byte{header[j]}); err != nil {
					break // closed by the gateway
				}
				time.Sleep(100 * time.Millisecond)
			}
			conn.SetReadDeadline(time.Now().Add(10 * time.Second))
			answer, _ := io.ReadAll(conn)
			took := time.Since(began)
			if len(answer) > 0 && !bytes.HasPrefix(answer, []byte("HTTP/1.1 400 ")) || took > hostileHeaderTimeout+3*time.Second {
				t.Errorf("slow headers %d: answer %q, connection closed after %v; want closed within %v", i, answer, took, hostileHeaderTimeout)
			}
		})
	}

	// Slow bodies that declare 4 MiB each reserve 16 MiB of the limit:
	// open them until the gateway refuses one, at once.
	refused := false
	var held []net.Conn
	for i := 0; i < 2*hostileInflightMiB/16 && !refused; i++ {
		conn, err := net.Dial("tcp", s.addr)
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		fmt.Fprintf(conn, "POST /v1/batch HTTP/1.1\r\nHost: x\r\nAuthorization: Basic %s\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n",
			basic(junkKey), 4<<20)
		conn.SetReadDeadline(time.Now().Add(500 * time.Millisecond))
		resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode != http.StatusServiceUnavailable || resp.Header.Get("Retry-After") == "" {
				t.Errorf("slow body %d answered at once with %d (Retry-After %q), want 503 with Retry-After", i, resp.StatusCode, resp.Header.Get("Retry-After"))
			}
			refused = true
			continue
		}
		held = append(held, conn)
	}
	if !refused {
		t.Errorf("%d slow bodies of 4 MiB held, none refused: the in-flight limit of %d MiB does not hold", len(held), hostileInflightMiB)
	}
	for i, conn := range held {
		wg.Go(func() {
			began := time.Now()
			conn.SetReadDeadline(time.Now().Add(hostileReadTimeout + 5*time.Second))
			go func() {
				for range 200 {
					if _, err := conn.Write([]byte("{")); err != nil {
						return
					}
					time.Sleep(50 * time.Millisecond)
				}
			}()
			resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
			if err != nil {
				t.Errorf("slow body %d: no answer: %v", i, err)
				return
			}
			resp.Body.Close()
			if took := time.Since(began); resp.StatusCode != http.StatusRequestTimeout || took > hostileReadTimeout+3*time.Second {
				t.Errorf("slow body %d: status %d after %v; want 408 within %v", i, resp.StatusCode, took, hostileReadTimeout)
			}
		})
	}
	wg.Wait()
	client := &http.Client{Timeout: 10 * time.Second}
	status, body := s.send(t, client, hostileCase{name: "request after slow bodies", body: []byte(`{"userId":"u1","event":"e"}`)})
	if status != http.StatusOK {
		t.Errorf("a request once the slow bodies were cut: status %d (%s), want 200", status, body)
	}
	t.Logf("slow clients: 4 slow headers cut, %d slow bodies held then answered 408, the next refused with 503", len(held))
}

func basic(user string) string {
	req, _ := http.NewRequest("GET", "http://x", nil)
	req.SetBasicAuth(user, "")
	return strings.TrimPrefix(req.Header.Get("Authorization"), "Basic ")
}

// barrage sends, from many clients at once, bodies of the largest size,
// gzip bombs and batches of tiny events, for a few seconds, and checks
// that the gateway's peak memory stays within what its in-flight limit
// allows.
func (s *hostileStack) barrage(t *testing.T) {
	before := vmKiB(t, s.gateway, "VmRSS")
	pad := strings.Repeat("x", 30000)
	// Refused once parsed (the last event lacks its user): read, decoded
	// and validated whole, stored nowhere.
	large := []byte(`{"batch":[` + strings.Repeat(`{"type":"track","userId":"u1","event":"e","properties":{"p":"`+pad+`"}},`, 135) + `{"type":"track","event":"e"}]}`)
	tiny := []byte(`{"batch":[` + strings.Repeat(`{"type":"track","userId":"u","event":"e"},`, 90000) + `{"type":"track","event":"e"}]}`)
	bomb := gz([]byte(`{"batch":[` + strings.Repeat(`{"type":"identify","userId":"u1"},`, 150000) + `{"type":"identify","userId":"u1"}]}`))
	bodies := []struct {
		body []byte
		gzip bool
	}{{large, false}, {tiny, false}, {bomb, true}, {gz(large), true}}
	counts := map[int]int{}
	var mu sync.Mutex
	var wg sync.WaitGroup
	stop := time.Now().Add(4 * time.Second)
	client := &http.Client{Timeout: 30 * time.Second}
	for i := range 32 {
		wg.Go(func() {
			for j := i; time.Now().Before(stop); j++ {
				b := bodies[j%len(bodies)]
				c := hostileCase{name: "barrage", path: "/v1/batch", body: b.body}
				if b.gzip {
					c.headers = []string{"Content-Encoding", "gzip"}
				}
				status, _ := s.send(t, client, c)
				mu.Lock()
				counts[status]++
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	peak := vmKiB(t, s.gateway, "VmHWM")
	t.Logf("barrage: answers by status %v; gateway RSS %d MiB before, peak %d MiB, in-flight limit %d MiB",
		counts, before>>10, peak>>10, hostileInflightMiB)
	if counts[http.StatusServiceUnavailable] == 0 {
		t.Errorf("no request was refused for the in-flight limit: answers %v", counts)
	}
	if counts[http.StatusBadRequest]+counts[http.StatusRequestEntityTooLarge] == 0 {
		t.Errorf("no request got through to be refused for its content: answers %v", counts)
	}
	for status := range counts {
		if status != 400 && status != 413 && status != 503 {
			t.Errorf("barrage: %d answers with status %d", counts[status], status)
		}
	}
	// The runtime's soft limit is the in-flight limit plus 128 MiB: allow
	// it 64 MiB of slack.
	if limit := int64(hostileInflightMiB+128+64) << 10; peak > limit {
		t.Errorf("the gateway's peak RSS is %d MiB, over %d MiB", peak>>10, limit>>10)
	}
}

// vmKiB reads one of the Vm* lines of p's /proc status, in KiB.
func vmKiB(t *testing.T, p *proctest.Proc, field string) int64 {
	t.Helper()
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", p.Cmd.Process.Pid))
	if err != nil {
		t.Fatalf("reading the gateway's memory: %v", err)
	}
	for _, line := range strings.Split(string(data), "\n") {
		if rest, ok := strings.CutPrefix(line, field+":"); ok {
			n, err := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(rest), "kB")), 10, 64)
			if err != nil {
				t.Fatalf("%s: %v", line, err)
			}
			return n
		}
	}
	t.Fatalf("no %s in /proc/%d/status", field, p.Cmd.Process.Pid)
	return 0
}
