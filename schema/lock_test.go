package schema

import (
	"strconv"
	"strings"
	"testing"
)

func TestLockSQLUsesLockClass(t *testing.T) {
	t.Parallel()
	class := strconv.Itoa(int(LockClass))
	for _, sql := range []string{LockSQL, TryLockSQL, UnlockSQL} {
		if !strings.Contains(sql, "("+class+",") {
			t.Errorf("%q does not use LockClass %s", sql, class)
		}
	}
}
