package main

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/ordo-pipeline/ordo/internal/cli/clitest"

	"github.com/ordo-pipeline/ordo/internal/buildtest"

	"github.com/ordo-pipeline/ordo/workspace"
)

// Bounds of the end-to-end tests.
const (
	bannerTimeout   = 2 * time.Minute // starting Postgres, rebalance and the programs
	deliveryTimeout = 30 * time.Second
	exitTimeout     = time.Minute
)

// sinkLine is what the sink prints for the banner's example event.
const sinkLine = `sink: user=u1 type=track event="Signed Up"`

func TestMain(m *testing.M) {
	code := m.Run()
	buildtest.Cleanup()
	os.Exit(code)
}

// buildPrograms builds ordo-dev and the programs it starts into one
// folder, once, and returns the folder: ordo-dev finds them next to it.
func buildPrograms(t *testing.T) string {
	t.Helper()
	dir, err := buildtest.Programs("ordo-dev", "rebalance", "gateway", "worker", "sink")
	if err != nil {
		t.Fatal(err)
	}
	return dir
}

// devProcess is a running ordo-dev.
type devProcess struct {
	cmd  *exec.Cmd
	out  *clitest.Buffer // standard output and error
	dir  string          // its dev folder
	done chan struct{}
	err  error // from Wait, set before done is closed
}

// startDev runs ordo-dev from a fresh build with free ports and a dev
// folder in a fresh temporary folder, plus extra args. It is killed when
// the test ends, if still running.
func startDev(t *testing.T, extra ...string) *devProcess {
	t.Helper()
	bin := buildPrograms(t)

	// Not t.TempDir: when the test runs as root, Postgres runs as the
	// postgres user, which must be able to enter the folder.
	base, err := os.MkdirTemp("", "ordo-dev-test-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(base) })
	if err := os.Chmod(base, 0o755); err != nil {
		t.Fatal(err)
	}

	p := &devProcess{out: &clitest.Buffer{}, dir: filepath.Join(base, "dev"), done: make(chan struct{})}
	args := append([]string{
		"-dir", p.dir,
		"-http-addr", "127.0.0.1:0",
		"-sink-addr", "127.0.0.1:0",
		"-admin-port", "0",
	}, extra...)
	p.cmd = exec.Command(filepath.Join(bin, "ordo-dev"), args...)
	p.cmd.Dir = base
	p.cmd.Stdout = p.out
	p.cmd.Stderr = p.out
	// The test's own ORDO_ settings would change what ordo-dev starts;
	// pgtest's ORDO_TEST_ ones choose where Postgres comes from.
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "ORDO_") || strings.HasPrefix(kv, "ORDO_TEST_") {
			p.cmd.Env = append(p.cmd.Env, kv)
		}
	}
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		p.err = p.cmd.Wait()
		close(p.done)
	}()
	t.Cleanup(func() {
		select {
		case <-p.done:
		default:
			// Its programs and Postgres die with it.
			p.cmd.Process.Kill()
			<-p.done
		}
		if t.Failed() {
			t.Logf("ordo-dev output:\n%s", p.out.String())
		}
	})
	return p
}

// waitOutput waits until ordo-dev's output contains want, and fails the test
// when it exits or timeout passes first.
func (p *devProcess) waitOutput(t *testing.T, want string, timeout time.Duration) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !strings.Contains(p.out.String(), want) {
		select {
		case <-p.done:
			t.Fatalf("ordo-dev exited (%v) before printing %q", p.err, want)
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("ordo-dev did not print %q within %s", want, timeout)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// wait waits for ordo-dev to exit and returns its exit status.
func (p *devProcess) wait(t *testing.T) int {
	t.Helper()
	select {
	case <-p.done:
	case <-time.After(exitTimeout):
		t.Fatalf("ordo-dev did not exit within %s", exitTimeout)
	}
	var exitErr *exec.ExitError
	switch {
	case p.err == nil:
		return 0
	case errors.As(p.err, &exitErr) && exitErr.Exited():
		return exitErr.ExitCode()
	}
	t.Fatalf("ordo-dev did not exit normally: %v", p.err)
	return -1
}

// checkDirGone fails the test if the dev folder still exists.
func (p *devProcess) checkDirGone(t *testing.T) {
	t.Helper()
	if _, err := os.Stat(p.dir); !errors.Is(err, os.ErrNotExist) {
		entries, _ := os.ReadDir(p.dir)
		var names []string
		for _, e := range entries {
			names = append(names, e.Name())
		}
		t.Errorf("dev folder %s still exists (err %v), holding %q", p.dir, err, names)
	}
}

// curlLine returns the curl command of the banner.
func curlLine(t *testing.T, out string) string {
	t.Helper()
	for line := range strings.Lines(out) {
		if line = strings.TrimSpace(line); strings.HasPrefix(line, "curl ") {
			return line
		}
	}
	t.Fatal("the banner holds no curl command")
	return ""
}

func TestDevDeliversTheBannerEventAndStopsOnInterrupt(t *testing.T) {
	t.Parallel()
	buildPrograms(t)
	began := time.Now()
	p := startDev(t)
	p.waitOutput(t, "Ctrl-C stops everything", bannerTimeout)
	t.Logf("banner after %s", time.Since(began).Round(time.Millisecond))

	// The printed command, as a user would paste it.
	command := curlLine(t, p.out.String())
	if _, err := exec.LookPath("curl"); err == nil {
		cmd := exec.Command("bash", "-c", command+" --fail --silent --show-error")
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("bash -c %q: %v\n%s", command, err, out)
		}
	} else {
		t.Logf("curl not found (%v): sending the request with net/http", err)
		sendLikeCurl(t, command)
	}

	sent := time.Now()
	p.waitOutput(t, sinkLine, deliveryTimeout)
	t.Logf("sink printed the event %s after curl", time.Since(sent).Round(time.Millisecond))
	if !regexp.MustCompile(`(?m)^\[sink\] +` + regexp.QuoteMeta(sinkLine) + ` messageId=\S+$`).MatchString(p.out.String()) {
		t.Errorf("the event's line lacks its [sink] name or messageId:\n%s", p.out.String())
	}

	if err := p.cmd.Process.Signal(os.Interrupt); err != nil {
		t.Fatal(err)
	}
	interrupted := time.Now()
	if status := p.wait(t); status != 0 {
		t.Errorf("ordo-dev exited with status %d after SIGINT, want 0", status)
	}
	t.Logf("exited %s after SIGINT", time.Since(interrupted).Round(time.Millisecond))
	p.checkDirGone(t)
	out := p.out.String()
	for line := range strings.Lines(out) {
		if strings.HasPrefix(line, "[ordo-dev]") && (strings.Contains(line, "level=ERROR") || strings.Contains(line, "level=WARN")) {
			t.Errorf("ordo-dev complained: %s", line)
		}
	}
	if !strings.Contains(out, "msg=stopped") {
		t.Errorf("ordo-dev did not say it stopped")
	}
}

func TestDevStopsEverythingWhenAProgramDies(t *testing.T) {
	t.Parallel()
	p := startDev(t, "-v") // -v logs the programs' process ids
	p.waitOutput(t, "Ctrl-C stops everything", bannerTimeout)

	m := regexp.MustCompile(`msg=started program=worker-2 pid=(\d+)`).FindStringSubmatch(p.out.String())
	if m == nil {
		t.Fatal("ordo-dev -v did not log the pid of worker-2")
	}
	pid, _ := strconv.Atoi(m[1])
	if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
		t.Fatalf("killing worker-2: %v", err)
	}

	if status := p.wait(t); status != 1 {
		t.Errorf("ordo-dev exited with status %d after worker-2 died, want 1", status)
	}
	if want := "worker-2 exited unexpectedly (signal: killed)"; !strings.Contains(p.out.String(), want) {
		t.Errorf("ordo-dev did not say %q", want)
	}
	if strings.Contains(p.out.String(), "killed a program") {
		t.Errorf("ordo-dev had to kill a program that did not stop in time")
	}
	p.checkDirGone(t)
}

// sendLikeCurl sends the request of a banner's curl command with net/http.
func sendLikeCurl(t *testing.T, command string) {
	t.Helper()
	user, header, body, url := parseCurl(t, command)
	req, err := http.NewRequestWithContext(t.Context(), http.MethodPost, url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	name, password, _ := strings.Cut(user, ":")
	req.SetBasicAuth(name, password)
	k, v, _ := strings.Cut(header, ":")
	req.Header.Set(k, strings.TrimSpace(v))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("POST %s: status %d: %s", url, resp.StatusCode, b)
	}
}

// parseCurl returns the parts of a command of the form
// curl -u USER -H HEADER -d BODY URL.
func parseCurl(t *testing.T, command string) (user, header, body, url string) {
	t.Helper()
	words, err := shellWords(command)
	if err != nil {
		t.Fatalf("%q: %v", command, err)
	}
	if len(words) != 8 || words[0] != "curl" || words[1] != "-u" || words[3] != "-H" || words[5] != "-d" {
		t.Fatalf("%q is not curl -u USER -H HEADER -d BODY URL", command)
	}
	return words[2], words[4], words[6], words[7]
}

// shellWords splits s into words as a POSIX shell does for words made of
// bare characters, backslash escapes and single-quoted parts.
func shellWords(s string) ([]string, error) {
	var words []string
	var word strings.Builder
	inWord, quoted, escaped := false, false, false
	for _, r := range s {
		switch {
		case escaped:
			word.WriteRune(r)
			escaped = false
		case quoted && r == '\'':
			quoted = false
		case quoted:
			word.WriteRune(r)
		case r == '\'':
			quoted, inWord = true, true
		case r == '\\':
			escaped, inWord = true, true
		case r == ' ' || r == '\t':
			if inWord {
				words = append(words, word.String())
				word.Reset()
				inWord = false
			}
		case r == '"' || r == '$' || r == '`' || r == ';' || r == '&' || r == '|':
			return nil, fmt.Errorf("unexpected %q outside single quotes", r)
		default:
			word.WriteRune(r)
			inWord = true
		}
	}
	if quoted || escaped {
		return nil, errors.New("unterminated quote or escape")
	}
	if inWord {
		words = append(words, word.String())
	}
	return words, nil
}

func TestCurlCommand(t *testing.T) {
	t.Parallel()
	got := curlCommand(devWriteKey, "http://127.0.0.1:8080")
	want := `curl -u wk_dev_123: -H 'Content-Type: application/json' -d '{"userId":"u1","event":"Signed Up","properties":{"plan":"pro"}}' http://127.0.0.1:8080/v1/track`
	if got != want {
		t.Errorf("curlCommand = %s\nwant %s", got, want)
	}

	// Odd write keys survive the shell.
	user, header, body, url := parseCurl(t, curlCommand("it's a key", "http://[::1]:8080"))
	if user != "it's a key:" || header != "Content-Type: application/json" || body != exampleEvent || url != "http://[::1]:8080/v1/track" {
		t.Errorf("parseCurl = %q, %q, %q, %q", user, header, body, url)
	}
}

func TestShellQuote(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]string{
		"bin/rebalance": "bin/rebalance",
		"wk_dev_123:":   "wk_dev_123:",
		"postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable": "'postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable'",
		"two words": "'two words'",
		"it's":      `'it'\''s'`,
		"":          "''",
	} {
		if got := shellQuote(in); got != want {
			t.Errorf("shellQuote(%q) = %s, want %s", in, got, want)
		}
	}
}

func TestHTTPURL(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]string{
		":8080":          "http://127.0.0.1:8080",
		"0.0.0.0:8080":   "http://127.0.0.1:8080",
		"[::]:8080":      "http://127.0.0.1:8080",
		"127.0.0.1:9000": "http://127.0.0.1:9000",
		"localhost:9000": "http://localhost:9000",
		"[::1]:9000":     "http://[::1]:9000",
	} {
		if got := httpURL(in); got != want {
			t.Errorf("httpURL(%q) = %s, want %s", in, got, want)
		}
	}
}

func TestLineWriter(t *testing.T) {
	t.Parallel()
	var stdout, stderr bytes.Buffer
	con := newConsole(&stdout, &stderr, "worker-10")
	w := con.writer("sink", true, styleSink)
	for _, s := range []string{"one\ntw", "o\n", "three\r\nfour\n\nfi", "ve"} {
		if n, err := w.Write([]byte(s)); n != len(s) || err != nil {
			t.Fatalf("Write(%q) = %d, %v, want %d, nil", s, n, err, len(s))
		}
	}
	w.Close()
	con.writer("worker-10", false, styleDim).Write([]byte("err\n"))

	var want strings.Builder
	for _, line := range []string{"one", "two", "three", "four", "", "five"} {
		want.WriteString("[sink]      " + line + "\n")
	}
	if got := stdout.String(); got != want.String() {
		t.Errorf("stdout = %q, want %q", got, want.String())
	}
	if got, want := stderr.String(), "[worker-10] err\n"; got != want {
		t.Errorf("stderr = %q, want %q", got, want)
	}
}

func TestLineWriterSplitsLongLines(t *testing.T) {
	t.Parallel()
	var out bytes.Buffer
	w := newConsole(&out, io.Discard).writer("sink", true, styleNone)
	w.Write(bytes.Repeat([]byte("x"), maxLine+10))
	w.Write([]byte("\n"))
	sc := bufio.NewScanner(&out)
	sc.Buffer(nil, 2*maxLine)
	var lens []int
	for sc.Scan() {
		lens = append(lens, len(strings.TrimPrefix(sc.Text(), "[sink]      ")))
	}
	if len(lens) != 2 || lens[0]+lens[1] != maxLine+10 {
		t.Errorf("line lengths = %v, want two lines of %d bytes in all", lens, maxLine+10)
	}
}

func TestDevWorkspace(t *testing.T) {
	t.Parallel()
	data, err := devWorkspace("http://127.0.0.1:9000/events")
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{`"writeKey": "wk_dev_123"`, `"url": "http://127.0.0.1:9000/events"`, `"type": "webhook"`, `"id": "web"`} {
		if !bytes.Contains(data, []byte(want)) {
			t.Errorf("workspace lacks %s:\n%s", want, data)
		}
	}
}

func TestExampleWriteKey(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		file string
		want string
	}{
		{`{"sources": [{"id": "a", "writeKey": "k1", "destinations": []}], "destinations": []}`, "k1"},
		{`{"sources": [{"id": "a", "writeKey": "k1", "destinations": []}, {"id": "b", "writeKey": "k2", "destinations": ["d"]}],
		  "destinations": [{"id": "d", "type": "webhook", "config": {"url": "http://127.0.0.1:1/"}}]}`, "k2"},
	} {
		ws, err := workspace.Parse([]byte(tt.file))
		if err != nil {
			t.Fatal(err)
		}
		if got := exampleWriteKey(ws); got != tt.want {
			t.Errorf("exampleWriteKey(%s) = %q, want %q", tt.file, got, tt.want)
		}
	}
}

func TestParseConfig(t *testing.T) {
	t.Parallel()

	t.Run("Defaults", func(t *testing.T) {
		t.Parallel()
		cfg := clitest.Parse(t, parseConfig, nil, map[string]string{})
		want := config{
			Dir: ".dev", Shards: 16, Nodes: 2, Workers: 2, HTTPAddr: ":8080", SinkAddr: ":9000",
			AdminPort: 9091, StopTimeout: 10 * time.Second, LogFormat: "text",
		}
		if cfg != want {
			t.Errorf("parseConfig = %+v, want %+v", cfg, want)
		}
		if got := cfg.programLogLevel(); got != "warn" {
			t.Errorf("programLogLevel = %q, want warn", got)
		}
	})

	t.Run("EnvironmentThenFlags", func(t *testing.T) {
		t.Parallel()
		environ := map[string]string{
			"ORDO_HTTP_ADDR":        ":8081",
			"ORDO_SINK_ADDR":        ":9001",
			"ORDO_SHARDS":           "32",
			"ORDO_WORKSPACE_CONFIG": "ws.json",
			"ORDO_LOG_LEVEL":        "error",
		}
		cfg := clitest.Parse(t, parseConfig, nil, environ)
		if cfg.HTTPAddr != ":8081" || cfg.SinkAddr != ":9001" || cfg.Shards != 32 || cfg.Workspace != "ws.json" || cfg.programLogLevel() != "error" {
			t.Errorf("parseConfig = %+v, want the environment's settings", cfg)
		}
		cfg = clitest.Parse(t, parseConfig, []string{"-http-addr", "127.0.0.1:0", "--shards=8", "-keep", "-v", "-dir", "/tmp/x", "-workers", "3"}, environ)
		if cfg.HTTPAddr != "127.0.0.1:0" || cfg.Shards != 8 || !cfg.Keep || cfg.Dir != "/tmp/x" || cfg.Workers != 3 || cfg.programLogLevel() != "info" {
			t.Errorf("parseConfig with flags = %+v, want the flags' settings", cfg)
		}
	})

	t.Run("ErrorsNameTheSetting", func(t *testing.T) {
		t.Parallel()
		clitest.CheckUsageErrors(t, parseConfig, []clitest.UsageCase{
			{Environ: map[string]string{"ORDO_SHARDS": "many"}, Want: "ORDO_SHARDS"},
			{Environ: map[string]string{"ORDO_SHARDS": "0"}, Want: "ORDO_SHARDS"},
			{Environ: map[string]string{"ORDO_HTTP_ADDR": "8080"}, Want: "ORDO_HTTP_ADDR"},
			{Environ: map[string]string{"ORDO_LOG_LEVEL": "loud"}, Want: "ORDO_LOG_LEVEL"},
			{Args: []string{"-sink-addr", "nope"}, Want: "-sink-addr"},
			{Args: []string{"-shards", "0"}, Want: "-shards"},
			{Args: []string{"-nodes", "0"}, Want: "-nodes"},
			{Args: []string{"-nodes", "5", "-shards", "4"}, Want: "-nodes"},
			{Args: []string{"-admin-port", "65535"}, Want: "-admin-port"},
			{Args: []string{"-dir", ""}, Want: "-dir"},
			{Args: []string{"-stop-timeout", "0s"}, Want: "-stop-timeout"},
			{Args: []string{"-nope"}, Want: "-nope"},
			{Args: []string{"extra"}, Want: `"extra"`},
		})
	})

	t.Run("Help", func(t *testing.T) {
		t.Parallel()
		clitest.CheckHelp(t, parseConfig, []string{"--help"}, map[string]string{},
			"make dev", "node1", "catalog", "rebalance", "wk_dev_123", "[sink]", "Ctrl-C", "SIGTERM",
			"-keep", "-dir", "-workspace", "-shards", "-http-addr", "-sink-addr", "-admin-port", "-v",
			"ORDO_HTTP_ADDR", "ORDO_SINK_ADDR", "ORDO_SHARDS", "ORDO_LOG_LEVEL",
		)
	})
}
