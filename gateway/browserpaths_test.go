package gateway

import (
	"bytes"
	"image/gif"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"
)

// TestBrowserPaths posts events the ways browser SDKs do: Segment's short
// paths as text/plain with the write key only in the body, a beacon batch
// with ?writeKey=, a form-encoded Content-Type, /v1/import. Each event must
// be stored with its path's type.
func TestBrowserPaths(t *testing.T) {
	t.Parallel()
	b := setup(t, sharedClusterFor(t), nil)
	key := b.prefix + "-key1" // source prefix-one: one destination, one row per event
	for _, tc := range []struct {
		path, auth, contentType, body string
		users                         []string
	}{
		{"/v1/t", "", "text/plain", `{"writeKey":"` + key + `","userId":"short-t","event":"Clicked"}`, []string{"short-t"}},
		{"/v1/i", "", "text/plain", `{"writeKey":"` + key + `","userId":"short-i","traits":{"a":1}}`, []string{"short-i"}},
		{"/v1/p", "", "text/plain", `{"writeKey":"` + key + `","anonymousId":"short-p","name":"Home"}`, []string{"short-p"}},
		{"/v1/s", "basic", "text/plain", `{"userId":"short-s","name":"Main"}`, []string{"short-s"}},
		{"/v1/g", "basic", "text/plain", `{"userId":"short-g","groupId":"g1"}`, []string{"short-g"}},
		{"/v1/a", "basic", "text/plain", `{"userId":"short-a","previousId":"anon"}`, []string{"short-a"}},
		{"/v1/b", "", "text/plain", `{"writeKey":"` + key + `","batch":[{"type":"track","userId":"short-b1","event":"e"},{"type":"page","userId":"short-b2"}],"sentAt":"2024-01-01T00:00:00Z"}`, []string{"short-b1", "short-b2"}},
		{"/beacon/v1/batch?writeKey=" + url.QueryEscape(key), "", "text/plain;charset=UTF-8", `{"batch":[{"type":"track","anonymousId":"beacon-1","event":"e"}]}`, []string{"beacon-1"}},
		{"/v1/track?writeKey=" + url.QueryEscape(key), "", "application/x-www-form-urlencoded", `{"userId":"form-1","event":"e"}`, []string{"form-1"}},
		{"/v1/import", "basic", "application/json", `{"batch":[{"type":"identify","userId":"import-1"},{"type":"alias","userId":"import-2","previousId":"x"}]}`, []string{"import-1", "import-2"}},
	} {
		k := ""
		if tc.auth == "basic" {
			k = key
		}
		resp := b.request(t, http.MethodPost, tc.path, k, []byte(tc.body), "Content-Type", tc.contentType)
		if resp.status != http.StatusOK {
			t.Errorf("POST %s: %d %s, want 200", tc.path, resp.status, resp.body)
		}
	}
	want := map[string]string{
		"short-t": "track", "short-i": "identify", "short-p": "page", "short-s": "screen", "short-g": "group", "short-a": "alias",
		"short-b1": "track", "short-b2": "page", "beacon-1": "track", "form-1": "track", "import-1": "identify", "import-2": "alias",
	}
	got := map[string]string{}
	for _, r := range b.c.rows(t, b.prefix+"-one") {
		got[r.key], _ = r.event["type"].(string)
		if r.key == "short-t" && r.event["writeKey"] != key {
			t.Errorf("short-t stored as %s: the body's writeKey is kept as sent", r.raw)
		}
	}
	for user, typ := range want {
		if got[user] != typ {
			t.Errorf("%s: stored type %q, want %q", user, got[user], typ)
		}
	}
	if len(got) != len(want) {
		t.Errorf("stored %v, want %v", got, want)
	}

	for _, tc := range []struct{ name, path, auth, body, msg string }{
		{"unknown body key", "/v1/t", "", `{"writeKey":"nope","userId":"u","event":"e"}`, "unknown write key"},
		{"numeric body key", "/v1/t", "", `{"writeKey":5,"userId":"u","event":"e"}`, "missing write key"},
		{"malformed body, no key", "/v1/t", "", `{"writeKey":`, "missing write key"},
		{"unknown query key", "/beacon/v1/batch?writeKey=nope", "", `{"batch":[{"type":"track","userId":"u","event":"e"}]}`, "unknown write key"},
		{"empty query key", "/beacon/v1/batch?writeKey=", "", `{"batch":[{"type":"track","userId":"u","event":"e"}]}`, "missing write key"},
		{"basic auth wins", "/v1/t", "nope", `{"writeKey":"` + key + `","userId":"u","event":"e"}`, "unknown write key"},
	} {
		resp := b.request(t, http.MethodPost, tc.path, tc.auth, []byte(tc.body), "Content-Type", "text/plain")
		if resp.status != http.StatusUnauthorized || !strings.Contains(resp.errorMessage(t), tc.msg) {
			t.Errorf("%s: %d %s, want 401 %q", tc.name, resp.status, resp.body, tc.msg)
		}
	}
}

// TestPixel checks GET /pixel/v1/track and /page: the event built from the
// query string is stored, and every answer is the GIF.
func TestPixel(t *testing.T) {
	t.Parallel()
	b := setup(t, sharedClusterFor(t), nil)
	key := url.QueryEscape(b.prefix + "-key1")
	checkGIF := func(what string, resp response, status int, errPart string) {
		t.Helper()
		if resp.status != status || resp.header.Get("Content-Type") != "image/gif" {
			t.Errorf("%s: %d %s, want %d image/gif", what, resp.status, resp.header.Get("Content-Type"), status)
		}
		img, err := gif.Decode(bytes.NewReader([]byte(resp.body)))
		if err != nil || img.Bounds().Dx() != 1 || img.Bounds().Dy() != 1 {
			t.Errorf("%s: body is not a 1×1 GIF: %v", what, err)
		}
		if got := resp.header.Get(pixelErrorHeader); !strings.Contains(got, errPart) || (errPart == "") != (got == "") {
			t.Errorf("%s: %s %q, want %q", what, pixelErrorHeader, got, errPart)
		}
	}
	before := time.Now().UTC().Add(-time.Second)
	checkGIF("track", b.request(t, http.MethodGet, "/pixel/v1/track?writeKey="+key+
		"&anonymousId=%22pixel-anon%22&event=Opened+Email&properties.campaign=spring&properties.ab.variant=b&context.page.url=https%3A%2F%2Fx.example%2F%3Fa%3D1%26b%3D%3C2%3E", "", nil), 200, "")
	checkGIF("page", b.request(t, http.MethodGet, "/pixel/v1/page?writeKey="+key+"&userId=pixel-user&name=", "", nil), 200, "")

	rows := b.c.storedRows(t, b.prefix+"-one", 2)
	for _, r := range rows {
		ev := r.event
		sent, err := time.Parse(time.RFC3339, ev["sentAt"].(string))
		if err != nil || sent.Before(before) || ev["originalTimestamp"] != ev["sentAt"] || ev["channel"] != "web" {
			t.Errorf("pixel event %s: want channel web, sentAt = originalTimestamp = now", r.raw)
		}
		if all, _ := ev["integrations"].(map[string]any); all["All"] != true {
			t.Errorf("pixel event %s: want integrations {All: true}", r.raw)
		}
		if _, ok := ev["writeKey"]; ok {
			t.Errorf("pixel event %s holds the write key", r.raw)
		}
		switch ev["type"] {
		case "track":
			props, _ := ev["properties"].(map[string]any)
			ab, _ := props["ab"].(map[string]any)
			page, _ := ev["context"].(map[string]any)["page"].(map[string]any)
			if r.key != "pixel-anon" || ev["anonymousId"] != "pixel-anon" || ev["event"] != "Opened Email" ||
				props["campaign"] != "spring" || ab["variant"] != "b" || page["url"] != "https://x.example/?a=1&b=<2>" {
				t.Errorf("track pixel stored as %s", r.raw)
			}
			if !strings.Contains(r.raw, "<2>") {
				t.Errorf("track pixel: HTML characters escaped in %s", r.raw)
			}
		case "page":
			if r.key != "pixel-user" || ev["name"] != "Unknown Page" {
				t.Errorf("page pixel stored as %s", r.raw)
			}
		default:
			t.Errorf("pixel stored as %s", r.raw)
		}
	}

	checkGIF("no key", b.request(t, http.MethodGet, "/pixel/v1/track?userId=u&event=e", "", nil), 401, "missing write key")
	checkGIF("unknown key", b.request(t, http.MethodGet, "/pixel/v1/track?writeKey=nope&userId=u&event=e", "", nil), 401, "unknown write key")
	checkGIF("no event", b.request(t, http.MethodGet, "/pixel/v1/track?writeKey="+key+"&userId=u&event=", "", nil), 400, `track event needs "event"`)
	checkGIF("no user", b.request(t, http.MethodGet, "/pixel/v1/page?writeKey="+key, "", nil), 400, `"userId" or "anonymousId" is required`)
	checkGIF("conflict", b.request(t, http.MethodGet, "/pixel/v1/track?writeKey="+key+"&userId=u&event=e&properties=1&properties.a=2", "", nil), 400, `"properties" is already a value`)
	checkGIF("object then value", b.request(t, http.MethodGet, "/pixel/v1/track?writeKey="+key+"&userId=u&event=e&a.b.c=1&a.b=2", "", nil), 400, `"a.b" is already a value`)
	checkGIF("empty part", b.request(t, http.MethodGet, "/pixel/v1/track?writeKey="+key+"&userId=u&event=e&properties..a=1", "", nil), 400, "between each pair of dots")
	checkGIF("post", b.request(t, http.MethodPost, "/pixel/v1/track?writeKey="+key, "", nil), 405, "use GET")
	if resp := b.request(t, http.MethodHead, "/pixel/v1/track?writeKey="+key+"&userId=u&event=e", "", nil); resp.status != 405 {
		t.Errorf("HEAD pixel: %d, want 405", resp.status)
	}
	if n := len(b.c.rows(t, b.prefix+"-one")); n != 2 {
		t.Errorf("refused pixels stored events: %d rows, want 2", n)
	}
}
