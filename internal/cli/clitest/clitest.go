// Package clitest holds test helpers for programs built on package cli:
// checks of their settings' errors and help, and a buffer for what they
// write.
package clitest

import (
	"bytes"
	"errors"
	"flag"
	"fmt"
	"io"
	"strings"
	"sync"
	"testing"

	"github.com/ordo-pipeline/ordo/internal/cli"
)

// CheckUsageError fails t unless err is what a program exits 2 for (a
// cli.SettingError or cli.ErrUsage), on one line, naming want.
func CheckUsageError(t testing.TB, what string, err error, want string) {
	t.Helper()
	var se *cli.SettingError
	if !errors.As(err, &se) && !errors.Is(err, cli.ErrUsage) {
		t.Errorf("%s: error = %v, want a SettingError or ErrUsage (exit status 2)", what, err)
	}
	if err == nil || !strings.Contains(err.Error(), want) {
		t.Errorf("%s: error = %v, want one naming %s", what, err, want)
	}
	if err != nil && strings.Contains(err.Error(), "\n") {
		t.Errorf("%s: error = %q, want one line", what, err)
	}
}

// Parse returns what parse reads from args and environ, failing t when it
// returns an error.
func Parse[T any](t testing.TB, parse cli.ParseFunc[T], args []string, environ map[string]string) T {
	t.Helper()
	cfg, err := parse(args, environ, io.Discard)
	if err != nil {
		t.Fatalf("parseConfig(%q, %v): %v", args, environ, err)
	}
	return cfg
}

// UsageCase is settings a program must refuse: its command line, its
// environment (nil: an empty one, never the process's), and what the
// error must name.
type UsageCase struct {
	Args    []string
	Environ map[string]string
	Want    string
}

// CheckUsageErrors checks with CheckUsageError that parse refuses each of
// cases.
func CheckUsageErrors[T any](t testing.TB, parse cli.ParseFunc[T], cases []UsageCase) {
	t.Helper()
	for _, c := range cases {
		if c.Environ == nil {
			c.Environ = map[string]string{}
		}
		_, err := parse(c.Args, c.Environ, io.Discard)
		CheckUsageError(t, fmt.Sprintf("parseConfig(%q, %v)", c.Args, c.Environ), err, c.Want)
	}
}

// CheckHelp fails t unless parse, given args (such as --help) and
// environ, returns flag.ErrHelp after printing a usage that holds each of
// wants.
func CheckHelp[T any](t testing.TB, parse cli.ParseFunc[T], args []string, environ map[string]string, wants ...string) {
	t.Helper()
	var usage bytes.Buffer
	_, err := parse(args, environ, &usage)
	if !errors.Is(err, flag.ErrHelp) {
		t.Errorf("parseConfig(%q) with %v: error = %v, want flag.ErrHelp", args, environ, err)
		return
	}
	for _, want := range wants {
		if !strings.Contains(usage.String(), want) {
			t.Errorf("%s output lacks %q:\n%s", strings.Join(args, " "), want, usage.String())
		}
	}
}

// Buffer is a bytes.Buffer safe for concurrent use, for what a program
// writes (its output, its logs) while a test reads it.
type Buffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *Buffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

// String returns what was written so far.
func (b *Buffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}
