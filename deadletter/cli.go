package deadletter

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/ordo-pipeline/ordo/internal/cli"
	"github.com/ordo-pipeline/ordo/shard"
)

// Summary is the help of `ordoctl dead-letters`.
const Summary = `ordoctl dead-letters lists, counts, replays and purges dead letters on every node.

  ordoctl dead-letters list   [filters] [--limit N] [--json]
  ordoctl dead-letters count  [filters] [--json]
  ordoctl dead-letters replay [filters] [--dry-run] [--json]
  ordoctl dead-letters purge  [filters] [--dry-run] [--yes] [--json]

list shows the newest first with their last status, response and reason; count
groups them by node, destination, reason and last status.

replay puts them back into their shard's queue: workers deliver them again with
the same messageId, in their original order per key, behind that key's pending
events, with a fresh retry budget. Each node is done in one transaction (insert
into the shard's table and delete from ordo.dead_letters together), so replay
can be interrupted and run again: nothing is lost or replayed twice.

purge deletes them, after asking (unless --yes).

Dead letters of a shard that is being moved are left alone and reported; an
unreachable node changes nothing and is reported. Either makes the exit status 1.

Examples:
  ordoctl dead-letters count
  ordoctl dead-letters list --destination hook --since 2h
  ordoctl dead-letters replay --destination hook --status 400 --dry-run
  ordoctl dead-letters purge --destination hook --until 7d --yes`

// Settings is the settings help of ordoctl's commands that need only the catalog.
const Settings = `  ORDO_CATALOG_URL  Postgres URL of the catalog database (required)
  ORDO_LOG_FORMAT   text or json (default text)
  ORDO_LOG_LEVEL    debug, info, warn or error (default info)
`

// IO is where a command reads and writes.
type IO struct {
	In          io.Reader
	Out, ErrOut io.Writer
	// Terminal says In is a terminal that can answer a question.
	Terminal bool
}

// Run runs `ordoctl dead-letters args...` with environ (the process's when
// nil). Errors wrapping cli.ErrUsage or a *cli.SettingError mean exit 2.
func Run(ctx context.Context, args []string, environ map[string]string, rw IO) error {
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
		fmt.Fprintln(rw.Out, Summary)
		if len(args) == 0 {
			return fmt.Errorf("%w: dead-letters needs a command: list, count, replay or purge", cli.ErrUsage)
		}
		return nil
	}
	cmd := args[0]
	switch cmd {
	case "list", "count", "replay", "purge":
	default:
		return fmt.Errorf("%w: unknown dead-letters command %q (want list, count, replay or purge; see --help)", cli.ErrUsage, cmd)
	}
	fs := flag.NewFlagSet("ordoctl dead-letters "+cmd, flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	values := map[string]*string{}
	for _, f := range FilterFields {
		values[f.Name] = fs.String(f.Name, "", f.Help)
	}
	asJSON := fs.Bool("json", false, "print JSON instead of a table")
	var limit *int
	var dryRun, yes *bool
	switch cmd {
	case "list":
		limit = fs.Int("limit", 100, "show at most this many, newest first (0: all)")
	case "replay":
		dryRun = fs.Bool("dry-run", false, "count what would be replayed, node by node, and change nothing")
	case "purge":
		dryRun = fs.Bool("dry-run", false, "count what would be deleted, node by node, and change nothing")
		yes = fs.Bool("yes", false, "delete without asking")
	}
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), "%s\n\nUsage of ordoctl dead-letters %s:\n", Summary, cmd)
		fs.PrintDefaults()
		fmt.Fprintf(fs.Output(), "\nSettings (environment variables):\n%s", Settings)
	}
	if err := fs.Parse(args[1:]); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			fs.SetOutput(rw.Out)
			fs.Usage()
			return nil
		}
		return fmt.Errorf("%w: %w (see ordoctl dead-letters %s --help)", cli.ErrUsage, err, cmd)
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("%w: unexpected argument %q (filters are flags, e.g. --destination hook)", cli.ErrUsage, fs.Arg(0))
	}
	if limit != nil && *limit < 0 {
		return fmt.Errorf("%w: --limit must be 0 or more, not %d", cli.ErrUsage, *limit)
	}
	raw := map[string]string{}
	for k, v := range values {
		raw[k] = *v
	}
	filter, err := ParseFilter(raw, time.Now())
	if err != nil {
		return fmt.Errorf("%w: --%w", cli.ErrUsage, err)
	}
	cfg, err := cli.ParseEnv[cli.CatalogConfig](environ)
	if err != nil {
		return err
	}
	logger := cfg.Log.Logger(rw.ErrOut, "ordoctl")
	c, err := Open(ctx, cfg.CatalogURL)
	if errors.Is(err, shard.ErrNotBootstrapped) {
		return errors.New("the catalog holds no cluster yet: nothing to do (run rebalance to bootstrap it)")
	}
	if err != nil {
		return err
	}
	switch cmd {
	case "list":
		l := c.List(ctx, filter, *limit, 0)
		if err := printListing(rw.Out, l, *limit, *asJSON); err != nil {
			return err
		}
		return l.Err()
	case "count":
		counts := c.Count(ctx, filter)
		if err := printCounts(rw.Out, counts, *asJSON); err != nil {
			return err
		}
		return counts.Err()
	case "replay":
		o := c.Replay(ctx, filter, *dryRun, logger)
		return printOutcome(rw.Out, o, *asJSON)
	default:
		return runPurge(ctx, c, filter, *dryRun, *yes, *asJSON, rw, logger)
	}
}

func runPurge(ctx context.Context, c *Cluster, f Filter, dryRun, yes, asJSON bool, rw IO, logger *slog.Logger) error {
	if dryRun || yes {
		return printOutcome(rw.Out, c.Purge(ctx, f, dryRun, logger), asJSON)
	}
	plan := c.Purge(ctx, f, true, logger)
	if plan.Done() == 0 {
		fmt.Fprintln(rw.ErrOut, "no dead letters to purge:")
		return printOutcome(rw.ErrOut, plan, false)
	}
	var parts []string
	for _, n := range plan.Nodes {
		if n.Done > 0 {
			parts = append(parts, fmt.Sprintf("%s: %d", n.Node, n.Done))
		}
	}
	what := "every dead letter"
	if !f.IsZero() {
		what = "the dead letters matching " + describe(f)
	}
	fmt.Fprintf(rw.ErrOut, "Delete %d dead letters (%s), %s? This cannot be undone. [y/N] ", plan.Done(), strings.Join(parts, ", "), what)
	answer, err := bufio.NewReader(rw.In).ReadString('\n')
	if !rw.Terminal {
		fmt.Fprintln(rw.ErrOut, strings.TrimSpace(answer))
	}
	answer = strings.ToLower(strings.TrimSpace(answer))
	if answer != "y" && answer != "yes" {
		if err != nil && !rw.Terminal {
			return errors.New("purge not confirmed (no answer on standard input): nothing deleted; pass --yes to purge without asking")
		}
		return errors.New("purge not confirmed: nothing deleted")
	}
	return printOutcome(rw.Out, c.Purge(ctx, f, false, logger), asJSON)
}

func describe(f Filter) string {
	var parts []string
	for _, field := range FilterFields {
		if v, ok := f.Values()[field.Name]; ok {
			parts = append(parts, "--"+field.Name+" "+v)
		}
	}
	return strings.Join(parts, " ")
}

func printOutcome(w io.Writer, o *Outcome, asJSON bool) error {
	if asJSON {
		if err := writeJSON(w, o); err != nil {
			return err
		}
	} else {
		o.Print(w)
	}
	return o.Err()
}

func writeJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

func printListing(w io.Writer, l *Listing, limit int, asJSON bool) error {
	if asJSON {
		return writeJSON(w, l)
	}
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "FAILED AT\tNODE\tSHARD\tDESTINATION\tKEY\tMESSAGE ID\tATTEMPTS\tSTATUS\tREASON\tRESPONSE")
	for _, x := range l.Letters {
		fmt.Fprintf(tw, "%s\t%s\t%d\t%s\t%s\t%s\t%d\t%s\t%s\t%s\n", x.FailedAt.UTC().Format(time.RFC3339), x.Node, x.Shard,
			x.Destination, clip(x.OrderingKey, 24), x.MessageID, x.Attempts, statusText(x.LastStatus), clip(x.Reason, 48), clip(x.LastResponse, 40))
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	fmt.Fprintf(w, "\n%d of %d matching dead letters", len(l.Letters), l.Total)
	if limit > 0 && int64(len(l.Letters)) < l.Total {
		fmt.Fprint(w, " (newest first; --limit 0 shows all)")
	}
	fmt.Fprintf(w, " on %d nodes\n", len(l.Nodes))
	return nil
}

func printCounts(w io.Writer, c *Counts, asJSON bool) error {
	if asJSON {
		return writeJSON(w, c)
	}
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "NODE\tDESTINATION\tSTATUS\tREASON\tCOUNT\tOLDEST\tNEWEST")
	for _, g := range c.Groups {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%d\t%s\t%s\n", g.Node, g.Destination, statusText(g.LastStatus), clip(g.Reason, 48), g.Count,
			g.Oldest.UTC().Format(time.RFC3339), g.Newest.UTC().Format(time.RFC3339))
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	var per []string
	for _, n := range c.Nodes {
		if n.Err != nil {
			per = append(per, n.Node+" unreachable")
		} else {
			per = append(per, fmt.Sprintf("%s %d", n.Node, n.Count))
		}
	}
	fmt.Fprintf(w, "\ntotal: %d dead letters (%s)\n", c.Total, strings.Join(per, ", "))
	return nil
}

func statusText(s *int) string {
	if s == nil {
		return "none"
	}
	return fmt.Sprint(*s)
}

// clip shortens s to one line of at most n runes.
func clip(s string, n int) string {
	s = strings.Join(strings.Fields(s), " ")
	r := []rune(s)
	if len(r) <= n {
		return s
	}
	return string(r[:n-1]) + "…"
}
