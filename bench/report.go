package main

import (
	"encoding/json"
	"fmt"
	"io"
	"math"
	"strconv"
	"strings"
	"time"
)

// Metric ids, stable for -json readers.
const (
	idCopyOne      = "copy_one_table"
	idCopy         = "copy_ceiling"
	idIngestBatch  = "ingest_batch"
	idIngestSingle = "ingest_single"
	idIngestSolo   = "ingest_single_one_client"
	idDeliver1     = "deliver_batch1"
	idDeliver100   = "deliver_batch100"
	idRiverInsert  = "river_insert"
	idRiverWork    = "river_work"
	idMoveCopy     = "move_copy"
	idSteadyBase   = "steady_without_moves"
	idSteadyMoves  = "steady_during_moves"
	idWake         = "ack_to_webhook"
	idIdle         = "idle_transactions"
	idMoveBig      = "move_big_shard"
	idMoveFixed    = "move_fixed_cost"
	idSoak         = "soak"
)

// metric is one measured throughput, with the latency of its requests
// where it has requests.
type metric struct {
	ID      string     `json:"id"`
	Name    string     `json:"name"`
	Count   int64      `json:"count"`   // events, rows, jobs or requests done
	Seconds float64    `json:"seconds"` // time they took
	Rate    float64    `json:"rate"`    // Count per second
	Unit    string     `json:"unit"`
	Latency *latencyMs `json:"latency_ms,omitempty"`
	Failed  int        `json:"failed,omitempty"` // requests not answered 200
	// CPU is the CPU of the benchmark's processes while it ran, in percent
	// of one core, by group (postgres, gateway, worker, bench).
	CPU map[string]float64 `json:"cpu_percent,omitempty"`
}

// latencyMs summarizes request latencies in milliseconds.
type latencyMs struct {
	P50 float64 `json:"p50"`
	P99 float64 `json:"p99"`
	Max float64 `json:"max"`
}

func rateMetric(id, name, unit string, count int64, elapsed time.Duration) metric {
	m := metric{ID: id, Name: name, Unit: unit, Count: count, Seconds: elapsed.Seconds()}
	if elapsed > 0 {
		m.Rate = float64(count) / elapsed.Seconds()
	}
	return m
}

// loadMetric turns a load's result into a metric of events per second.
func loadMetric(id, name, unit string, r loadResult) metric {
	m := rateMetric(id, name, unit, int64(r.events), r.elapsed)
	p50, p99, mx := r.lat.quantiles()
	m.Latency = &latencyMs{P50: ms(p50), P99: ms(p99), Max: ms(mx)}
	m.Failed = r.failed
	return m
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

// ratio compares two metrics of the run.
type ratio struct {
	ID    string  `json:"id"`
	Of    string  `json:"of"` // metric id
	To    string  `json:"to"` // metric id
	What  string  `json:"what"`
	Value float64 `json:"value"`
}

// ratioSpecs are the ratios the report computes: metric of compared
// with metric to, shown in of's row as "value× label".
var ratioSpecs = []struct {
	id, of, to, label string
	value             func(of, to metric) float64
}{
	{"copy_one_table_vs_copy", idCopyOne, idCopy, "ceiling", byRate},
	{"ingest_batch_vs_copy_one_table", idIngestBatch, idCopyOne, "COPY into one table", byRate},
	{"ingest_batch_vs_copy", idIngestBatch, idCopy, "ceiling", byRate},
	{"ingest_batch_vs_river_insert", idIngestBatch, idRiverInsert, "River insert", byRate},
	{"ingest_single_vs_copy", idIngestSingle, idCopy, "ceiling", byRate},
	{"ingest_single_vs_river_insert", idIngestSingle, idRiverInsert, "River insert", byRate},
	{"deliver_batch1_vs_river_work", idDeliver1, idRiverWork, "River work", byRate},
	{"deliver_batch100_vs_river_work", idDeliver100, idRiverWork, "River work", byRate},
	{"move_copy_vs_copy_one_table", idMoveCopy, idCopyOne, "COPY into one table", byRate},
	{"move_big_vs_copy_one_table", idMoveBig, idCopyOne, "COPY into one table", byRate},
	{"write_pause_p99", idSteadyMoves, idSteadyBase, "p99 without moves", func(of, to metric) float64 { return of.Latency.P99 / to.Latency.P99 }},
	{"write_pause_max", idSteadyMoves, idSteadyBase, "max without moves", func(of, to metric) float64 { return of.Latency.Max / to.Latency.Max }},
}

func byRate(of, to metric) float64 { return of.Rate / to.Rate }

// report is the benchmark's result.
type report struct {
	Machine machine     `json:"machine"`
	Config  reportSizes `json:"config"`
	Metrics []metric    `json:"metrics"`
	Ratios  []ratio     `json:"ratios"`
	Notes   []string    `json:"notes"`
	Seconds float64     `json:"seconds"` // of the whole run
}

type reportSizes struct {
	Quick   bool `json:"quick"`
	Events  int  `json:"events"`
	Clients int  `json:"clients"`
	Shards  int  `json:"shards"`
	Workers int  `json:"workers"`
}

func newReport(cfg config, m machine) *report {
	return &report{Machine: m, Config: reportSizes{Quick: cfg.Quick, Events: cfg.Events, Clients: cfg.Clients, Shards: cfg.Shards, Workers: deliveryWorkers}}
}

func (r *report) add(ms ...metric) { r.Metrics = append(r.Metrics, ms...) }

func (r *report) metric(id string) (metric, bool) {
	for _, m := range r.Metrics {
		if m.ID == id {
			return m, true
		}
	}
	return metric{}, false
}

// standingNotes is how many notes every report starts with.
const standingNotes = 7

// finish computes the ratios and writes the notes.
func (r *report) finish(took time.Duration) {
	r.Seconds = took.Seconds()
	for _, s := range ratioSpecs {
		of, ok1 := r.metric(s.of)
		to, ok2 := r.metric(s.to)
		if ok1 && ok2 {
			r.Ratios = append(r.Ratios, ratio{ID: s.id, Of: s.of, To: s.to, What: s.label, Value: s.value(of, to)})
		}
	}
	r.Notes = append([]string{
		fmt.Sprintf("Absolute numbers are noisy on shared machines: everything here (Postgres, gateway, workers, load and sink) shares %d CPUs with whatever else runs. Quote the ratios, which compare runs on the same machine in the same run.", r.Machine.CPUs),
		"Postgres runs with Postgres's own durability (fsync, full_page_writes and synchronous_commit on; shared_buffers 128MB, max_wal_size 2GB): every 200 waits for a WAL flush to disk.",
		fmt.Sprintf("River at its best: InsertManyFast of %d jobs per call from %d goroutines, then one client (MaxWorkers %d, FetchCooldown %s, as `river bench` runs) works them; jobs are no-ops carrying the same ~300-byte event.", riverInsertBatch, r.Config.Clients, riverMaxWorkers, riverFetchCooldown),
		"Delivery is timed from the first webhook request to empty shard tables, with the rows pending before the workers start.",
		"Move copy: rows_copied over first move planned → last move done (ordo_catalog.moves), under the steady load and with no workers running. The big shard's move and the fixed cost are timed from River's record of each move's job; the fixed cost is a job's time less its rows at the big shard's rate.",
		"ack → webhook: from the client reading its 200 to the webhook receiving the event; 0 when the webhook got it first.",
		"idle: transactions committed in the idle cluster's node databases (pg_stat_database, which backends update within 10s, so the count is good to ±10s of the window), and the CPU of its workers and of the Postgres servers.",
	}, r.Notes...)
	for _, m := range r.Metrics {
		if m.Failed > 0 {
			r.Notes = append(r.Notes, fmt.Sprintf("%s: %d requests were not answered 200.", m.Name, m.Failed))
		}
	}
}

// writeJSON prints the report as one JSON object.
func (r *report) writeJSON(w io.Writer) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(r)
}

// writeTable prints the report as one table with its notes.
func (r *report) writeTable(w io.Writer) error {
	var b strings.Builder
	fmt.Fprintf(&b, "ordo bench: %s, %d CPUs, %s, PostgreSQL %s; %d shards, %d clients, %d workers",
		r.Machine.OS, r.Machine.CPUs, r.Machine.Go, r.Machine.Postgres, r.Config.Shards, r.Config.Clients, r.Config.Workers)
	if r.Config.Quick {
		b.WriteString(", -quick")
	}
	fmt.Fprintf(&b, "; run took %s\n\n", time.Duration(r.Seconds*float64(time.Second)).Round(time.Second))

	const row = "%-46s %8s %7s %10s %-9s %8s %8s %8s  %s\n"
	fmt.Fprintf(&b, row, "measurement", "count", "seconds", "rate", "unit", "p50 ms", "p99 ms", "max ms", "ratio")
	fmt.Fprintf(&b, row, strings.Repeat("-", 46), strings.Repeat("-", 8), strings.Repeat("-", 7), strings.Repeat("-", 10), strings.Repeat("-", 9), strings.Repeat("-", 8), strings.Repeat("-", 8), strings.Repeat("-", 8), strings.Repeat("-", 5))
	for _, m := range r.Metrics {
		p50, p99, mx := "", "", ""
		if m.Latency != nil {
			p50, p99, mx = fmtMs(m.Latency.P50), fmtMs(m.Latency.P99), fmtMs(m.Latency.Max)
		}
		fmt.Fprintf(&b, row, m.Name, strconv.FormatInt(m.Count, 10), strconv.FormatFloat(m.Seconds, 'f', 2, 64),
			thousands(m.Rate), m.Unit, p50, p99, mx, r.ratioText(m.ID))
	}
	b.WriteString("\nCPU while each ran (100% is one core; bench is the load generator and the webhook sink):\n")
	for _, m := range r.Metrics {
		if len(m.CPU) > 0 {
			fmt.Fprintf(&b, "  %-46s %s\n", m.Name, cpuText(m.CPU))
		}
	}
	b.WriteString("\n")
	for _, n := range r.Notes {
		b.WriteString("* " + n + "\n")
	}
	_, err := io.WriteString(w, b.String())
	return err
}

// ratioText lists the ratios of metric id to others.
func (r *report) ratioText(id string) string {
	switch id {
	case idCopy:
		return "ceiling"
	case idRiverInsert, idRiverWork, idSteadyBase:
		return "baseline"
	case idWake:
		return "goal p50 ≤ 10 ms, p99 ≤ 50 ms"
	case idIdle:
		return "goal ≤ 100 tx/s, ≤ 5% of one core"
	case idMoveFixed:
		return "goal ≤ 100 ms"
	}
	var parts []string
	for _, rt := range r.Ratios {
		if rt.Of == id {
			parts = append(parts, fmt.Sprintf("%s× %s", fmtRatio(rt.Value), rt.What))
		}
	}
	return strings.Join(parts, ", ")
}

func fmtRatio(v float64) string {
	switch {
	case math.IsInf(v, 0) || math.IsNaN(v):
		return "n/a"
	case v >= 10:
		return strconv.FormatFloat(v, 'f', 0, 64)
	case v >= 0.1:
		return strconv.FormatFloat(v, 'f', 2, 64)
	default:
		return strconv.FormatFloat(v, 'f', 3, 64)
	}
}

func fmtMs(v float64) string {
	if v >= 100 {
		return strconv.FormatFloat(v, 'f', 0, 64)
	}
	return strconv.FormatFloat(v, 'f', 1, 64)
}

// thousands formats v rounded, with thin separators every three digits.
func thousands(v float64) string {
	s := strconv.FormatInt(int64(math.Round(v)), 10)
	var b strings.Builder
	for i, c := range s {
		if i > 0 && (len(s)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(c)
	}
	return b.String()
}
