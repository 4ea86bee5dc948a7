// Package dsn handles Postgres connection strings as ordo shows and parses
// them: node lists from ORDO_NODES and passwords kept out of logs.
package dsn

import (
	"errors"
	"fmt"
	"net/url"
	"regexp"
	"strings"

	"github.com/jackc/pgx/v5/pgconn"
)

// Redact returns s with any password replaced by "xxxxx", for logs and
// status output: in a URL, the password of its user information and a
// password= query parameter; in a key/value connection string, its
// password=... pair. The user information of a URL ends at its last '@',
// so that a password whose '#', '?', '/' or '@' was not percent-encoded
// (which url.Parse would read as the start of a fragment, a query or a
// path) is redacted whole; a string that only looks like a URL is
// redacted rather than shown.
func Redact(s string) string {
	if scheme, rest, ok := strings.Cut(s, "://"); ok && !strings.ContainsAny(scheme, " =") {
		if at := strings.LastIndexByte(rest, '@'); at >= 0 {
			if user, _, hasPassword := strings.Cut(rest[:at], ":"); hasPassword {
				s = scheme + "://" + user + ":xxxxx" + rest[at:]
			}
		}
	}
	return kvPassword.ReplaceAllString(s, "${1}xxxxx")
}

// kvPassword is a password=... pair, of a key/value connection string
// (quoted or not) or of a URL's query.
var kvPassword = regexp.MustCompile(`(password\s*=\s*)('(?:[^'\\]|\\.)*'|[^\s&]+)`)

// Check reports whether s is a Postgres connection string pgx can use,
// without connecting. Its error holds no password.
func Check(s string) error {
	if _, err := pgconn.ParseConfig(s); err != nil {
		return errors.New(firstLine(Redact(err.Error())))
	}
	return nil
}

func firstLine(s string) string {
	s, _, _ = strings.Cut(s, "\n")
	return s
}

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
	databases := map[string]string{} // host:port/db → node name
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
		cfg, err := pgconn.ParseConfig(u)
		if err != nil {
			return nil, fmt.Errorf("node %q: %s", name, firstLine(Redact(err.Error())))
		}
		// Two names for one database would move shards onto themselves.
		id := fmt.Sprintf("%s:%d/%s", cfg.Host, cfg.Port, cfg.Database)
		if other, dup := databases[id]; dup {
			return nil, fmt.Errorf("nodes %q and %q are the same database (%s)", other, name, id)
		}
		databases[id] = name
		nodes = append(nodes, Node{Name: name, URL: u})
	}
	return nodes, nil
}
