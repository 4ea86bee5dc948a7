package workspace

import (
	"encoding/json"
	"reflect"
	"strings"
	"testing"

	"github.com/ordo-pipeline/ordo/deliver"
)

// FuzzParse feeds arbitrary bytes to the workspace file parser. It must
// never panic; a refusal says "workspace: " first and fits on one line;
// an accepted file must hold what the contract promises (a source, unique
// ids and write keys, destinations that exist and that their type can
// build, sane retry policies), and written out again it must parse to the
// same workspace.
func FuzzParse(f *testing.F) {
	for _, seed := range []string{
		contractExample,
		`{"sources": [{"id": "s", "writeKey": "k", "destinations": []}]}`,
		`{"sources": [{"id": "s", "writeKey": "k", "destinations": ["a", "b"]}], "destinations": [
		  {"id": "a", "type": "webhook", "config": {"url": "https://example.com/x", "maxBatchSize": 100}},
		  {"id": "b", "type": "webhook", "config": {"url": "http://h:1/y", "timeout": "250ms"}, "retry": {"maxAttempts": 1, "maxAge": "1m"}}]}`,
		`{"sources": [{"id": "s", "writeKey": "k"}, {"id": "t", "writeKey": "k"}]}`,
		`{"sources": [{"id": "s", "writeKey": "k", "destinations": ["nope"]}]}`,
		`{"sources": [], "destinations": [{"id": "d", "type": "kafka"}]}`,
		`{"sources": [{"id": " s", "writeKey": "a:b"}]} trailing`,
		`{"sources": [{"id": "s", "writeKey": "k", "destinations": ["d"]}], "destinations": [{"id": "d", "type": "webhook", "config": {"url": "ftp://x", "headers": {"Content-Length": "1"}}, "retry": {"initialBackoff": "1h", "maxBackoff": "1s"}}]}`,
		`[]`, `null`, ``, `{"sources": null}`, `{"sources": [{"id": 1}]}`,
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		w, err := Parse(data)
		if err != nil {
			if msg := err.Error(); !strings.HasPrefix(msg, "workspace: ") || strings.ContainsAny(msg, "\n\r") {
				t.Fatalf("Parse error %q does not start with \"workspace: \" on one line", msg)
			}
			return
		}
		checkWorkspace(t, w)
		again, err := Parse(rewrite(t, w))
		if err != nil {
			t.Fatalf("the accepted workspace written out again is refused: %v\n%s", err, rewrite(t, w))
		}
		if !reflect.DeepEqual(normalized(again), normalized(w)) {
			t.Fatalf("the accepted workspace written out again parses to\n%+v\nwant\n%+v", again, w)
		}
	})
}

// checkWorkspace checks what an accepted workspace promises.
func checkWorkspace(t *testing.T, w *Workspace) {
	t.Helper()
	if len(w.Sources) == 0 {
		t.Fatal("accepted a workspace without sources")
	}
	for i := range w.Sources {
		s := &w.Sources[i]
		if s.ID == "" || s.WriteKey == "" || strings.Contains(s.WriteKey, ":") {
			t.Fatalf("accepted source %+v", *s)
		}
		if got, ok := w.SourceByWriteKey(s.WriteKey); !ok || got != s {
			t.Fatalf("SourceByWriteKey(%q) = %v, %v; want source %q", s.WriteKey, got, ok, s.ID)
		}
		seen := map[string]bool{}
		for _, id := range s.Destinations {
			if _, ok := w.Destination(id); !ok || seen[id] {
				t.Fatalf("source %q lists destination %q, unknown or twice", s.ID, id)
			}
			seen[id] = true
		}
	}
	for i := range w.Destinations {
		d := &w.Destinations[i]
		if got, ok := w.Destination(d.ID); !ok || got != d {
			t.Fatalf("Destination(%q) = %v, %v", d.ID, got, ok)
		}
		if _, err := deliver.New(d.Type, d.Config); err != nil {
			t.Fatalf("accepted destination %q that its type refuses: %v", d.ID, err)
		}
		p := d.Retry
		if p.InitialBackoff <= 0 || p.MaxBackoff < p.InitialBackoff || p.MaxAttempts < 1 || p.MaxAge <= 0 {
			t.Fatalf("accepted destination %q with retry policy %+v", d.ID, p)
		}
	}
}

// rewrite writes w out as a workspace file.
func rewrite(t *testing.T, w *Workspace) []byte {
	t.Helper()
	type retry struct {
		InitialBackoff string `json:"initialBackoff"`
		MaxBackoff     string `json:"maxBackoff"`
		MaxAttempts    int    `json:"maxAttempts"`
		MaxAge         string `json:"maxAge"`
	}
	type destination struct {
		ID     string          `json:"id"`
		Type   string          `json:"type"`
		Config json.RawMessage `json:"config,omitempty"`
		Retry  retry           `json:"retry"`
	}
	file := struct {
		Sources      []Source      `json:"sources"`
		Destinations []destination `json:"destinations"`
	}{Sources: w.Sources}
	for _, d := range w.Destinations {
		p := d.Retry
		file.Destinations = append(file.Destinations, destination{ID: d.ID, Type: d.Type, Config: d.Config,
			Retry: retry{p.InitialBackoff.String(), p.MaxBackoff.String(), p.MaxAttempts, p.MaxAge.String()}})
	}
	// Source's fields have no tags: their names match the file's but for
	// case, which encoding/json ignores when decoding.
	data, err := json.Marshal(file)
	if err != nil {
		t.Fatal(err)
	}
	return data
}

// normalized is w without its lookup maps, whose layout may differ, and
// with configs compacted.
func normalized(w *Workspace) Workspace {
	n := Workspace{Sources: w.Sources}
	for _, d := range w.Destinations {
		if d.Config != nil {
			var b strings.Builder
			var v any
			if json.Unmarshal(d.Config, &v) == nil {
				out, _ := json.Marshal(v)
				b.Write(out)
			}
			d.Config = json.RawMessage(b.String())
		}
		n.Destinations = append(n.Destinations, d)
	}
	return n
}
