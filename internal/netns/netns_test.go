package netns

import (
	"context"
	"errors"
	"io"
	"net"
	"os"
	"strings"
	"testing"
	"time"
)

// TestCutIsSilent links two namespaces, checks that they talk by name,
// cuts the link (a connection then neither delivers nor fails: nothing
// comes back, not even a reset) and heals it (the same connection
// delivers again).
func TestCutIsSilent(t *testing.T) {
	nw := New(t)
	a, b := nw.Add("a"), nw.Add("b")
	l := nw.Connect(a, b)
	hosts, err := os.ReadFile("/etc/netns/" + a.Full + "/hosts")
	if err != nil || !strings.Contains(string(hosts), l.AddrB+" b") {
		t.Fatalf("a's hosts file: %q (err %v), want b at %s", hosts, err, l.AddrB)
	}
	ln, err := b.Listen("tcp", l.AddrB+":7000")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go io.Copy(c, c) //nolint:errcheck // echo until closed
		}
	}()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	c, err := a.Dial(ctx, "tcp", l.AddrB+":7000")
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	echo := func(within time.Duration) error {
		if err := c.SetDeadline(time.Now().Add(within)); err != nil {
			return err
		}
		if _, err := c.Write([]byte("ping")); err != nil {
			return err
		}
		buf := make([]byte, 4)
		_, err := io.ReadFull(c, buf)
		return err
	}
	if err := echo(2 * time.Second); err != nil {
		t.Fatalf("echo before the cut: %v", err)
	}
	if err := l.Cut(); err != nil {
		t.Fatal(err)
	}
	err = echo(500 * time.Millisecond)
	var ne net.Error
	if ok := errors.As(err, &ne); !ok || !ne.Timeout() {
		t.Fatalf("echo across the cut: %v, want a timeout (no answer, no reset)", err)
	}
	if err := l.Heal(); err != nil {
		t.Fatal(err)
	}
	if err := c.SetDeadline(time.Now().Add(3 * time.Second)); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 4) // the echo of the ping sent across the cut
	if _, err := io.ReadFull(c, buf); err != nil {
		t.Fatalf("the ping sent during the cut, after the heal: %v", err)
	}
	if err := echo(3 * time.Second); err != nil {
		t.Fatalf("echo after the heal: %v", err)
	}
}
