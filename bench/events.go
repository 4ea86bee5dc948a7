package main

import (
	"fmt"
	"math/rand/v2"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/google/uuid"
)

// events makes RudderStack-style track events of about 300 bytes, spread
// over a fixed set of ordering keys (userIds).
type events struct {
	keys int
	n    atomic.Int64
}

func newEvents(keys int) *events { return &events{keys: keys} }

// next returns the next event as a client sends it and its ordering key.
// With typed, the event carries "type" as /v1/batch needs.
func (e *events) next(typed bool) (key string, body []byte) {
	i := e.n.Add(1)
	key = "user-" + strconv.Itoa(rand.IntN(e.keys))
	b := make([]byte, 0, 384)
	b = append(b, '{')
	if typed {
		b = append(b, `"type":"track",`...)
	}
	b = fmt.Appendf(b, `"userId":%q,"event":"Order Completed","properties":{"orderId":"order-%09d","revenue":%d.%02d,"currency":"EUR","coupon":"SPRING24","products":[{"sku":"sku-%04d","quantity":%d,"price":19.99}]},`,
		key, i, rand.IntN(500), rand.IntN(100), rand.IntN(10000), 1+rand.IntN(5))
	b = fmt.Appendf(b, `"context":{"library":{"name":"ordo-bench","version":"1.0.0"},"ip":"203.0.113.%d","locale":"en-GB","userAgent":"Mozilla/5.0 (X11; Linux x86_64)"},"timestamp":%q}`,
		rand.IntN(256), time.Now().UTC().Format(time.RFC3339Nano))
	return key, b
}

// stored returns the next event as the gateway stores it (with messageId
// and receivedAt), with its ordering key, messageId and receipt time.
func (e *events) stored() (key, messageID string, receivedAt time.Time, body []byte) {
	key, sent := e.next(true)
	messageID = uuid.NewString()
	receivedAt = time.Now().UTC()
	b := make([]byte, 0, len(sent)+96)
	b = fmt.Appendf(b, `{"messageId":%q,"receivedAt":%q,`, messageID, receivedAt.Format(time.RFC3339Nano))
	b = append(b, sent[1:]...)
	return key, messageID, receivedAt, b
}

// request is one HTTP request to the gateway.
type request struct {
	path   string
	body   []byte
	events int
}

// batchRequests returns /v1/batch requests holding n events, per in each.
func (e *events) batchRequests(n, per int) []request {
	var reqs []request
	for n > 0 {
		k := min(per, n)
		b := []byte(`{"batch":[`)
		for j := range k {
			if j > 0 {
				b = append(b, ',')
			}
			_, ev := e.next(true)
			b = append(b, ev...)
		}
		b = append(b, "]}"...)
		reqs = append(reqs, request{path: "/v1/batch", body: b, events: k})
		n -= k
	}
	return reqs
}

// trackRequests returns n single-event /v1/track requests.
func (e *events) trackRequests(n int) []request {
	reqs := make([]request, n)
	for i := range reqs {
		_, ev := e.next(false)
		reqs[i] = request{path: "/v1/track", body: ev, events: 1}
	}
	return reqs
}
