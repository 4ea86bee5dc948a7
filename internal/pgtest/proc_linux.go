package pgtest

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"

	"golang.org/x/sys/unix"
)

// serverProcAttr runs postgres in its own process group, as cred, and asks
// the kernel to kill it when the thread that started it dies: see
// startProcess.
func serverProcAttr(cred *syscall.Credential) *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Credential: cred, Setpgid: true, Pdeathsig: syscall.SIGKILL}
}

// spawners are goroutines locked to OS threads that never exit, one per
// network namespace ("" for the process's own). Pdeathsig fires when the
// thread that forked the child exits, not the process, so servers are
// started from these threads: they then die with the process (a killed
// test binary leaves no server behind) and not before. A child starts in
// its forking thread's network namespace; the thread of a namespace joins
// it once, for good.
var spawners = struct {
	sync.Mutex
	byNS map[string]chan<- spawnRequest
}{byNS: map[string]chan<- spawnRequest{}}

func spawner(netns string) (chan<- spawnRequest, error) {
	spawners.Lock()
	defer spawners.Unlock()
	if ch, ok := spawners.byNS[netns]; ok {
		return ch, nil
	}
	requests := make(chan spawnRequest)
	joined := make(chan error, 1)
	go func() {
		runtime.LockOSThread() // never unlocked: the thread lives as long as the process
		if netns != "" {
			if err := joinNetNS(netns); err != nil {
				joined <- err
				return // the goroutine ends locked: its thread is discarded
			}
		}
		joined <- nil
		for req := range requests {
			req.done <- req.cmd.Start()
		}
	}()
	if err := <-joined; err != nil {
		return nil, err
	}
	spawners.byNS[netns] = requests
	return requests, nil
}

// joinNetNS moves the calling thread into the named network namespace.
func joinNetNS(name string) error {
	f, err := os.Open(filepath.Join("/run/netns", name))
	if err != nil {
		return fmt.Errorf("network namespace %s: %w", name, err)
	}
	defer f.Close()
	if err := unix.Setns(int(f.Fd()), unix.CLONE_NEWNET); err != nil {
		return fmt.Errorf("joining network namespace %s: %w", name, err)
	}
	return nil
}

type spawnRequest struct {
	cmd  *exec.Cmd
	done chan error
}

func startProcess(cmd *exec.Cmd, netns string) error {
	ch, err := spawner(netns)
	if err != nil {
		return err
	}
	done := make(chan error, 1)
	ch <- spawnRequest{cmd: cmd, done: done}
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
