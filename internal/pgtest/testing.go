package pgtest

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"sync"
	"testing"

	"github.com/jackc/pgx/v5"
)

// Start starts n clusters for a test, in parallel, named node1 to nodeN. They
// are removed when the test and its subtests end, whether or not it failed;
// set ORDO_TEST_PG_KEEP=1 to keep their data folders. When no backend is
// available, Start fails the test with ErrNoPostgres's message: it never
// skips.
func Start(t testing.TB, n int) []*Cluster {
	t.Helper()
	if n < 1 {
		t.Fatalf("pgtest.Start(t, %d): n must be at least 1", n)
	}
	backend, err := pickBackend(t.Context())
	if errors.Is(err, ErrNoPostgres) {
		t.Fatal(ErrNoPostgres.Error())
	}
	if err != nil {
		t.Fatalf("pgtest: %v", err)
	}
	keep := os.Getenv(EnvKeep) == "1" || strings.EqualFold(os.Getenv(EnvKeep), "true")
	clusters := make([]*Cluster, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			clusters[i], errs[i] = startOn(t.Context(), backend, Options{
				Name: fmt.Sprintf("node%d", i+1),
				Keep: keep,
				Logf: t.Logf,
			})
		})
	}
	wg.Wait()

	// Registered before any failure, so that started clusters are removed.
	t.Cleanup(func() {
		var wg sync.WaitGroup
		for _, c := range clusters {
			if c == nil {
				continue
			}
			if t.Failed() {
				if tail := c.LogTail(); tail != "" {
					t.Logf("pgtest: end of the server log of %s:\n%s", c.Name(), tail)
				}
			}
			wg.Go(func() {
				if err := c.Remove(); err != nil {
					t.Errorf("pgtest: %v", err)
				}
			})
			if keep && c.DataDir() != "" {
				t.Logf("pgtest: kept data folder of %s: %s", c.Name(), c.DataDir())
			}
		}
		wg.Wait()
	})

	if err := errors.Join(errs...); err != nil {
		t.Fatalf("pgtest: starting %d clusters: %v", n, err)
	}
	return clusters
}

// Connect opens a connection to url for a test, closed when the test
// ends; it fails the test when it cannot connect.
func Connect(t testing.TB, url string) *pgx.Conn {
	t.Helper()
	conn, err := pgx.Connect(t.Context(), url)
	if err != nil {
		t.Fatalf("connecting to %s: %v", url, err)
	}
	t.Cleanup(func() { conn.Close(context.WithoutCancel(t.Context())) })
	return conn
}
