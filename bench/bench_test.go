package main

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"math"
	"strings"
	"testing"
	"time"
)

// TestQuick runs the whole benchmark in -quick mode, as CI does, and
// checks that every measurement and ratio came out positive.
func TestQuick(t *testing.T) {
	t.Parallel()
	cfg, err := parseFlags([]string{"-quick"}, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Minute)
	defer cancel()
	began := time.Now()
	rep, err := run(ctx, cfg, testWriter{t})
	if err != nil {
		t.Fatalf("run: %v", err)
	}
	t.Logf("quick run took %s", time.Since(began).Round(time.Millisecond))

	want := []string{idCopy, idCopyOne, idRiverInsert, idRiverWork, idIngestBatch, idIngestSingle, idIngestSolo, idDeliver1, idDeliver100,
		idWake, idSoak, idMoveCopy, idSteadyBase, idSteadyMoves, idMoveBig, idMoveFixed, idIdle}
	for _, id := range want {
		m, ok := rep.metric(id)
		if !ok {
			t.Errorf("metric %s missing", id)
			continue
		}
		switch {
		case id == idIdle:
			// An idle cluster may well commit nothing in the quick run's
			// window: its shards poll once a minute.
			if m.Count < 0 || m.Seconds <= 0 || m.Rate < 0 || m.CPU == nil {
				t.Errorf("%s: count %d, seconds %g, rate %g, cpu %v; want a measured window", id, m.Count, m.Seconds, m.Rate, m.CPU)
			}
		case m.Count <= 0 || m.Seconds <= 0 || m.Rate <= 0 || math.IsInf(m.Rate, 0):
			t.Errorf("%s: count %d, seconds %g, rate %g; want all positive", id, m.Count, m.Seconds, m.Rate)
		}
		if m.Failed > 0 {
			t.Errorf("%s: %d requests not answered 200", id, m.Failed)
		}
	}
	for _, id := range []string{idIngestBatch, idIngestSingle, idIngestSolo, idSteadyBase, idSteadyMoves, idWake} {
		m, _ := rep.metric(id)
		// A webhook may receive an event before the bench has read its
		// 200 (the worker woke on the commit, the answer was still on its
		// way): ack → webhook is then 0, and its median may be.
		l := m.Latency
		if l == nil {
			t.Errorf("%s: no latency", id)
			continue
		}
		low := l.P50 <= 0
		if id == idWake {
			low = l.P50 < 0
		}
		if low || l.P99 < l.P50 || l.Max < l.P99 {
			t.Errorf("%s: latency %+v, want 0 < p50 <= p99 <= max (0 <= p50 for %s)", id, l, idWake)
		}
	}
	if len(rep.Ratios) != len(ratioSpecs) {
		t.Errorf("%d ratios, want %d", len(rep.Ratios), len(ratioSpecs))
	}
	for _, r := range rep.Ratios {
		if r.Value <= 0 || math.IsInf(r.Value, 0) || math.IsNaN(r.Value) {
			t.Errorf("ratio %s = %g, want positive", r.ID, r.Value)
		}
	}
	// The standing notes and the soak's table sizes; any other note says
	// something went wrong.
	if len(rep.Notes) != standingNotes+1 {
		t.Errorf("notes:\n%s\nwant only the %d standing notes and the soak's sizes", strings.Join(rep.Notes, "\n"), standingNotes)
	}
	for _, id := range []string{idIngestBatch, idIngestSingle, idDeliver1, idDeliver100} {
		if m, _ := rep.metric(id); len(m.CPU) == 0 {
			t.Errorf("%s: no CPU figures", id)
		}
	}

	var table bytes.Buffer
	if err := rep.writeTable(&table); err != nil {
		t.Fatal(err)
	}
	t.Logf("\n%s", table.String())
	for _, m := range rep.Metrics {
		if !strings.Contains(table.String(), m.Name) {
			t.Errorf("table does not show %q", m.Name)
		}
	}
	if !strings.Contains(table.String(), "noisy") {
		t.Error("table does not warn that absolute numbers are noisy")
	}

	var out bytes.Buffer
	if err := rep.writeJSON(&out); err != nil {
		t.Fatal(err)
	}
	var back report
	if err := json.Unmarshal(out.Bytes(), &back); err != nil {
		t.Fatalf("decoding -json output: %v", err)
	}
	if len(back.Metrics) != len(rep.Metrics) || len(back.Ratios) != len(rep.Ratios) {
		t.Errorf("-json output has %d metrics and %d ratios, want %d and %d", len(back.Metrics), len(back.Ratios), len(rep.Metrics), len(rep.Ratios))
	}
}

func TestParseFlags(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		args    []string
		events  int
		wantErr string
	}{
		{nil, 100_000, ""},
		{[]string{"-quick"}, 3000, ""},
		{[]string{"-quick", "-events", "5000", "-clients", "4", "-json"}, 5000, ""},
		{[]string{"-events", "10"}, 0, "-events 10"},
		{[]string{"-clients", "0"}, 0, "-clients 0"},
		{[]string{"-shards", "2"}, 0, "-shards 2"},
		{[]string{"extra"}, 0, `"extra"`},
	} {
		cfg, err := parseFlags(tc.args, io.Discard)
		switch {
		case tc.wantErr != "":
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Errorf("parseFlags(%q) error = %v, want one naming %s", tc.args, err, tc.wantErr)
			}
		case err != nil:
			t.Errorf("parseFlags(%q) error = %v", tc.args, err)
		case cfg.Events != tc.events:
			t.Errorf("parseFlags(%q).Events = %d, want %d", tc.args, cfg.Events, tc.events)
		}
	}
}

// testWriter sends progress lines to the test log.
type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}
