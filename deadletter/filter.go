package deadletter

import (
	"fmt"
	"strconv"
	"strings"
	"time"
)

// Filter selects dead letters. The zero Filter selects all of them.
type Filter struct {
	// Destination is a destination id, matched exactly.
	Destination string
	// Reason matches when the reason contains it, ignoring case
	// ("status 400", "max attempts", "max age", "timeout").
	Reason string
	// Status is the last HTTP status; 0 selects dead letters that got no
	// response (connection errors, timeouts). Nil: any.
	Status *int
	// Key is an ordering key (userId or anonymousId), matched exactly.
	Key string
	// MessageID is an event's messageId, matched exactly.
	MessageID string
	// Since and Until bound when the event was dead-lettered: at or after
	// Since, before Until. Zero: unbounded.
	Since, Until time.Time
}

// FilterFields are the names ParseFilter takes, in the order help shows
// them; the command line has a flag and the console a query parameter of
// each name.
var FilterFields = []struct{ Name, Help string }{
	{"destination", "only dead letters of this destination id"},
	{"reason", "only those whose reason contains this text, ignoring case (e.g. \"status 400\", \"max age\")"},
	{"status", "only those whose last HTTP status is this code (100-599), or \"none\" for no response"},
	{"key", "only those of this ordering key (userId, or anonymousId without one)"},
	{"message-id", "only the dead letters of this messageId"},
	{"since", "only those dead-lettered at or after this time: RFC 3339, YYYY-MM-DD, or a duration ago (90m, 2h, 7d)"},
	{"until", "only those dead-lettered before this time (same forms as since)"},
}

// FilterError is a filter value that cannot be used.
type FilterError struct {
	Field string // a name of FilterFields
	Msg   string
}

func (e *FilterError) Error() string { return e.Field + ": " + e.Msg }

// ParseFilter builds a Filter from values, keyed by the names of
// FilterFields; empty values are ignored. Relative times count back from
// now. Its error is a *FilterError naming the field.
func ParseFilter(values map[string]string, now time.Time) (Filter, error) {
	var f Filter
	for name := range values {
		if !knownField(name) {
			return f, &FilterError{Field: name, Msg: "not a filter (want one of " + fieldNames() + ")"}
		}
	}
	f.Destination = strings.TrimSpace(values["destination"])
	f.Reason = strings.TrimSpace(values["reason"])
	f.Key = values["key"]
	f.MessageID = strings.TrimSpace(values["message-id"])
	if s := strings.TrimSpace(values["status"]); s != "" {
		code := 0
		if !strings.EqualFold(s, "none") {
			n, err := strconv.Atoi(s)
			if err != nil || n < 100 || n > 599 {
				return f, &FilterError{Field: "status", Msg: fmt.Sprintf("%q is not an HTTP status (100-599) or \"none\"", s)}
			}
			code = n
		}
		f.Status = &code
	}
	var err error
	if f.Since, err = parseTime("since", values["since"], now); err != nil {
		return f, err
	}
	if f.Until, err = parseTime("until", values["until"], now); err != nil {
		return f, err
	}
	if !f.Since.IsZero() && !f.Until.IsZero() && !f.Since.Before(f.Until) {
		return f, &FilterError{Field: "until", Msg: fmt.Sprintf("%s is not after since (%s)", f.Until.Format(time.RFC3339), f.Since.Format(time.RFC3339))}
	}
	return f, nil
}

func knownField(name string) bool {
	for _, f := range FilterFields {
		if f.Name == name {
			return true
		}
	}
	return false
}

func fieldNames() string {
	names := make([]string, len(FilterFields))
	for i, f := range FilterFields {
		names[i] = f.Name
	}
	return strings.Join(names, ", ")
}

// parseTime reads an absolute time (RFC 3339, or a UTC date and time) or
// a duration before now (Go's syntax, plus d for days).
func parseTime(field, s string, now time.Time) (time.Time, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return time.Time{}, nil
	}
	for _, layout := range []string{time.RFC3339Nano, "2006-01-02T15:04", "2006-01-02 15:04", "2006-01-02"} {
		if t, err := time.Parse(layout, s); err == nil {
			return t, nil
		}
	}
	d, err := parseAgo(s)
	if err != nil {
		return time.Time{}, &FilterError{Field: field, Msg: fmt.Sprintf("%q is neither a time (RFC 3339 or YYYY-MM-DD) nor a duration ago (90m, 2h, 7d)", s)}
	}
	return now.Add(-d), nil
}

func parseAgo(s string) (time.Duration, error) {
	if days, ok := strings.CutSuffix(s, "d"); ok {
		n, err := strconv.ParseFloat(days, 64)
		if err != nil || n < 0 {
			return 0, fmt.Errorf("bad days %q", s)
		}
		return time.Duration(n * float64(24*time.Hour)), nil
	}
	d, err := time.ParseDuration(s)
	if err != nil || d < 0 {
		return 0, fmt.Errorf("bad duration %q", s)
	}
	return d, nil
}

// Values returns f as ParseFilter's input, with absolute times.
func (f Filter) Values() map[string]string {
	v := map[string]string{}
	set := func(k, s string) {
		if s != "" {
			v[k] = s
		}
	}
	set("destination", f.Destination)
	set("reason", f.Reason)
	set("key", f.Key)
	set("message-id", f.MessageID)
	if f.Status != nil {
		if *f.Status == 0 {
			v["status"] = "none"
		} else {
			v["status"] = strconv.Itoa(*f.Status)
		}
	}
	if !f.Since.IsZero() {
		v["since"] = f.Since.UTC().Format(time.RFC3339Nano)
	}
	if !f.Until.IsZero() {
		v["until"] = f.Until.UTC().Format(time.RFC3339Nano)
	}
	return v
}

// IsZero reports whether f selects every dead letter.
func (f Filter) IsZero() bool { return len(f.Values()) == 0 }

// where returns f as the condition of a WHERE clause on ordo.dead_letters,
// appending its parameters to args.
func (f Filter) where(args *[]any) string {
	conds := []string{"true"}
	add := func(cond string, v any) {
		*args = append(*args, v)
		conds = append(conds, strings.Replace(cond, "?", "$"+strconv.Itoa(len(*args)), 1))
	}
	if f.Destination != "" {
		add("destination_id = ?", f.Destination)
	}
	if f.Reason != "" {
		add(`reason ILIKE ? ESCAPE '\'`, "%"+likeEscaper.Replace(f.Reason)+"%")
	}
	if f.Status != nil {
		if *f.Status == 0 {
			conds = append(conds, "last_status IS NULL")
		} else {
			add("last_status = ?", *f.Status)
		}
	}
	if f.Key != "" {
		add("ordering_key = ?", f.Key)
	}
	if f.MessageID != "" {
		add("message_id = ?", f.MessageID)
	}
	if !f.Since.IsZero() {
		add("failed_at >= ?", f.Since)
	}
	if !f.Until.IsZero() {
		add("failed_at < ?", f.Until)
	}
	return strings.Join(conds, " AND ")
}

var likeEscaper = strings.NewReplacer(`\`, `\\`, `%`, `\%`, `_`, `\_`)
