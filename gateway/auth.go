package gateway

import (
	"encoding/json"
	"net/http"

	"github.com/ordo-pipeline/ordo/workspace"
)

var errMissingWriteKey = errorf(http.StatusUnauthorized,
	`missing write key: send it as the user name of HTTP Basic authentication, as ?writeKey=, or as the body's "writeKey"`)

// authenticate reads r's body and returns the source whose write key r
// carries: the user name of its HTTP Basic credentials (the password is
// ignored), else its ?writeKey= query parameter, as browser SDKs send
// with navigator.sendBeacon, else the top-level "writeKey" of its JSON
// body, as Segment's analytics.js sends. The body is read only once the
// key is known to be good, unless the key must come from it.
func (g *Gateway) authenticate(w http.ResponseWriter, r *http.Request) (*workspace.Source, []byte, *httpError) {
	key := requestWriteKey(r)
	var data []byte
	if key == "" {
		var herr *httpError
		if data, herr = readBody(w, r); herr != nil {
			return nil, nil, herr
		}
		if key = bodyWriteKey(data); key == "" {
			return nil, nil, errMissingWriteKey
		}
	}
	src, ok := g.ws.SourceByWriteKey(key)
	if !ok {
		return nil, nil, errorf(http.StatusUnauthorized, "unknown write key")
	}
	if data == nil {
		var herr *httpError
		if data, herr = readBody(w, r); herr != nil {
			return nil, nil, herr
		}
	}
	return src, data, nil
}

// requestWriteKey returns the write key r carries outside its body: the
// user name of its HTTP Basic credentials, else its ?writeKey= query
// parameter; "" when it has neither.
func requestWriteKey(r *http.Request) string {
	if key, _, ok := r.BasicAuth(); ok && key != "" {
		return key
	}
	return r.URL.Query().Get("writeKey")
}

// bodyWriteKey returns the string "writeKey" member of the JSON object
// data, or "" when data is no such object. Only requests without any
// other write key pay for this second decoding of their body.
func bodyWriteKey(data []byte) string {
	var body struct {
		WriteKey json.RawMessage `json:"writeKey"`
	}
	if json.Unmarshal(data, &body) != nil {
		return ""
	}
	var key string
	if json.Unmarshal(body.WriteKey, &key) != nil {
		return ""
	}
	return key
}
