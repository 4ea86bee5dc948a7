package pgtest

import (
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"
)

// serverProcAttr runs postgres in its own process group, as cred, and asks
// the kernel to kill it when the thread that started it dies: see
// startProcess.
func serverProcAttr(cred *syscall.Credential) *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Credential: cred, Setpgid: true, Pdeathsig: syscall.SIGKILL}
}

// spawner is a goroutine locked to an OS thread that never exits. Pdeathsig
// fires when the thread that forked the child exits, not the process, so
// servers are started from this thread: they then die with the process (a
// killed test binary leaves no server behind) and not before.
var spawner = sync.OnceValue(func() chan<- spawnRequest {
	requests := make(chan spawnRequest)
	go func() {
		runtime.LockOSThread() // never unlocked: the thread lives as long as the process
		for req := range requests {
			req.done <- req.cmd.Start()
		}
	}()
	return requests
})

type spawnRequest struct {
	cmd  *exec.Cmd
	done chan error
}

func startProcess(cmd *exec.Cmd) error {
	done := make(chan error, 1)
	spawner() <- spawnRequest{cmd: cmd, done: done}
	return <-done
}

// childPIDs returns the processes whose parent is pid.
func childPIDs(pid int) []int {
	dirs, _ := filepath.Glob("/proc/[0-9]*")
	var children []int
	for _, dir := range dirs {
		if f := procStat(dir); len(f) > 1 && f[1] == strconv.Itoa(pid) {
			if child, err := strconv.Atoi(filepath.Base(dir)); err == nil {
				children = append(children, child)
			}
		}
	}
	return children
}

// isZombie reports whether pid has exited but not been reaped; in containers
// whose init does not reap, such processes stay forever.
func isZombie(pid int) bool {
	f := procStat("/proc/" + strconv.Itoa(pid))
	return len(f) > 0 && f[0] == "Z"
}

// procStat returns the fields of procDir/stat after the command name: state,
// parent PID and so on; nil if the process is gone.
func procStat(procDir string) []string {
	b, err := os.ReadFile(procDir + "/stat")
	if err != nil {
		return nil
	}
	// The command name, in parentheses, may hold spaces and parentheses.
	i := strings.LastIndexByte(string(b), ')')
	if i < 0 {
		return nil
	}
	return strings.Fields(string(b[i+1:]))
}
