package deploy

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"os"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
)

// What CONTRACT.md says each program reads. Every ORDO_* variable a deployment sets
// must be one of these; the sink's come from its --help.
var (
	programs = []string{"gateway", "worker", "rebalance", "sink"}

	logVars = []string{"ORDO_LOG_FORMAT", "ORDO_LOG_LEVEL"}

	allowedVars = map[string][]string{
		"gateway":   append([]string{"ORDO_CATALOG_URL", "ORDO_WORKSPACE_CONFIG", "ORDO_HTTP_ADDR"}, logVars...),
		"worker":    append([]string{"ORDO_CATALOG_URL", "ORDO_WORKSPACE_CONFIG", "ORDO_ADMIN_ADDR"}, logVars...),
		"rebalance": append([]string{"ORDO_CATALOG_URL", "ORDO_NODES", "ORDO_SHARDS"}, logVars...),
		"sink":      append([]string{"ORDO_SINK_ADDR", "ORDO_SINK_VERBOSE"}, logVars...),
	}

	// allowedPrefixes are families of tuning knobs a program may grow.
	allowedPrefixes = map[string][]string{
		"gateway": {"ORDO_BATCH_"},
	}

	requiredVars = map[string][]string{
		"gateway":   {"ORDO_CATALOG_URL", "ORDO_WORKSPACE_CONFIG"},
		"worker":    {"ORDO_CATALOG_URL", "ORDO_WORKSPACE_CONFIG"},
		"rebalance": {"ORDO_CATALOG_URL", "ORDO_NODES"},
		"sink":      {},
	}
)

// checkProgramEnv reports, through t, every ORDO_* variable in env that program does
// not read, every required one that is missing, and values the contract would refuse.
// Values may be unresolved Kubernetes $(VAR) references, which are checked elsewhere.
func checkProgramEnv(t *testing.T, where, program string, env map[string]string) {
	t.Helper()
	allowed, ok := allowedVars[program]
	if !ok {
		t.Errorf("%s runs %q, which is not an ordo program", where, program)
		return
	}
	for name, value := range env {
		if !strings.HasPrefix(name, "ORDO_") {
			continue
		}
		if !slices.Contains(allowed, name) && !hasAnyPrefix(name, allowedPrefixes[program]) {
			t.Errorf("%s sets %s, which %s does not read", where, name, program)
			continue
		}
		if err := checkValue(name, value); err != nil {
			t.Errorf("%s: %s=%q: %v", where, name, value, err)
		}
	}
	for _, name := range requiredVars[program] {
		if _, ok := env[name]; !ok {
			t.Errorf("%s does not set %s, which %s requires", where, name, program)
		}
	}
}

func hasAnyPrefix(s string, prefixes []string) bool {
	for _, p := range prefixes {
		if strings.HasPrefix(s, p) {
			return true
		}
	}
	return false
}

// kubeRef matches a Kubernetes $(VAR) reference in an env value.
var kubeRef = regexp.MustCompile(`\$\([A-Za-z_][A-Za-z0-9_]*\)`)

// checkValue checks one setting's value against the contract's description of it.
func checkValue(name, value string) error {
	switch name {
	case "ORDO_LOG_FORMAT":
		if value != "text" && value != "json" {
			return errors.New("want text or json")
		}
	case "ORDO_LOG_LEVEL":
		if !slices.Contains([]string{"debug", "info", "warn", "error"}, value) {
			return errors.New("want debug, info, warn or error")
		}
	case "ORDO_SHARDS":
		if n, err := strconv.Atoi(value); err != nil || n < 1 {
			return errors.New("want a positive number of shards")
		}
	case "ORDO_CATALOG_URL":
		if value != "" && !kubeRef.MatchString(value) {
			_, err := parsePostgresURL(value)
			return err
		}
	case "ORDO_NODES":
		_, err := parseNodes(value)
		return err
	case "ORDO_HTTP_ADDR", "ORDO_ADMIN_ADDR", "ORDO_SINK_ADDR":
		if _, err := listenPort(value); err != nil {
			return err
		}
	case "ORDO_SINK_VERBOSE":
		if _, err := strconv.ParseBool(value); err != nil {
			return errors.New("want a boolean")
		}
	}
	return nil
}

// listenPort returns the port of a listen address such as ":8080".
func listenPort(addr string) (int, error) {
	i := strings.LastIndexByte(addr, ':')
	if i < 0 {
		return 0, fmt.Errorf("listen address %q has no port", addr)
	}
	port, err := strconv.Atoi(addr[i+1:])
	if err != nil || port < 1 || port > 65535 {
		return 0, fmt.Errorf("listen address %q has no valid port", addr)
	}
	return port, nil
}

func parsePostgresURL(s string) (*url.URL, error) {
	u, err := url.Parse(s)
	if err != nil {
		return nil, err
	}
	if u.Scheme != "postgres" && u.Scheme != "postgresql" {
		return nil, fmt.Errorf("%q is not a postgres:// URL", s)
	}
	if u.Host == "" || strings.Trim(u.Path, "/") == "" {
		return nil, fmt.Errorf("%q lacks a host or a database name", s)
	}
	return u, nil
}

// node is one name=url pair of ORDO_NODES.
type node struct {
	name, url string
}

// parseNodes splits ORDO_NODES into its name=url pairs. A URL may be a Kubernetes
// $(VAR) reference.
func parseNodes(s string) ([]node, error) {
	if s == "" {
		return nil, errors.New("no nodes")
	}
	var nodes []node
	seen := map[string]bool{}
	for pair := range strings.SplitSeq(s, ",") {
		name, u, ok := strings.Cut(pair, "=")
		if !ok || name == "" || u == "" {
			return nil, fmt.Errorf("%q is not a name=postgres-url pair", pair)
		}
		if seen[name] {
			return nil, fmt.Errorf("node %q is listed twice", name)
		}
		seen[name] = true
		if !kubeRef.MatchString(u) {
			if _, err := parsePostgresURL(u); err != nil {
				return nil, fmt.Errorf("node %q: %w", name, err)
			}
		}
		nodes = append(nodes, node{name, u})
	}
	return nodes, nil
}

// workspaceFile mirrors the workspace file of CONTRACT.md, field for field.
type workspaceFile struct {
	Sources []struct {
		ID           string   `json:"id"`
		WriteKey     string   `json:"writeKey"`
		Destinations []string `json:"destinations"`
	} `json:"sources"`
	Destinations []struct {
		ID     string `json:"id"`
		Type   string `json:"type"`
		Config struct {
			URL          string            `json:"url"`
			Headers      map[string]string `json:"headers"`
			Timeout      *string           `json:"timeout"`
			MaxBatchSize *int              `json:"maxBatchSize"`
		} `json:"config"`
		Retry *struct {
			InitialBackoff *string `json:"initialBackoff"`
			MaxBackoff     *string `json:"maxBackoff"`
			MaxAttempts    *int    `json:"maxAttempts"`
			MaxAge         *string `json:"maxAge"`
		} `json:"retry"`
	} `json:"destinations"`
}

// parseWorkspace decodes a workspace file and refuses what the contract says a program
// refuses at start: malformed JSON, unknown fields, an unknown destination id, a
// duplicate write key, an unknown type. It also checks URLs and durations.
func parseWorkspace(data []byte) (*workspaceFile, error) {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	var ws workspaceFile
	if err := dec.Decode(&ws); err != nil {
		return nil, fmt.Errorf("malformed workspace: %w", err)
	}
	if dec.More() {
		return nil, errors.New("malformed workspace: data after the object")
	}
	if len(ws.Sources) == 0 || len(ws.Destinations) == 0 {
		return nil, errors.New("workspace needs at least one source and one destination")
	}

	dests := map[string]bool{}
	for i, d := range ws.Destinations {
		if d.ID == "" || dests[d.ID] {
			return nil, fmt.Errorf("destinations[%d]: missing or duplicate id %q", i, d.ID)
		}
		dests[d.ID] = true
		if d.Type != "webhook" {
			return nil, fmt.Errorf("destination %q: unknown type %q", d.ID, d.Type)
		}
		u, err := url.Parse(d.Config.URL)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return nil, fmt.Errorf("destination %q: url %q is not an absolute http(s) URL", d.ID, d.Config.URL)
		}
		durations := map[string]*string{"config.timeout": d.Config.Timeout}
		if d.Retry != nil {
			durations["retry.initialBackoff"] = d.Retry.InitialBackoff
			durations["retry.maxBackoff"] = d.Retry.MaxBackoff
			durations["retry.maxAge"] = d.Retry.MaxAge
			if d.Retry.MaxAttempts != nil && *d.Retry.MaxAttempts < 1 {
				return nil, fmt.Errorf("destination %q: retry.maxAttempts %d is below 1", d.ID, *d.Retry.MaxAttempts)
			}
		}
		for field, v := range durations {
			if v == nil {
				continue
			}
			if dur, err := time.ParseDuration(*v); err != nil || dur <= 0 {
				return nil, fmt.Errorf("destination %q: %s %q is not a positive duration", d.ID, field, *v)
			}
		}
		if d.Config.MaxBatchSize != nil && *d.Config.MaxBatchSize < 1 {
			return nil, fmt.Errorf("destination %q: config.maxBatchSize %d is below 1", d.ID, *d.Config.MaxBatchSize)
		}
	}

	keys := map[string]bool{}
	for i, s := range ws.Sources {
		if s.ID == "" || s.WriteKey == "" {
			return nil, fmt.Errorf("sources[%d]: missing id or writeKey", i)
		}
		if keys[s.WriteKey] {
			return nil, fmt.Errorf("source %q: duplicate write key", s.ID)
		}
		keys[s.WriteKey] = true
		for _, id := range s.Destinations {
			if !dests[id] {
				return nil, fmt.Errorf("source %q: unknown destination id %q", s.ID, id)
			}
		}
	}
	return &ws, nil
}

func TestParseWorkspaceRefusesWhatTheContractRefuses(t *testing.T) {
	t.Parallel()

	// The example of CONTRACT.md.
	const valid = `{
	  "sources": [{"id": "web", "writeKey": "wk_web_123", "destinations": ["hook"]}],
	  "destinations": [{
	    "id": "hook", "type": "webhook",
	    "config": {"url": "http://127.0.0.1:9000/events", "headers": {"Authorization": "Bearer s3cret"}, "timeout": "10s", "maxBatchSize": 1},
	    "retry": {"initialBackoff": "1s", "maxBackoff": "5m", "maxAttempts": 10, "maxAge": "3h"}
	  }]
	}`
	if _, err := parseWorkspace([]byte(valid)); err != nil {
		t.Fatalf("parseWorkspace(contract example) = %v, want nil", err)
	}

	for name, ws := range map[string]string{
		"malformed":       `{"sources": [`,
		"unknown field":   strings.Replace(valid, `"type"`, `"kind"`, 1),
		"unknown dest id": strings.Replace(valid, `"destinations": ["hook"]`, `"destinations": ["nope"]`, 1),
		"unknown type":    strings.Replace(valid, `"webhook"`, `"kafka"`, 1),
		"bad duration":    strings.Replace(valid, `"10s"`, `"ten seconds"`, 1),
		"relative url":    strings.Replace(valid, `http://127.0.0.1:9000/events`, `/events`, 1),
		"duplicate write key": strings.Replace(valid,
			`{"id": "web", "writeKey": "wk_web_123", "destinations": ["hook"]}`,
			`{"id": "web", "writeKey": "wk_web_123", "destinations": ["hook"]}, {"id": "app", "writeKey": "wk_web_123", "destinations": []}`, 1),
	} {
		if _, err := parseWorkspace([]byte(ws)); err == nil {
			t.Errorf("parseWorkspace(%s) = nil, want an error", name)
		}
	}
}

// readFile reads a file of the repository, failing the test when it cannot.
func readFile(t *testing.T, path string) []byte {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("reading %s: %v", path, err)
	}
	return data
}

// dockerfileBinaries returns the programs the Dockerfile installs in /usr/local/bin.
func dockerfileBinaries(t *testing.T) []string {
	t.Helper()
	var bins []string
	for line := range strings.Lines(string(readFile(t, "../Dockerfile"))) {
		fields := strings.Fields(line)
		if len(fields) < 3 || fields[0] != "COPY" || fields[len(fields)-1] != "/usr/local/bin/" {
			continue
		}
		for _, f := range fields[1 : len(fields)-1] {
			if !strings.HasPrefix(f, "--") {
				bins = append(bins, f[strings.LastIndexByte(f, '/')+1:])
			}
		}
	}
	return bins
}

func TestDockerfile(t *testing.T) {
	t.Parallel()
	dockerfile := string(readFile(t, "../Dockerfile"))

	for _, want := range []string{"FROM golang:1.26 AS build", "CGO_ENABLED=0", "./cmd/..."} {
		if !strings.Contains(dockerfile, want) {
			t.Errorf("Dockerfile lacks %q", want)
		}
	}
	if n := strings.Count(dockerfile, "\nFROM "); n < 2 {
		t.Errorf("Dockerfile has %d stages, want a build stage and a runtime stage", n)
	}
	bins := dockerfileBinaries(t)
	for _, p := range programs {
		if !slices.Contains(bins, p) {
			t.Errorf("Dockerfile installs %v in /usr/local/bin, want %s among them", bins, p)
		}
	}

	ignore := string(readFile(t, "../.dockerignore"))
	for line := range strings.Lines(ignore) {
		line = strings.TrimSpace(line)
		if slices.Contains([]string{"go.mod", "go.sum", "cmd", "cmd/", "*.go", "**/*.go"}, line) {
			t.Errorf(".dockerignore excludes %q, which the build needs", line)
		}
	}
	if !strings.Contains(ignore, ".git") {
		t.Errorf(".dockerignore does not exclude .git")
	}
}
