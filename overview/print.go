package overview

import (
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"
)

// Print writes o for a person: rebalance status's table, then one line
// per shard and one per worker.
func (o *Overview) Print(w io.Writer) error {
	if err := o.Report.Print(w); err != nil {
		return err
	}
	fmt.Fprintf(w, "\nshards:\n")
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "SHARD\tNODE\tSTATE\tEPOCH\tPENDING\tLAG\tDEAD LETTERS\tWORKER")
	for _, s := range o.Shards {
		pending, dead, lag := fmt.Sprint(s.Pending), fmt.Sprint(s.DeadLetters), Duration(s.Lag)
		if s.Pending < 0 {
			pending, dead, lag = "unreachable", "-", "-"
		}
		holder := s.Holder
		if holder == "" {
			holder = "-"
		}
		fmt.Fprintf(tw, "%d\t%s\t%s\t%d\t%s\t%s\t%s\t%s\n", s.Shard, s.Node, s.State, s.Epoch, pending, lag, dead, holder)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	live := 0
	for _, wk := range o.Workers {
		if wk.Live {
			live++
		}
	}
	fmt.Fprintf(w, "\nworkers: %d live", live)
	if n := len(o.Workers) - live; n > 0 {
		fmt.Fprintf(w, ", %d with a stale heartbeat", n)
	}
	fmt.Fprintln(w)
	if len(o.Workers) == 0 {
		return nil
	}
	tw = tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "WORKER\tLIVE\tHEARTBEAT\tSTARTED\tSHARDS")
	for _, wk := range o.Workers {
		fmt.Fprintf(tw, "%s\t%s\t%s ago\t%s\t%s\n", wk.ID, yesNo(wk.Live), Duration(wk.Age), wk.StartedAt.UTC().Format(time.RFC3339), intList(wk.Shards))
	}
	return tw.Flush()
}

// Duration prints seconds the way the status shows them: 0s, 850ms, 12s,
// 4m10s, 3h2m.
func Duration(secs float64) string {
	if secs < 0 {
		return "-"
	}
	d := time.Duration(secs * float64(time.Second))
	switch {
	case d == 0:
		return "0s"
	case d < time.Second:
		return d.Round(time.Millisecond).String()
	case d < time.Minute:
		return d.Round(100 * time.Millisecond).String()
	case d < time.Hour:
		return d.Round(time.Second).String()
	}
	return strings.TrimSuffix(d.Round(time.Minute).String(), "0s")
}

func yesNo(b bool) string {
	if b {
		return "yes"
	}
	return "no"
}

func intList(xs []int) string {
	if len(xs) == 0 {
		return "-"
	}
	parts := make([]string, len(xs))
	for i, x := range xs {
		parts[i] = fmt.Sprint(x)
	}
	return strings.Join(parts, ",")
}
