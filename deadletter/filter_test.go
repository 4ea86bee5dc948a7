package deadletter

import (
	"errors"
	"testing"
	"time"
)

func TestParseFilter(t *testing.T) {
	t.Parallel()
	now := time.Date(2025, 3, 10, 12, 0, 0, 0, time.UTC)
	f, err := ParseFilter(map[string]string{"destination": "hook", "status": "400", "since": "2h", "until": "2025-03-10", "key": "u1"}, now)
	if err == nil {
		t.Fatalf("until before since accepted: %+v", f)
	}
	f, err = ParseFilter(map[string]string{"destination": " hook ", "status": "400", "since": "7d", "until": "30m", "key": "u 1", "reason": "50%_"}, now)
	if err != nil {
		t.Fatal(err)
	}
	if f.Destination != "hook" || *f.Status != 400 || f.Key != "u 1" || !f.Since.Equal(now.Add(-7*24*time.Hour)) || !f.Until.Equal(now.Add(-30*time.Minute)) {
		t.Errorf("parsed %+v", f)
	}
	var args []any
	where := f.where(&args)
	if want := `true AND destination_id = $1 AND reason ILIKE $2 ESCAPE '\' AND last_status = $3 AND ordering_key = $4 AND failed_at >= $5 AND failed_at < $6`; where != want {
		t.Errorf("where = %s\nwant    %s", where, want)
	}
	if args[1] != `%50\%\_%` {
		t.Errorf("reason pattern = %v, want %%50\\%%\\_%%", args[1])
	}
	back, err := ParseFilter(f.Values(), now)
	if err != nil || back.Destination != f.Destination || !back.Since.Equal(f.Since) || *back.Status != 400 {
		t.Errorf("Values round trip = %+v, %v", back, err)
	}

	f, err = ParseFilter(map[string]string{"status": "none", "since": "2025-03-01T10:00:00Z"}, now)
	if err != nil || f.Status == nil || *f.Status != 0 || f.Since.Hour() != 10 {
		t.Errorf("status none: %+v, %v", f, err)
	}
	args = nil
	if w := f.where(&args); w != "true AND last_status IS NULL AND failed_at >= $1" {
		t.Errorf("where = %s", w)
	}
	if f, err := ParseFilter(nil, now); err != nil || !f.IsZero() {
		t.Errorf("empty filter: %+v, %v", f, err)
	}

	for _, tc := range []struct{ field, value string }{
		{"status", "4xx"}, {"status", "99"}, {"status", "600"}, {"since", "yesterday"}, {"until", "-2h"}, {"since", "3x"}, {"colour", "red"},
	} {
		_, err := ParseFilter(map[string]string{tc.field: tc.value}, now)
		var fe *FilterError
		if !errors.As(err, &fe) || fe.Field != tc.field {
			t.Errorf("%s=%q: error %v, want a FilterError naming %s", tc.field, tc.value, err, tc.field)
		}
	}
}
