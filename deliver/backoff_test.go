package deliver

import (
	"testing"
	"time"
)

func TestBackoffGrowsAndCaps(t *testing.T) {
	t.Parallel()
	const (
		initial = time.Second
		maxWait = 5 * time.Minute
	)
	// Without jitter the waits are 1s, 2s, 4s, … 256s, then 300s forever.
	for attempt := 1; attempt <= 40; attempt++ {
		base := maxWait
		if attempt <= 9 {
			base = initial << (attempt - 1)
		}
		lo := max(time.Duration(float64(base)*0.9), initial)
		hi := min(time.Duration(float64(base)*1.1), maxWait)
		for range 50 {
			got := Backoff(initial, maxWait, attempt)
			if got < lo || got > hi {
				t.Fatalf("Backoff(1s, 5m, %d) = %s, want within [%s, %s]", attempt, got, lo, hi)
			}
		}
	}
}

func TestBackoffJitters(t *testing.T) {
	t.Parallel()
	seen := make(map[time.Duration]bool)
	for range 100 {
		seen[Backoff(time.Second, time.Hour, 5)] = true
	}
	if len(seen) < 10 {
		t.Errorf("100 calls of Backoff(1s, 1h, 5) gave %d distinct waits, want jitter", len(seen))
	}
}

func TestBackoffEdges(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name             string
		initial, maxWait time.Duration
		attempt          int
		lo, hi           time.Duration
	}{
		{"attempt 0 counts as 1", time.Second, time.Minute, 0, time.Second, 1100 * time.Millisecond},
		{"negative attempt counts as 1", time.Second, time.Minute, -3, time.Second, 1100 * time.Millisecond},
		{"huge attempt does not overflow", time.Second, time.Minute, 1 << 30, 54 * time.Second, time.Minute},
		{"huge durations do not overflow", time.Duration(1) << 61, time.Duration(1<<63 - 1), 10, time.Duration(1<<63-1) / 10 * 9, time.Duration(1<<63 - 1)},
		{"max below initial counts as initial", time.Minute, time.Second, 3, time.Minute, time.Minute},
		{"zero initial", 0, time.Minute, 3, 0, 0},
	}
	for _, tt := range tests {
		for range 20 {
			got := Backoff(tt.initial, tt.maxWait, tt.attempt)
			if got < tt.lo || got > tt.hi {
				t.Fatalf("%s: Backoff(%s, %s, %d) = %s, want within [%s, %s]", tt.name, tt.initial, tt.maxWait, tt.attempt, got, tt.lo, tt.hi)
			}
		}
	}
}
