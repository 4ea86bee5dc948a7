package console

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/ordo-pipeline/ordo/internal/cli"
	"github.com/ordo-pipeline/ordo/internal/cli/clitest"
)

const testToken = "0123456789abcdef-token"

func TestConfigNeedsAToken(t *testing.T) {
	t.Parallel()
	base := map[string]string{"ORDO_CATALOG_URL": "postgres://localhost/catalog"}
	_, err := cli.ParseEnv[Config](base)
	clitest.CheckUsageError(t, "no token", err, "ORDO_CONSOLE_TOKEN")
	base["ORDO_CONSOLE_TOKEN"] = "short"
	_, err = cli.ParseEnv[Config](base)
	clitest.CheckUsageError(t, "short token", err, "ORDO_CONSOLE_TOKEN")
	base["ORDO_CONSOLE_TOKEN"] = testToken
	cfg, err := cli.ParseEnv[Config](base)
	if err != nil || cfg.Token != testToken || cfg.Addr != "127.0.0.1:9190" {
		t.Errorf("config = %+v, %v", cfg, err)
	}
}

func get(t *testing.T, srv *httptest.Server, method, path, token, body string) (int, string, http.Header) {
	t.Helper()
	req, err := http.NewRequest(method, srv.URL+path, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(data), resp.Header
}

func TestServerGuardsTheAPI(t *testing.T) {
	t.Parallel()
	// A catalog nobody listens on: the API answers 502 past the token check.
	srv := httptest.NewServer(NewServer("postgres://nobody@127.0.0.1:1/none?connect_timeout=1", testToken, nil))
	defer srv.Close()

	code, body, h := get(t, srv, "GET", "/", "", "")
	if code != 200 || !strings.Contains(body, "<title>ordo console</title>") || !strings.Contains(h.Get("Content-Security-Policy"), "default-src 'self'") {
		t.Errorf("GET /: %d %q", code, h)
	}
	for _, path := range []string{"/app.js", "/style.css", "/favicon.svg", "/health"} {
		if code, _, _ := get(t, srv, "GET", path, "", ""); code != 200 {
			t.Errorf("GET %s: %d", path, code)
		}
	}
	for _, tok := range []string{"", "wrong-token-of-some-length", testToken + "x"} {
		for _, path := range []string{"/api/overview", "/api/dead-letters", "/api/nothing"} {
			if code, body, _ := get(t, srv, "GET", path, tok, ""); code != 401 || !strings.Contains(body, `"error"`) {
				t.Errorf("GET %s with token %q: %d %s", path, tok, code, body)
			}
		}
		if code, _, _ := get(t, srv, "POST", "/api/dead-letters/purge", tok, `{"filter":{},"dryRun":false}`); code != 401 {
			t.Errorf("purge with token %q: %d", tok, code)
		}
	}
	if code, body, _ := get(t, srv, "GET", "/api/overview", testToken, ""); code != 502 || !strings.Contains(body, "connecting to catalog") {
		t.Errorf("overview with the catalog down: %d %s", code, body)
	}
	if code, body, _ := get(t, srv, "GET", "/api/dead-letters?status=4xx", testToken, ""); code != 400 || !strings.Contains(body, "status:") {
		t.Errorf("bad filter: %d %s", code, body)
	}
	if code, body, _ := get(t, srv, "GET", "/api/dead-letters?limit=-1", testToken, ""); code != 400 || !strings.Contains(body, "limit") {
		t.Errorf("bad limit: %d %s", code, body)
	}
	if code, body, _ := get(t, srv, "POST", "/api/dead-letters/replay", testToken, `{"filter":{"since":"soon"}}`); code != 400 || !strings.Contains(body, "since:") {
		t.Errorf("replay with a bad filter: %d %s", code, body)
	}
	if code, body, _ := get(t, srv, "POST", "/api/dead-letters/replay", testToken, `{"filters":{}}`); code != 400 || !strings.Contains(body, "body") {
		t.Errorf("replay with a bad body: %d %s", code, body)
	}
	if code, body, _ := get(t, srv, "GET", "/api/nothing", testToken, ""); code != 404 {
		t.Errorf("unknown API: %d %s", code, body)
	}
	if code, body, _ := get(t, srv, "GET", "/metrics", "", ""); code != 200 || !strings.Contains(body, `ordo_console_requests_total{code="401",route="overview"} 3`) {
		t.Errorf("metrics: %d\n%s", code, body)
	}
}
