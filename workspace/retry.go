package workspace

import (
	"bytes"
	"encoding/json"
	"fmt"
	"time"

	"github.com/ordo-pipeline/ordo/deliver"
	"github.com/ordo-pipeline/ordo/internal/jsonstrict"
)

// Default retry policy values.
const (
	DefaultInitialBackoff = time.Second
	DefaultMaxBackoff     = 5 * time.Minute
	DefaultMaxAttempts    = 10
	DefaultMaxAge         = 3 * time.Hour
)

// RetryPolicy says how a destination's failed deliveries are retried.
type RetryPolicy struct {
	// InitialBackoff is the wait after the first failed attempt; later
	// waits double up to MaxBackoff. Defaults to 1 second.
	InitialBackoff time.Duration

	// MaxBackoff is the longest wait between attempts, at least
	// InitialBackoff. Defaults to 5 minutes.
	MaxBackoff time.Duration

	// MaxAttempts is how many attempts an event gets before it is
	// dead-lettered, at least 1. Defaults to 10.
	MaxAttempts int

	// MaxAge is how long after it was received an event is still retried;
	// after that it is dead-lettered instead of being tried again. Defaults to
	// 3 hours.
	MaxAge time.Duration
}

// DefaultRetryPolicy returns the retry policy of a destination whose retry
// object is absent.
func DefaultRetryPolicy() RetryPolicy {
	return RetryPolicy{
		InitialBackoff: DefaultInitialBackoff,
		MaxBackoff:     DefaultMaxBackoff,
		MaxAttempts:    DefaultMaxAttempts,
		MaxAge:         DefaultMaxAge,
	}
}

// Backoff returns the wait after the attempt-th failed attempt (counting
// from 1) under p; see deliver.Backoff.
func (p RetryPolicy) Backoff(attempt int) time.Duration {
	return deliver.Backoff(p.InitialBackoff, p.MaxBackoff, attempt)
}

// rawRetry is a retry object as written; nil fields take their defaults.
type rawRetry struct {
	InitialBackoff *string `json:"initialBackoff"`
	MaxBackoff     *string `json:"maxBackoff"`
	MaxAttempts    *int    `json:"maxAttempts"`
	MaxAge         *string `json:"maxAge"`
}

// parseRetry parses a destination's retry object, nil when absent.
func parseRetry(data json.RawMessage) (RetryPolicy, error) {
	p := DefaultRetryPolicy()
	if len(data) == 0 || bytes.Equal(data, []byte("null")) {
		return p, nil
	}
	var raw rawRetry
	if err := jsonstrict.Decode(data, &raw); err != nil {
		return RetryPolicy{}, err
	}
	for _, d := range []struct {
		name  string
		value *string
		dst   *time.Duration
	}{
		{"initialBackoff", raw.InitialBackoff, &p.InitialBackoff},
		{"maxBackoff", raw.MaxBackoff, &p.MaxBackoff},
		{"maxAge", raw.MaxAge, &p.MaxAge},
	} {
		if d.value == nil {
			continue
		}
		v, err := time.ParseDuration(*d.value)
		if err != nil {
			return RetryPolicy{}, fmt.Errorf("%s: %w", d.name, err)
		}
		if v <= 0 {
			return RetryPolicy{}, fmt.Errorf("%s %q must be positive", d.name, *d.value)
		}
		*d.dst = v
	}
	if raw.MaxAttempts != nil {
		if *raw.MaxAttempts < 1 {
			return RetryPolicy{}, fmt.Errorf("maxAttempts %d must be at least 1", *raw.MaxAttempts)
		}
		p.MaxAttempts = *raw.MaxAttempts
	}
	if p.MaxBackoff < p.InitialBackoff {
		return RetryPolicy{}, fmt.Errorf("maxBackoff %s is less than initialBackoff %s", p.MaxBackoff, p.InitialBackoff)
	}
	return p, nil
}
