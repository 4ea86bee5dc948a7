package gateway

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strconv"
	"testing"
)

// TestSuccessBody checks the prebuilt answer to an accepted request is the
// JSON {"success": true} with a newline, with its type and length.
func TestSuccessBody(t *testing.T) {
	t.Parallel()
	want, err := json.Marshal(map[string]bool{"success": true})
	if err != nil {
		t.Fatal(err)
	}
	want = append(want, '\n')
	for range 2 { // the shared body is not changed by use
		rec := httptest.NewRecorder()
		writeBody(rec, http.StatusOK, successBody)
		if rec.Code != http.StatusOK || rec.Body.String() != string(want) {
			t.Errorf("answer %d %q, want 200 %q", rec.Code, rec.Body.String(), want)
		}
		if got := rec.Header().Get("Content-Type"); got != "application/json" {
			t.Errorf("Content-Type %q, want application/json", got)
		}
		if got := rec.Header().Get("Content-Length"); got != strconv.Itoa(len(want)) {
			t.Errorf("Content-Length %s, want %d", got, len(want))
		}
	}
}
