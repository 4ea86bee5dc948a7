package proctest

import (
	"io"
	"net"
	"net/http"
	"strconv"
	"testing"
	"time"

	"github.com/ordo-pipeline/ordo/internal/pgtest"
)

// FreeAddr returns a 127.0.0.1 address whose port was free a moment ago,
// for a program to listen on (pgtest.FreePort).
func FreeAddr(t testing.TB) string {
	t.Helper()
	port, err := pgtest.FreePort()
	if err != nil {
		t.Fatal(err)
	}
	return net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
}

// WaitReady polls url until it answers 200, and fails t when it has not
// within the given time.
func WaitReady(t testing.TB, url string, within time.Duration) {
	t.Helper()
	deadline := time.Now().Add(within)
	for time.Now().Before(deadline) {
		if resp, err := http.Get(url); err == nil {
			io.Copy(io.Discard, resp.Body) //nolint:errcheck // draining
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("%s not ready within %s", url, within)
}
