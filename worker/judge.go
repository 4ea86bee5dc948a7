package worker

import (
	"time"

	"github.com/ordo-pipeline/ordo/deliver"
	"github.com/ordo-pipeline/ordo/workspace"
)

// Judging a failed attempt: retried or dead-lettered, and what of the
// response is kept.

// outcome is what a failed attempt means for one row.
type outcome int

const (
	retryLater outcome = iota
	deadMaxAttempts
	deadMaxAge
)

// judge decides whether a row whose attempts-th attempt just failed with a
// retryable error is retried or dead-lettered, under policy p.
func judge(r *row, attempts int, p workspace.RetryPolicy, now time.Time) outcome {
	switch {
	case attempts >= p.MaxAttempts:
		return deadMaxAttempts
	case now.Sub(r.receivedAt) >= p.MaxAge:
		return deadMaxAge
	}
	return retryLater
}

func (o outcome) reason() string {
	switch o {
	case deadMaxAttempts:
		return "max_attempts"
	case deadMaxAge:
		return "max_age"
	}
	return ""
}

// responseText is what is kept of a response: its body, or the error when
// no response came, made storable (deliver.Storable).
func responseText(res deliver.Result) string {
	if res.Status == 0 && res.Err != nil {
		return deliver.Storable(res.Err.Error())
	}
	return deliver.Storable(res.Body)
}
