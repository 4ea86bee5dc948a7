package gateway

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
)

// retryAfter is the Retry-After, in seconds, of a 503.
const retryAfter = 1

// httpError is a request refused with a status and a message for the
// client.
type httpError struct {
	status int
	msg    string
}

func (e *httpError) Error() string { return e.msg }

func errorf(status int, format string, args ...any) *httpError {
	return &httpError{status: status, msg: fmt.Sprintf(format, args...)}
}

// badRequest is a 400.
func badRequest(format string, args ...any) *httpError {
	return errorf(http.StatusBadRequest, format, args...)
}

// inBatch prefixes e's message with the batch index i.
func (e *httpError) inBatch(i int) *httpError {
	return &httpError{status: e.status, msg: fmt.Sprintf("batch[%d]: %s", i, e.msg)}
}

// errorBody is the JSON body of every error answer.
type errorBody struct {
	Error string `json:"error"`
}

// writeError answers with e's status and JSON body; a 503 carries
// Retry-After.
func writeError(w http.ResponseWriter, e *httpError) {
	switch e.status {
	case http.StatusServiceUnavailable:
		w.Header().Set("Retry-After", strconv.Itoa(retryAfter))
	case http.StatusRequestEntityTooLarge:
		// The rest of the body is not worth reading to keep the
		// connection.
		w.Header().Set("Connection", "close")
	}
	writeJSON(w, e.status, errorBody{Error: e.msg})
}

// writeJSON answers with status and v as JSON.
func writeJSON(w http.ResponseWriter, status int, v any) {
	body, err := json.Marshal(v)
	if err != nil {
		status, body = http.StatusInternalServerError, []byte(`{"error":"encoding the answer failed"}`)
	}
	writeBody(w, status, append(body, '\n'))
}

// successBody is the answer to every accepted request, built once.
var successBody = []byte(`{"success":true}` + "\n")

// writeBody answers with status and body, a JSON document and a newline.
func writeBody(w http.ResponseWriter, status int, body []byte) {
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("Content-Length", strconv.Itoa(len(body)))
	w.WriteHeader(status)
	w.Write(body) //nolint:errcheck // the client may be gone
}
