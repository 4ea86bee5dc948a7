package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"sync"

	"github.com/ordo-pipeline/ordo/internal/metric"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// maxBodyBytes bounds one request body. The gateway refuses bodies over 4 MiB, and a
// worker batches at most maxBatchSize of them, so 64 MiB leaves ample room.
const maxBodyBytes = 64 << 20

// knownTypes are the event types of the tracking API. Other values are counted as
// "other" so that a client cannot grow the metric's label set without bound.
var knownTypes = map[string]bool{
	"track": true, "identify": true, "page": true,
	"screen": true, "group": true, "alias": true,
}

// Sink receives webhook deliveries, prints one line per event and counts them.
type Sink struct {
	logger  *slog.Logger
	verbose bool

	mu  sync.Mutex // serialises writes to out so lines never interleave
	out io.Writer

	registry *prometheus.Registry
	events   *prometheus.CounterVec
	requests *prometheus.CounterVec
}

// NewSink returns a Sink that prints to out. With verbose set, each line ends with the
// event's JSON.
func NewSink(out io.Writer, verbose bool, logger *slog.Logger) *Sink {
	reg := metric.NewRegistry()
	return &Sink{
		logger:   logger,
		verbose:  verbose,
		out:      out,
		registry: reg,
		events: metric.CounterVec(reg, "ordo_sink_events_received_total",
			"Events received by the demo sink, by event type.", "type"),
		requests: metric.CounterVec(reg, "ordo_sink_requests_total",
			"POST requests received by the demo sink, by response status code.", "code"),
	}
}

// Handler returns the sink's HTTP routes: POST on any path receives events, GET /health
// answers 200, GET /metrics serves Prometheus metrics.
func (s *Sink) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /health", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		_, _ = io.WriteString(w, "ok\n")
	})
	mux.Handle("GET /metrics", promhttp.HandlerFor(s.registry, promhttp.HandlerOpts{}))
	mux.HandleFunc("POST /", s.receive)
	return mux
}

// receive handles one webhook delivery: a single event object, or {"batch": [...]}.
func (s *Sink) receive(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxBodyBytes))
	if err != nil {
		var tooLarge *http.MaxBytesError
		if errors.As(err, &tooLarge) {
			s.fail(w, r, http.StatusRequestEntityTooLarge, fmt.Sprintf("body over %d bytes", tooLarge.Limit))
			return
		}
		s.fail(w, r, http.StatusBadRequest, "error reading body: "+err.Error())
		return
	}

	events, err := decodeEvents(body)
	if err != nil {
		s.fail(w, r, http.StatusBadRequest, err.Error())
		return
	}

	var buf bytes.Buffer
	for _, raw := range events {
		var ev event
		// decodeEvents checked that every element is an object; a field of an unexpected
		// type only leaves that field blank in the printed line.
		_ = json.Unmarshal(raw, &ev)
		s.events.WithLabelValues(typeLabel(ev.Type)).Inc()
		s.formatLine(&buf, ev, raw)
	}
	s.mu.Lock()
	_, err = s.out.Write(buf.Bytes())
	s.mu.Unlock()
	if err != nil {
		s.logger.Error("error writing events", "err", err)
	}

	s.logger.Debug("received request", "path", r.URL.Path, "events", len(events))
	s.requests.WithLabelValues(strconv.Itoa(http.StatusOK)).Inc()
	w.Header().Set("Content-Type", "application/json")
	_, _ = io.WriteString(w, `{"ok":true}`+"\n")
}

// fail answers a request with status and a JSON error body.
func (s *Sink) fail(w http.ResponseWriter, r *http.Request, status int, msg string) {
	s.logger.Warn("refused request", "path", r.URL.Path, "status", status, "err", msg)
	s.requests.WithLabelValues(strconv.Itoa(status)).Inc()
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(map[string]string{"error": msg})
}

// event holds the fields of a tracking event that the sink prints.
type event struct {
	Type        string `json:"type"`
	Event       string `json:"event"`
	UserID      string `json:"userId"`
	AnonymousID string `json:"anonymousId"`
	MessageID   string `json:"messageId"`
}

// decodeEvents splits a webhook body into its events: the elements of a {"batch": [...]}
// body, or the body itself. Every event must be a JSON object.
func decodeEvents(body []byte) ([]json.RawMessage, error) {
	var obj map[string]json.RawMessage
	if err := json.Unmarshal(body, &obj); err != nil {
		return nil, fmt.Errorf("body is not a JSON object: %w", err)
	}
	rawBatch, ok := obj["batch"]
	if !ok {
		return []json.RawMessage{json.RawMessage(body)}, nil
	}
	var batch []json.RawMessage
	if err := json.Unmarshal(rawBatch, &batch); err != nil {
		return nil, errors.New(`"batch" is not an array`)
	}
	for i, raw := range batch {
		if len(raw) == 0 || raw[0] != '{' {
			return nil, fmt.Errorf("batch[%d] is not an object", i)
		}
	}
	return batch, nil
}

// formatLine appends one line describing ev to buf, such as
//
//	sink: user=u1 type=track event="Order Completed" messageId=4f0c...
//
// A missing field prints as "-". With verbose set the compacted JSON follows.
func (s *Sink) formatLine(buf *bytes.Buffer, ev event, raw json.RawMessage) {
	user := ev.UserID
	if user == "" {
		user = ev.AnonymousID
	}
	fmt.Fprintf(buf, "sink: user=%s type=%s event=%s messageId=%s",
		value(user), value(ev.Type), value(ev.Event), value(ev.MessageID))
	if s.verbose {
		buf.WriteByte(' ')
		if err := json.Compact(buf, raw); err != nil {
			buf.Write(raw)
		}
	}
	buf.WriteByte('\n')
}

// value renders v for a key=value line: "-" when empty, quoted when it holds spaces,
// quotes, '=' or anything unprintable.
func value(v string) string {
	if v == "" {
		return "-"
	}
	if q := strconv.Quote(v); q[1:len(q)-1] != v || strings.ContainsAny(v, " =") {
		return q
	}
	return v
}

// typeLabel maps an event type to the metric label that counts it.
func typeLabel(t string) string {
	if knownTypes[t] {
		return t
	}
	return "other"
}
