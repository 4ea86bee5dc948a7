package gateway

import (
	"bytes"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"
)

// FuzzValidate feeds arbitrary bytes to event decoding and validation, as
// a single track event and as a batch element. A refused event must get a
// 400 or 413; an accepted one must come out as valid JSON, with the
// enrichment fields, a usable ordering key, and every other member as sent.
func FuzzValidate(f *testing.F) {
	for _, seed := range []string{
		`{"userId": "u1", "event": "Signed Up", "properties": {"n": 1.50}}`,
		`{"type": "group", "anonymousId": "a", "groupId": "g"}`,
		`{"type": "alias", "userId": "u", "previousId": "p", "messageId": "m"}`,
		`{"userId": 5}`,
		`{"userId": "a\u0000b", "event": "e"}`,
		`{"userId": "\ud800", "event": "\"<&>\"", "x": [1, {"y": null}]}`,
		`[]`,
		`{"a": 1} {"b": 2}`,
	} {
		f.Add([]byte(seed))
	}
	receivedAt := time.Date(2025, 1, 2, 3, 4, 5, 6e6, time.UTC)
	f.Fuzz(func(t *testing.T, data []byte) {
		for _, typ := range []string{"track", ""} {
			ev, herr := decodeEvent(data, typ, nil)
			if herr != nil {
				if herr.status != http.StatusBadRequest && herr.status != http.StatusRequestEntityTooLarge {
					t.Fatalf("refused with status %d: %s", herr.status, herr.msg)
				}
				continue
			}
			checkAccepted(t, data, ev, typ, receivedAt)
		}
	})
}

// checkAccepted checks what enrich makes of an accepted event.
func checkAccepted(t *testing.T, data []byte, ev *event, typ string, receivedAt time.Time) {
	t.Helper()
	if len(data) > MaxEventBytes || depth(data) > MaxDepth {
		t.Fatalf("accepted an event of %d bytes, %d deep", len(data), depth(data))
	}
	var sent map[string]json.RawMessage
	if err := json.Unmarshal(data, &sent); err != nil {
		t.Fatalf("accepted %q, which encoding/json refuses: %v", data, err)
	}
	key := ev.key
	if key == "" || strings.IndexByte(key, 0) >= 0 {
		t.Fatalf("accepted ordering key %q", key)
	}
	out := ev.enrich(receivedAt)
	var got map[string]json.RawMessage
	if err := json.Unmarshal(out, &got); err != nil {
		t.Fatalf("enriched event %q is not valid JSON: %v", out, err)
	}
	var s string
	if json.Unmarshal(got["type"], &s); typ != "" && s != typ || s == "" {
		t.Fatalf("type %s, want %q", got["type"], typ)
	}
	if json.Unmarshal(got["receivedAt"], &s); s != "2025-01-02T03:04:05.006Z" {
		t.Fatalf("receivedAt %s", got["receivedAt"])
	}
	if json.Unmarshal(got["messageId"], &s); s == "" || s != ev.messageID {
		t.Fatalf("messageId %s, want %q", got["messageId"], ev.messageID)
	}
	for k, v := range sent {
		switch k {
		case "type", "receivedAt":
			continue
		case "messageId":
			if string(v) == "null" || string(v) == `""` {
				continue
			}
		}
		if !bytes.Equal(got[k], v) {
			t.Fatalf("member %q: stored %s, sent %s", k, got[k], v)
		}
	}
	if len(got) > len(sent)+3 {
		t.Fatalf("enriched event has %d members, sent %d", len(got), len(sent))
	}
}
