package gateway

import (
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"

	"github.com/ordo-pipeline/ordo/workspace"
)

// The configuration browser SDKs load before they send anything:
// RudderStack's JavaScript SDK fetches its source config from
// {configUrl}/sourceConfig/, Segment's analytics.js its project settings
// from {cdnURL}/v1/projects/{writeKey}/settings. Both are derived from the
// workspace file; neither lists a device-mode destination, so the SDKs
// load no integration code and send every event to this gateway.

// workspaceID names the workspace in the source config: the workspace
// file has no id of its own.
const workspaceID = "ordo"

// sourceConfig answers RudderStack's GET /sourceConfig/ for the write key
// of the request's Basic credentials or its ?writeKey=: 401 without one,
// 404 for a key no source has.
func (g *Gateway) sourceConfig(w http.ResponseWriter, r *http.Request) {
	key := requestWriteKey(r)
	if key == "" {
		writeError(w, errMissingWriteKey)
		return
	}
	src, ok := g.ws.SourceByWriteKey(key)
	if !ok {
		writeError(w, errorf(http.StatusNotFound, "no source has this write key"))
		return
	}
	writeJSON(w, http.StatusOK, rudderSourceConfig(src))
}

// rudderSourceConfig is the source config of src in the shape RudderStack's
// control plane serves to its JavaScript SDK. Its destinations are those
// of the workspace, all in cloud mode: the SDK loads nothing for them.
// Error and metrics reporting are off, so the SDK sends nothing to
// RudderStack's servers.
func rudderSourceConfig(src *workspace.Source) map[string]any {
	dests := make([]map[string]any, len(src.Destinations))
	for i, id := range src.Destinations {
		dests[i] = map[string]any{
			"id":      id,
			"name":    id,
			"enabled": true,
			"config":  map[string]any{"connectionMode": "cloud"},
			"destinationDefinition": map[string]any{
				"name":        "WEBHOOK",
				"displayName": "Webhook",
			},
		}
	}
	return map[string]any{
		"isHosted": false,
		"source": map[string]any{
			"id":          src.ID,
			"name":        src.ID,
			"writeKey":    src.WriteKey,
			"enabled":     true,
			"workspaceId": workspaceID,
			"config": map[string]any{
				"statsCollection": map[string]any{
					"errors":  map[string]any{"enabled": false},
					"metrics": map[string]any{"enabled": false},
				},
			},
			"sourceDefinition": map[string]any{"name": "Javascript", "category": nil},
			"destinations":     dests,
		},
	}
}

// segmentSettings answers analytics.js's GET
// /v1/projects/{writeKey}/settings: 404 for a key no source has.
func (g *Gateway) segmentSettings(w http.ResponseWriter, r *http.Request) {
	key := r.PathValue("writeKey")
	src, ok := g.ws.SourceByWriteKey(key)
	if key == "" || !ok {
		writeError(w, errorf(http.StatusNotFound, "no source has this write key"))
		return
	}
	base := g.publicURL
	if base == nil {
		base = requestURL(r)
	}
	writeJSON(w, http.StatusOK, segmentProjectSettings(src, base))
}

// segmentProjectSettings is the settings analytics.js loads for src when
// this gateway is at base: its Segment.io destination sends to
// base's host and path plus /v1, and nothing else is loaded or sent
// (no integrations, remote plugins or metrics).
func segmentProjectSettings(src *workspace.Source, base *url.URL) map[string]any {
	return map[string]any{
		"integrations": map[string]any{
			"Segment.io": map[string]any{
				"apiKey":                src.WriteKey,
				"apiHost":               base.Host + strings.TrimSuffix(base.Path, "/") + "/v1",
				"protocol":              base.Scheme,
				"unbundledIntegrations": []string{},
				"addBundledMetadata":    true,
			},
		},
		"plan": map[string]any{
			"track":    map[string]any{"__default": map[string]any{"enabled": true, "integrations": map[string]any{}}},
			"identify": map[string]any{"__default": map[string]any{"enabled": true}},
			"group":    map[string]any{"__default": map[string]any{"enabled": true}},
		},
		"edgeFunction":              map[string]any{},
		"analyticsNextEnabled":      true,
		"middlewareSettings":        map[string]any{},
		"enabledMiddleware":         map[string]any{},
		"metrics":                   map[string]any{"sampleRate": 0},
		"legacyVideoPluginsEnabled": false,
		"remotePlugins":             []any{},
	}
}

// requestURL is the address the client reached this gateway at: the
// request's Host, over https when the connection is TLS or a proxy says so
// in X-Forwarded-Proto.
func requestURL(r *http.Request) *url.URL {
	scheme := "http"
	proto, _, _ := strings.Cut(r.Header.Get("X-Forwarded-Proto"), ",")
	if r.TLS != nil || strings.EqualFold(strings.TrimSpace(proto), "https") {
		scheme = "https"
	}
	return &url.URL{Scheme: scheme, Host: r.Host}
}

// parsePublicURL checks ORDO_PUBLIC_URL: an absolute http or https URL
// with a host and no query or fragment. A path is kept, for a gateway
// behind a proxy under a prefix.
func parsePublicURL(s string) (*url.URL, error) {
	u, err := url.Parse(s)
	if err != nil {
		return nil, fmt.Errorf("not a URL: %q", s)
	}
	switch {
	case u.Scheme != "http" && u.Scheme != "https":
		return nil, fmt.Errorf("must start with http:// or https://, not %q", s)
	case u.Host == "":
		return nil, fmt.Errorf("has no host: %q", s)
	case u.User != nil:
		return nil, errors.New("must not hold a user name or password")
	case u.RawQuery != "" || u.Fragment != "" || u.ForceQuery:
		return nil, fmt.Errorf("must not have a query or fragment: %q", s)
	}
	u.Path = strings.TrimSuffix(u.Path, "/")
	u.RawPath = ""
	return u, nil
}
