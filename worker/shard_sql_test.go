package worker

import (
	"testing"
	"time"
)

// TestAcksKeepLatestRetry checks that a row retried twice before a flush
// leaves one retry entry, the latest, so the flush cannot store an older
// attempt count.
func TestAcksKeepLatestRetry(t *testing.T) {
	t.Parallel()
	var a acks
	p, q := pos{1, 10}, pos{1, 11}
	now := time.Now()
	a.retry(retry{pos: p, attempts: 1, next: now, status: 503})
	a.retry(retry{pos: q, attempts: 1, next: now, status: 503})
	a.retry(retry{pos: p, attempts: 2, next: now.Add(time.Second), status: 500})
	if len(a.retries) != 2 {
		t.Fatalf("%d retry entries, want 2 (one per row): %+v", len(a.retries), a.retries)
	}
	got := map[pos]retry{}
	for _, r := range a.retries {
		got[r.pos] = r
	}
	if r := got[p]; r.attempts != 2 || r.status != 500 || !r.next.Equal(now.Add(time.Second)) {
		t.Errorf("row %v: retry %+v, want the latest (attempts 2, status 500)", p, r)
	}
	if r := got[q]; r.attempts != 1 {
		t.Errorf("row %v: retry %+v, want attempts 1", q, r)
	}
	a.reset()
	a.retry(retry{pos: p, attempts: 3})
	if len(a.retries) != 1 || a.retries[0].attempts != 3 {
		t.Errorf("after a reset: retries %+v, want one entry with attempts 3", a.retries)
	}
}
