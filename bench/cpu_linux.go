package main

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// clockTick is the unit of utime and stime in /proc/<pid>/stat
// (sysconf(_SC_CLK_TCK), 100 on every Linux this runs on).
const clockTick = 10 * time.Millisecond

// procStat is what cpuTimes reads of one process.
type procStat struct {
	comm   string
	ppid   int
	own    time.Duration // utime + stime
	reaped time.Duration // cutime + cstime: its children that exited
}

// cpuTimes returns the CPU time used so far by the processes this
// benchmark started, by group: "postgres" (the servers, with their exited
// backends, which the postmasters reaped), "gateway", "worker" and
// "rebalance", and "bench" (this process: load generator and sink).
// Other processes on the machine are left out.
func cpuTimes() map[string]time.Duration {
	procs := map[int]procStat{}
	paths, _ := filepath.Glob("/proc/[0-9]*/stat")
	for _, p := range paths {
		if ps, ok := readStat(p); ok {
			pid, _ := strconv.Atoi(filepath.Base(filepath.Dir(p)))
			procs[pid] = ps
		}
	}
	self := os.Getpid()
	mine := func(pid int) bool {
		for range 64 {
			if pid == self {
				return true
			}
			ps, ok := procs[pid]
			if !ok || pid <= 1 {
				return false
			}
			pid = ps.ppid
		}
		return false
	}
	out := map[string]time.Duration{}
	for pid, ps := range procs {
		switch {
		case pid == self:
			// Its reaped children are programs that exited: not bench.
			out["bench"] += ps.own
		case !mine(pid):
		case ps.comm == "postgres":
			out["postgres"] += ps.own + ps.reaped
		case ps.comm == "gateway" || ps.comm == "worker" || ps.comm == "rebalance":
			out[ps.comm] += ps.own + ps.reaped
		}
	}
	return out
}

// readStat parses /proc/<pid>/stat.
func readStat(path string) (procStat, bool) {
	data, err := os.ReadFile(path)
	if err != nil {
		return procStat{}, false
	}
	s := string(data)
	open, end := strings.IndexByte(s, '('), strings.LastIndexByte(s, ')')
	if open < 0 || end < open {
		return procStat{}, false
	}
	// After "(comm)": state ppid ... utime stime cutime cstime, which are
	// fields 4, 14-17 of the whole line.
	f := strings.Fields(s[end+1:])
	if len(f) < 15 {
		return procStat{}, false
	}
	n := func(i int) int64 { v, _ := strconv.ParseInt(f[i], 10, 64); return v }
	return procStat{
		comm:   s[open+1 : end],
		ppid:   int(n(1)),
		own:    time.Duration(n(11)+n(12)) * clockTick,
		reaped: time.Duration(n(13)+n(14)) * clockTick,
	}, true
}
