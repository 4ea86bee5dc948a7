package deadletter

import (
	"strings"
	"testing"

	"github.com/ordo-pipeline/ordo/internal/cli/clitest"
)

func TestRunRefusesBadCommandLines(t *testing.T) {
	t.Parallel()
	env := map[string]string{"ORDO_CATALOG_URL": "postgres://nobody@127.0.0.1:1/none"}
	for _, tc := range []struct {
		args []string
		want string
	}{
		{nil, "needs a command"},
		{[]string{"show"}, `unknown dead-letters command "show"`},
		{[]string{"list", "--status", "4xx"}, "--status"},
		{[]string{"list", "--since", "soon"}, "--since"},
		{[]string{"list", "--limit", "-3"}, "--limit"},
		{[]string{"list", "hook"}, `unexpected argument "hook"`},
		{[]string{"replay", "--yes"}, "-yes"},
		{[]string{"count", "--colour", "red"}, "-colour"},
	} {
		var out strings.Builder
		err := Run(t.Context(), tc.args, env, IO{In: strings.NewReader(""), Out: &out, ErrOut: &out})
		clitest.CheckUsageError(t, strings.Join(tc.args, " "), err, tc.want)
	}
	err := Run(t.Context(), []string{"count"}, map[string]string{}, IO{Out: &strings.Builder{}, ErrOut: &strings.Builder{}})
	clitest.CheckUsageError(t, "no catalog", err, "ORDO_CATALOG_URL")

	var help strings.Builder
	if err := Run(t.Context(), []string{"purge", "--help"}, env, IO{Out: &help, ErrOut: &help}); err != nil || !strings.Contains(help.String(), "-yes") || !strings.Contains(help.String(), "ORDO_CATALOG_URL") {
		t.Errorf("purge --help: %v\n%s", err, help.String())
	}
	// An unreachable catalog is a clear error, not a usage error.
	err = Run(t.Context(), []string{"count"}, env, IO{Out: &strings.Builder{}, ErrOut: &strings.Builder{}})
	if err == nil || !strings.Contains(err.Error(), "connecting to the catalog") || strings.Contains(err.Error(), "\n") {
		t.Errorf("unreachable catalog: %v", err)
	}
}
