// Command sink is the ordo demo sink: a webhook endpoint that prints every event it receives.
package main

import (
	"context"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"time"

	"github.com/ordo-pipeline/ordo/internal/cli"
)

func main() {
	cfg := cli.ParseOrExit("sink", os.Args[1:], parseConfig)
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

	if err := cli.Serve(ctx, srv, ln, shutdownTimeout); err != nil {
		return err
	}
	logger.Info("sink stopped")
	return nil
}
