package main

import (
	"bytes"
	"fmt"
	"io"
	"os"
	"sync"

	"github.com/ordo-pipeline/ordo/internal/cli"
)

// maxLine bounds a line held back for its newline; a longer one is shown in
// pieces.
const maxLine = 64 << 10

// ANSI styles of the name in front of each line, on a terminal.
const (
	styleNone  = ""
	styleBold  = "\x1b[1m"
	styleDim   = "\x1b[2m"
	styleSink  = "\x1b[1;32m" // bold green: the lines the user came for
	styleReset = "\x1b[0m"
)

// minNameWidth is the width of the names column: "[rebalance]".
const minNameWidth = len("[rebalance]")

// console is where ordo-dev and its programs write: whole lines, each behind
// the name of its writer, such as "[gateway] ", so that lines of different
// programs never mix.
type console struct {
	mu     sync.Mutex
	stdout io.Writer
	stderr io.Writer
	color  bool // style the names: stdout is a terminal
	width  int  // of the widest "[name]"
}

// newConsole returns a console writing to stdout and stderr whose names line
// up for names as long as the longest of names.
func newConsole(stdout, stderr io.Writer, names ...string) *console {
	c := &console{stdout: stdout, stderr: stderr, width: minNameWidth}
	for _, n := range names {
		c.width = max(c.width, len(n)+2)
	}
	c.color = cli.IsTerminal(stdout) && os.Getenv("NO_COLOR") == "" && os.Getenv("TERM") != "dumb"
	return c
}

// writer returns a writer that shows every line written to it behind name,
// on stdout or else stderr, in style on a terminal. Close it to show a last
// line that lacks its newline.
func (c *console) writer(name string, stdout bool, style string) *lineWriter {
	prefix := fmt.Sprintf("%-*s ", c.width, "["+name+"]")
	if c.color && style != styleNone {
		prefix = style + prefix[:len(name)+2] + styleReset + prefix[len(name)+2:]
	}
	dst := c.stderr
	if stdout {
		dst = c.stdout
	}
	return &lineWriter{c: c, prefix: []byte(prefix), dst: dst}
}

// print writes s to stdout as one block, between the lines of the programs.
func (c *console) print(s string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	_, _ = io.WriteString(c.stdout, s)
}

// lineWriter shows the lines written to it behind a prefix.
type lineWriter struct {
	c      *console
	prefix []byte
	dst    io.Writer

	mu      sync.Mutex
	partial []byte // the start of a line that awaits its newline
}

// Write shows each whole line of p, keeping back a last partial line. It
// never fails: a program must not stop because ordo-dev's output is gone.
func (w *lineWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	n := len(p)
	for len(p) > 0 {
		i := bytes.IndexByte(p, '\n')
		if i < 0 {
			w.partial = append(w.partial, p...)
			if len(w.partial) >= maxLine {
				w.show(w.partial)
				w.partial = w.partial[:0]
			}
			break
		}
		if len(w.partial) > 0 {
			w.partial = append(w.partial, p[:i]...)
			w.show(w.partial)
			w.partial = w.partial[:0]
		} else {
			w.show(p[:i])
		}
		p = p[i+1:]
	}
	return n, nil
}

// Close shows a partial last line.
func (w *lineWriter) Close() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if len(w.partial) > 0 {
		w.show(w.partial)
		w.partial = nil
	}
	return nil
}

// show writes one line behind the prefix.
func (w *lineWriter) show(line []byte) {
	line = bytes.TrimSuffix(line, []byte("\r"))
	buf := make([]byte, 0, len(w.prefix)+len(line)+1)
	buf = append(append(append(buf, w.prefix...), line...), '\n')
	w.c.mu.Lock()
	defer w.c.mu.Unlock()
	_, _ = w.dst.Write(buf)
}
