package gateway

import (
	"errors"
	"net/http"
	"time"

	"github.com/ordo-pipeline/ordo/store"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/tidwall/gjson"
)

// Handler returns the gateway's HTTP API: the RudderStack and Segment
// tracking endpoints and the configuration their browser SDKs load, with
// CORS on every answer.
func (g *Gateway) Handler() http.Handler {
	mux := http.NewServeMux()
	handle := func(pattern, label string, h http.HandlerFunc) {
		mux.HandleFunc(pattern, g.metrics.instrument(label, h))
	}
	for _, t := range Types {
		path := "/v1/" + t
		handle(path, path, g.ingest(path, t))
		// analytics.js's short paths: /v1/t, /v1/i, /v1/p, /v1/s, /v1/g, /v1/a.
		short := "/v1/" + t[:1]
		handle(short, short, g.ingest(short, t))
	}
	// /v1/b is analytics.js's batch, /beacon/v1/batch a batch sent with
	// navigator.sendBeacon, /v1/import rudder-server's bulk import (a
	// batch too: ordo takes any batch it can hold in one request).
	for _, path := range []string{"/v1/batch", "/v1/b", "/v1/import", "/beacon/v1/batch"} {
		handle(path, path, g.ingest(path, ""))
	}
	handle("/pixel/v1/track", "/pixel/v1/track", g.pixel("/pixel/v1/track", "track"))
	handle("/pixel/v1/page", "/pixel/v1/page", g.pixel("/pixel/v1/page", "page"))
	handle("/sourceConfig/{$}", "/sourceConfig/", get(g.sourceConfig))
	handle("/sourceConfig", "/sourceConfig/", get(g.sourceConfig))
	handle("/v1/projects/{writeKey}/settings", "/v1/projects/settings", get(g.segmentSettings))
	handle("/cluster-info", "/cluster-info", get(clusterInfo))
	handle("/version", "/version", get(version))
	for path, msg := range unsupported {
		handle(path, path, refuse(msg))
	}
	handle("/health", "/health", get(g.health))
	handle("/ready", "/ready", get(g.ready))
	metrics := promhttp.HandlerFor(g.registry, promhttp.HandlerOpts{Registry: g.registry})
	handle("/metrics", "/metrics", get(metrics.ServeHTTP))
	handle("/", "other", func(w http.ResponseWriter, r *http.Request) {
		writeError(w, errorf(http.StatusNotFound, "no such endpoint: %s", r.URL.Path))
	})
	return withCORS(mux)
}

// get answers 405 to anything but GET and HEAD.
func get(h http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			w.Header().Set("Allow", "GET, HEAD")
			writeError(w, errorf(http.StatusMethodNotAllowed, "method %s not allowed: use GET", r.Method))
			return
		}
		h(w, r)
	}
}

func (g *Gateway) health(w http.ResponseWriter, _ *http.Request) {
	writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
}

func (g *Gateway) ready(w http.ResponseWriter, _ *http.Request) {
	if !g.Ready() {
		writeError(w, errorf(http.StatusServiceUnavailable, "not ready: the shard map is not loaded from the catalog, or not recently"))
		return
	}
	writeJSON(w, http.StatusOK, map[string]string{"status": "ready"})
}

// ingest handles an event endpoint: /v1/<typ>, or a batch when typ is "".
func (g *Gateway) ingest(path, typ string) http.HandlerFunc {
	return g.bounded(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodPost {
			w.Header().Set("Allow", "POST, OPTIONS")
			writeError(w, errorf(http.StatusMethodNotAllowed, "method %s not allowed: use POST", r.Method))
			return
		}
		if herr := g.take(w, r, path, typ); herr != nil {
			writeError(w, herr)
			return
		}
		writeBody(w, http.StatusOK, successBody)
	})
}

// take accepts r's events, of type typ ("" for a batch), and stores
// them; nil means every one is committed.
func (g *Gateway) take(w http.ResponseWriter, r *http.Request, path, typ string) *httpError {
	began := time.Now()
	events, rows, herr := g.accept(w, r, typ)
	if herr == nil {
		herr = g.write(r, rows)
	}
	if herr != nil {
		return herr
	}
	g.metrics.acked(path, began, events)
	return nil
}

// accept authenticates, reads, decodes, validates and enriches a request's
// events, returning them and their rows for the store.
func (g *Gateway) accept(w http.ResponseWriter, r *http.Request, typ string) ([]*event, []store.Event, *httpError) {
	src, data, herr := g.authenticate(w, r)
	if herr != nil {
		return nil, nil, herr
	}
	var events []*event
	if typ != "" {
		ev, herr := decodeEvent(data, typ, nil)
		if herr != nil {
			return nil, nil, herr
		}
		events = []*event{ev}
	} else {
		raws, shared, herr := parseBatch(data)
		if herr == nil {
			herr = g.holdEvents(r, len(raws))
		}
		if herr != nil {
			return nil, nil, herr
		}
		events = make([]*event, len(raws))
		for i, raw := range raws {
			if events[i], herr = decodeValid(raw, "", shared); herr != nil {
				return nil, nil, herr.inBatch(i)
			}
		}
	}
	receivedAt := time.Now().UTC().Truncate(time.Millisecond)
	rows := make([]store.Event, len(events))
	for i, ev := range events {
		body := ev.enrich(receivedAt)
		rows[i] = store.Event{
			OrderingKey:  ev.key,
			SourceID:     src.ID,
			Destinations: src.Destinations,
			MessageID:    ev.messageID,
			ReceivedAt:   receivedAt,
			JSON:         body,
		}
	}
	return events, rows, nil
}

// decodeEvent checks one event's size, decodes and validates it as type
// typ ("" for a batch element naming its own), and adds the members of
// shared it lacks.
func decodeEvent(raw []byte, typ string, shared []field) (*event, *httpError) {
	if len(raw) > MaxEventBytes {
		return nil, tooLarge(len(raw))
	}
	obj, herr := parseEvent(raw)
	if herr != nil {
		return nil, herr
	}
	return validate(obj, typ, shared)
}

// decodeValid is decodeEvent for an element of a batch body that
// parseBatch has checked: valid UTF-8 and JSON, and not too deep.
func decodeValid(raw string, typ string, shared []field) (*event, *httpError) {
	if len(raw) > MaxEventBytes {
		return nil, tooLarge(len(raw))
	}
	v := gjson.Parse(raw)
	if !v.IsObject() {
		return nil, errNotObject
	}
	obj, herr := members(v)
	if herr != nil {
		return nil, herr
	}
	return validate(obj, typ, shared)
}

func tooLarge(n int) *httpError {
	return errorf(http.StatusRequestEntityTooLarge, "event is %d bytes, over the %d-byte (32 KiB) limit", n, MaxEventBytes)
}

// write stores a request's rows and turns the store's errors into answers.
func (g *Gateway) write(r *http.Request, rows []store.Event) *httpError {
	err := g.store.Write(r.Context(), rows)
	switch {
	case err == nil:
		return nil
	case errors.Is(err, store.ErrRejected):
		g.log.Warn("database refused a request's events", "path", r.URL.Path, "error", err)
		return badRequest("the events hold data the store cannot take")
	case r.Context().Err() != nil:
		// The client hung up: the store did not fail.
		g.log.Debug("client went away before its events were stored", "path", r.URL.Path, "events", len(rows), "error", err)
		return errorf(http.StatusServiceUnavailable, "the request was cancelled before its events were stored: retry")
	default:
		g.log.Warn("store could not take a request's events", "path", r.URL.Path, "events", len(rows), "error", err)
		return errorf(http.StatusServiceUnavailable, "the store cannot take the events now: retry later")
	}
}
