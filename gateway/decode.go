package gateway

import (
	"bytes"
	"compress/gzip"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"strings"
	"unicode/utf8"

	"github.com/tidwall/gjson"
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
	// What is read counts against the in-flight limit (inflight.go).
	body = holdBody(r, body)
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
	var timeout interface{ Timeout() bool }
	switch {
	case errors.As(err, &tooLarge):
		return errBodyTooLarge
	case errors.Is(err, errInflightFull):
		return errBusy
	case errors.As(err, &timeout) && timeout.Timeout():
		// The server's read timeout passed: say so, not which sockets.
		return errorf(http.StatusRequestTimeout, "the request body did not arrive in time")
	case gzipped:
		return badRequest("malformed gzip body: %v", err)
	}
	return badRequest("reading the body: %v", err)
}

// maxMembers bounds the members of an event, or of a batch body, so that
// what a request makes the gateway hold stays proportional to its size.
// An event of MaxEventBytes holds at most about 5,500 members anyway.
const maxMembers = 10_000

// field is one member of a JSON object, as sent.
type field struct {
	key  string // unescaped
	kraw string // the key as sent, quoted
	raw  string // the value as sent
	typ  gjson.Type
	str  string // the unescaped value, when typ is gjson.String
}

// object is a JSON object's members in the order sent. A key sent twice
// is kept once, in its first place, with its last value, as encoding/json
// and Postgres's jsonb do. index maps keys to their place, for objects
// with more than a few members, so that lookups cost the same whatever
// the object's shape.
type object struct {
	fields []field
	index  map[string]int
	dups   bool // a key was sent more than once
	// raw is the object as sent, when fields hold its members exactly as
	// sent, in order (no key was sent twice): enrich then appends to it.
	raw string
}

// indexFrom is the member count from which object keeps an index.
const indexFrom = 16

// find returns the place of key in o, or -1.
func (o *object) find(key string) int {
	if o.index != nil {
		if i, ok := o.index[key]; ok {
			return i
		}
		return -1
	}
	for i := range o.fields {
		if o.fields[i].key == key {
			return i
		}
	}
	return -1
}

// get returns the member key, and whether it is present.
func (o *object) get(key string) (*field, bool) {
	if i := o.find(key); i >= 0 {
		return &o.fields[i], true
	}
	return nil, false
}

// add appends f, or replaces the value of the member with its key.
func (o *object) add(f field) {
	if i := o.find(f.key); i >= 0 {
		o.fields[i].raw, o.fields[i].typ, o.fields[i].str = f.raw, f.typ, f.str
		o.dups = true
		return
	}
	o.fields = append(o.fields, f)
	switch {
	case o.index != nil:
		o.index[f.key] = len(o.fields) - 1
	case len(o.fields) == indexFrom:
		o.index = make(map[string]int, 2*indexFrom)
		for i := range o.fields {
			o.index[o.fields[i].key] = i
		}
	}
}

// parseEvent decodes one event: a JSON object no deeper than MaxDepth.
func parseEvent(data []byte) (*object, *httpError) {
	if d := depth(data); d > MaxDepth {
		return nil, badRequest("event nests objects and arrays %d levels deep, more than %d", d, MaxDepth)
	}
	return parseObject(string(data))
}

// parseObject decodes one JSON object into its members. The caller has
// bounded data's depth (see depth), which bounds the validator's
// recursion.
func parseObject(data string) (*object, *httpError) {
	if !utf8.ValidString(data) {
		return nil, badRequest("malformed JSON: not valid UTF-8")
	}
	if !gjson.Valid(data) {
		return nil, syntaxError(data)
	}
	v := gjson.Parse(data)
	if !v.IsObject() {
		return nil, errNotObject
	}
	return members(v)
}

// members returns the members of v, a valid JSON object.
func members(v gjson.Result) (*object, *httpError) {
	obj := &object{fields: make([]field, 0, 8)}
	var herr *httpError
	v.ForEach(func(k, val gjson.Result) bool {
		if len(obj.fields) == maxMembers {
			herr = badRequest("object has more than %d members", maxMembers)
			return false
		}
		f := field{key: k.Str, kraw: k.Raw, raw: val.Raw, typ: val.Type}
		if val.Type == gjson.String {
			f.str = val.Str
		}
		obj.add(f)
		return true
	})
	if herr != nil {
		return nil, herr
	}
	if !obj.dups {
		obj.raw = v.Raw
	}
	return obj, nil
}

// syntaxError describes what is wrong with data, which is not valid JSON.
// It runs only for refused input, so its cost (encoding/json's scanner)
// does not matter.
func syntaxError(data string) *httpError {
	dec := json.NewDecoder(strings.NewReader(data))
	var v json.RawMessage
	if err := dec.Decode(&v); err != nil {
		return malformed(err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return badRequest("malformed JSON: unexpected data after the object")
	}
	return badRequest("malformed JSON")
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

// depth returns how deeply objects and arrays nest in valid JSON data, or
// the number of brackets it opens when that is at most MaxDepth: nesting
// cannot be deeper than that, and counting bytes is much faster than
// following strings.
func depth(data []byte) int {
	if n := bytes.Count(data, []byte{'{'}) + bytes.Count(data, []byte{'['}); n <= MaxDepth {
		return n
	}
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
func parseBatch(data []byte) ([]string, []field, *httpError) {
	if d := depth(data); d > MaxDepth+2 {
		return nil, nil, badRequest("batch nests objects and arrays %d levels deep: an event may nest at most %d", d, MaxDepth)
	}
	body, herr := parseObject(string(data))
	if herr == errNotObject {
		return nil, nil, badRequest(`body must be a JSON object {"batch": [...]}`)
	}
	if herr != nil {
		return nil, nil, herr
	}
	raw, ok := body.get("batch")
	if !ok || raw.typ == gjson.Null {
		return nil, nil, badRequest(`"batch" is required: send {"batch": [event, ...]}`)
	}
	if !strings.HasPrefix(raw.raw, "[") {
		return nil, nil, badRequest(`"batch" must be an array of events`)
	}
	var events []string
	gjson.Parse(raw.raw).ForEach(func(_, ev gjson.Result) bool {
		events = append(events, ev.Raw)
		return true
	})
	if len(events) == 0 {
		return nil, nil, badRequest(`"batch" is empty: send at least one event`)
	}
	var shared []field
	for _, key := range batchShared {
		if f, ok := body.get(key); ok {
			shared = append(shared, *f)
		}
	}
	return events, shared, nil
}

// batchShared are the members of a batch body that apply to each of its
// events lacking its own, as in Segment's batch API.
var batchShared = []string{"context", "integrations", "sentAt"}
