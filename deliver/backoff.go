package deliver

import (
	"math/rand/v2"
	"time"
)

// backoffJitter is the relative jitter Backoff applies: ±10%.
const backoffJitter = 0.1

// Backoff returns how long to wait after the attempt-th failed attempt of a
// delivery before trying again. Attempts count from 1: after the first
// failure the wait is about initialBackoff, and it doubles with every
// further failure until it reaches maxBackoff.
//
// The wait is spread by a random ±10% so that keys that failed together do
// not all retry in the same instant, then clamped to
// [initialBackoff, maxBackoff]: it never falls below initialBackoff nor
// exceeds maxBackoff. An attempt below 1 counts as 1; a maxBackoff below
// initialBackoff counts as initialBackoff; an initialBackoff of 0 or less
// gives 0.
func Backoff(initialBackoff, maxBackoff time.Duration, attempt int) time.Duration {
	if initialBackoff <= 0 {
		return 0
	}
	maxBackoff = max(maxBackoff, initialBackoff)
	d := initialBackoff
	for i := 1; i < attempt && d < maxBackoff; i++ {
		if d > maxBackoff/2 {
			d = maxBackoff
			break
		}
		d *= 2
	}
	jittered := float64(d) * (1 + backoffJitter*(2*rand.Float64()-1))
	if jittered >= float64(maxBackoff) {
		return maxBackoff
	}
	return max(time.Duration(jittered), initialBackoff)
}
