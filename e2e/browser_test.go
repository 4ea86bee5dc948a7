package e2e

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// browser is headless Chromium driving a page through browser/console.mjs
// (playwright-core from npm), one command at a time.
type browser struct {
	t      *testing.T
	cmd    *exec.Cmd
	in     io.WriteCloser
	out    *bufio.Scanner
	stderr *strings.Builder
}

// needBrowser returns the chromium and node_modules to use, failing the
// test, with what to install, when they are missing (.ci/run and make
// test's sdk-deps install them).
func needBrowser(t *testing.T) (chromium, dir string) {
	t.Helper()
	dir, err := filepath.Abs("browser")
	if err != nil {
		t.Fatal(err)
	}
	chromium = os.Getenv("CHROMIUM")
	if chromium == "" {
		chromium = "/usr/bin/chromium"
	}
	var missing []string
	if _, err := os.Stat(chromium); err != nil {
		missing = append(missing, chromium+" (apt-get install chromium)")
	}
	if _, err := exec.LookPath("node"); err != nil {
		missing = append(missing, "node (apt-get install nodejs npm)")
	}
	if _, err := os.Stat(filepath.Join(dir, "node_modules", "playwright-core")); err != nil {
		missing = append(missing, "playwright-core (npm ci in e2e/browser)")
	}
	if len(missing) > 0 {
		t.Fatalf("the browser test needs %s", strings.Join(missing, ", "))
	}
	return chromium, dir
}

func startBrowser(t *testing.T, url, token string) *browser {
	t.Helper()
	chromium, dir := needBrowser(t)
	cmd := exec.Command("node", filepath.Join(dir, "console.mjs"))
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "CONSOLE_URL="+url, "CONSOLE_TOKEN="+token, "CHROMIUM="+chromium)
	in, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	b := &browser{t: t, cmd: cmd, in: in, out: bufio.NewScanner(out), stderr: &strings.Builder{}}
	b.out.Buffer(make([]byte, 1<<20), 16<<20)
	cmd.Stderr = b.stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		fmt.Fprintln(in, "quit")
		done := make(chan struct{})
		go func() { cmd.Wait(); close(done) }() //nolint:errcheck // its output was read
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			cmd.Process.Kill() //nolint:errcheck // stuck
			<-done
		}
		if t.Failed() && b.stderr.Len() > 0 {
			t.Logf("browser stderr:\n%s", b.stderr.String())
		}
	})
	return b
}

// do runs one command and decodes its answer into v (nil: ignored),
// failing the test when the page or the command failed.
func (b *browser) do(v any, command string, args ...string) {
	b.t.Helper()
	line := strings.Join(append([]string{command}, args...), " ")
	if _, err := fmt.Fprintln(b.in, line); err != nil {
		b.t.Fatalf("browser %s: %v\n%s", line, err, b.stderr.String())
	}
	if !b.out.Scan() {
		b.t.Fatalf("browser %s: no answer (%v)\n%s", line, b.out.Err(), b.stderr.String())
	}
	var status struct {
		OK         bool     `json:"ok"`
		Error      string   `json:"error"`
		PageErrors []string `json:"pageErrors"`
	}
	raw := b.out.Bytes()
	if err := json.Unmarshal(raw, &status); err != nil {
		b.t.Fatalf("browser %s: %v in %s", line, err, raw)
	}
	if !status.OK {
		b.t.Fatalf("browser %s: %s", line, status.Error)
	}
	if len(status.PageErrors) > 0 {
		b.t.Errorf("browser %s: the page logged errors: %v", line, status.PageErrors)
	}
	if v != nil {
		if err := json.Unmarshal(raw, v); err != nil {
			b.t.Fatalf("browser %s: %v in %s", line, err, raw)
		}
	}
}

// pageFigures is what the console shows (browser/console.mjs's figures).
type pageFigures struct {
	Summary string `json:"summary"`
	Nodes   []struct {
		Name        string `json:"name"`
		State       string `json:"state"`
		Shards      int    `json:"shards"`
		Pending     int64  `json:"pending"`
		DeadLetters int64  `json:"deadLetters"`
	} `json:"nodes"`
	Shards []struct {
		Shard       int    `json:"shard"`
		Node        string `json:"node"`
		Pending     int64  `json:"pending"`
		DeadLetters int64  `json:"deadLetters"`
		Holder      string `json:"holder"`
	} `json:"shards"`
	Workers []struct {
		ID     string `json:"id"`
		Live   string `json:"live"`
		Shards int    `json:"shards"`
	} `json:"workers"`
	Moves   int `json:"moves"`
	Letters []struct {
		MessageID string `json:"messageId"`
		Node      string `json:"node"`
		Status    string `json:"status"`
		Key       string `json:"key"`
	} `json:"letters"`
	DLTotal string `json:"dlTotal"`
	Error   string `json:"error"`
}
