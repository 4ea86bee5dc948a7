// Package buildtest builds ordo's programs for tests that run them as real
// processes. Each program is built at most once per test binary, into one
// temporary folder, so programs that look for their siblings next to
// themselves (ordo-dev) find them. TestMain should call Cleanup.
//
// With ORDO_TEST_RACE=1 the programs are built with the race detector.
package buildtest

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"
)

// Module is the import path the programs are built from.
const Module = "github.com/ordo-pipeline/ordo"

var (
	mu    sync.Mutex
	dir   string
	built = map[string]bool{}
)

// Programs builds the programs named (their folders under cmd/) that are
// not built yet, and returns the folder that holds them.
func Programs(names ...string) (string, error) {
	mu.Lock()
	defer mu.Unlock()
	if dir == "" {
		d, err := os.MkdirTemp("", "ordo-test-bin-")
		if err != nil {
			return "", err
		}
		dir = d
	}
	args := []string{"build", "-o", dir + string(filepath.Separator)}
	if os.Getenv("ORDO_TEST_RACE") == "1" {
		args = append(args, "-race")
	}
	var todo []string
	for _, n := range names {
		if !built[n] {
			todo = append(todo, Module+"/cmd/"+n)
		}
	}
	if len(todo) == 0 {
		return dir, nil
	}
	out, err := exec.Command("go", append(args, todo...)...).CombinedOutput()
	if err != nil {
		return "", fmt.Errorf("go build %v: %w\n%s", todo, err, out)
	}
	for _, n := range names {
		built[n] = true
	}
	return dir, nil
}

// Program builds the named program if needed and returns its path,
// failing t when it cannot be built.
func Program(t testing.TB, name string) string {
	t.Helper()
	d, err := Programs(name)
	if err != nil {
		t.Fatal(err)
	}
	return filepath.Join(d, name)
}

// Cleanup removes the folder of built programs.
func Cleanup() {
	mu.Lock()
	defer mu.Unlock()
	if dir != "" {
		os.RemoveAll(dir)
		dir, built = "", map[string]bool{}
	}
}
