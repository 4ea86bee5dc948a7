// Package failpoint lets tests crash a process at a named step on purpose.
//
// A program calls Hit("move.after_fence") at each step boundary worth
// testing. When the environment variable ORDO_FAILPOINTS lists that name
// (comma-separated), the process logs the fact to stderr and kills itself
// with SIGKILL, as abruptly as a crash: no deferred function runs and no
// connection is closed cleanly. Listed as name=pause, the goroutine that
// reaches it blocks forever instead, while the rest of the process goes
// on: a step that hangs, for tests of what happens to a stalled or
// silenced process.
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
	armed map[string]string // name → action: "kill" or "pause"
)

func load() {
	armed = map[string]string{}
	for _, n := range strings.Split(os.Getenv(Env), ",") {
		n, action, _ := strings.Cut(strings.TrimSpace(n), "=")
		if n == "" {
			continue
		}
		if action != "pause" {
			action = "kill"
		}
		armed[n] = action
	}
}

// Hit kills the process if name is armed, blocks forever if it is armed
// to pause, and does nothing otherwise.
func Hit(name string) {
	once.Do(load)
	switch armed[name] {
	case "":
		return
	case "pause":
		fmt.Fprintf(os.Stderr, "failpoint: %s reached; pausing there for good (process %d)\n", name, os.Getpid())
		select {}
	}
	fmt.Fprintf(os.Stderr, "failpoint: %s reached; killing process %d\n", name, os.Getpid())
	_ = syscall.Kill(os.Getpid(), syscall.SIGKILL)
	select {} // SIGKILL is not instant; never return into the step
}
