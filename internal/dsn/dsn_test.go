package dsn

import (
	"strings"
	"testing"
)

func TestRedact(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct{ in, want string }{
		{"postgres://u:secret@h:5432/db", "postgres://u:xxxxx@h:5432/db"},
		{"postgres://u@h/db", "postgres://u@h/db"},
		{"postgres://h/db?password=secret", "postgres://h/db?password=xxxxx"},
		{"host=h password=secret user=u", "host=h password=xxxxx user=u"},
		// Regression: a password whose '#' was not percent-encoded was
		// read by url.Parse as the start of a fragment, and shown whole.
		{"postgres://u:pa#secret@h:1/db", "postgres://u:xxxxx@h:1/db"},
		{"postgres://u:p?a/s@secret@h/db?sslmode=disable", "postgres://u:xxxxx@h/db?sslmode=disable"},
		{"postgres://u:secret@[::1/db", "postgres://u:xxxxx@[::1/db"},
		{"postgres://u:p%21secret@h/db", "postgres://u:xxxxx@h/db"},
		{"postgres://h/db?sslmode=disable&password=secret&x=1", "postgres://h/db?sslmode=disable&password=xxxxx&x=1"},
		{"host=h password='se cret' user=u", "host=h password=xxxxx user=u"},
		{`host=h password='it\'s secret' user=u`, "host=h password=xxxxx user=u"},
		{"host=h password = secret", "host=h password = xxxxx"},
		{"not a url", "not a url"},
	} {
		if got := Redact(tc.in); got != tc.want {
			t.Errorf("Redact(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

func TestParseNodes(t *testing.T) {
	t.Parallel()
	nodes, err := ParseNodes("a=postgres://h1/db, b=postgresql://u:p@h2:5433/db?sslmode=disable")
	if err != nil {
		t.Fatal(err)
	}
	if len(nodes) != 2 || nodes[0] != (Node{"a", "postgres://h1/db"}) || nodes[1].Name != "b" || nodes[1].URL != "postgresql://u:p@h2:5433/db?sslmode=disable" {
		t.Fatalf("ParseNodes = %+v", nodes)
	}
	for _, bad := range []string{"", "a", "a=", "=postgres://h/db", "a=http://h/db", "a=postgres://h/db,a=postgres://h2/db", "a b=postgres://h/db", "a=postgres://h/db,"} {
		if _, err := ParseNodes(bad); err == nil {
			t.Errorf("ParseNodes(%q) succeeded, want an error", bad)
		}
	}
}

func TestParseNodesRefusesBadURLsAndTwinNodes(t *testing.T) {
	t.Parallel()
	for _, bad := range []string{
		"a=postgres://h:notaport/db",
		"a=postgres://h/db?sslmode=bogus",
		"a=postgres://h:5432/db,b=postgres://u:p@h:5432/db?sslmode=disable",
	} {
		if _, err := ParseNodes(bad); err == nil {
			t.Errorf("ParseNodes(%q) succeeded, want an error", bad)
		} else if strings.Contains(err.Error(), "\n") || strings.Contains(err.Error(), ":p@") {
			t.Errorf("ParseNodes(%q) error %q is not one line without the password", bad, err)
		}
	}
	if _, err := ParseNodes("a=postgres://h:5432/db1,b=postgres://h:5432/db2"); err != nil {
		t.Errorf("two databases on one server: %v", err)
	}
}

func TestCheck(t *testing.T) {
	t.Parallel()
	if err := Check("postgres://u:secret@h:5432/db?sslmode=disable"); err != nil {
		t.Errorf("Check(good) = %v", err)
	}
	err := Check("postgres://u:secret@h:notaport/db")
	if err == nil || strings.Contains(err.Error(), "secret") {
		t.Errorf("Check(bad port) = %v, want an error without the password", err)
	}
}
