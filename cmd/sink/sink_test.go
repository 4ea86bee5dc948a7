package main

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ordo-pipeline/ordo/internal/cli/clitest"

	"github.com/ordo-pipeline/ordo/internal/cli"
)

type testBundle struct {
	server *httptest.Server
	out    *clitest.Buffer
}

func setup(t *testing.T, verbose bool) *testBundle {
	t.Helper()
	out := &clitest.Buffer{}
	logger := slog.New(slog.NewTextHandler(io.Discard, nil))
	srv := httptest.NewServer(NewSink(out, verbose, logger).Handler())
	t.Cleanup(srv.Close)
	return &testBundle{server: srv, out: out}
}

func post(t *testing.T, url, body string) (int, string) {
	t.Helper()
	resp, err := http.Post(url, "application/json", strings.NewReader(body))
	return readResponse(t, "POST "+url, resp, err)
}

func get(t *testing.T, url string) (int, string) {
	t.Helper()
	resp, err := http.Get(url)
	return readResponse(t, "GET "+url, resp, err)
}

// readResponse returns the status and body of the answer to the request
// what, failing the test when it has none.
func readResponse(t *testing.T, what string, resp *http.Response, err error) (int, string) {
	t.Helper()
	if err != nil {
		t.Fatalf("%s: %v", what, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("reading response: %v", err)
	}
	return resp.StatusCode, string(b)
}

func TestSinkSingleEvent(t *testing.T) {
	t.Parallel()
	b := setup(t, false)

	status, _ := post(t, b.server.URL+"/events",
		`{"type":"track","event":"Order Completed","userId":"u1","messageId":"m-1","properties":{"total":3}}`)
	if status != http.StatusOK {
		t.Fatalf("POST /events status = %d, want 200", status)
	}
	got := b.out.String()
	want := `sink: user=u1 type=track event="Order Completed" messageId=m-1` + "\n"
	if got != want {
		t.Errorf("output = %q, want %q", got, want)
	}
}

func TestSinkBatch(t *testing.T) {
	t.Parallel()
	b := setup(t, false)

	status, _ := post(t, b.server.URL+"/any/path", `{"batch":[
		{"type":"identify","anonymousId":"a1","messageId":"m-1"},
		{"type":"track","event":"Signup","userId":"u2","anonymousId":"a2","messageId":"m-2"}
	]}`)
	if status != http.StatusOK {
		t.Fatalf("POST status = %d, want 200", status)
	}
	got := b.out.String()
	want := "sink: user=a1 type=identify event=- messageId=m-1\n" +
		"sink: user=u2 type=track event=Signup messageId=m-2\n"
	if got != want {
		t.Errorf("output = %q, want %q", got, want)
	}
}

func TestSinkVerbose(t *testing.T) {
	t.Parallel()
	b := setup(t, true)

	status, _ := post(t, b.server.URL+"/", `{ "type": "page", "userId": "u1", "messageId": "m-1" }`)
	if status != http.StatusOK {
		t.Fatalf("POST status = %d, want 200", status)
	}
	got := b.out.String()
	want := `sink: user=u1 type=page event=- messageId=m-1 {"type":"page","userId":"u1","messageId":"m-1"}` + "\n"
	if got != want {
		t.Errorf("output = %q, want %q", got, want)
	}
}

func TestSinkRefusesMalformedBodies(t *testing.T) {
	t.Parallel()
	b := setup(t, false)

	for _, body := range []string{
		`not json`,
		`[{"type":"track"}]`,
		`{"batch":{"type":"track"}}`,
		`{"batch":[{"type":"track"}, 3]}`,
	} {
		status, resp := post(t, b.server.URL+"/events", body)
		if status != http.StatusBadRequest {
			t.Errorf("POST %s status = %d, want 400", body, status)
		}
		if !strings.Contains(resp, `"error"`) {
			t.Errorf("POST %s body = %q, want a JSON error", body, resp)
		}
	}
	if got := b.out.String(); got != "" {
		t.Errorf("output = %q, want nothing printed for refused requests", got)
	}
}

func TestSinkHealthAndMethods(t *testing.T) {
	t.Parallel()
	b := setup(t, false)

	if status, _ := get(t, b.server.URL+"/health"); status != http.StatusOK {
		t.Errorf("GET /health status = %d, want 200", status)
	}
	if status, _ := get(t, b.server.URL+"/events"); status != http.StatusMethodNotAllowed {
		t.Errorf("GET /events status = %d, want 405", status)
	}
}

func TestSinkMetricsCountEvents(t *testing.T) {
	t.Parallel()
	b := setup(t, false)

	post(t, b.server.URL+"/events", `{"type":"track","event":"A","userId":"u1"}`)
	post(t, b.server.URL+"/events", `{"batch":[{"type":"track","event":"B","userId":"u1"},{"type":"weird","userId":"u1"}]}`)
	post(t, b.server.URL+"/events", `nope`)

	status, metrics := get(t, b.server.URL+"/metrics")
	if status != http.StatusOK {
		t.Fatalf("GET /metrics status = %d, want 200", status)
	}
	for _, want := range []string{
		`ordo_sink_events_received_total{type="track"} 2`,
		`ordo_sink_events_received_total{type="other"} 1`,
		`ordo_sink_requests_total{code="200"} 2`,
		`ordo_sink_requests_total{code="400"} 1`,
		`go_goroutines`,
	} {
		if !strings.Contains(metrics, want) {
			t.Errorf("GET /metrics lacks %q", want)
		}
	}
}

func TestSinkConcurrentLinesDoNotInterleave(t *testing.T) {
	t.Parallel()
	b := setup(t, false)

	const n = 50
	var wg sync.WaitGroup
	for range n {
		wg.Go(func() {
			post(t, b.server.URL+"/events", `{"batch":[{"type":"track","event":"E","userId":"u"},{"type":"track","event":"E","userId":"u"}]}`)
		})
	}
	wg.Wait()
	lines := strings.Split(strings.TrimSuffix(b.out.String(), "\n"), "\n")
	if len(lines) != 2*n {
		t.Fatalf("got %d lines, want %d", len(lines), 2*n)
	}
	for _, line := range lines {
		if line != "sink: user=u type=track event=E messageId=-" {
			t.Fatalf("line = %q, want a whole event line", line)
		}
	}
}

func TestValue(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]string{
		"":          "-",
		"plain":     "plain",
		"two words": `"two words"`,
		"a=b":       `"a=b"`,
		`q"uote`:    `"q\"uote"`,
		"tab\there": `"tab\there"`,
		"ünïcode":   "ünïcode",
	} {
		if got := value(in); got != want {
			t.Errorf("value(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestParseConfig(t *testing.T) {
	t.Parallel()

	t.Run("Defaults", func(t *testing.T) {
		t.Parallel()
		cfg := clitest.Parse(t, parseConfig, nil, map[string]string{})
		want := config{Addr: ":9000", Verbose: false, Log: cli.LogConfig{Format: "text", Level: "info"}}
		if cfg != want {
			t.Errorf("parseConfig = %+v, want %+v", cfg, want)
		}
	})

	t.Run("EnvironmentThenFlags", func(t *testing.T) {
		t.Parallel()
		environ := map[string]string{
			"ORDO_SINK_ADDR":    ":9100",
			"ORDO_SINK_VERBOSE": "true",
			"ORDO_LOG_FORMAT":   "json",
			"ORDO_LOG_LEVEL":    "debug",
		}
		cfg := clitest.Parse(t, parseConfig, nil, environ)
		want := config{Addr: ":9100", Verbose: true, Log: cli.LogConfig{Format: "json", Level: "debug"}}
		if cfg != want {
			t.Errorf("parseConfig = %+v, want %+v", cfg, want)
		}

		cfg = clitest.Parse(t, parseConfig, []string{"-addr", "127.0.0.1:9200", "-v=false", "-log-level", "warn"}, environ)
		want = config{Addr: "127.0.0.1:9200", Verbose: false, Log: cli.LogConfig{Format: "json", Level: "warn"}}
		if cfg != want {
			t.Errorf("parseConfig with flags = %+v, want %+v", cfg, want)
		}
	})

	t.Run("ErrorsNameTheSetting", func(t *testing.T) {
		t.Parallel()
		clitest.CheckUsageErrors(t, parseConfig, []clitest.UsageCase{
			{Environ: map[string]string{"ORDO_SINK_VERBOSE": "maybe"}, Want: "ORDO_SINK_VERBOSE"},
			{Environ: map[string]string{"ORDO_LOG_FORMAT": "xml"}, Want: "ORDO_LOG_FORMAT"},
			{Environ: map[string]string{"ORDO_LOG_LEVEL": "loud"}, Want: "ORDO_LOG_LEVEL"},
			{Args: []string{"-addr", ""}, Want: "-addr"},
			{Args: []string{"-log-level", "loud"}, Want: "-log-level"},
			{Args: []string{"-nope"}, Want: "-nope"},
			{Args: []string{"extra"}, Want: `"extra"`},
		})
	})

	t.Run("Help", func(t *testing.T) {
		t.Parallel()
		clitest.CheckHelp(t, parseConfig, []string{"--help"}, map[string]string{}, "ordo demo sink", "ORDO_SINK_ADDR", "ORDO_SINK_VERBOSE", "ORDO_LOG_FORMAT", "ORDO_LOG_LEVEL", "-addr", "/metrics")
	})
}

func TestRun(t *testing.T) {
	t.Parallel()

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var logs clitest.Buffer
	logger := slog.New(slog.NewTextHandler(&logs, nil))
	out := &clitest.Buffer{}
	done := make(chan error, 1)
	go func() {
		done <- run(ctx, config{Addr: "127.0.0.1:0"}, out, logger)
	}()

	// The listen address is logged once the listener is open.
	var addr string
	deadline := time.Now().Add(5 * time.Second)
	for addr == "" && time.Now().Before(deadline) {
		if _, rest, ok := strings.Cut(logs.String(), "addr="); ok {
			addr, _, _ = strings.Cut(rest, " ")
		} else {
			time.Sleep(10 * time.Millisecond)
		}
	}
	if addr == "" {
		t.Fatalf("run never logged its address; logs:\n%s", logs.String())
	}

	if status, _ := post(t, "http://"+addr+"/events", `{"type":"alias","userId":"u1","previousId":"a1","messageId":"m"}`); status != http.StatusOK {
		t.Errorf("POST status = %d, want 200", status)
	}
	if got, want := out.String(), "sink: user=u1 type=alias event=- messageId=m\n"; got != want {
		t.Errorf("output = %q, want %q", got, want)
	}

	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("run = %v, want nil after cancel", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("run did not return after cancel")
	}
}
