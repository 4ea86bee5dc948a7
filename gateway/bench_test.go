package gateway

import (
	"bytes"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"
)

// BenchmarkIngestBatch100 posts /v1/batch requests of 100 track events
// (about 300 bytes each, random users, one destination) from concurrent
// clients to a gateway writing to a two-node cluster, and reports events/s.
func BenchmarkIngestBatch100(b *testing.B) {
	benchmarkIngest(b, "/v1/batch", 100)
}

// BenchmarkIngestSingle posts one track event per request.
func BenchmarkIngestSingle(b *testing.B) {
	benchmarkIngest(b, "/v1/track", 1)
}

func benchmarkIngest(b *testing.B, path string, perRequest int) {
	tb := setup(b, sharedClusterFor(b), func(cfg *Config) {
		cfg.WriteTimeout = 10 * time.Second
	})
	key := tb.prefix + "-key1" // one destination: one row per event
	const variants = 64
	bodies := make([][]byte, variants)
	for v := range bodies {
		events := make([]string, perRequest)
		for i := range events {
			events[i] = fmt.Sprintf(`{"type": "track", "userId": "bench-user-%d-%d", "event": "Product Viewed", "properties": {"product_id": "sku-%d", "price": 19.99, "currency": "EUR", "category": "shoes"}, "context": {"library": {"name": "analytics-go", "version": "3.3.0"}, "ip": "192.0.2.1"}, "timestamp": "2025-01-02T03:04:05.678Z"}`, v, i, i)
		}
		if perRequest == 1 {
			bodies[v] = []byte(events[0])
		} else {
			bodies[v] = []byte(`{"batch": [` + strings.Join(events, ",") + `]}`)
		}
	}
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 256}}
	url := tb.srv.URL + path

	b.SetParallelism(16)
	b.ResetTimer()
	began := time.Now()
	b.RunParallel(func(pb *testing.PB) {
		i := 0
		for pb.Next() {
			i++
			req, _ := http.NewRequest(http.MethodPost, url, bytes.NewReader(bodies[i%variants]))
			req.SetBasicAuth(key, "")
			resp, err := client.Do(req)
			if err != nil {
				b.Error(err)
				return
			}
			io.Copy(io.Discard, resp.Body) //nolint:errcheck // draining
			resp.Body.Close()
			if resp.StatusCode != http.StatusOK {
				b.Errorf("status %d", resp.StatusCode)
				return
			}
		}
	})
	elapsed := time.Since(began)
	b.StopTimer()
	b.ReportMetric(float64(b.N*perRequest)/elapsed.Seconds(), "events/s")
	b.ReportMetric(float64(b.N)/elapsed.Seconds(), "requests/s")
}
