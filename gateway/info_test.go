package gateway

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"
)

// TestClusterInfoVersionUnsupported checks /cluster-info, /version and the
// refused rudder-server endpoints.
func TestClusterInfoVersionUnsupported(t *testing.T) {
	t.Parallel()
	b := setup(t, sharedClusterFor(t), nil)
	if resp := b.request(t, http.MethodGet, "/cluster-info", b.key, nil); resp.status != 200 || resp.body != `{"nodeCount":1}`+"\n" {
		t.Errorf("GET /cluster-info: %d %q", resp.status, resp.body)
	}
	resp := b.request(t, http.MethodGet, "/version", "", nil)
	var v versionInfo
	if err := json.Unmarshal([]byte(resp.body), &v); err != nil || resp.status != 200 || v.Version == "" || !strings.HasPrefix(v.GoVersion, "go") {
		t.Errorf("GET /version: %d %s (%v)", resp.status, resp.body, err)
	}
	if resp := b.request(t, http.MethodPost, "/version", "", nil); resp.status != 405 {
		t.Errorf("POST /version: %d, want 405", resp.status)
	}
	for _, tc := range []struct{ method, path, want string }{
		{"POST", "/v1/merge", "merge events are not supported"},
		{"POST", "/v1/webhook?writeKey=" + b.key, "webhook sources are not supported"},
		{"GET", "/v1/webhook?writeKey=" + b.key, "webhook sources are not supported"},
	} {
		resp := b.request(t, tc.method, tc.path, b.key, []byte(`{"userId":"u"}`))
		if resp.status != http.StatusNotImplemented || !strings.Contains(resp.errorMessage(t), tc.want) {
			t.Errorf("%s %s: %d %s, want 501 %q", tc.method, tc.path, resp.status, resp.body, tc.want)
		}
	}
}
