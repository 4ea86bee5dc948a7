package gateway

import (
	"bytes"
	"compress/gzip"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"unicode/utf8"
)

// Request and event size limits of the contract.
const (
	// MaxBodyBytes bounds a request body, compressed and decompressed.
	MaxBodyBytes = 4 << 20
	// MaxEventBytes bounds one event, as sent.
	MaxEventBytes = 32 << 10
	// MaxDepth bounds how deeply an event's objects and arrays nest. It
	// keeps every accepted event well within what Postgres's JSON parser
	// takes (a few thousand levels), so that no event can fail the batch
	// it is written in.
	MaxDepth = 512
)

var (
	errBodyTooLarge = errorf(http.StatusRequestEntityTooLarge, "request body over %d bytes (4 MiB)", MaxBodyBytes)
	errNotObject    = badRequest("event must be a JSON object")
)

// readBody returns r's body, gunzipped when Content-Encoding is gzip. It
// never holds more than MaxBodyBytes (plus one) of either form.
func readBody(w http.ResponseWriter, r *http.Request) ([]byte, *httpError) {
	if r.ContentLength > MaxBodyBytes {
		return nil, errBodyTooLarge
	}
	var body io.Reader = http.MaxBytesReader(w, r.Body, MaxBodyBytes)
	gzipped := false
	switch enc := strings.ToLower(strings.TrimSpace(r.Header.Get("Content-Encoding"))); enc {
	case "", "identity":
	case "gzip", "x-gzip":
		zr, err := gzip.NewReader(body)
		if err != nil {
			return nil, bodyError(err, true)
		}
		body, gzipped = zr, true
	default:
		return nil, badRequest("unsupported Content-Encoding %q: send gzip or no encoding", enc)
	}
	size := 4096 // a guess for chunked and gzipped bodies; the buffer grows
	if r.ContentLength > 0 && !gzipped {
		size = int(r.ContentLength) + bytes.MinRead
	}
	buf := bytes.NewBuffer(make([]byte, 0, size))
	if _, err := buf.ReadFrom(io.LimitReader(body, MaxBodyBytes+1)); err != nil {
		return nil, bodyError(err, gzipped)
	}
	data := buf.Bytes()
	if len(data) > MaxBodyBytes {
		return nil, errorf(http.StatusRequestEntityTooLarge, "request body over %d bytes (4 MiB) once decompressed", MaxBodyBytes)
	}
	return data, nil
}

// bodyError turns an error reading the body into the answer.
func bodyError(err error, gzipped bool) *httpError {
	var tooLarge *http.MaxBytesError
	switch {
	case errors.As(err, &tooLarge):
		return errBodyTooLarge
	case gzipped:
		return badRequest("malformed gzip body: %v", err)
	}
	return badRequest("reading the body: %v", err)
}

// field is one member of a JSON object.
type field struct {
	key   string
	value json.RawMessage
}

// object is a JSON object whose members keep their order and their values'
// bytes as sent.
type object []field

// get returns the value of key, or nil.
func (o object) get(key string) json.RawMessage {
	for _, f := range o {
		if f.key == key {
			return f.value
		}
	}
	return nil
}

// set replaces the value of key, or appends it.
func (o *object) set(key string, value json.RawMessage) {
	for i := range *o {
		if (*o)[i].key == key {
			(*o)[i].value = value
			return
		}
	}
	*o = append(*o, field{key, value})
}

// parseEvent decodes one event: a JSON object no deeper than MaxDepth.
func parseEvent(data []byte) (object, *httpError) {
	obj, herr := parseObject(data)
	if herr != nil {
		return nil, herr
	}
	if d := depth(data); d > MaxDepth {
		return nil, badRequest("event nests objects and arrays %d levels deep, more than %d", d, MaxDepth)
	}
	return obj, nil
}

// parseObject decodes one JSON object. A key sent twice keeps its last
// value, as encoding/json and Postgres do.
func parseObject(data []byte) (object, *httpError) {
	if !utf8.Valid(data) {
		return nil, badRequest("malformed JSON: not valid UTF-8")
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	tok, err := dec.Token()
	if err != nil {
		return nil, malformed(err)
	}
	if d, ok := tok.(json.Delim); !ok || d != '{' {
		return nil, errNotObject
	}
	var obj object
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return nil, malformed(err)
		}
		key, ok := tok.(string)
		if !ok {
			return nil, badRequest("malformed JSON: object key is not a string")
		}
		var value json.RawMessage
		if err := dec.Decode(&value); err != nil {
			return nil, malformed(err)
		}
		obj.set(key, value)
	}
	if _, err := dec.Token(); err != nil { // the closing brace
		return nil, malformed(err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, badRequest("malformed JSON: unexpected data after the object")
	}
	return obj, nil
}

// malformed is the answer to a JSON syntax error.
func malformed(err error) *httpError {
	if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
		return badRequest("malformed JSON: unexpected end of input")
	}
	var syntax *json.SyntaxError
	if errors.As(err, &syntax) {
		return badRequest("malformed JSON at byte %d: %v", syntax.Offset, err)
	}
	return badRequest("malformed JSON: %v", err)
}

// depth returns how deeply objects and arrays nest in valid JSON data.
func depth(data []byte) int {
	deepest, d := 0, 0
	inString, escaped := false, false
	for _, c := range data {
		switch {
		case inString:
			switch {
			case escaped:
				escaped = false
			case c == '\\':
				escaped = true
			case c == '"':
				inString = false
			}
		case c == '"':
			inString = true
		case c == '{' || c == '[':
			d++
			deepest = max(deepest, d)
		case c == '}' || c == ']':
			d--
		}
	}
	return deepest
}

// parseBatch decodes a /v1/batch body into its events' raw bytes, and
// returns the members of the body to copy into events that lack them.
func parseBatch(data []byte) ([]json.RawMessage, object, *httpError) {
	body, herr := parseObject(data)
	if herr == errNotObject {
		return nil, nil, badRequest(`body must be a JSON object {"batch": [...]}`)
	}
	if herr != nil {
		return nil, nil, herr
	}
	raw := body.get("batch")
	if raw == nil || string(raw) == "null" {
		return nil, nil, badRequest(`"batch" is required: send {"batch": [event, ...]}`)
	}
	if raw[0] != '[' {
		return nil, nil, badRequest(`"batch" must be an array of events`)
	}
	var events []json.RawMessage
	if err := json.Unmarshal(raw, &events); err != nil {
		return nil, nil, malformed(fmt.Errorf("batch: %w", err))
	}
	if len(events) == 0 {
		return nil, nil, badRequest(`"batch" is empty: send at least one event`)
	}
	var shared object
	for _, key := range batchShared {
		if v := body.get(key); v != nil {
			shared = append(shared, field{key, v})
		}
	}
	return events, shared, nil
}

// batchShared are the members of a batch body that apply to each of its
// events lacking its own, as in Segment's batch API.
var batchShared = []string{"context", "integrations", "sentAt"}
