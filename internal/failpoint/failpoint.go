// Package failpoint lets tests crash a process at a named step on purpose.
//
// A program calls Hit("move.after_fence") at each step boundary worth
// testing. When the environment variable ORDO_FAILPOINTS lists that name
// (comma-separated), the process logs the fact to stderr and kills itself
// with SIGKILL, as abruptly as a crash: no deferred function runs and no
// connection is closed cleanly.
package failpoint

import (
	"fmt"
	"os"
	"strings"
	"sync"
	"syscall"
)

// Env is the environment variable that arms fail points.
const Env = "ORDO_FAILPOINTS"

var (
	once  sync.Once
	armed map[string]bool
)

func load() {
	armed = map[string]bool{}
	for _, n := range strings.Split(os.Getenv(Env), ",") {
		if n = strings.TrimSpace(n); n != "" {
			armed[n] = true
		}
	}
}

// Hit kills the process if name is armed, and does nothing otherwise.
func Hit(name string) {
	once.Do(load)
	if !armed[name] {
		return
	}
	fmt.Fprintf(os.Stderr, "failpoint: %s reached; killing process %d\n", name, os.Getpid())
	_ = syscall.Kill(os.Getpid(), syscall.SIGKILL)
	select {} // SIGKILL is not instant; never return into the step
}
