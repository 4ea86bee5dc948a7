package cli

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
)

// Exit prints "program: err" on stderr and exits: status 2 for a
// SettingError or a flag error, 1 otherwise, 0 for a nil err.
func Exit(program string, err error) {
	if err == nil {
		os.Exit(0)
	}
	fmt.Fprintf(os.Stderr, "%s: %v\n", program, err)
	var se *SettingError
	if errors.As(err, &se) || errors.Is(err, ErrUsage) {
		os.Exit(ExitUsage)
	}
	os.Exit(1)
}

// ParseFunc reads a program's settings from environ (the process
// environment when nil) and then from args. For -h or --help it prints the
// usage to usage and returns flag.ErrHelp.
type ParseFunc[T any] func(args []string, environ map[string]string, usage io.Writer) (T, error)

// ParseOrExit returns the settings parse reads from args and the process
// environment, printing the help on stdout. After printing the help it
// exits 0; on an error it exits as Exit does.
func ParseOrExit[T any](program string, args []string, parse ParseFunc[T]) T {
	cfg, err := parse(args, nil, os.Stdout)
	if errors.Is(err, flag.ErrHelp) {
		Exit(program, nil)
	}
	if err != nil {
		Exit(program, err)
	}
	return cfg
}

// ErrUsage marks a command-line error; Exit maps it to status 2.
var ErrUsage = errors.New("usage error")

// Flags returns a FlagSet for program whose -h/--help prints summary,
// the flags, and settings (the environment variables the program reads).
func Flags(program, summary, settings string) *flag.FlagSet {
	fs := flag.NewFlagSet(program, flag.ContinueOnError)
	fs.Usage = func() {
		w := fs.Output()
		fmt.Fprintf(w, "%s\n\nUsage:\n", summary)
		fs.PrintDefaults()
		if settings != "" {
			fmt.Fprintf(w, "\nSettings (environment variables; a flag of the same meaning overrides):\n%s", settings)
		}
	}
	return fs
}

// ParseFlags parses args with fs. It exits 0 after printing help for -h,
// and returns an error wrapping ErrUsage for bad flags.
func ParseFlags(fs *flag.FlagSet, args []string) error {
	fs.SetOutput(io.Discard)
	err := fs.Parse(args)
	fs.SetOutput(os.Stderr)
	if errors.Is(err, flag.ErrHelp) {
		fs.SetOutput(os.Stdout)
		fs.Usage()
		os.Exit(0)
	}
	if err != nil {
		return fmt.Errorf("%w: %w (see --help)", ErrUsage, err)
	}
	return nil
}

// SignalContext returns a context cancelled on SIGINT or SIGTERM. A second
// signal kills the process at once.
func SignalContext() (context.Context, context.CancelFunc) {
	ctx, cancel := context.WithCancel(context.Background())
	ch := make(chan os.Signal, 2)
	signal.Notify(ch, os.Interrupt, syscall.SIGTERM)
	go func() {
		<-ch
		cancel()
		<-ch
		os.Exit(130)
	}()
	return ctx, cancel
}
