package gateway

import (
	"net/http"
	"strings"
	"testing"
)

// TestCORSOnEveryAnswer checks that successes, errors and 404s all allow
// the request's Origin, so a browser sees the real status rather than a
// CORS failure, and that preflights to any path are answered.
func TestCORSOnEveryAnswer(t *testing.T) {
	t.Parallel()
	b := setup(t, sharedClusterFor(t), nil)
	const origin = "https://shop.example"
	for _, tc := range []struct {
		method, path, key, body string
		status                  int
	}{
		{"POST", "/v1/track", b.key, `{"userId":"cors","event":"e"}`, 200},
		{"POST", "/v1/track", "", `{"userId":"cors","event":"e"}`, 401},
		{"POST", "/v1/track", "nope", `{"userId":"cors","event":"e"}`, 401},
		{"POST", "/v1/track", b.key, `{"userId":`, 400},
		{"GET", "/v1/track", b.key, "", 405},
		{"PUT", "/v1/batch", b.key, "", 405},
		{"GET", "/no/such/path", "", "", 404},
		{"GET", "/sourceConfig/?writeKey=nope", "", "", 404},
		{"GET", "/v1/projects/nope/settings", "", "", 404},
		{"POST", "/v1/merge", b.key, "{}", 501},
		{"GET", "/pixel/v1/track?event=e", "", "", 401},
		{"GET", "/health", "", "", 200},
	} {
		resp := b.request(t, tc.method, tc.path, tc.key, []byte(tc.body), "Origin", origin)
		if resp.status != tc.status {
			t.Errorf("%s %s: status %d %s, want %d", tc.method, tc.path, resp.status, resp.body, tc.status)
		}
		if resp.header.Get("Access-Control-Allow-Origin") != origin || resp.header.Get("Access-Control-Allow-Credentials") != "true" {
			t.Errorf("%s %s (%d): CORS headers %v, want the origin allowed with credentials", tc.method, tc.path, resp.status, resp.header)
		}
		if !strings.Contains(resp.header.Get("Access-Control-Expose-Headers"), "Retry-After") {
			t.Errorf("%s %s: Retry-After not exposed: %v", tc.method, tc.path, resp.header)
		}
	}

	// RudderStack's SDK sends its own headers; the preflight allows them.
	for _, path := range []string{"/v1/track", "/sourceConfig/", "/v1/projects/x/settings", "/no/such/path"} {
		resp := b.request(t, http.MethodOptions, path, "", nil, "Origin", origin,
			"Access-Control-Request-Method", "POST", "Access-Control-Request-Headers", "authorization,content-type,anonymousid,sentat")
		h := resp.header
		if resp.status != http.StatusNoContent || h.Get("Access-Control-Allow-Origin") != origin ||
			!strings.Contains(h.Get("Access-Control-Allow-Methods"), "POST") ||
			h.Get("Access-Control-Allow-Headers") != "authorization,content-type,anonymousid,sentat" ||
			h.Get("Access-Control-Max-Age") == "" {
			t.Errorf("preflight %s: status %d, headers %v", path, resp.status, h)
		}
	}
	// Without an Origin, no CORS header is needed nor sent.
	if resp := b.request(t, http.MethodGet, "/health", "", nil); resp.header.Get("Access-Control-Allow-Origin") != "" {
		t.Errorf("GET /health without Origin: headers %v", resp.header)
	}
}
