package gateway

import (
	"net/http"
	"strings"
	"testing"
)

// TestRequiredMembers checks what each type's required member may hold:
// track's event is a non-empty string; group's groupId and alias's
// previousId are any value but null or "".
func TestRequiredMembers(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		typ, member, value string
		ok                 bool
	}{
		{"group", "groupId", `"g1"`, true},
		{"group", "groupId", `42`, true},
		{"group", "groupId", `0`, true},
		{"group", "groupId", `{"id": 1}`, true},
		{"group", "groupId", `[1]`, true},
		{"group", "groupId", `false`, true},
		{"group", "groupId", `null`, false},
		{"group", "groupId", `""`, false},
		{"group", "groupId", ``, false},
		{"alias", "previousId", `"anon-1"`, true},
		{"alias", "previousId", `7`, true},
		{"alias", "previousId", `null`, false},
		{"alias", "previousId", `""`, false},
		{"alias", "previousId", ``, false},
		{"track", "event", `"Signed Up"`, true},
		{"track", "event", `5`, false},
		{"track", "event", `""`, false},
		{"track", "event", `null`, false},
	} {
		body := `{"userId": "u1"}`
		if tc.value != "" {
			body = `{"userId": "u1", "` + tc.member + `": ` + tc.value + `}`
		}
		_, herr := decodeEvent([]byte(body), tc.typ, nil)
		switch {
		case tc.ok && herr != nil:
			t.Errorf("%s %s: refused: %s", tc.typ, body, herr.msg)
		case !tc.ok && herr == nil:
			t.Errorf("%s %s: accepted, want 400", tc.typ, body)
		case !tc.ok && (herr.status != http.StatusBadRequest || !strings.Contains(herr.msg, `"`+tc.member+`"`)):
			t.Errorf("%s %s: %d %q, want 400 naming %q", tc.typ, body, herr.status, herr.msg, tc.member)
		}
	}
}
