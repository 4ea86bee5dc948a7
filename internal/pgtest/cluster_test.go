package pgtest

import (
	"context"
	"errors"
	"fmt"
	"os"
	osexec "os/exec"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

func mustExec(t *testing.T, conn *pgx.Conn, sql string) {
	t.Helper()
	if _, err := conn.Exec(t.Context(), sql); err != nil {
		t.Fatalf("%s: %v", sql, err)
	}
}

func count(t *testing.T, url, table string) int {
	t.Helper()
	conn := Connect(t, url)
	var n int
	if err := conn.QueryRow(t.Context(), "SELECT count(*) FROM "+table).Scan(&n); err != nil {
		t.Fatalf("counting rows of %s: %v", table, err)
	}
	return n
}

// requireRestartable fails the test, saying what to install, when the
// backend of c cannot stop and start servers: the url backend shares one
// server between clusters (TestURLBackend checks it refuses to).
func requireRestartable(t *testing.T, c *Cluster) {
	t.Helper()
	if c.Backend() == BackendURL {
		t.Fatalf("this test stops and starts its server, which the %s backend cannot: install the PostgreSQL server binaries (Debian: apt-get install postgresql) or Docker, and leave %s unset", c.Backend(), EnvBackend)
	}
}

func TestStart(t *testing.T) {
	t.Parallel()
	began := time.Now()
	clusters := Start(t, 3)
	t.Logf("started 3 clusters in %v", time.Since(began).Round(time.Millisecond))

	if got := len(clusters); got != 3 {
		t.Fatalf("len(Start(t, 3)) = %d, want 3", got)
	}
	ports := map[int]string{}
	for i, c := range clusters {
		if want := "node" + string(rune('1'+i)); c.Name() != want {
			t.Errorf("clusters[%d].Name() = %q, want %q", i, c.Name(), want)
		}
		if other, ok := ports[c.Port()]; ok {
			t.Errorf("%s and %s both use port %d", other, c.Name(), c.Port())
		}
		ports[c.Port()] = c.Name()
		var one int
		if err := Connect(t, c.URL()).QueryRow(t.Context(), "SELECT 1").Scan(&one); err != nil || one != 1 {
			t.Errorf("%s: SELECT 1 = %d, %v; want 1, nil", c.Name(), one, err)
		}
		if c.Backend() == BackendLocal && !strings.Contains(c.URL(), "@127.0.0.1:") {
			t.Errorf("%s: URL() = %q, want a 127.0.0.1 URL", c.Name(), c.URL())
		}
	}
}

func TestStopStartKeepsData(t *testing.T) {
	t.Parallel()
	c := Start(t, 1)[0]
	requireRestartable(t, c)
	conn := Connect(t, c.URL())
	mustExec(t, conn, "CREATE TABLE kept (id int); INSERT INTO kept VALUES (1), (2)")

	if err := c.Stop(t.Context()); err != nil {
		t.Fatalf("Stop: %v", err)
	}
	if err := c.Stop(t.Context()); err != nil {
		t.Fatalf("second Stop: %v", err)
	}
	if err := conn.Ping(t.Context()); err == nil {
		t.Errorf("Ping after Stop = nil, want an error")
	}
	if err := c.Start(t.Context()); err != nil {
		t.Fatalf("Start: %v", err)
	}
	if got := count(t, c.URL(), "kept"); got != 2 {
		t.Errorf("rows after Stop and Start = %d, want 2", got)
	}
}

func TestKillStart(t *testing.T) {
	t.Parallel()
	c := Start(t, 1)[0]
	requireRestartable(t, c)
	conn := Connect(t, c.URL())
	mustExec(t, conn, "CREATE TABLE survivor (id int); INSERT INTO survivor VALUES (1)")

	if err := c.Kill(); err != nil {
		t.Fatalf("Kill: %v", err)
	}
	if err := conn.Ping(t.Context()); err == nil {
		t.Errorf("Ping after Kill = nil, want an error")
	}
	if err := c.Start(t.Context()); err != nil {
		t.Fatalf("Start after Kill: %v", err)
	}
	if got := count(t, c.URL(), "survivor"); got != 1 {
		t.Errorf("rows after Kill and Start = %d, want 1", got)
	}
	if c.Backend() == BackendLocal && !strings.Contains(c.LogTail(), "not properly shut down") {
		t.Errorf("server log after Kill and Start shows no crash recovery:\n%s", c.LogTail())
	}
}

func TestStopImmediateStart(t *testing.T) {
	t.Parallel()
	c := Start(t, 1)[0]
	requireRestartable(t, c)
	conn := Connect(t, c.URL())
	mustExec(t, conn, "CREATE TABLE quick (id int); INSERT INTO quick VALUES (1)")

	if err := c.StopImmediate(t.Context()); err != nil {
		t.Fatalf("StopImmediate: %v", err)
	}
	if err := c.StopImmediate(t.Context()); err != nil {
		t.Fatalf("second StopImmediate: %v", err)
	}
	if err := conn.Ping(t.Context()); err == nil {
		t.Errorf("Ping after StopImmediate = nil, want an error")
	}
	if err := c.Start(t.Context()); err != nil {
		t.Fatalf("Start after StopImmediate: %v", err)
	}
	if got := count(t, c.URL(), "quick"); got != 1 {
		t.Errorf("rows after StopImmediate and Start = %d, want 1", got)
	}
	if c.Backend() == BackendLocal && !strings.Contains(c.LogTail(), "not properly shut down") {
		t.Errorf("server log after StopImmediate and Start shows no crash recovery:\n%s", c.LogTail())
	}
}

func TestRemove(t *testing.T) {
	t.Parallel()
	c := Start(t, 1)[0]
	local := c.Backend() == BackendLocal
	if !local && c.DataDir() != "" {
		t.Errorf("DataDir() = %q on the %s backend, want \"\"", c.DataDir(), c.Backend())
	}
	if local {
		if _, err := os.Stat(c.DataDir()); err != nil {
			t.Fatalf("data folder before Remove: %v", err)
		}
	}
	if err := c.Remove(); err != nil {
		t.Fatalf("Remove: %v", err)
	}
	if local {
		if _, err := os.Stat(c.DataDir()); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("stat of data folder after Remove: %v, want it not to exist", err)
		}
	}
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
	defer cancel()
	if conn, err := pgx.Connect(ctx, c.URL()); err == nil {
		conn.Close(ctx)
		t.Errorf("connecting after Remove succeeded, want the server (or database) gone")
	}
	if err := c.Remove(); err != nil {
		t.Errorf("second Remove: %v", err)
	}
	if err := c.Start(t.Context()); err == nil {
		t.Errorf("Start after Remove = nil, want an error")
	}
}

// TestStartClusterDataDir follows `make dev`: a kept data folder is reused by
// the next run.
func TestStartClusterDataDir(t *testing.T) {
	t.Parallel()
	if _, err := findBinaries(); err != nil {
		// DataDir is for the local backend only: any other must refuse it.
		_, err := StartCluster(t.Context(), Options{Name: "dev", DataDir: t.TempDir()})
		if errors.Is(err, ErrNoPostgres) {
			t.Fatal(err.Error())
		}
		if err == nil || !strings.Contains(err.Error(), "only supported by the local backend") {
			t.Fatalf("StartCluster with DataDir without the server binaries = %v, want a refusal naming the local backend", err)
		}
		return
	}
	parent, err := os.MkdirTemp("", "ordo-pgtest-datadir-test-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(parent) })
	if err := os.Chmod(parent, 0o755); err != nil { // the server user must get in
		t.Fatal(err)
	}
	opts := Options{Name: "dev", DataDir: parent + "/data", Keep: true, Logf: t.Logf}

	c, err := StartCluster(t.Context(), opts)
	if err != nil {
		t.Fatalf("StartCluster: %v", err)
	}
	t.Cleanup(func() { c.Remove() })
	mustExec(t, Connect(t, c.URL()), "CREATE TABLE dev (id int); INSERT INTO dev VALUES (1)")
	if err := c.Remove(); err != nil {
		t.Fatalf("Remove: %v", err)
	}
	if _, err := os.Stat(opts.DataDir + "/PG_VERSION"); err != nil {
		t.Fatalf("kept data folder after Remove: %v", err)
	}

	c2, err := StartCluster(t.Context(), opts)
	if err != nil {
		t.Fatalf("StartCluster on the kept data folder: %v", err)
	}
	t.Cleanup(func() { c2.Remove() })
	if got := count(t, c2.URL(), "dev"); got != 1 {
		t.Errorf("rows in the reused data folder = %d, want 1", got)
	}
}

func TestURLBackend(t *testing.T) {
	server := Start(t, 1)[0]
	admin := Connect(t, server.URL())
	var names []string
	t.Run("clusters", func(t *testing.T) {
		t.Setenv(EnvDatabaseURL, server.URL())
		t.Setenv(EnvBackend, BackendURL)
		clusters := Start(t, 2)
		for _, c := range clusters {
			if c.Backend() != BackendURL {
				t.Fatalf("%s: Backend() = %q, want %q", c.Name(), c.Backend(), BackendURL)
			}
			if !errors.Is(c.Stop(t.Context()), ErrUnsupported) {
				t.Errorf("%s: Stop error does not wrap ErrUnsupported", c.Name())
			}
			if !errors.Is(c.Kill(), ErrUnsupported) {
				t.Errorf("%s: Kill error does not wrap ErrUnsupported", c.Name())
			}
			name := strings.TrimPrefix(strings.SplitN(c.URL(), "?", 2)[0], strings.SplitN(server.DatabaseURL(""), "?", 2)[0])
			if !strings.HasPrefix(name, "ordo_test_") {
				t.Fatalf("%s: URL() = %q, want a database named ordo_test_*", c.Name(), c.URL())
			}
			names = append(names, name)
		}
		if names[0] == names[1] {
			t.Fatalf("both clusters use database %s", names[0])
		}
		// Each cluster is its own database.
		mustExec(t, Connect(t, clusters[0].URL()), "CREATE TABLE only_here (id int)")
		if _, err := Connect(t, clusters[1].URL()).Exec(t.Context(), "SELECT * FROM only_here"); err == nil {
			t.Errorf("a table of %s is visible in %s", clusters[0].Name(), clusters[1].Name())
		}
	})
	for _, name := range names {
		var exists bool
		if err := admin.QueryRow(t.Context(), "SELECT EXISTS (SELECT FROM pg_database WHERE datname = $1)", name).Scan(&exists); err != nil {
			t.Fatal(err)
		}
		if exists {
			t.Errorf("database %s still exists after the test", name)
		}
	}
}

func TestStartClusterErrors(t *testing.T) {
	t.Setenv(EnvBackend, "bogus")
	if _, err := StartCluster(t.Context(), Options{}); err == nil || !strings.Contains(err.Error(), EnvBackend) {
		t.Errorf("StartCluster with %s=bogus: %v, want an error naming %s", EnvBackend, err, EnvBackend)
	}
	t.Setenv(EnvBackend, "")
	if _, err := StartCluster(t.Context(), Options{Name: "a/b"}); err == nil {
		t.Errorf("StartCluster with Name a/b = nil error, want one")
	}
}

func TestFreePort(t *testing.T) {
	t.Parallel()
	port, err := FreePort()
	if err != nil {
		t.Fatal(err)
	}
	if port <= 0 || port > 65535 {
		t.Errorf("FreePort() = %d, want a port", port)
	}
}

// fatalRecorder records the message of Fatal and ends the goroutine, as
// testing.T does.
type fatalRecorder struct {
	testing.TB
	msg string
}

func (r *fatalRecorder) Fatal(args ...any) {
	r.msg = fmt.Sprint(args...)
	runtime.Goexit()
}

func (r *fatalRecorder) Fatalf(format string, args ...any) {
	r.msg = fmt.Sprintf(format, args...)
	runtime.Goexit()
}

func TestStartWithoutPostgres(t *testing.T) {
	if os.Getenv("PGTEST_NO_POSTGRES_CHILD") == "" {
		// Run in a fresh process: the binaries were already found in this one.
		cmd := osexec.Command(os.Args[0], "-test.run=^TestStartWithoutPostgres$", "-test.v")
		cmd.Env = append(os.Environ(), "PGTEST_NO_POSTGRES_CHILD=1", "PATH=/nonexistent", EnvBackend+"=", EnvDatabaseURL+"=")
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("child test: %v\n%s", err, out)
		}
		if dockerAvailable(t.Context()) != nil && !strings.Contains(string(out), "no PostgreSQL available") {
			t.Errorf("child test output lacks the failure message:\n%s", out)
		}
		return
	}
	installedBinGlob = "/nonexistent/*/bin"
	if dockerAvailable(t.Context()) == nil {
		// With a Docker engine there is always a backend: Start uses it.
		if c := Start(t, 1)[0]; c.Backend() != BackendDocker {
			t.Errorf("Start without server binaries used the %s backend, want %s", c.Backend(), BackendDocker)
		}
		return
	}
	r := &fatalRecorder{TB: t}
	done := make(chan struct{})
	go func() {
		defer close(done)
		Start(r, 1)
		t.Error("Start returned without Postgres, want a failed test")
	}()
	<-done
	if r.msg != ErrNoPostgres.Error() {
		t.Errorf("Start failed with %q, want %q", r.msg, ErrNoPostgres.Error())
	}
	t.Log(r.msg)
}

// TestStartOnATakenPort checks that a cluster whose port another cluster
// holds is not taken for started because that other one answers there (a
// port FreePort gave two clusters started at once): asked for that port,
// it fails (on the local backend, naming the other server).
func TestStartOnATakenPort(t *testing.T) {
	t.Parallel()
	first := Start(t, 1)[0]
	requireRestartable(t, first) // the url backend has no port of its own
	c, err := StartCluster(t.Context(), Options{Name: "second", Port: first.Port(), Logf: t.Logf})
	if err == nil {
		c.Remove()
		t.Fatalf("a second cluster started on port %d, which the first holds", first.Port())
	}
	if first.Backend() == BackendLocal && !strings.Contains(err.Error(), "another server answers") && !strings.Contains(err.Error(), "Address already in use") {
		t.Errorf("StartCluster on a taken port = %v, want it to say the port is another server's", err)
	}
}

func TestWithPort(t *testing.T) {
	t.Parallel()
	if got := withPort(localURL("127.0.0.1", 5432), 6000).String(); got != localURL("127.0.0.1", 6000).String() {
		t.Errorf("TCP URL with port 6000 = %s", got)
	}
	if got := withPort(socketURL("/tmp/d", 5432), 6000).String(); got != socketURL("/tmp/d", 6000).String() {
		t.Errorf("socket URL with port 6000 = %s", got)
	}
}
