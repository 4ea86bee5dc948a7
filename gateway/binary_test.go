package gateway

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/ordo-pipeline/ordo/internal/buildtest"
	"github.com/ordo-pipeline/ordo/internal/pgtest"
)

// gatewayBinary builds cmd/gateway once per test run.
func gatewayBinary(t *testing.T) string {
	t.Helper()
	return buildtest.Program(t, "gateway")
}

// writeFile writes data to a new file under t's temp folder.
func writeFile(t *testing.T, name, data string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, []byte(data), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

const binaryWorkspace = `{
  "sources": [{"id": "bin-web", "writeKey": "bin-key", "destinations": ["hook"]}],
  "destinations": [{"id": "hook", "type": "webhook", "config": {"url": "http://127.0.0.1:1/x"}}]
}`

// TestBinaryConfigErrors runs the built program with missing and
// malformed settings: each exits 2 with one line naming the variable.
func TestBinaryConfigErrors(t *testing.T) {
	t.Parallel()
	bin := gatewayBinary(t)
	ws := writeFile(t, "workspace.json", binaryWorkspace)
	badWS := writeFile(t, "bad.json", `{"sources": [{"id": "s", "writeKey": "k", "destinations": ["nope"]}]}`)
	base := []string{"ORDO_CATALOG_URL=postgres://postgres@127.0.0.1:1/postgres", "ORDO_WORKSPACE_CONFIG=" + ws}
	for _, tc := range []struct {
		name string
		env  []string
		args []string
		want string
	}{
		{"no catalog", nil, nil, "ORDO_CATALOG_URL"},
		{"empty catalog", []string{"ORDO_CATALOG_URL=", "ORDO_WORKSPACE_CONFIG=" + ws}, nil, "ORDO_CATALOG_URL"},
		{"bad catalog url", []string{"ORDO_CATALOG_URL=postgres://postgres@127.0.0.1:1/postgres?sslmode=bogus", "ORDO_WORKSPACE_CONFIG=" + ws}, nil, "ORDO_CATALOG_URL"},
		{"no workspace", base[:1], nil, "ORDO_WORKSPACE_CONFIG"},
		{"missing workspace file", []string{base[0], "ORDO_WORKSPACE_CONFIG=/nonexistent/ws.json"}, nil, "ORDO_WORKSPACE_CONFIG"},
		{"bad workspace", []string{base[0], "ORDO_WORKSPACE_CONFIG=" + badWS}, nil, `ORDO_WORKSPACE_CONFIG: workspace: ` + badWS},
		{"bad max rows", append(base, "ORDO_BATCH_MAX_ROWS=lots"), nil, "ORDO_BATCH_MAX_ROWS"},
		{"zero max rows", append(base, "ORDO_BATCH_MAX_ROWS=0"), nil, "ORDO_BATCH_MAX_ROWS"},
		{"bad max wait", append(base, "ORDO_BATCH_MAX_WAIT=5"), nil, "ORDO_BATCH_MAX_WAIT"},
		{"long max wait", append(base, "ORDO_BATCH_MAX_WAIT=1m"), nil, "ORDO_BATCH_MAX_WAIT"},
		{"negative write timeout", append(base, "ORDO_WRITE_TIMEOUT=-1s"), nil, "ORDO_WRITE_TIMEOUT"},
		{"bad addr", append(base, "ORDO_HTTP_ADDR=localhost"), nil, "ORDO_HTTP_ADDR"},
		{"bad addr flag", base, []string{"-addr", "nowhere"}, "-addr"},
		{"bad log format", append(base, "ORDO_LOG_FORMAT=xml"), nil, "ORDO_LOG_FORMAT"},
		{"bad log level", append(base, "ORDO_LOG_LEVEL=loud"), nil, "ORDO_LOG_LEVEL"},
		{"unknown flag", base, []string{"--frobnicate"}, "frobnicate"},
		{"extra argument", base, []string{"serve"}, "serve"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			defer cancel()
			cmd := exec.CommandContext(ctx, bin, tc.args...)
			cmd.Env = append([]string{"PATH=" + os.Getenv("PATH")}, tc.env...)
			var stderr bytes.Buffer
			cmd.Stderr = &stderr
			err := cmd.Run()
			var exit *exec.ExitError
			if !errors.As(err, &exit) || exit.ExitCode() != 2 {
				t.Fatalf("exit %v, want status 2; stderr:\n%s", err, stderr.String())
			}
			msg := strings.TrimSpace(stderr.String())
			if strings.Count(msg, "\n") != 0 || !strings.HasPrefix(msg, "gateway: ") || !strings.Contains(msg, tc.want) {
				t.Errorf("stderr %q, want one line starting gateway: naming %s", msg, tc.want)
			}
		})
	}
}

// TestBinaryHelp checks --help documents every setting and exits 0.
func TestBinaryHelp(t *testing.T) {
	t.Parallel()
	out, err := exec.Command(gatewayBinary(t), "--help").Output()
	if err != nil {
		t.Fatalf("--help: %v", err)
	}
	for _, want := range []string{"ORDO_CATALOG_URL", "ORDO_WORKSPACE_CONFIG", "ORDO_HTTP_ADDR", "ORDO_BATCH_MAX_ROWS", "ORDO_BATCH_MAX_WAIT", "ORDO_WRITE_TIMEOUT", "ORDO_LOG_FORMAT", "ORDO_LOG_LEVEL", "-addr"} {
		if !bytes.Contains(out, []byte(want)) {
			t.Errorf("--help does not mention %s:\n%s", want, out)
		}
	}
}

// TestBinarySIGTERM runs the built gateway against a cluster, sends SIGTERM
// while a request is in flight, and checks that request is answered 200,
// new connections are refused, and the process exits 0.
func TestBinarySIGTERM(t *testing.T) {
	t.Parallel()
	c := sharedClusterFor(t)
	port, err := pgtest.FreePort()
	if err != nil {
		t.Fatal(err)
	}
	addr := fmt.Sprintf("127.0.0.1:%d", port)
	cmd := exec.Command(gatewayBinary(t))
	cmd.Env = []string{
		"ORDO_CATALOG_URL=" + c.catalogURL,
		"ORDO_WORKSPACE_CONFIG=" + writeFile(t, "workspace.json", binaryWorkspace),
		"ORDO_HTTP_ADDR=" + addr,
		"ORDO_LOG_FORMAT=json",
	}
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	t.Cleanup(func() {
		cmd.Process.Kill() //nolint:errcheck // it may have exited
		if t.Failed() {
			t.Logf("gateway stderr:\n%s", stderr.String())
		}
	})
	base := "http://" + addr
	waitFor(t, 30*time.Second, "gateway ready", func() bool {
		resp, err := http.Get(base + "/ready")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == 200
	})

	// An in-flight request: headers sent, body still coming.
	pr, pw := io.Pipe()
	req, err := http.NewRequest(http.MethodPost, base+"/v1/track", pr)
	if err != nil {
		t.Fatal(err)
	}
	req.SetBasicAuth("bin-key", "")
	answered := make(chan *http.Response, 1)
	go func() {
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Errorf("in-flight request: %v", err)
			answered <- nil
			return
		}
		answered <- resp
	}()
	user := fmt.Sprintf("sigterm-%d", time.Now().UnixNano())
	if _, err := pw.Write([]byte(`{"userId": "` + user + `", `)); err != nil {
		t.Fatal(err)
	}
	time.Sleep(200 * time.Millisecond)
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	time.Sleep(200 * time.Millisecond)
	if _, err := pw.Write([]byte(`"event": "last words"}`)); err != nil {
		t.Fatal(err)
	}
	pw.Close()
	if resp := <-answered; resp == nil || resp.StatusCode != 200 {
		t.Errorf("in-flight request after SIGTERM: %v, want 200", resp)
	}

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	select {
	case err := <-exited:
		if err != nil {
			t.Fatalf("gateway exited with %v after SIGTERM, want status 0", err)
		}
	case <-ctx.Done():
		t.Fatal("gateway did not exit after SIGTERM")
	}
	if _, err := http.Get(base + "/health"); err == nil {
		t.Error("gateway still accepts connections after it exited")
	}
	n := 0
	for _, r := range c.rows(t, "bin-web") {
		if r.key == user && r.event["event"] == "last words" {
			n++
		}
	}
	if n != 1 {
		t.Errorf("stored the in-flight event %d times, want once", n)
	}
}
