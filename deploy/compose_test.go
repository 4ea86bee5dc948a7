package deploy

import (
	"context"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/compose-spec/compose-go/v2/loader"
	"github.com/compose-spec/compose-go/v2/types"
)

const composeFile = "../compose.yaml"

// loadCompose loads compose.yaml as `docker compose -p ordo-test` would, interpolating
// ${VAR} from environ only, so the result does not depend on the caller's shell.
func loadCompose(t *testing.T, environ map[string]string) *types.Project {
	t.Helper()
	abs, err := filepath.Abs(composeFile)
	if err != nil {
		t.Fatal(err)
	}
	details := types.ConfigDetails{
		WorkingDir:  filepath.Dir(abs),
		ConfigFiles: []types.ConfigFile{{Filename: abs}},
		Environment: environ,
	}
	project, err := loader.LoadWithContext(context.Background(), details, func(o *loader.Options) {
		o.SetProjectName("ordo-test", true)
	})
	if err != nil {
		t.Fatalf("loading %s: %v", composeFile, err)
	}
	return project
}

func service(t *testing.T, p *types.Project, name string) types.ServiceConfig {
	t.Helper()
	s, err := p.GetService(name)
	if err != nil {
		t.Fatalf("compose.yaml: %v", err)
	}
	return s
}

// envOf returns a service's environment, with unset values as "".
func envOf(s types.ServiceConfig) map[string]string {
	env := map[string]string{}
	for k, v := range s.Environment {
		if v != nil {
			env[k] = *v
		} else {
			env[k] = ""
		}
	}
	return env
}

// program returns the ordo program a service runs, or "" for other images.
func program(s types.ServiceConfig) string {
	if len(s.Command) == 0 {
		return ""
	}
	return filepath.Base(s.Command[0])
}

func TestComposeServices(t *testing.T) {
	t.Parallel()
	p := loadCompose(t, nil)

	if p.Name != "ordo-test" {
		t.Errorf("project name = %q, want ordo-test", p.Name)
	}
	for _, name := range []string{"pg1", "pg2", "rebalance", "gateway", "worker", "sink"} {
		if _, ok := p.Services[name]; !ok {
			t.Errorf("compose.yaml lacks service %s", name)
		}
	}
	for _, name := range []string{"rebalance", "gateway", "worker", "sink"} {
		if got := program(service(t, p, name)); got != name {
			t.Errorf("service %s runs %q, want %q", name, got, name)
		}
	}
}

func TestComposeStartOrder(t *testing.T) {
	t.Parallel()
	p := loadCompose(t, nil)

	for _, name := range []string{"gateway", "worker"} {
		dep, ok := service(t, p, name).DependsOn["rebalance"]
		if !ok {
			t.Errorf("%s does not depend on rebalance", name)
			continue
		}
		if dep.Condition != types.ServiceConditionCompletedSuccessfully {
			t.Errorf("%s depends on rebalance with condition %q, want %q", name, dep.Condition, types.ServiceConditionCompletedSuccessfully)
		}
	}

	rebalance := service(t, p, "rebalance")
	for _, pg := range []string{"pg1", "pg2"} {
		dep, ok := rebalance.DependsOn[pg]
		if !ok {
			t.Errorf("rebalance does not depend on %s", pg)
			continue
		}
		if dep.Condition != types.ServiceConditionHealthy {
			t.Errorf("rebalance depends on %s with condition %q, want %q", pg, dep.Condition, types.ServiceConditionHealthy)
		}
	}
	if rebalance.Restart != "no" {
		t.Errorf("rebalance restart = %q, want \"no\": it is one-shot", rebalance.Restart)
	}
}

func TestComposeEnvironment(t *testing.T) {
	t.Parallel()
	p := loadCompose(t, nil)

	catalogs := map[string]bool{}
	for name, s := range p.Services {
		prog := program(s)
		if prog == "" {
			continue
		}
		env := envOf(s)
		checkProgramEnv(t, "compose service "+name, prog, env)
		if c, ok := env["ORDO_CATALOG_URL"]; ok {
			catalogs[c] = true
		}
	}
	if len(catalogs) != 1 {
		t.Errorf("services use %d different ORDO_CATALOG_URLs %v, want one", len(catalogs), catalogs)
	}
}

// TestComposeTopology checks that the URLs point at services that exist: the catalog and
// every node at a Postgres service that rebalance waits for, the catalog database at one
// that pg1 creates.
func TestComposeTopology(t *testing.T) {
	t.Parallel()
	p := loadCompose(t, nil)
	rebalance := envOf(service(t, p, "rebalance"))

	nodes, err := parseNodes(rebalance["ORDO_NODES"])
	if err != nil {
		t.Fatalf("rebalance ORDO_NODES: %v", err)
	}
	var hosts []string
	for _, n := range nodes {
		u, err := url.Parse(n.url)
		if err != nil {
			t.Fatalf("node %s: %v", n.name, err)
		}
		hosts = append(hosts, u.Hostname())
		pg, ok := p.Services[u.Hostname()]
		if !ok {
			t.Errorf("node %s points at %s, which is no service", n.name, u.Hostname())
			continue
		}
		if !strings.HasPrefix(pg.Image, "postgres:15") {
			t.Errorf("service %s image = %q, want postgres:15", pg.Name, pg.Image)
		}
		if _, ok := service(t, p, "rebalance").DependsOn[pg.Name]; !ok {
			t.Errorf("rebalance does not wait for node %s's service %s", n.name, pg.Name)
		}
	}
	if !slices.Equal(hosts, []string{"pg1", "pg2"}) {
		t.Errorf("ORDO_NODES hosts = %v, want [pg1 pg2]", hosts)
	}

	catalog, err := parsePostgresURL(rebalance["ORDO_CATALOG_URL"])
	if err != nil {
		t.Fatalf("ORDO_CATALOG_URL: %v", err)
	}
	if catalog.Hostname() != "pg1" {
		t.Errorf("catalog host = %s, want pg1", catalog.Hostname())
	}
	// The catalog database must exist on pg1: POSTGRES_DB or an init script creates it.
	db := strings.Trim(catalog.Path, "/")
	pg1 := service(t, p, "pg1")
	if env := envOf(pg1); env["POSTGRES_DB"] != db {
		created := false
		for _, v := range pg1.Volumes {
			if v.Target != "/docker-entrypoint-initdb.d" {
				continue
			}
			scripts, _ := filepath.Glob(filepath.Join(v.Source, "*.sql"))
			re := regexp.MustCompile(`(?i)CREATE DATABASE\s+"?` + regexp.QuoteMeta(db) + `"?\s*;`)
			for _, s := range scripts {
				if re.Match(readFile(t, s)) {
					created = true
				}
			}
		}
		if !created {
			t.Errorf("no init script of pg1 creates the catalog database %q", db)
		}
	}

	// Each Postgres keeps its data in a named volume.
	for _, name := range []string{"pg1", "pg2"} {
		found := false
		for _, v := range service(t, p, name).Volumes {
			if v.Type == types.VolumeTypeVolume && v.Target == "/var/lib/postgresql/data" {
				if _, ok := p.Volumes[v.Source]; !ok {
					t.Errorf("%s mounts volume %q, which is not declared", name, v.Source)
				}
				found = true
			}
		}
		if !found {
			t.Errorf("%s keeps its data in no named volume", name)
		}
	}
}

func TestComposeInterpolation(t *testing.T) {
	t.Parallel()

	defaults := envOf(service(t, loadCompose(t, nil), "rebalance"))
	if defaults["ORDO_SHARDS"] != "128" {
		t.Errorf("default ORDO_SHARDS = %q, want 128", defaults["ORDO_SHARDS"])
	}

	p := loadCompose(t, map[string]string{
		"ORDO_SHARDS":      "64",
		"ORDO_PG_PASSWORD": "hunter2",
		"ORDO_LOG_FORMAT":  "json",
		"ORDO_IMAGE":       "registry.example/ordo:1.2.3",
	})
	rebalance := service(t, p, "rebalance")
	env := envOf(rebalance)
	if env["ORDO_SHARDS"] != "64" {
		t.Errorf("ORDO_SHARDS = %q, want 64 from the environment", env["ORDO_SHARDS"])
	}
	if env["ORDO_LOG_FORMAT"] != "json" {
		t.Errorf("ORDO_LOG_FORMAT = %q, want json from the environment", env["ORDO_LOG_FORMAT"])
	}
	for _, k := range []string{"ORDO_CATALOG_URL", "ORDO_NODES"} {
		if strings.Count(env[k], ":hunter2@") != strings.Count(env[k], "postgres://") {
			t.Errorf("%s = %q, want ORDO_PG_PASSWORD in every URL", k, env[k])
		}
	}
	if got := envOf(service(t, p, "pg2"))["POSTGRES_PASSWORD"]; got != "hunter2" {
		t.Errorf("pg2 POSTGRES_PASSWORD = %q, want hunter2", got)
	}
	if rebalance.Image != "registry.example/ordo:1.2.3" {
		t.Errorf("rebalance image = %q, want ORDO_IMAGE", rebalance.Image)
	}
}

func TestComposeHealthchecks(t *testing.T) {
	t.Parallel()
	p := loadCompose(t, nil)

	for _, name := range []string{"pg1", "pg2"} {
		hc := service(t, p, name).HealthCheck
		if hc == nil || hc.Disable || !strings.Contains(strings.Join(hc.Test, " "), "pg_isready") {
			t.Errorf("%s healthcheck = %+v, want one running pg_isready", name, hc)
		}
	}

	// Each program's healthcheck must hit /health on the port the program listens on.
	for name, addrVar := range map[string]string{
		"gateway": "ORDO_HTTP_ADDR",
		"worker":  "ORDO_ADMIN_ADDR",
		"sink":    "ORDO_SINK_ADDR",
	} {
		s := service(t, p, name)
		if s.HealthCheck == nil || s.HealthCheck.Disable || len(s.HealthCheck.Test) == 0 {
			t.Errorf("%s has no healthcheck", name)
			continue
		}
		port, err := listenPort(envOf(s)[addrVar])
		if err != nil {
			t.Errorf("%s %s: %v", name, addrVar, err)
			continue
		}
		test := strings.Join(s.HealthCheck.Test, " ")
		if want := ":" + strconv.Itoa(port) + "/health"; !strings.Contains(test, want) {
			t.Errorf("%s healthcheck %q does not hit %s", name, test, want)
		}
		if strings.Contains(test, "curl") && !strings.Contains(string(readFile(t, "../Dockerfile")), "curl") {
			t.Errorf("%s healthcheck calls curl, which the image does not install", name)
		}
	}
}

// TestComposeScaling checks that `docker compose up --scale gateway=N --scale worker=N`
// can work: no fixed container name, and no single fixed host port for the gateway.
func TestComposeScaling(t *testing.T) {
	t.Parallel()
	p := loadCompose(t, nil)

	for _, name := range []string{"gateway", "worker"} {
		s := service(t, p, name)
		if s.ContainerName != "" {
			t.Errorf("%s has container_name %q, which --scale cannot repeat", name, s.ContainerName)
		}
		for _, port := range s.Ports {
			lo, hi, isRange := strings.Cut(port.Published, "-")
			if port.Published == "" {
				continue
			}
			if !isRange {
				t.Errorf("%s publishes fixed host port %s, which a second replica cannot bind", name, port.Published)
				continue
			}
			l, err1 := strconv.Atoi(lo)
			h, err2 := strconv.Atoi(hi)
			if err1 != nil || err2 != nil || h <= l {
				t.Errorf("%s publishes host port range %q, want lo-hi with hi > lo", name, port.Published)
			}
		}
	}

	head := string(readFile(t, composeFile))
	for _, want := range []string{"--scale", "pg3", "node3=", "docker compose run --rm rebalance"} {
		if !strings.Contains(head, want) {
			t.Errorf("compose.yaml comments do not explain %q", want)
		}
	}
}

// TestComposeImage checks that every ordo service runs the image the Dockerfile builds
// and a program that image holds.
func TestComposeImage(t *testing.T) {
	t.Parallel()
	p := loadCompose(t, nil)
	bins := dockerfileBinaries(t)

	images := map[string]bool{}
	for name, s := range p.Services {
		prog := program(s)
		if prog == "" {
			continue
		}
		if !slices.Contains(bins, prog) {
			t.Errorf("%s runs %s, which the Dockerfile does not install (it installs %v)", name, prog, bins)
		}
		if s.Build == nil {
			t.Errorf("%s has no build section", name)
		} else if _, err := os.Stat(filepath.Join(s.Build.Context, s.Build.Dockerfile)); err != nil {
			t.Errorf("%s builds from a Dockerfile that does not exist: %v", name, err)
		}
		images[s.Image] = true
	}
	if len(images) != 1 {
		t.Errorf("ordo services use images %v, want one image built once", images)
	}
}

// TestComposeWorkspace checks the workspace file that gateways and workers mount: it is
// in the repository, has the contract's shape, and sends to the sink service.
func TestComposeWorkspace(t *testing.T) {
	t.Parallel()
	p := loadCompose(t, nil)

	sources := map[string]bool{}
	for _, name := range []string{"gateway", "worker"} {
		s := service(t, p, name)
		target := envOf(s)["ORDO_WORKSPACE_CONFIG"]
		var source string
		for _, v := range s.Volumes {
			if v.Target == target || v.Target == filepath.Dir(target) {
				source = filepath.Join(v.Source, strings.TrimPrefix(target, v.Target))
				if !v.ReadOnly {
					t.Errorf("%s mounts the workspace read-write, want read-only", name)
				}
			}
		}
		if source == "" {
			t.Errorf("%s mounts nothing at ORDO_WORKSPACE_CONFIG=%s", name, target)
			continue
		}
		sources[source] = true
	}
	if len(sources) != 1 {
		t.Fatalf("gateway and worker mount workspaces %v, want the same one", sources)
	}

	for source := range sources {
		rel, err := filepath.Rel(filepath.Dir(must(filepath.Abs(composeFile))), source)
		if err != nil || strings.HasPrefix(rel, "..") {
			t.Errorf("workspace %s is outside the repository", source)
		}
		ws, err := parseWorkspace(readFile(t, source))
		if err != nil {
			t.Fatalf("%s: %v", rel, err)
		}
		var keys []string
		for _, s := range ws.Sources {
			keys = append(keys, s.WriteKey)
		}
		if !slices.Contains(keys, "wk_web_123") {
			t.Errorf("%s write keys = %v, want wk_web_123 that the compose.yaml example uses", rel, keys)
		}
		sinkPort, _ := listenPort(envOf(service(t, p, "sink"))["ORDO_SINK_ADDR"])
		for _, d := range ws.Destinations {
			u, _ := url.Parse(d.Config.URL)
			if u.Hostname() != "sink" || u.Port() != strconv.Itoa(sinkPort) {
				t.Errorf("destination %s sends to %s, want the sink service at sink:%d", d.ID, d.Config.URL, sinkPort)
			}
		}
	}
}

func must[T any](v T, err error) T {
	if err != nil {
		panic(err)
	}
	return v
}
