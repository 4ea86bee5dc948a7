package worker

import (
	"testing"
	"time"

	"github.com/ordo-pipeline/ordo/workspace"
)

func TestJudge(t *testing.T) {
	t.Parallel()
	now := time.Now()
	p := workspace.DefaultRetryPolicy()
	r := &row{receivedAt: now.Add(-time.Minute)}
	if got := judge(r, 1, p, now); got != retryLater {
		t.Errorf("judge(first attempt) = %v, want retryLater", got)
	}
	if got := judge(r, p.MaxAttempts, p, now); got != deadMaxAttempts {
		t.Errorf("judge(max attempts) = %v, want deadMaxAttempts", got)
	}
	old := &row{receivedAt: now.Add(-p.MaxAge)}
	if got := judge(old, 1, p, now); got != deadMaxAge {
		t.Errorf("judge(max age) = %v, want deadMaxAge", got)
	}
}
