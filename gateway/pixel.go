package gateway

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"
)

// A pixel is an event sent as the query string of GET /pixel/v1/track or
// /pixel/v1/page, for clients that can only load an image (an <img> tag,
// an e-mail). As rudder-server does, the event is built from the
// parameters, each a string, a dotted name such as properties.plan
// nesting it in objects, on top of {"channel": "web", "integrations":
// {"All": true}, "originalTimestamp": now, "sentAt": now}; writeKey is the
// write key, not a member; an anonymousId in double quotes loses them; an
// empty page name becomes "Unknown Page". The event then goes the way of
// POST /v1/track or /v1/page.
//
// Every answer is the 1×1 GIF, so that an image never shows as broken.
// Unlike rudder-server, which always answers 200, the status is the one
// the POST would get, and an error's message is in the X-Ordo-Error
// header.

// pixelErrorHeader carries an error's message on a pixel answer.
const pixelErrorHeader = "X-Ordo-Error"

// transparentGIF is a 1×1 transparent GIF.
var transparentGIF = []byte("GIF89a\x01\x00\x01\x00\x80\x00\x00\x00\x00\x00\xff\xff\xff!\xf9\x04\x01\x00\x00\x00\x00,\x00\x00\x00\x00\x01\x00\x01\x00\x00\x02\x02D\x01\x00;")

// pixel handles GET path, a pixel event of type typ.
func (g *Gateway) pixel(path, typ string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		// Not HEAD: a pixel stores an event, which a HEAD must not.
		if r.Method != http.MethodGet {
			w.Header().Set("Allow", "GET")
			writePixel(w, errorf(http.StatusMethodNotAllowed, "method %s not allowed: use GET", r.Method))
			return
		}
		body, herr := pixelEvent(r.URL.Query(), typ, time.Now())
		if herr == nil {
			// The event goes through the POST path as the request's body.
			pr := r.WithContext(r.Context())
			pr.Header = r.Header.Clone()
			pr.Header.Del("Content-Encoding")
			pr.Body = io.NopCloser(bytes.NewReader(body))
			pr.ContentLength = int64(len(body))
			herr = g.take(w, pr, path, typ)
		}
		writePixel(w, herr)
	}
}

// pixelEvent builds the JSON event of type typ that query describes, at
// time now.
func pixelEvent(query url.Values, typ string, now time.Time) ([]byte, *httpError) {
	at := now.UTC().Format(receivedAtLayout)
	ev := map[string]any{
		"channel":           "web",
		"integrations":      map[string]any{"All": true},
		"originalTimestamp": at,
		"sentAt":            at,
	}
	names := make([]string, 0, len(query))
	for name := range query {
		names = append(names, name)
	}
	slices.Sort(names) // so that a conflict is reported the same way each time
	for _, name := range names {
		if name == "writeKey" {
			continue
		}
		value := query.Get(name)
		// As a POST body must be: json would turn each invalid byte
		// into U+FFFD, and two users into one.
		if !utf8.ValidString(name) || !utf8.ValidString(value) {
			return nil, badRequest("query parameter %q: not valid UTF-8", name)
		}
		if name == "anonymousId" && len(value) >= 2 && value[0] == '"' && value[len(value)-1] == '"' {
			value = value[1 : len(value)-1]
		}
		if herr := setPath(ev, name, value); herr != nil {
			return nil, herr
		}
	}
	ev["type"] = typ
	if name, ok := ev["name"].(string); typ == "page" && ok && name == "" {
		ev["name"] = "Unknown Page"
	}
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(ev); err != nil {
		return nil, badRequest("query string: %v", err)
	}
	return bytes.TrimSuffix(buf.Bytes(), []byte("\n")), nil
}

// setPath sets the member of obj that the dotted name names to value,
// creating the objects on the way. Names must come in sorted order.
func setPath(obj map[string]any, name, value string) *httpError {
	parts := strings.Split(name, ".")
	if slices.Contains(parts, "") {
		return badRequest("query parameter %q: a dotted name needs a name between each pair of dots", name)
	}
	for i, part := range parts[:len(parts)-1] {
		switch next := obj[part].(type) {
		case map[string]any:
			obj = next
		case nil:
			m := map[string]any{}
			obj[part], obj = m, m
		default:
			return badRequest("query parameter %q: %q is already a value, not an object", name, strings.Join(parts[:i+1], "."))
		}
	}
	// Names come sorted, so a.b is set before a.b.c: a value never
	// replaces an object.
	obj[parts[len(parts)-1]] = value
	return nil
}

// writePixel answers with the GIF: 200 when herr is nil, else herr's
// status with its message in X-Ordo-Error.
func writePixel(w http.ResponseWriter, herr *httpError) {
	h := w.Header()
	status := http.StatusOK
	if herr != nil {
		status = herr.status
		h.Set(pixelErrorHeader, herr.msg)
		if status == http.StatusServiceUnavailable {
			h.Set("Retry-After", strconv.Itoa(retryAfter))
		}
	}
	h.Set("Content-Type", "image/gif")
	h.Set("Content-Length", strconv.Itoa(len(transparentGIF)))
	h.Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	w.Write(transparentGIF) //nolint:errcheck // the client may be gone
}
