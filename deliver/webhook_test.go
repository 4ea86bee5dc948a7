package deliver

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/ordo-pipeline/ordo/internal/proctest"
)

// request is what the test server received.
type request struct {
	method string
	header http.Header
	host   string
	body   []byte
}

type testBundle struct {
	server   *httptest.Server
	requests chan request
}

// setup starts a server that records every request and answers it with
// handler, or 200 when handler is nil. configure, when given, adjusts the
// server before it starts.
func setup(t *testing.T, handler http.HandlerFunc, configure ...func(*http.Server)) *testBundle {
	t.Helper()
	b := &testBundle{requests: make(chan request, 100)}
	b.server = httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, err := io.ReadAll(r.Body)
		if err != nil {
			t.Errorf("server: read body: %v", err)
		}
		b.requests <- request{method: r.Method, header: r.Header.Clone(), host: r.Host, body: body}
		if handler != nil {
			handler(w, r)
		}
	}))
	for _, f := range configure {
		f(b.server.Config)
	}
	b.server.Start()
	t.Cleanup(b.server.Close)
	return b
}

// webhook builds a webhook to the bundle's server from config JSON, in
// which URL stands for the server's URL.
func (b *testBundle) webhook(t *testing.T, config string) *Webhook {
	t.Helper()
	return newWebhook(t, strings.ReplaceAll(config, "URL", b.server.URL))
}

func newWebhook(t *testing.T, config string) *Webhook {
	t.Helper()
	d, err := New("webhook", json.RawMessage(config))
	if err != nil {
		t.Fatalf("New(webhook, %s): %v", config, err)
	}
	w := d.(*Webhook)
	t.Cleanup(w.CloseIdleConnections)
	return w
}

// next returns the next request the server received.
func (b *testBundle) next(t *testing.T) request {
	t.Helper()
	select {
	case r := <-b.requests:
		return r
	case <-time.After(5 * time.Second):
		t.Fatal("server received no request")
		return request{}
	}
}

func (b *testBundle) noRequest(t *testing.T) {
	t.Helper()
	select {
	case r := <-b.requests:
		t.Fatalf("server received %s %s, want no request", r.method, r.body)
	default:
	}
}

func event(id, payload string) Event {
	return Event{MessageID: id, Payload: json.RawMessage(payload)}
}

func TestWebhookSingleBodyExact(t *testing.T) {
	t.Parallel()
	b := setup(t, nil)
	w := b.webhook(t, `{"url": "URL/events"}`)

	// Odd spacing and key order must survive byte for byte.
	payload := `{ "type":"track",  "event" : "Signed Up","messageId":"m1","properties":{"z":1,"a":[1, 2]} }`
	res := w.Send(t.Context(), []Event{event("m1", payload)})
	if !res.OK() {
		t.Fatalf("Send: %v", res.Err)
	}
	if res.Status != http.StatusOK || res.Retryable {
		t.Errorf("Send = status %d, retryable %v; want 200, false", res.Status, res.Retryable)
	}
	got := b.next(t)
	if got.method != http.MethodPost {
		t.Errorf("method = %s, want POST", got.method)
	}
	if string(got.body) != payload {
		t.Errorf("body = %s, want %s", got.body, payload)
	}
	if ct := got.header.Get("Content-Type"); ct != "application/json" {
		t.Errorf("Content-Type = %q, want application/json", ct)
	}
}

func TestWebhookBatchWrapper(t *testing.T) {
	t.Parallel()
	b := setup(t, nil)
	w := b.webhook(t, `{"url": "URL", "maxBatchSize": 3}`)
	if got := w.MaxBatchSize(); got != 3 {
		t.Fatalf("MaxBatchSize() = %d, want 3", got)
	}

	p1 := `{"messageId":"m1", "type":"track"}`
	p2 := `{"messageId":"m2","type":"identify"}`
	p3 := ` {"messageId":"m3"}`
	tests := []struct {
		events []Event
		want   string
	}{
		// The wrapper is used even for one event when maxBatchSize > 1.
		{[]Event{event("m1", p1)}, `{"batch":[` + p1 + `]}`},
		{[]Event{event("m1", p1), event("m2", p2), event("m3", p3)}, `{"batch":[` + p1 + `,` + p2 + `,` + p3 + `]}`},
	}
	for _, tt := range tests {
		res := w.Send(t.Context(), tt.events)
		if !res.OK() {
			t.Fatalf("Send(%d events): %v", len(tt.events), res.Err)
		}
		got := b.next(t)
		if string(got.body) != tt.want {
			t.Errorf("Send(%d events) body = %s, want %s", len(tt.events), got.body, tt.want)
		}
		var v struct{ Batch []json.RawMessage }
		if err := json.Unmarshal(got.body, &v); err != nil || len(v.Batch) != len(tt.events) {
			t.Errorf("body %s: %d batch entries, err %v; want %d entries", got.body, len(v.Batch), err, len(tt.events))
		}
	}
}

func TestWebhookHeaders(t *testing.T) {
	t.Parallel()
	b := setup(t, nil)
	w := b.webhook(t, `{"url": "URL", "headers": {"Authorization": "Bearer s3cret", "x-custom": "a b", "content-type": "application/json; charset=utf-8"}}`)

	if res := w.Send(t.Context(), []Event{event("m1", `{}`)}); !res.OK() {
		t.Fatalf("Send: %v", res.Err)
	}
	got := b.next(t)
	for name, want := range map[string]string{
		"Authorization":   "Bearer s3cret",
		"X-Custom":        "a b",
		"Content-Type":    "application/json; charset=utf-8",
		"User-Agent":      webhookUserAgent,
		"Idempotency-Key": "",
	} {
		if v := got.header.Get(name); v != want {
			t.Errorf("header %s = %q, want %q", name, v, want)
		}
	}
	if v, ok := got.header["Idempotency-Key"]; ok {
		t.Errorf("Idempotency-Key sent as %q, want it absent", v)
	}

	// User-Agent and Host may be overridden.
	w = b.webhook(t, `{"url": "URL", "headers": {"User-Agent": "mine/1", "Host": "hooks.example.com"}}`)
	if res := w.Send(t.Context(), []Event{event("m1", `{}`)}); !res.OK() {
		t.Fatalf("Send: %v", res.Err)
	}
	got = b.next(t)
	if ua := got.header.Get("User-Agent"); ua != "mine/1" {
		t.Errorf("User-Agent = %q, want mine/1", ua)
	}
	if got.host != "hooks.example.com" {
		t.Errorf("Host = %q, want hooks.example.com", got.host)
	}
	if ct := got.header.Get("Content-Type"); ct != "application/json" {
		t.Errorf("Content-Type = %q, want application/json", ct)
	}
}

func TestWebhookStatusClassification(t *testing.T) {
	t.Parallel()
	b := setup(t, func(w http.ResponseWriter, r *http.Request) {
		code, err := strconv.Atoi(r.URL.Query().Get("code"))
		if err != nil {
			t.Errorf("server: code: %v", err)
		}
		if code >= 300 && code < 400 {
			w.Header().Set("Location", "/elsewhere")
		}
		w.WriteHeader(code)
		_, _ = io.WriteString(w, "answer")
	})

	tests := []struct {
		code      int
		ok        bool
		retryable bool
	}{
		{200, true, false},
		{201, true, false},
		{204, true, false},
		{301, false, false},
		{302, false, false},
		{307, false, false},
		{400, false, false},
		{401, false, false},
		{404, false, false},
		{408, false, true},
		{410, false, false},
		{413, false, false},
		{429, false, true},
		{500, false, true},
		{502, false, true},
		{503, false, true},
		{504, false, true},
	}
	for _, tt := range tests {
		w := b.webhook(t, `{"url": "URL/hook?code=`+strconv.Itoa(tt.code)+`"}`)
		res := w.Send(t.Context(), []Event{event("m1", `{"n":1}`)})
		if res.Status != tt.code || res.OK() != tt.ok || res.Retryable != tt.retryable {
			t.Errorf("status %d: Send = status %d, ok %v, retryable %v, err %v; want ok %v, retryable %v",
				tt.code, res.Status, res.OK(), res.Retryable, res.Err, tt.ok, tt.retryable)
		}
		if !tt.ok && (res.Err == nil || !strings.Contains(res.Err.Error(), strconv.Itoa(tt.code))) {
			t.Errorf("status %d: Err = %v, want it to name the status", tt.code, res.Err)
		}
		if tt.code != 204 && res.Body != "answer" {
			t.Errorf("status %d: Body = %q, want %q", tt.code, res.Body, "answer")
		}
		// Exactly one request: redirects are not followed.
		b.next(t)
		b.noRequest(t)
	}
}

func TestWebhookTimeoutRetryable(t *testing.T) {
	t.Parallel()
	release := make(chan struct{})
	b := setup(t, func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-r.Context().Done():
		case <-release:
		}
	})
	t.Cleanup(func() { close(release) })

	w := b.webhook(t, `{"url": "URL", "timeout": "100ms"}`)
	start := time.Now()
	res := w.Send(t.Context(), []Event{event("m1", `{}`)})
	if res.OK() || !res.Retryable || res.Status != 0 {
		t.Errorf("Send = status %d, err %v, retryable %v; want status 0, an error, retryable", res.Status, res.Err, res.Retryable)
	}
	if elapsed := time.Since(start); elapsed > 5*time.Second {
		t.Errorf("Send took %s with a 100ms timeout", elapsed)
	}

	// The caller's ctx bounds the request too.
	w = b.webhook(t, `{"url": "URL", "timeout": "1m"}`)
	ctx, cancel := context.WithTimeout(t.Context(), 100*time.Millisecond)
	defer cancel()
	res = w.Send(ctx, []Event{event("m1", `{}`)})
	if res.OK() || !res.Retryable || !errors.Is(res.Err, context.DeadlineExceeded) {
		t.Errorf("Send with expiring ctx = err %v, retryable %v; want context.DeadlineExceeded, retryable", res.Err, res.Retryable)
	}
}

func TestWebhookConnectionRefusedRetryable(t *testing.T) {
	t.Parallel()
	addr := proctest.FreeAddr(t) // nothing listens there

	w := newWebhook(t, `{"url": "http://`+addr+`/events"}`)
	res := w.Send(t.Context(), []Event{event("m1", `{}`)})
	if res.OK() || !res.Retryable || res.Status != 0 {
		t.Errorf("Send = status %d, err %v, retryable %v; want status 0, an error, retryable", res.Status, res.Err, res.Retryable)
	}
}

func TestWebhookResponseBodyTruncated(t *testing.T) {
	t.Parallel()
	long := strings.Repeat("0123456789abcdef", 640) // 10 KiB
	b := setup(t, func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusBadRequest)
		_, _ = io.WriteString(w, long)
	})
	w := b.webhook(t, `{"url": "URL"}`)

	res := w.Send(t.Context(), []Event{event("m1", `{}`)})
	if res.Status != http.StatusBadRequest || res.Retryable {
		t.Fatalf("Send = status %d, retryable %v; want 400, false", res.Status, res.Retryable)
	}
	if len(res.Body) != MaxResponseBody || res.Body != long[:MaxResponseBody] {
		t.Errorf("Body has %d bytes, want the first %d of the response", len(res.Body), MaxResponseBody)
	}
}

func TestWebhookResponseBodyText(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		body string
		want string
	}{
		{"invalid UTF-8", "a\xffb", "a\uFFFDb"},
		{"NUL", "a\x00b", "ab"},
		{"rune cut at the limit", strings.Repeat("a", MaxResponseBody-1) + "é and more", strings.Repeat("a", MaxResponseBody-1)},
	}
	for _, tt := range tests {
		b := setup(t, func(w http.ResponseWriter, r *http.Request) {
			_, _ = io.WriteString(w, tt.body)
		})
		res := b.webhook(t, `{"url": "URL"}`).Send(t.Context(), []Event{event("m1", `{}`)})
		if res.Body != tt.want {
			t.Errorf("%s: Body = %q, want %q", tt.name, res.Body, tt.want)
		}
		if !utf8.ValidString(res.Body) {
			t.Errorf("%s: Body %q is not valid UTF-8", tt.name, res.Body)
		}
	}
}

func TestWebhookReusesConnections(t *testing.T) {
	t.Parallel()
	var conns atomic.Int32
	b := setup(t, func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusServiceUnavailable)
		_, _ = io.WriteString(w, strings.Repeat("x", 3*MaxResponseBody))
	}, func(s *http.Server) {
		s.ConnState = func(_ net.Conn, state http.ConnState) {
			if state == http.StateNew {
				conns.Add(1)
			}
		}
	})
	w := b.webhook(t, `{"url": "URL"}`)

	for range 5 {
		if res := w.Send(t.Context(), []Event{event("m1", `{}`)}); res.Status != http.StatusServiceUnavailable {
			t.Fatalf("Send = status %d, err %v; want 503", res.Status, res.Err)
		}
		b.next(t)
	}
	if n := conns.Load(); n != 1 {
		t.Errorf("5 sequential requests opened %d connections, want 1", n)
	}
}

func TestWebhookParallelSends(t *testing.T) {
	t.Parallel()
	b := setup(t, nil)
	w := b.webhook(t, `{"url": "URL"}`)

	const n = 50
	results := make(chan Result, n)
	for i := range n {
		go func() { results <- w.Send(t.Context(), []Event{event(strconv.Itoa(i), `{}`)}) }()
	}
	for range n {
		if res := <-results; !res.OK() {
			t.Errorf("Send: %v", res.Err)
		}
		b.next(t)
	}
}

func TestWebhookRefusesBadBatch(t *testing.T) {
	t.Parallel()
	b := setup(t, nil)
	w := b.webhook(t, `{"url": "URL", "maxBatchSize": 2}`)

	tests := []struct {
		name   string
		events []Event
	}{
		{"no events", nil},
		{"over maxBatchSize", []Event{event("1", `{}`), event("2", `{}`), event("3", `{}`)}},
		{"empty payload", []Event{event("1", `{}`), event("2", ``)}},
	}
	for _, tt := range tests {
		res := w.Send(t.Context(), tt.events)
		if res.OK() || res.Retryable || res.Status != 0 {
			t.Errorf("%s: Send = status %d, err %v, retryable %v; want status 0, an error, not retryable",
				tt.name, res.Status, res.Err, res.Retryable)
		}
	}
	b.noRequest(t)
}

func TestParseWebhookConfig(t *testing.T) {
	t.Parallel()

	got, err := ParseWebhookConfig(json.RawMessage(`{"url": "https://example.com/e"}`))
	if err != nil {
		t.Fatalf("ParseWebhookConfig: %v", err)
	}
	if got.URL != "https://example.com/e" || got.Timeout != 10*time.Second || got.MaxBatchSize != 1 || len(got.Headers) != 0 {
		t.Errorf("ParseWebhookConfig = %+v, want the defaults", got)
	}

	got, err = ParseWebhookConfig(json.RawMessage(`{"url": "http://127.0.0.1:9000/events", "headers": {"authorization": "Bearer x"}, "timeout": "1m30s", "maxBatchSize": 1000}`))
	if err != nil {
		t.Fatalf("ParseWebhookConfig: %v", err)
	}
	if got.Timeout != 90*time.Second || got.MaxBatchSize != 1000 || got.Headers["Authorization"] != "Bearer x" {
		t.Errorf("ParseWebhookConfig = %+v", got)
	}
}

func TestParseWebhookConfigRefuses(t *testing.T) {
	t.Parallel()
	tests := []struct {
		config string
		want   string // in the error
	}{
		{``, "url is required"},
		{`null`, "url is required"},
		{`{}`, "url is required"},
		{`{"url": ""}`, "url is required"},
		{`{"url": "/events"}`, "absolute http or https"},
		{`{"url": "ftp://example.com/"}`, "absolute http or https"},
		{`{"url": "http://"}`, "absolute http or https"},
		{`{"url": "http://a b/"}`, "url"},
		{`{"url": "http://x", "heders": {}}`, `unknown field "heders"`},
		{`{"url": 5}`, "url must be a string, not JSON number"},
		{`[]`, "must be an object, not JSON array"},
		{`{"url": "http://x", "headers": {"X-A": 1}}`, "header values must be strings, not JSON number"},
		{`{"url": "http://x", "maxBatchSize": 2.5}`, "maxBatchSize must be a whole number, not JSON number 2.5"},
		{`{"url": `, "malformed JSON"},
		{`{"url": "http://x"} {}`, "after the config object"},
		{`{"url": "http://x", "timeout": "soon"}`, "timeout"},
		{`{"url": "http://x", "timeout": "0s"}`, "timeout"},
		{`{"url": "http://x", "timeout": "-1s"}`, "timeout"},
		{`{"url": "http://x", "maxBatchSize": 0}`, "maxBatchSize 0"},
		{`{"url": "http://x", "maxBatchSize": 1001}`, "maxBatchSize 1001"},
		{`{"url": "http://x", "headers": {"Bad Name": "v"}}`, "valid HTTP header name"},
		{`{"url": "http://x", "headers": {"X-A": "v\r\nX-B: w"}}`, "control characters"},
		{`{"url": "http://x", "headers": {"x-a": "1", "X-A": "2"}}`, "set twice"},
		{`{"url": "http://x", "headers": {"Content-Length": "5"}}`, "set by the HTTP client"},
		{`{"url": "http://x", "headers": {"Content-Type": "text/plain"}}`, "application/json"},
	}
	for _, tt := range tests {
		_, err := ParseWebhookConfig(json.RawMessage(tt.config))
		if err == nil || !strings.Contains(err.Error(), tt.want) || !strings.HasPrefix(err.Error(), "webhook config: ") {
			t.Errorf("ParseWebhookConfig(%s) = %v, want an error starting with %q holding %q", tt.config, err, "webhook config: ", tt.want)
		}
		if err2 := ValidateConfig("webhook", json.RawMessage(tt.config)); err2 == nil || err2.Error() != errString(err) {
			t.Errorf("ValidateConfig(webhook, %s) = %v, want %v", tt.config, err2, err)
		}
	}
}

func TestRegistry(t *testing.T) {
	t.Parallel()
	if !KnownType("webhook") {
		t.Error(`KnownType("webhook") = false, want true`)
	}
	for _, typ := range []string{"", "Webhook", "hook"} {
		if KnownType(typ) {
			t.Errorf("KnownType(%q) = true, want false", typ)
		}
		if _, err := New(typ, json.RawMessage(`{"url": "http://x"}`)); err == nil || !strings.Contains(err.Error(), "unknown destination type") {
			t.Errorf("New(%q) = %v, want an unknown type error", typ, err)
		}
		if err := ValidateConfig(typ, json.RawMessage(`{"url": "http://x"}`)); err == nil || !strings.Contains(err.Error(), "unknown destination type") {
			t.Errorf("ValidateConfig(%q) = %v, want an unknown type error", typ, err)
		}
	}
	if got := Types(); len(got) != 1 || got[0] != "webhook" {
		t.Errorf("Types() = %q, want [webhook]", got)
	}

	d, err := New("webhook", json.RawMessage(`{"url": "http://x", "maxBatchSize": 7}`))
	if err != nil {
		t.Fatalf("New(webhook): %v", err)
	}
	if got := d.MaxBatchSize(); got != 7 {
		t.Errorf("MaxBatchSize() = %d, want 7", got)
	}
}

func TestNewWebhookDefaults(t *testing.T) {
	t.Parallel()
	w, err := NewWebhook(WebhookConfig{URL: "http://x"})
	if err != nil {
		t.Fatalf("NewWebhook: %v", err)
	}
	if w.MaxBatchSize() != 1 || w.client.Timeout != DefaultWebhookTimeout {
		t.Errorf("NewWebhook = maxBatch %d, timeout %s; want 1, %s", w.MaxBatchSize(), w.client.Timeout, DefaultWebhookTimeout)
	}
	if _, err := NewWebhook(WebhookConfig{}); err == nil {
		t.Error("NewWebhook without URL: no error")
	}
}

func errString(err error) string {
	if err == nil {
		return "<nil>"
	}
	return err.Error()
}
