package workspace

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ordo-pipeline/ordo/deliver"
)

// contractExample is the workspace file of CONTRACT.md.
const contractExample = `{
  "sources": [
    {"id": "web", "writeKey": "wk_web_123", "destinations": ["hook"]}
  ],
  "destinations": [
    {
      "id": "hook",
      "type": "webhook",
      "config": {
        "url": "http://127.0.0.1:9000/events",
        "headers": {"Authorization": "Bearer s3cret"},
        "timeout": "10s",
        "maxBatchSize": 1
      },
      "retry": {"initialBackoff": "1s", "maxBackoff": "5m", "maxAttempts": 10, "maxAge": "3h"}
    }
  ]
}`

func TestParseContractExample(t *testing.T) {
	t.Parallel()
	w, err := Parse([]byte(contractExample))
	if err != nil {
		t.Fatalf("Parse: %v", err)
	}

	if len(w.Sources) != 1 || len(w.Destinations) != 1 {
		t.Fatalf("Parse = %d sources, %d destinations; want 1, 1", len(w.Sources), len(w.Destinations))
	}
	src, ok := w.SourceByWriteKey("wk_web_123")
	if !ok {
		t.Fatal(`SourceByWriteKey("wk_web_123") found nothing`)
	}
	if src.ID != "web" || src.WriteKey != "wk_web_123" || len(src.Destinations) != 1 || src.Destinations[0] != "hook" {
		t.Errorf("source = %+v", *src)
	}
	if src != &w.Sources[0] {
		t.Error("SourceByWriteKey does not point into Sources")
	}

	dst, ok := w.Destination("hook")
	if !ok {
		t.Fatal(`Destination("hook") found nothing`)
	}
	if dst.ID != "hook" || dst.Type != "webhook" {
		t.Errorf("destination = %+v", *dst)
	}
	want := RetryPolicy{InitialBackoff: time.Second, MaxBackoff: 5 * time.Minute, MaxAttempts: 10, MaxAge: 3 * time.Hour}
	if dst.Retry != want {
		t.Errorf("Retry = %+v, want %+v", dst.Retry, want)
	}
	var config map[string]any
	if err := json.Unmarshal(dst.Config, &config); err != nil {
		t.Fatalf("Config %s: %v", dst.Config, err)
	}
	if config["url"] != "http://127.0.0.1:9000/events" || config["timeout"] != "10s" {
		t.Errorf("Config = %s, want the config as written", dst.Config)
	}

	d, err := deliver.New(dst.Type, dst.Config)
	if err != nil {
		t.Fatalf("deliver.New(%s, %s): %v", dst.Type, dst.Config, err)
	}
	if got := d.MaxBatchSize(); got != 1 {
		t.Errorf("MaxBatchSize() = %d, want 1", got)
	}

	for _, key := range []string{"", "wk_web_12", "WK_WEB_123"} {
		if _, ok := w.SourceByWriteKey(key); ok {
			t.Errorf("SourceByWriteKey(%q) found a source", key)
		}
	}
	if _, ok := w.Destination("web"); ok {
		t.Error(`Destination("web") found a destination`)
	}
}

func TestParseDefaults(t *testing.T) {
	t.Parallel()
	w, err := Parse([]byte(`{
		"sources": [{"id": "web", "writeKey": "k", "destinations": ["hook", "partial"]}],
		"destinations": [
			{"id": "hook", "type": "webhook", "config": {"url": "https://example.com/"}},
			{"id": "partial", "type": "webhook", "config": {"url": "https://example.com/"}, "retry": {"maxAttempts": 3, "maxBackoff": "1m"}}
		]
	}`))
	if err != nil {
		t.Fatalf("Parse: %v", err)
	}
	if got, want := w.Destinations[0].Retry, DefaultRetryPolicy(); got != want {
		t.Errorf("absent retry = %+v, want %+v", got, want)
	}
	want := RetryPolicy{InitialBackoff: time.Second, MaxBackoff: time.Minute, MaxAttempts: 3, MaxAge: 3 * time.Hour}
	if got := w.Destinations[1].Retry; got != want {
		t.Errorf("partial retry = %+v, want %+v", got, want)
	}
	if want := (RetryPolicy{InitialBackoff: time.Second, MaxBackoff: 5 * time.Minute, MaxAttempts: 10, MaxAge: 3 * time.Hour}); DefaultRetryPolicy() != want {
		t.Errorf("DefaultRetryPolicy() = %+v, want %+v", DefaultRetryPolicy(), want)
	}
}

func TestParseSourceWithoutDestinations(t *testing.T) {
	t.Parallel()
	w, err := Parse([]byte(`{"sources": [{"id": "web", "writeKey": "k"}]}`))
	if err != nil {
		t.Fatalf("Parse: %v", err)
	}
	if src, ok := w.SourceByWriteKey("k"); !ok || len(src.Destinations) != 0 {
		t.Errorf("SourceByWriteKey(k) = %+v, %v; want a source without destinations", src, ok)
	}
}

func TestParseRefuses(t *testing.T) {
	t.Parallel()

	// file builds a workspace from sources and destinations JSON.
	file := func(sources, destinations string) string {
		return `{"sources": [` + sources + `], "destinations": [` + destinations + `]}`
	}
	const (
		web  = `{"id": "web", "writeKey": "wk_web", "destinations": ["hook"]}`
		hook = `{"id": "hook", "type": "webhook", "config": {"url": "http://127.0.0.1:9000/"}}`
	)
	// withRetry is hook with a retry object.
	withRetry := func(retry string) string {
		return file(web, `{"id": "hook", "type": "webhook", "config": {"url": "http://x/"}, "retry": `+retry+`}`)
	}

	tests := []struct {
		name string
		data string
		want string // the whole error, or a part of it
	}{
		{"empty file", ``, "workspace: file is empty"},
		{"malformed JSON", "{\n  \"sources\": [\n    {\"id\": \"a\",}\n  ]\n}", "workspace: line 3, column 16: malformed JSON"},
		{"truncated JSON", `{"sources": [`, "workspace: line 1, column 13: malformed JSON: unexpected end of JSON input"},
		{"trailing data", file(web, hook) + ` {}`, "malformed JSON: invalid character '{' after top-level value"},
		{"not an object", `[]`, "workspace: line 1, column 1: must be an object, not JSON array"},
		{"wrong field type", `{"sources": {}}`, "workspace: line 1, column 13: sources must be an array, not JSON object"},
		{"wrong id type", `{"sources": [{"id": 5}]}`, "workspace: sources[0]: id must be a string, not JSON number"},
		{"unknown top-level field", `{"sourcez": []}`, `workspace: unknown field "sourcez"`},
		{"unknown source field", file(`{"id": "web", "writeKey": "k", "destination": ["hook"]}`, hook), `workspace: source "web": unknown field "destination"`},
		{"source not an object", file(`"web"`, hook), `workspace: sources[0]: must be an object, not JSON string`},
		{"wrong source field type", file(`{"id": "web", "writeKey": "k", "destinations": "hook"}`, hook), `workspace: source "web": destinations must be an array, not JSON string`},
		{"unknown destination field", file(web, `{"id": "hook", "type": "webhook", "config": {"url": "http://x/"}, "retries": {}}`), `workspace: destination "hook": unknown field "retries"`},
		{"unknown retry field", withRetry(`{"maxAttempt": 3}`), `workspace: destination "hook": retry: unknown field "maxAttempt"`},
		{"no sources", file(``, hook), "workspace: no sources"},

		{"empty source id", file(`{"writeKey": "k"}`, hook), "workspace: sources[0]: id is required"},
		{"source id with spaces", file(`{"id": " web", "writeKey": "k"}`, hook), `workspace: source " web": id has leading or trailing white space`},
		{"duplicate source id", file(web+`, {"id": "web", "writeKey": "other"}`, hook), `workspace: source "web": duplicate id (sources[0] and sources[1])`},
		{"empty write key", file(`{"id": "web", "destinations": ["hook"]}`, hook), `workspace: source "web": writeKey is required`},
		{"write key with a colon", file(`{"id": "web", "writeKey": "a:b"}`, hook), `workspace: source "web": writeKey may not contain ':'`},
		{"write key with a newline", file(`{"id": "web", "writeKey": "a\nb"}`, hook), `workspace: source "web": writeKey holds control characters`},
		{"duplicate write key", file(web+`, {"id": "app", "writeKey": "wk_web"}`, hook), `workspace: source "app": duplicate writeKey, also the writeKey of source "web"`},
		{"unknown destination in a source", file(`{"id": "web", "writeKey": "k", "destinations": ["hoook"]}`, hook), `workspace: source "web": unknown destination "hoook"`},
		{"destination listed twice", file(`{"id": "web", "writeKey": "k", "destinations": ["hook", "hook"]}`, hook), `workspace: source "web": destination "hook" listed twice`},

		{"empty destination id", file(web, `{"type": "webhook", "config": {"url": "http://x/"}}`), "workspace: destinations[0]: id is required"},
		{"duplicate destination id", file(web, hook+`, `+hook), `workspace: destination "hook": duplicate id (destinations[0] and destinations[1])`},
		{"missing type", file(web, `{"id": "hook", "config": {"url": "http://x/"}}`), `workspace: destination "hook": type is required`},
		{"unknown type", file(web, `{"id": "hook", "type": "webhok", "config": {"url": "http://x/"}}`), `workspace: destination "hook": unknown type "webhok" (known: webhook)`},
		{"missing config", file(web, `{"id": "hook", "type": "webhook"}`), `workspace: destination "hook": webhook config: url is required`},
		{"invalid config", file(web, `{"id": "hook", "type": "webhook", "config": {"url": "ftp://x/"}}`), `workspace: destination "hook": webhook config: url "ftp://x/" must be an absolute http or https URL`},
		{"unknown config field", file(web, `{"id": "hook", "type": "webhook", "config": {"url": "http://x/", "timout": "1s"}}`), `workspace: destination "hook": webhook config: unknown field "timout"`},
		{"bad maxBatchSize", file(web, `{"id": "hook", "type": "webhook", "config": {"url": "http://x/", "maxBatchSize": 0}}`), `workspace: destination "hook": webhook config: maxBatchSize 0`},

		{"malformed duration", withRetry(`{"initialBackoff": "1 second"}`), `workspace: destination "hook": retry: initialBackoff: time: `},
		{"duration without unit", withRetry(`{"maxAge": "30"}`), `workspace: destination "hook": retry: maxAge: time: missing unit`},
		{"zero initialBackoff", withRetry(`{"initialBackoff": "0s"}`), `workspace: destination "hook": retry: initialBackoff "0s" must be positive`},
		{"negative maxBackoff", withRetry(`{"maxBackoff": "-1m"}`), `workspace: destination "hook": retry: maxBackoff "-1m" must be positive`},
		{"zero maxAge", withRetry(`{"maxAge": "0"}`), `workspace: destination "hook": retry: maxAge "0" must be positive`},
		{"zero maxAttempts", withRetry(`{"maxAttempts": 0}`), `workspace: destination "hook": retry: maxAttempts 0 must be at least 1`},
		{"negative maxAttempts", withRetry(`{"maxAttempts": -2}`), `workspace: destination "hook": retry: maxAttempts -2 must be at least 1`},
		{"fractional maxAttempts", withRetry(`{"maxAttempts": 2.5}`), `workspace: destination "hook": retry: maxAttempts must be a whole number, not JSON number 2.5`},
		{"retry not an object", withRetry(`"1s"`), `workspace: destination "hook": retry: must be an object, not JSON string`},
		{"maxBackoff below initialBackoff", withRetry(`{"initialBackoff": "10s", "maxBackoff": "5s"}`), `workspace: destination "hook": retry: maxBackoff 5s is less than initialBackoff 10s`},
		{"initialBackoff above the default maxBackoff", withRetry(`{"initialBackoff": "10m"}`), `workspace: destination "hook": retry: maxBackoff 5m0s is less than initialBackoff 10m0s`},
	}
	for _, tt := range tests {
		w, err := Parse([]byte(tt.data))
		if err == nil {
			t.Errorf("%s: Parse(%s) = %+v, want an error holding %q", tt.name, tt.data, w, tt.want)
			continue
		}
		if !strings.Contains(err.Error(), tt.want) || !strings.HasPrefix(err.Error(), "workspace: ") {
			t.Errorf("%s: Parse error = %q, want it to hold %q", tt.name, err, tt.want)
		}
		if strings.Contains(tt.data, "wk_web") && strings.Contains(err.Error(), "wk_web") {
			t.Errorf("%s: Parse error %q shows a write key", tt.name, err)
		}
	}
}

func TestLoad(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	path := filepath.Join(dir, "workspace.json")
	if err := os.WriteFile(path, []byte(contractExample), 0o600); err != nil {
		t.Fatal(err)
	}
	w, err := Load(path)
	if err != nil {
		t.Fatalf("Load(%s): %v", path, err)
	}
	if _, ok := w.Destination("hook"); !ok {
		t.Error(`Load: Destination("hook") found nothing`)
	}

	missing := filepath.Join(dir, "missing.json")
	if _, err := Load(missing); err == nil || !strings.Contains(err.Error(), missing) {
		t.Errorf("Load(%s) = %v, want an error naming the file", missing, err)
	}

	bad := filepath.Join(dir, "bad.json")
	if err := os.WriteFile(bad, []byte(`{"sources": [{"id": "web", "writeKey": "k", "destinations": ["hoook"]}]}`), 0o600); err != nil {
		t.Fatal(err)
	}
	want := `workspace: ` + bad + `: source "web": unknown destination "hoook"`
	if _, err := Load(bad); err == nil || err.Error() != want {
		t.Errorf("Load(%s) = %v, want %s", bad, err, want)
	}
}

func TestRetryPolicyBackoff(t *testing.T) {
	t.Parallel()
	p := RetryPolicy{InitialBackoff: time.Second, MaxBackoff: 4 * time.Second}
	for attempt, want := range map[int]time.Duration{1: time.Second, 2: 2 * time.Second, 3: 4 * time.Second, 10: 4 * time.Second} {
		got := p.Backoff(attempt)
		lo, hi := max(want*9/10, p.InitialBackoff), min(want*11/10, p.MaxBackoff)
		if got < lo || got > hi {
			t.Errorf("Backoff(%d) = %s, want within [%s, %s]", attempt, got, lo, hi)
		}
	}
}

func ExampleParse() {
	w, err := Parse([]byte(`{
		"sources": [{"id": "web", "writeKey": "wk_web_123", "destinations": ["hook"]}],
		"destinations": [{"id": "hook", "type": "webhook", "config": {"url": "http://127.0.0.1:9000/events"}}]
	}`))
	if err != nil {
		panic(err)
	}
	src, _ := w.SourceByWriteKey("wk_web_123")
	dst, _ := w.Destination(src.Destinations[0])
	fmt.Println(src.ID, "->", dst.ID, dst.Type, dst.Retry.MaxAttempts, dst.Retry.MaxBackoff)

	_, err = Parse([]byte(`{"sources": [{"id": "web", "writeKey": "k", "destinations": ["hoook"]}]}`))
	fmt.Println(err)
	// Output:
	// web -> hook webhook 10 5m0s
	// workspace: source "web": unknown destination "hoook"
}
