package gateway

import (
	"context"
	"errors"
	"io"
	"net/http"
	"strings"
	"sync/atomic"

	"github.com/prometheus/client_golang/prometheus"
)

// inflightWeight is how many bytes of memory one byte of a request body
// costs a gateway while the request is in flight, as measured by the
// hostile-input test (e2e): the body as read, its copy as a string, the
// enriched rows and their COPY encoding. The limit counts body bytes times
// this weight, so that ORDO_MAX_INFLIGHT_MIB is close to what requests
// make the process hold.
const inflightWeight = 4

// eventWeight is what one event of a batch costs a gateway besides its
// bytes, as measured on batches of tiny events (a 4 MiB body can hold
// 100,000 of them): its members decoded, the event, its row for the
// store. Without it, such a batch would hold 40 times what its body
// reserves.
const eventWeight = 2 << 10

// errInflightFull is what a request body's reader returns once the
// gateway holds all the request bytes it may.
var errInflightFull = errors.New("the gateway holds as many request bytes as it may")

// errBusy answers a request refused for the in-flight limit.
var errBusy = errorf(http.StatusServiceUnavailable, "the gateway is holding as many request bytes as it may: retry later")

// inflight bounds what the requests in flight make a gateway hold:
// each request reserves its body's bytes, weighted by inflightWeight,
// before it reads them (its Content-Length when it declares one, else as
// they arrive, decompressed), and eventWeight for each event of a batch
// before it decodes them, and gives them back once answered. A
// request that would go over the limit is answered 503 with Retry-After
// at once: a gateway never waits for room, so a burst of large or slow
// requests costs the others a retry, never the process its memory.
type inflight struct {
	limit int64 // in weighted bytes
	used  atomic.Int64
	// onRefuse counts a refused request.
	onRefuse func()
}

// maxHeaderBytes bounds a request's headers, which the limit does not
// count: 64 KiB is ample for tracking requests (cookies included) and
// keeps what a connection may hold before its handler runs small. Larger
// headers are answered 431.
const maxHeaderBytes = 64 << 10

// newInflight returns a limit of limit weighted bytes, with its metrics
// registered with reg.
func newInflight(limit int64, reg prometheus.Registerer) *inflight {
	in := &inflight{limit: limit}
	refused := prometheus.NewCounter(prometheus.CounterOpts{
		Name: "ordo_gateway_inflight_refused_total",
		Help: "Requests answered 503 because the requests in flight held ORDO_MAX_INFLIGHT_MIB.",
	})
	in.onRefuse = refused.Inc
	reg.MustRegister(refused,
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "ordo_gateway_inflight_bytes",
			Help: "What the requests in flight reserve: their bodies' bytes times 4.",
		}, func() float64 { return float64(in.used.Load()) }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "ordo_gateway_inflight_limit_bytes",
			Help: "ORDO_MAX_INFLIGHT_MIB in bytes.",
		}, func() float64 { return float64(in.limit) }))
	return in
}

// take reserves n weighted bytes, and reports whether it could.
func (in *inflight) take(n int64) bool {
	for {
		used := in.used.Load()
		if used+n > in.limit {
			return false
		}
		if in.used.CompareAndSwap(used, used+n) {
			return true
		}
	}
}

// holdEvents makes r's reservation cover n events of a batch (see
// eventWeight): 503 when the limit has no room for them now, 413 when the
// limit could never hold them.
func (g *Gateway) holdEvents(r *http.Request, n int) *httpError {
	res, ok := r.Context().Value(reservationKey{}).(*reservation)
	if !ok {
		return nil
	}
	more := int64(n) * eventWeight
	if res.held+more > res.in.limit {
		return errorf(http.StatusRequestEntityTooLarge, "the request's %d events need more memory than this gateway's ORDO_MAX_INFLIGHT_MIB allows: send fewer events per request", n)
	}
	if !res.in.take(more) {
		res.full = true
		return errBusy
	}
	res.held += more
	return nil
}

// reservation is what one request holds of the limit.
type reservation struct {
	in   *inflight
	held int64 // weighted bytes reserved
	read int64 // body bytes read
	upTo int64 // body bytes held reserves for
	full bool  // a read went over the limit
}

type reservationKey struct{}

// bounded makes h's requests reserve their bytes (see inflight): those
// that declare a Content-Length reserve it before h runs, and readBody
// reserves the rest as it reads. It answers 503 when the limit is
// reached, and gives everything back once h is done.
func (g *Gateway) bounded(h http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		res := &reservation{in: g.inflight}
		defer res.release()
		// A body over MaxBodyBytes is refused before it is read.
		if r.ContentLength > 0 && r.ContentLength <= MaxBodyBytes && !compressed(r) {
			if !res.cover(r.ContentLength) {
				g.inflight.onRefuse()
				writeError(w, errBusy)
				return
			}
		}
		h(w, r.WithContext(context.WithValue(r.Context(), reservationKey{}, res)))
		if res.full {
			g.inflight.onRefuse()
		}
	}
}

// compressed reports whether r's body is sent with a Content-Encoding, so
// its decompressed size is unknown until read.
func compressed(r *http.Request) bool {
	enc := strings.TrimSpace(r.Header.Get("Content-Encoding"))
	return enc != "" && !strings.EqualFold(enc, "identity")
}

// cover makes res reserve for body bytes up to n, and reports whether it
// could.
func (res *reservation) cover(n int64) bool {
	if n <= res.upTo {
		return true
	}
	more := (n - res.upTo) * inflightWeight
	if !res.in.take(more) {
		return false
	}
	res.held += more
	res.upTo = n
	return true
}

func (res *reservation) release() {
	if res.held > 0 {
		res.in.used.Add(-res.held)
		res.held = 0
	}
}

// holdBody returns body, the reader of r's body as readBody reads it
// (decompressed), counting what it reads against r's reservation: a read
// the limit cannot cover fails with errInflightFull. A request that is
// not bounded reads body as it is.
func holdBody(r *http.Request, body io.Reader) io.Reader {
	res, ok := r.Context().Value(reservationKey{}).(*reservation)
	if !ok {
		return body
	}
	return &heldReader{r: body, res: res}
}

// heldReader counts what it reads against a reservation.
type heldReader struct {
	r   io.Reader
	res *reservation
}

// heldChunk is how far ahead of what was read a reservation grows, so
// that a body read in small pieces does not reserve for each.
const heldChunk = 64 << 10

func (h *heldReader) Read(p []byte) (int, error) {
	if h.res.full {
		return 0, errInflightFull
	}
	n, err := h.r.Read(p)
	h.res.read += int64(n)
	if h.res.read > h.res.upTo && !h.res.cover(min(h.res.read+heldChunk, MaxBodyBytes+1)) && !h.res.cover(h.res.read) {
		h.res.full = true
		return 0, errInflightFull
	}
	return n, err
}
