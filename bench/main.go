// Command bench measures ordo end to end on throwaway Postgres clusters and
// prints one table: raw COPY as the ceiling, ingest through the gateway,
// delivery by workers, River on the same Postgres, and shard moves.
//
//	go run ./bench [-quick] [-events N] [-clients N] [-shards N] [-json]
//
// It starts three local Postgres servers (see internal/pgtest), builds
// ./cmd/... into a temporary folder and runs the real gateway, worker and
// rebalance programs as processes against a webhook sink served by this
// process. Absolute numbers from a shared machine are noisy: compare the
// ratios, which come from one run on one machine.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"slices"
	"strings"
	"syscall"
	"time"
)

func main() {
	cfg, err := parseFlags(os.Args[1:], os.Stderr)
	if errors.Is(err, flag.ErrHelp) {
		os.Exit(0)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(2)
	}
	ctx, cancel := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer cancel()
	// A report comes back with an error when only the shutdown failed: it
	// is printed, and the error too.
	rep, err := run(ctx, cfg, os.Stderr)
	if rep != nil {
		var werr error
		if cfg.JSON {
			werr = rep.writeJSON(os.Stdout)
		} else {
			werr = rep.writeTable(os.Stdout)
		}
		err = errors.Join(err, werr)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(1)
	}
}

// config is the command line.
type config struct {
	// Quick picks small sizes so that the whole run takes well under a
	// minute; CI uses it to keep the benchmark from rotting.
	Quick bool
	// Events is the size of the main runs (batch ingest, COPY, River,
	// batched delivery); the other sizes derive from it. Defaults to
	// 100000, or 3000 with Quick.
	Events int
	// Clients is how many HTTP clients send /v1/batch requests at once,
	// and how many goroutines insert River jobs. The flag defaults to 16.
	Clients int
	// SingleClients is how many HTTP clients send /v1/track requests at
	// once. The flag defaults to 64.
	SingleClients int
	// Shards is the cluster's number of virtual shards. The flag defaults
	// to 32.
	Shards int
	// JSON prints machine-readable output instead of the table.
	JSON bool
	// Only lists the sections to run (see sections); empty runs all.
	Only []string
}

// sections are the parts of a run, in order, for -only.
var sections = []string{"copy", "river", "ingest", "deliver", "wake", "soak", "moves", "idle"}

// runs reports whether the run includes section.
func (c config) runs(section string) bool {
	return len(c.Only) == 0 || slices.Contains(c.Only, section)
}

func parseFlags(args []string, out io.Writer) (config, error) {
	var c config
	fs := flag.NewFlagSet("bench", flag.ContinueOnError)
	fs.SetOutput(out)
	fs.BoolVar(&c.Quick, "quick", false, "small sizes: the whole run takes well under a minute")
	fs.IntVar(&c.Events, "events", 0, "events of the main runs; other sizes derive from it (default 100000, 3000 with -quick)")
	fs.IntVar(&c.Clients, "clients", 16, "concurrent /v1/batch clients and River inserters")
	fs.IntVar(&c.SingleClients, "single-clients", 64, "concurrent /v1/track clients")
	fs.IntVar(&c.Shards, "shards", 32, "virtual shards of the cluster")
	fs.BoolVar(&c.JSON, "json", false, "print JSON instead of the table")
	only := fs.String("only", "", "comma-separated sections to run, of "+strings.Join(sections, ", ")+" (default all)")
	if err := fs.Parse(args); err != nil {
		return c, err
	}
	if fs.NArg() > 0 {
		return c, fmt.Errorf("unexpected argument %q", fs.Arg(0))
	}
	if *only != "" {
		for _, sec := range strings.Split(*only, ",") {
			if !slices.Contains(sections, sec) {
				return c, fmt.Errorf("-only: unknown section %q: use %s", sec, strings.Join(sections, ", "))
			}
			c.Only = append(c.Only, sec)
		}
	}
	c = c.withDefaults()
	return c, c.validate()
}

func (c config) withDefaults() config {
	if c.Events == 0 {
		c.Events = 100_000
		if c.Quick {
			c.Events = 3000
		}
	}
	return c
}

func (c config) validate() error {
	switch {
	case c.Events < 500:
		return fmt.Errorf("-events %d cannot be less than 500", c.Events)
	case c.Clients < 1:
		return fmt.Errorf("-clients %d cannot be less than 1", c.Clients)
	case c.SingleClients < 1:
		return fmt.Errorf("-single-clients %d cannot be less than 1", c.SingleClients)
	case c.Shards < 3:
		return fmt.Errorf("-shards %d cannot be less than 3: the move needs a shard for the third node", c.Shards)
	}
	return nil
}

// sizes are the amounts of work of each measurement.
type sizes struct {
	copyRows      int           // rows of the raw COPY
	batchEvents   int           // events ingested in /v1/batch requests
	batchSize     int           // events per /v1/batch request
	singleEvents  int           // events ingested in /v1/track requests
	soloEvents    int           // /v1/track requests sent one at a time
	riverJobs     int           // jobs River inserts and works
	deliverSingle int           // events delivered with maxBatchSize 1
	movePreload   int           // events pending while shards move
	keys          int           // distinct ordering keys (userIds)
	steadyRate    int           // requests per second of the steady load
	steadyFor     time.Duration // how long the steady load runs without moves
	wakeEvents    int           // events of the ack-to-webhook measurement
	bigShard      int           // rows of the shard whose move is timed
	soakEvents    int           // events written while delivered
	idleShards    int           // shards of the idle cluster
	idleFor       time.Duration // how long the idle cluster is measured
	idleSettle    time.Duration // how long it settles first
	soakAfter     time.Duration // how long after the soak its tables are sized again
}

func (c config) sizes() sizes {
	s := sizes{
		copyRows:      c.Events,
		batchEvents:   c.Events,
		batchSize:     100,
		singleEvents:  c.Events / 2,
		soloEvents:    min(2000, c.Events/10),
		riverJobs:     c.Events,
		deliverSingle: c.Events / 5,
		movePreload:   2 * c.Events,
		keys:          10_000,
		steadyRate:    200,
		steadyFor:     5 * time.Second,
		wakeEvents:    200,
		bigShard:      300_000,
		soakEvents:    3 * c.Events,
		idleShards:    1024,
		idleFor:       time.Minute,
		idleSettle:    idleSettle,
		soakAfter:     30 * time.Second,
	}
	if c.Quick {
		s.steadyRate = 100
		s.steadyFor = 2 * time.Second
		s.wakeEvents = 20
		s.bigShard = 5000
		s.soakEvents = c.Events
		s.idleShards = 64
		s.idleFor = 2 * time.Second
		s.idleSettle = 2 * time.Second
		s.soakAfter = 2 * time.Second
	}
	return s
}

// run starts the stack, takes every measurement and returns the report.
// Progress lines go to progress. ctx bounds the whole run.
func run(ctx context.Context, cfg config, progress io.Writer) (rep *report, err error) {
	sz := cfg.sizes()
	logf := func(format string, args ...any) { fmt.Fprintf(progress, "bench: "+format+"\n", args...) }
	began := time.Now()

	st, err := startStack(ctx, cfg.Shards, logf)
	if err != nil {
		return nil, err
	}
	defer func() {
		if cerr := st.close(); err == nil && cerr != nil {
			err = cerr
		}
	}()
	rep = newReport(cfg, st.machine)
	gen := newEvents(sz.keys)

	if cfg.runs("copy") {
		logf("raw COPY of %d rows into one shard table, then into one table per node", sz.copyRows)
		one, both, err := measureCopy(ctx, st, gen, sz.copyRows)
		if err != nil {
			return nil, fmt.Errorf("raw copy: %w", err)
		}
		rep.add(both, one)
	}

	if cfg.runs("river") {
		logf("River: InsertManyFast and work %d no-op jobs", sz.riverJobs)
		ins, work, err := measureRiver(ctx, st.catalogURL, gen, sz.riverJobs, cfg.Clients)
		if err != nil {
			return nil, fmt.Errorf("river: %w", err)
		}
		rep.add(ins, work)
	}

	if err := st.startGateway(ctx); err != nil {
		return nil, err
	}
	if cfg.runs("ingest") {
		logf("ingest: %d events in /v1/batch requests of %d from %d clients, %d in /v1/track requests from %d, %d from one", sz.batchEvents, sz.batchSize, cfg.Clients, sz.singleEvents, cfg.SingleClients, sz.soloEvents)
		ingest, err := measureIngest(ctx, st, gen, sz, cfg.Clients, cfg.SingleClients)
		rep.add(ingest...)
		if err != nil {
			return nil, fmt.Errorf("ingest: %w", err)
		}
	}

	if cfg.runs("deliver") {
		logf("delivery, maxBatchSize 100: the ingested events, 2 workers")
		if !cfg.runs("ingest") {
			if err := preload(ctx, st, gen, sz.batchEvents, sz.batchSize, cfg.Clients); err != nil {
				return nil, fmt.Errorf("delivery with maxBatchSize 100: %w", err)
			}
		}
		d100, err := measureDelivery(ctx, st, 100)
		if err != nil {
			return nil, fmt.Errorf("delivery with maxBatchSize 100: %w", err)
		}
		logf("delivery, maxBatchSize 1: %d events, 2 workers", sz.deliverSingle)
		if err := preload(ctx, st, gen, sz.deliverSingle, sz.batchSize, cfg.Clients); err != nil {
			return nil, fmt.Errorf("delivery with maxBatchSize 1: %w", err)
		}
		d1, err := measureDelivery(ctx, st, 1)
		if err != nil {
			return nil, fmt.Errorf("delivery with maxBatchSize 1: %w", err)
		}
		rep.add(d1, d100)
	}

	if cfg.runs("wake") {
		logf("ack → webhook: %d single events at %d/s, 2 workers", sz.wakeEvents, wakeRate)
		m, err := measureWake(ctx, st, gen, sz.wakeEvents)
		if err != nil {
			return nil, fmt.Errorf("ack → webhook: %w", err)
		}
		rep.add(m)
	}

	if cfg.runs("soak") {
		logf("soak: %d events written through the gateway while 2 workers deliver them", sz.soakEvents)
		m, sizes, err := measureSoak(ctx, st, gen, sz, cfg.Clients)
		if err != nil {
			return nil, fmt.Errorf("soak: %w", err)
		}
		rep.add(m)
		rep.Notes = append(rep.Notes, sizes)
	}

	if cfg.runs("moves") {
		logf("moves: %d pending events, a third node, steady load of %d single-event requests/s", sz.movePreload, sz.steadyRate)
		moved, without, during, err := measureMoves(ctx, st, gen, sz, cfg.Clients, rep)
		if err != nil {
			return nil, fmt.Errorf("moves: %w", err)
		}
		rep.add(moved, without, during)
		logf("moves: %d rows in one shard of node3, then node3 drained", sz.bigShard)
		big, fixed, err := measureBigMove(ctx, st, gen, sz.bigShard)
		if err != nil {
			return nil, fmt.Errorf("moves: %w", err)
		}
		rep.add(big, fixed)
	}

	if cfg.runs("idle") {
		logf("idle: %d shards, 2 workers, no traffic, measured for %s", sz.idleShards, sz.idleFor)
		m, err := measureIdle(ctx, st, sz.idleShards, sz.idleFor, sz.idleSettle)
		if err != nil {
			return nil, fmt.Errorf("idle: %w", err)
		}
		rep.add(m)
	}

	rep.finish(time.Since(began))
	logf("done in %s", time.Since(began).Round(time.Second))
	return rep, nil
}
