package gateway

import (
	"net/url"
	"strings"
	"testing"
	"time"
)

// TestPixelRefusesInvalidUTF8 is the regression test of pixels with
// invalid UTF-8: userId=u%ff was stored as "u\ufffd", the same user as
// u%fe, where a POST body with those bytes is refused.
func TestPixelRefusesInvalidUTF8(t *testing.T) {
	t.Parallel()
	for _, q := range []string{"userId=u%ff&event=e", "userId=u&event=e&properties.n%fe=1", "userId=u&event=%c3%28"} {
		query, err := url.ParseQuery(q)
		if err != nil {
			t.Fatal(err)
		}
		_, herr := pixelEvent(query, "track", time.Now())
		if herr == nil || herr.status != 400 || !strings.Contains(herr.msg, "UTF-8") {
			t.Errorf("pixel %s: %v, want 400 naming UTF-8", q, herr)
		}
	}
	query, _ := url.ParseQuery("userId=u%C3%A9&event=caf%C3%A9")
	if body, herr := pixelEvent(query, "track", time.Now()); herr != nil || !strings.Contains(string(body), `"userId":"ué"`) {
		t.Errorf("pixel with valid UTF-8: %s, %v", body, herr)
	}
}
