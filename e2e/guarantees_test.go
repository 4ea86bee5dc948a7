package e2e

import (
	"testing"
	"time"
)

// checkGuarantees waits up to within for every event tr got 200 for to
// reach hook (no loss), then checks that each key's first deliveries came
// in the order its events were acknowledged (order). It returns the
// number of acknowledged events and of deliveries.
func checkGuarantees(t *testing.T, tr *traffic, hook *recorder, within time.Duration) (acked, deliveries int) {
	t.Helper()
	deadline := time.Now().Add(within)
	var missing []string
	for {
		missing = missing[:0]
		acked = 0
		tr.mu.Lock()
		for key, ns := range tr.acked {
			acked += len(ns)
			for _, n := range ns {
				if !hook.has(messageID(key, n)) {
					missing = append(missing, messageID(key, n))
				}
			}
		}
		tr.mu.Unlock()
		if len(missing) == 0 || time.Now().After(deadline) {
			break
		}
		time.Sleep(250 * time.Millisecond)
	}
	if len(missing) > 0 {
		t.Errorf("%d of %d acknowledged events never delivered, e.g. %v", len(missing), acked, missing[:min(10, len(missing))])
	}

	firsts, deliveries := hook.firstDeliveries()
	for key, ns := range firsts {
		for i := 1; i < len(ns); i++ {
			if ns[i] < ns[i-1] {
				t.Errorf("key %s: event %d first delivered after event %d", key, ns[i], ns[i-1])
				for _, d := range hook.deliveriesOf(key) {
					if d.N >= ns[i]-3 && d.N <= ns[i-1]+1 {
						t.Logf("  %s n=%d at %s", d.Key, d.N, d.At.Format("15:04:05.000"))
					}
				}
				break
			}
		}
	}
	return acked, deliveries
}
