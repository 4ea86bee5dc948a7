// Package dsn handles Postgres connection strings as ordo shows and parses
// them: node lists from ORDO_NODES and passwords kept out of logs.
package dsn

import (
	"fmt"
	"net/url"
	"regexp"
	"strings"
)

// Redact returns s with any password replaced by "xxxxx", for logs and
// status output. Strings that are not URLs are returned with
// password=... key/value pairs redacted.
func Redact(s string) string {
	u, err := url.Parse(s)
	if err != nil || u.Scheme == "" {
		return kvPassword.ReplaceAllString(s, "password=xxxxx")
	}
	if _, ok := u.User.Password(); ok {
		u.User = url.UserPassword(u.User.Username(), "xxxxx")
	}
	q := u.Query()
	if q.Has("password") {
		q.Set("password", "xxxxx")
		u.RawQuery = q.Encode()
	}
	return u.String()
}

var kvPassword = regexp.MustCompile(`password=\S+`)

// Node is one storage node: a name and its Postgres URL.
type Node struct {
	Name string
	URL  string
}

// validName is what a node name may hold: it appears in tables, metrics
// and logs.
var validName = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$`)

// ParseNodes parses a comma-separated list of name=postgres-url pairs, as
// in ORDO_NODES. Names must be unique and URLs must be postgres:// or
// postgresql:// URLs.
func ParseNodes(s string) ([]Node, error) {
	var nodes []Node
	seen := map[string]bool{}
	for i, part := range strings.Split(s, ",") {
		part = strings.TrimSpace(part)
		if part == "" {
			return nil, fmt.Errorf("entry %d is empty", i+1)
		}
		name, u, ok := strings.Cut(part, "=")
		name, u = strings.TrimSpace(name), strings.TrimSpace(u)
		if !ok || name == "" || u == "" {
			return nil, fmt.Errorf("entry %d (%q) is not name=postgres-url", i+1, Redact(part))
		}
		if !validName.MatchString(name) {
			return nil, fmt.Errorf("node name %q: use letters, digits, '_', '.', '-' (at most 63)", name)
		}
		if seen[name] {
			return nil, fmt.Errorf("node %q is listed twice", name)
		}
		seen[name] = true
		parsed, err := url.Parse(u)
		if err != nil || (parsed.Scheme != "postgres" && parsed.Scheme != "postgresql") || parsed.Host == "" {
			return nil, fmt.Errorf("node %q: %q is not a postgres:// URL", name, Redact(u))
		}
		nodes = append(nodes, Node{Name: name, URL: u})
	}
	return nodes, nil
}
