package main

import (
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"
)

// cpuWindow measures the CPU the benchmark's processes use between its
// start and done.
type cpuWindow struct {
	began time.Time
	at    map[string]time.Duration
}

func startCPU() cpuWindow { return cpuWindow{began: time.Now(), at: cpuTimes()} }

// done returns each group's CPU since the start, in percent of one core
// (200 is two cores busy), or nil where CPU times cannot be read.
func (w cpuWindow) done() map[string]float64 {
	now := cpuTimes()
	elapsed := time.Since(w.began)
	if now == nil || elapsed <= 0 {
		return nil
	}
	out := map[string]float64{}
	for g, t := range now {
		if d := t - w.at[g]; d > 0 {
			out[g] = 100 * d.Seconds() / elapsed.Seconds()
		}
	}
	return out
}

// cpuText formats a CPU breakdown: "postgres 95%, gateway 60%, ...",
// largest first.
func cpuText(cpu map[string]float64) string {
	groups := slices.Collect(maps.Keys(cpu))
	slices.SortFunc(groups, func(a, b string) int {
		if cpu[a] != cpu[b] {
			if cpu[a] > cpu[b] {
				return -1
			}
			return 1
		}
		return strings.Compare(a, b)
	})
	parts := make([]string, 0, len(groups))
	total := 0.0
	for _, g := range groups {
		parts = append(parts, fmt.Sprintf("%s %.0f%%", g, cpu[g]))
		total += cpu[g]
	}
	return fmt.Sprintf("%.0f%% of one core: %s", total, strings.Join(parts, ", "))
}
