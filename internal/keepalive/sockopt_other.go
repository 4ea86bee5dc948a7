//go:build !linux

package keepalive

import (
	"syscall"
	"time"
)

// userTimeout returns nil: TCP_USER_TIMEOUT is Linux's; keepalives still
// apply.
func userTimeout(time.Duration) func(network, address string, c syscall.RawConn) error {
	return nil
}
