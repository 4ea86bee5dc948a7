package main

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"time"
)

// waitDelay bounds how long a program's output is read after it exited.
const waitDelay = 2 * time.Second

// program is one running ordo program started by ordo-dev.
type program struct {
	name string
	cmd  *exec.Cmd
	done chan struct{} // closed once the program has exited
	err  error         // how it exited (nil for status 0); set before done is closed
}

// startProgram starts the executable path as name with env. Its
// output goes to con behind name: standard output to stdout in style,
// standard error to stderr. Once it exits, it is sent on exits unless that
// is nil or full.
func startProgram(con *console, name, style, path string, env []string, exits chan<- *program) (*program, error) {
	stdout := con.writer(name, true, style)
	stderr := con.writer(name, false, style)
	cmd := exec.Command(path)
	cmd.Env = env
	cmd.Stdout = stdout
	cmd.Stderr = stderr
	cmd.SysProcAttr = procAttr()
	cmd.WaitDelay = waitDelay
	if err := startProcess(cmd); err != nil {
		return nil, fmt.Errorf("starting %s: %w", name, err)
	}
	p := &program{name: name, cmd: cmd, done: make(chan struct{})}
	go func() {
		p.err = cmd.Wait()
		stdout.Close()
		stderr.Close()
		close(p.done)
		if exits != nil {
			select {
			case exits <- p:
			default:
			}
		}
	}()
	return p, nil
}

// exited reports whether the program has exited.
func (p *program) exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// signal sends sig to the program's process group.
func (p *program) signal(sig syscall.Signal) {
	if !p.exited() {
		_ = syscall.Kill(-p.cmd.Process.Pid, sig)
	}
}

// stop sends SIGTERM and waits for the program to exit; after timeout, or
// once force is closed, it sends SIGKILL. It reports whether the program had
// to be killed.
func (p *program) stop(timeout time.Duration, force <-chan struct{}) (killed bool) {
	if p.exited() {
		return false
	}
	p.signal(syscall.SIGTERM)
	t := time.NewTimer(timeout)
	defer t.Stop()
	select {
	case <-p.done:
		return false
	case <-t.C:
	case <-force:
	}
	p.signal(syscall.SIGKILL)
	<-p.done
	return true
}

// exitStatus describes how a program exited: "exit status 1", "signal:
// killed", or "exit status 0".
func (p *program) exitStatus() string {
	if p.err == nil {
		return "exit status 0"
	}
	return p.err.Error()
}

// findProgram returns the path of the ordo program name: the executable next
// to ordo-dev's own (make build puts them all in ./bin), else name on PATH.
func findProgram(name string) (string, error) {
	self, err := os.Executable()
	if err == nil {
		path := filepath.Join(filepath.Dir(self), name)
		if fi, err := os.Stat(path); err == nil && fi.Mode().IsRegular() && fi.Mode()&0o111 != 0 {
			return path, nil
		}
	}
	path, err := exec.LookPath(name)
	if err != nil {
		return "", fmt.Errorf("%s is neither next to ordo-dev (%s) nor on PATH: run make build, or go build -o DIR/ ./cmd/... and run DIR/ordo-dev", name, self)
	}
	return path, nil
}
