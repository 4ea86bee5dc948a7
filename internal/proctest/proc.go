package proctest

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
)

// Proc is a program started by Start.
type Proc struct {
	Name string    // the name the test's log calls it by
	Cmd  *exec.Cmd // the running command
	Log  string    // path of the file its output goes to

	done   chan struct{}
	err    error       // from Wait, set before done is closed
	killed atomic.Bool // the test killed it
}

// Start starts cmd, its standard output (unless cmd.Stdout is set) and
// standard error going to a log file in a temporary folder of t. When the
// test ends the program is killed, if still running, and when the test
// failed the last tailLines lines of its log are logged.
func Start(t testing.TB, name string, cmd *exec.Cmd, tailLines int) *Proc {
	t.Helper()
	logPath := filepath.Join(t.TempDir(), name+".log")
	f, err := os.Create(logPath)
	if err != nil {
		t.Fatal(err)
	}
	if cmd.Stdout == nil {
		cmd.Stdout = f
	}
	cmd.Stderr = f
	if err := cmd.Start(); err != nil {
		f.Close()
		t.Fatal(err)
	}
	p := &Proc{Name: name, Cmd: cmd, Log: logPath, done: make(chan struct{})}
	go func() {
		p.err = cmd.Wait()
		f.Close()
		close(p.done)
	}()
	t.Cleanup(func() {
		p.Kill()
		if t.Failed() {
			t.Logf("--- end of %s's log:\n%s", name, Tail(logPath, tailLines))
		}
	})
	return p
}

// Kill kills the program, unless it has exited, and waits until it has.
func (p *Proc) Kill() {
	select {
	case <-p.done:
	default:
		p.killed.Store(true)
		_ = p.Cmd.Process.Signal(syscall.SIGKILL)
		<-p.done
	}
}

// Done is closed once the program has exited.
func (p *Proc) Done() <-chan struct{} { return p.done }

// Crashed reports whether the program exited without the test killing
// it, and how.
func (p *Proc) Crashed() (bool, error) {
	select {
	case <-p.done:
		return !p.killed.Load(), p.err
	default:
		return false, nil
	}
}

// Tail returns the last n lines of the file at path ("" when it cannot be
// read).
func Tail(path string, n int) string {
	data, _ := os.ReadFile(path)
	return LastLines(string(data), n)
}

// LastLines returns the last n lines of s.
func LastLines(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	return strings.Join(lines[max(0, len(lines)-n):], "\n")
}
