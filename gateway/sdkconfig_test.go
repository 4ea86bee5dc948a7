package gateway

import (
	"encoding/json"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"
)

// TestSourceConfig checks RudderStack's /sourceConfig/ for a write key
// given either way, and its refusals.
func TestSourceConfig(t *testing.T) {
	t.Parallel()
	b := setup(t, sharedClusterFor(t), nil)
	for _, tc := range []struct{ name, path, key string }{
		{"query", "/sourceConfig/?p=npm&v=3.34.1&build=modern&writeKey=" + url.QueryEscape(b.key) + "&lockIntegrationsVersion=true", ""},
		{"basic auth", "/sourceConfig/?p=npm&v=3.34.1", b.key},
		{"no slash", "/sourceConfig?writeKey=" + url.QueryEscape(b.key), ""},
	} {
		resp := b.request(t, http.MethodGet, tc.path, tc.key, nil)
		if resp.status != http.StatusOK {
			t.Fatalf("%s: GET %s: status %d %s", tc.name, tc.path, resp.status, resp.body)
		}
		var got struct {
			Source struct {
				ID, Name, WriteKey, WorkspaceID string
				Enabled                         bool
				Config                          struct {
					StatsCollection struct {
						Errors, Metrics struct{ Enabled *bool }
					}
				}
				Destinations []struct {
					ID                    string
					Config                struct{ ConnectionMode string }
					DestinationDefinition struct{ DisplayName string }
				}
			}
		}
		if err := json.Unmarshal([]byte(resp.body), &got); err != nil {
			t.Fatalf("%s: %v in %s", tc.name, err, resp.body)
		}
		s := got.Source
		if s.ID != b.prefix+"-web" || s.Name != s.ID || s.WriteKey != b.key || !s.Enabled || s.WorkspaceID == "" {
			t.Errorf("%s: source %+v, want id %s-web, its write key, enabled, a workspace id", tc.name, s, b.prefix)
		}
		if e, m := s.Config.StatsCollection.Errors.Enabled, s.Config.StatsCollection.Metrics.Enabled; e == nil || *e || m == nil || *m {
			t.Errorf("%s: error and metrics reporting must be off: %s", tc.name, resp.body)
		}
		var ids []string
		for _, d := range s.Destinations {
			ids = append(ids, d.ID)
			if d.Config.ConnectionMode != "cloud" || d.DestinationDefinition.DisplayName == "" {
				t.Errorf("%s: destination %+v, want cloud mode with a display name", tc.name, d)
			}
		}
		if !slices.Equal(ids, []string{"a", "b"}) {
			t.Errorf("%s: destinations %v, want [a b]", tc.name, ids)
		}
	}

	for _, tc := range []struct {
		name, method, path, key string
		status                  int
		msg                     string
	}{
		{"unknown key", "GET", "/sourceConfig/?writeKey=nope", "", 404, "no source has this write key"},
		{"unknown basic key", "GET", "/sourceConfig/", "nope", 404, "no source has this write key"},
		{"no key", "GET", "/sourceConfig/", "", 401, "missing write key"},
		{"post", "POST", "/sourceConfig/?writeKey=" + b.key, "", 405, "use GET"},
		{"below", "GET", "/sourceConfig/x?writeKey=" + b.key, "", 404, "no such endpoint"},
	} {
		resp := b.request(t, tc.method, tc.path, tc.key, nil)
		if resp.status != tc.status || !strings.Contains(resp.errorMessage(t), tc.msg) {
			t.Errorf("%s: %s %s: %d %s, want %d with %q", tc.name, tc.method, tc.path, resp.status, resp.body, tc.status, tc.msg)
		}
	}
}

// segmentIO is the Segment.io member of analytics.js's settings.
type segmentIO struct {
	APIKey, APIHost, Protocol string
}

func settingsOf(t *testing.T, resp response) segmentIO {
	t.Helper()
	if resp.status != http.StatusOK {
		t.Fatalf("settings: status %d %s", resp.status, resp.body)
	}
	var got struct {
		Integrations  map[string]segmentIO
		Metrics       struct{ SampleRate *float64 }
		RemotePlugins []any
	}
	if err := json.Unmarshal([]byte(resp.body), &got); err != nil {
		t.Fatalf("settings: %v in %s", err, resp.body)
	}
	if len(got.Integrations) != 1 || got.Metrics.SampleRate == nil || *got.Metrics.SampleRate != 0 || got.RemotePlugins == nil || len(got.RemotePlugins) != 0 {
		t.Errorf("settings %s: want Segment.io alone, metrics sampleRate 0, no remote plugins", resp.body)
	}
	return got.Integrations["Segment.io"]
}

// TestSegmentSettings checks analytics.js's settings: apiHost from the
// request, from X-Forwarded-Proto, and from ORDO_PUBLIC_URL.
func TestSegmentSettings(t *testing.T) {
	t.Parallel()
	b := setup(t, sharedClusterFor(t), nil)
	host := strings.TrimPrefix(b.srv.URL, "http://")
	path := "/v1/projects/" + url.PathEscape(b.key) + "/settings"

	got := settingsOf(t, b.request(t, http.MethodGet, path, "", nil))
	if want := (segmentIO{b.key, host + "/v1", "http"}); got != want {
		t.Errorf("settings from the request: %+v, want %+v", got, want)
	}
	got = settingsOf(t, b.request(t, http.MethodGet, path, "", nil, "X-Forwarded-Proto", "https"))
	if want := (segmentIO{b.key, host + "/v1", "https"}); got != want {
		t.Errorf("settings behind a TLS proxy: %+v, want %+v", got, want)
	}
	for _, tc := range []struct {
		method, path string
		status       int
	}{
		{"GET", "/v1/projects/nope/settings", 404},
		{"GET", "/v1/projects//settings", 404},
		{"POST", path, 405},
	} {
		if resp := b.request(t, tc.method, tc.path, "", nil); resp.status != tc.status {
			t.Errorf("%s %s: %d %s, want %d", tc.method, tc.path, resp.status, resp.body, tc.status)
		}
	}

	pub := setup(t, sharedClusterFor(t), func(c *Config) { c.PublicURL = "https://events.example.com/ordo/" })
	got = settingsOf(t, pub.request(t, http.MethodGet, "/v1/projects/"+url.PathEscape(pub.key)+"/settings", "", nil))
	if want := (segmentIO{pub.key, "events.example.com/ordo/v1", "https"}); got != want {
		t.Errorf("settings with ORDO_PUBLIC_URL: %+v, want %+v", got, want)
	}
}

// TestParsePublicURL checks what ORDO_PUBLIC_URL takes.
func TestParsePublicURL(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]string{
		"https://events.example.com":       "https://events.example.com",
		"http://127.0.0.1:8080/":           "http://127.0.0.1:8080",
		"https://example.com/ordo/":        "https://example.com/ordo",
		"https://[::1]:8443/a/b":           "https://[::1]:8443/a/b",
		"https://example.com/with%20space": "https://example.com/with%20space",
	} {
		u, err := parsePublicURL(in)
		if err != nil || u.String() != want {
			t.Errorf("parsePublicURL(%q) = %v, %v; want %s", in, u, err, want)
		}
	}
	for _, in := range []string{"events.example.com", "ftp://example.com", "https://", "https://u:p@example.com", "https://example.com/?a=1", "https://example.com/#x", "http://%zz"} {
		if u, err := parsePublicURL(in); err == nil {
			t.Errorf("parsePublicURL(%q) = %v, want an error", in, u)
		}
	}
}
