package cli

import (
	"fmt"
	"net"
	"strconv"
)

// CheckAddr checks a listen address such as ":8080" or "127.0.0.1:0".
func CheckAddr(addr string) error {
	_, port, err := net.SplitHostPort(addr)
	if err != nil {
		return fmt.Errorf("not a listen address like :8080: %q", addr)
	}
	if n, err := strconv.Atoi(port); err != nil || n < 0 || n > 65535 {
		return fmt.Errorf("port %q must be a number between 0 and 65535", port)
	}
	return nil
}
