// Command sink is the ordo demo sink: a webhook endpoint that prints every event it receives.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"time"

	"github.com/ordo-pipeline/ordo/internal/cli"
)

func main() {
	cfg, err := parseConfig(os.Args[1:], nil, os.Stdout)
	if errors.Is(err, flag.ErrHelp) {
		os.Exit(0)
	}
	if err != nil {
		cli.Exit("sink", err)
	}
	logger := cfg.Log.Logger(os.Stderr, "sink")
	ctx, cancel := cli.SignalContext()
	defer cancel()
	cli.Exit("sink", run(ctx, cfg, os.Stdout, logger))
}

// shutdownTimeout bounds how long run waits for requests in flight once ctx is done.
const shutdownTimeout = 5 * time.Second

// run serves the sink on cfg.Addr, printing events to out, until ctx is done.
func run(ctx context.Context, cfg config, out io.Writer, logger *slog.Logger) error {
	ln, err := net.Listen("tcp", cfg.Addr)
	if err != nil {
		return err
	}
	srv := &http.Server{
		Handler:           NewSink(out, cfg.Verbose, logger).Handler(),
		ReadHeaderTimeout: 10 * time.Second,
	}
	logger.Info("sink listening", "addr", ln.Addr().String(), "verbose", cfg.Verbose)

	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}

	shutdownCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), shutdownTimeout)
	defer cancel()
	if err := srv.Shutdown(shutdownCtx); err != nil {
		return fmt.Errorf("error shutting down: %w", err)
	}
	logger.Info("sink stopped")
	return nil
}
