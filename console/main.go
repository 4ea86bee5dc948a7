package console

import (
	"context"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"time"

	"github.com/ordo-pipeline/ordo/internal/cli"
)

// Summary is the help of `ordoctl console`.
const Summary = `ordoctl console serves ordo's web console on ORDO_CONSOLE_ADDR.

The page shows the nodes with their shards, pending events, lag and dead letters,
moves in progress, workers and the shards they hold, and the dead letters, with
filters, and replay and purge behind a confirmation. It refreshes by itself.

It asks for ORDO_CONSOLE_TOKEN once per browser tab; open
http://ADDR/#token=TOKEN to skip the question. Serve it on an admin network only:
it can replay and purge. GET /health and /metrics need no token.

  ordoctl console [--addr ADDR]`

// Run runs `ordoctl console args...` with environ (the process's when
// nil) until ctx ends.
func Run(ctx context.Context, args []string, environ map[string]string, out, errOut io.Writer) error {
	cfg, err := cli.ParseEnv[Config](environ)
	fs := flag.NewFlagSet("ordoctl console", flag.ContinueOnError)
	addr := fs.String("addr", "", "listen `address`, overriding ORDO_CONSOLE_ADDR")
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), "%s\n\nFlags:\n", Summary)
		fs.PrintDefaults()
		fmt.Fprintf(fs.Output(), "\nSettings (environment variables; a flag of the same meaning overrides):\n%s", Settings)
	}
	if help, perr := cli.ParseCommand(fs, args, out); help || perr != nil {
		return perr
	}
	if err != nil {
		return err
	}
	if *addr != "" {
		cfg.Addr = *addr
	}
	logger := cfg.Log.Logger(errOut, "ordoctl-console")
	ln, err := net.Listen("tcp", cfg.Addr)
	if err != nil {
		return fmt.Errorf("ORDO_CONSOLE_ADDR: cannot listen: %w", err)
	}
	srv := &http.Server{
		Handler:           NewServer(cfg.CatalogURL, cfg.Token, logger),
		ReadHeaderTimeout: 10 * time.Second,
	}
	logger.Info("console listening", "addr", ln.Addr().String(), "url", "http://"+ln.Addr().String()+"/")
	if err := cli.Serve(ctx, srv, ln, 5*time.Second); err != nil {
		return err
	}
	logger.Info("console stopped")
	return nil
}
