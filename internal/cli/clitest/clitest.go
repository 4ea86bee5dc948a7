// Package clitest holds test helpers for programs built on package cli.
package clitest

import (
	"errors"
	"strings"
	"testing"

	"github.com/ordo-pipeline/ordo/internal/cli"
)

// CheckUsageError fails t unless err is what a program exits 2 for (a
// cli.SettingError or cli.ErrUsage), on one line, naming want.
func CheckUsageError(t testing.TB, what string, err error, want string) {
	t.Helper()
	var se *cli.SettingError
	if !errors.As(err, &se) && !errors.Is(err, cli.ErrUsage) {
		t.Errorf("%s: error = %v, want a SettingError or ErrUsage (exit status 2)", what, err)
	}
	if err == nil || !strings.Contains(err.Error(), want) {
		t.Errorf("%s: error = %v, want one naming %s", what, err, want)
	}
	if err != nil && strings.Contains(err.Error(), "\n") {
		t.Errorf("%s: error = %q, want one line", what, err)
	}
}
