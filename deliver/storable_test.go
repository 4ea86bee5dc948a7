package deliver

import (
	"strings"
	"testing"
	"unicode/utf8"
)

// TestStorableKeepsUTF8 cuts texts of 1-, 2-, 3- and 4-byte characters at
// every offset around MaxResponseBody: what is kept is valid UTF-8, at
// most MaxResponseBody bytes, and holds no NUL.
func TestStorableKeepsUTF8(t *testing.T) {
	t.Parallel()
	for _, c := range []string{"a", "é", "€", "😀"} {
		for pad := range 4 {
			s := strings.Repeat("x", pad) + strings.Repeat(c, MaxResponseBody)
			got := Storable(s)
			if len(got) > MaxResponseBody || !utf8.ValidString(got) || len(got) < MaxResponseBody-utf8.UTFMax {
				t.Errorf("Storable(%d×%q after %d bytes): %d bytes, valid %v", MaxResponseBody, c, pad, len(got), utf8.ValidString(got))
			}
		}
	}
	if got := Storable("a\x00b\xffc"); got != "ab\uFFFDc" {
		t.Errorf("Storable(NUL and invalid byte) = %q, want %q", got, "ab\uFFFDc")
	}
}
