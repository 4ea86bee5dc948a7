package netns

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"

	"golang.org/x/sys/unix"
)

// EnvSkip names the variable that, set to 1, makes New skip the test
// where namespaces cannot be made (not root, no iproute2), instead of
// failing it.
const EnvSkip = "ORDO_TEST_SKIP_NETNS"

// prefix starts the name of every namespace this package makes; the pid
// of the test binary that made it follows.
const prefix = "ordopt"

// Net is a set of namespaces and the links between them.
type Net struct {
	t    testing.TB
	id   string // prefix + pid + sequence
	mu   sync.Mutex
	nss  map[string]*NS
	next int // next link's subnet
}

// NS is one namespace of a Net.
type NS struct {
	net   *Net
	Name  string // the short name given to Add
	Full  string // the namespace's name for `ip netns`
	hosts map[string]string
}

// Link is a point-to-point link between two namespaces.
type Link struct {
	A, B         *NS
	AddrA, AddrB string // each end's address
	ifA, ifB     string
	cut          bool
}

var seq struct {
	sync.Mutex
	n int
}

// New makes an empty network for t, removed when t ends. It fails t, or
// skips it when EnvSkip is 1, where namespaces cannot be made.
func New(t testing.TB) *Net {
	t.Helper()
	if why := unavailable(); why != "" {
		if os.Getenv(EnvSkip) == "1" {
			t.Skipf("network namespaces unavailable (%s); skipped because %s=1", why, EnvSkip)
		}
		t.Fatalf("partition tests need network namespaces: %s (run as root with iproute2 installed, or set %s=1 to skip them)", why, EnvSkip)
	}
	sweep()
	seq.Lock()
	seq.n++
	n := seq.n
	seq.Unlock()
	nw := &Net{t: t, id: fmt.Sprintf("%s%d-%d", prefix, os.Getpid(), n), nss: map[string]*NS{}}
	t.Cleanup(nw.remove)
	return nw
}

// unavailable says why namespaces cannot be made here, or "".
func unavailable() string {
	if runtime.GOOS != "linux" {
		return "not Linux"
	}
	if os.Geteuid() != 0 {
		return "not running as root"
	}
	for _, tool := range []string{"ip", "tc"} {
		if _, err := exec.LookPath(tool); err != nil {
			return tool + " (iproute2) not found"
		}
	}
	return ""
}

// run runs an iproute2 command.
func run(args ...string) error {
	out, err := exec.Command(args[0], args[1:]...).CombinedOutput()
	if err != nil {
		return fmt.Errorf("%s: %w: %s", strings.Join(args, " "), err, bytes.TrimSpace(out))
	}
	return nil
}

func (nw *Net) must(args ...string) {
	nw.t.Helper()
	if err := run(args...); err != nil {
		nw.t.Fatal(err)
	}
}

// Add makes a namespace with its loopback up.
func (nw *Net) Add(name string) *NS {
	nw.t.Helper()
	ns := &NS{net: nw, Name: name, Full: nw.id + "-" + name, hosts: map[string]string{}}
	nw.must("ip", "netns", "add", ns.Full)
	nw.mu.Lock()
	nw.nss[name] = ns
	nw.mu.Unlock()
	nw.must("ip", "-n", ns.Full, "link", "set", "lo", "up")
	ns.writeHosts()
	return ns
}

// Connect links a and b with a veth pair on a subnet of their own, and
// makes each resolve the other's name to the other's address.
func (nw *Net) Connect(a, b *NS) *Link {
	nw.t.Helper()
	nw.mu.Lock()
	nw.next++
	n := nw.next
	nw.mu.Unlock()
	if n > 250*250 {
		nw.t.Fatal("netns: too many links")
	}
	subnet := fmt.Sprintf("10.%d.%d", 100+n/250, n%250)
	l := &Link{A: a, B: b, AddrA: subnet + ".1", AddrB: subnet + ".2", ifA: ifName(b.Name), ifB: ifName(a.Name)}
	nw.must("ip", "-n", a.Full, "link", "add", l.ifA, "type", "veth", "peer", "name", l.ifB, "netns", b.Full)
	nw.must("ip", "-n", a.Full, "addr", "add", l.AddrA+"/24", "dev", l.ifA)
	nw.must("ip", "-n", b.Full, "addr", "add", l.AddrB+"/24", "dev", l.ifB)
	nw.must("ip", "-n", a.Full, "link", "set", l.ifA, "up")
	nw.must("ip", "-n", b.Full, "link", "set", l.ifB, "up")
	nw.mu.Lock()
	a.hosts[b.Name] = l.AddrB
	b.hosts[a.Name] = l.AddrA
	nw.mu.Unlock()
	a.writeHosts()
	b.writeHosts()
	return l
}

// ifName is the interface name, in one namespace, of its link to peer.
func ifName(peer string) string {
	n := "v-" + peer
	if len(n) > 15 {
		n = n[:15]
	}
	return n
}

// Cut drops every packet on the link, both ways, silently.
func (l *Link) Cut() error {
	if err := run("tc", "-n", l.A.Full, "qdisc", "add", "dev", l.ifA, "root", "blackhole"); err != nil {
		return err
	}
	if err := run("tc", "-n", l.B.Full, "qdisc", "add", "dev", l.ifB, "root", "blackhole"); err != nil {
		return err
	}
	l.cut = true
	return nil
}

// Heal lets packets through again.
func (l *Link) Heal() error {
	if !l.cut {
		return nil
	}
	errA := run("tc", "-n", l.A.Full, "qdisc", "del", "dev", l.ifA, "root")
	errB := run("tc", "-n", l.B.Full, "qdisc", "del", "dev", l.ifB, "root")
	if err := errors.Join(errA, errB); err != nil {
		return err
	}
	l.cut = false
	return nil
}

// String names the link's ends.
func (l *Link) String() string { return l.A.Name + "↔" + l.B.Name }

// hostsDir is where `ip netns exec` finds a namespace's /etc files.
func (ns *NS) hostsDir() string { return filepath.Join("/etc/netns", ns.Full) }

func (ns *NS) writeHosts() {
	ns.net.t.Helper()
	ns.net.mu.Lock()
	names := make([]string, 0, len(ns.hosts))
	for n := range ns.hosts {
		names = append(names, n)
	}
	slices.Sort(names)
	var b strings.Builder
	b.WriteString("127.0.0.1 localhost\n::1 localhost\n")
	for _, n := range names {
		fmt.Fprintf(&b, "%s %s\n", ns.hosts[n], n)
	}
	ns.net.mu.Unlock()
	if err := os.MkdirAll(ns.hostsDir(), 0o755); err != nil {
		ns.net.t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(ns.hostsDir(), "hosts"), []byte(b.String()), 0o644); err != nil {
		ns.net.t.Fatal(err)
	}
}

// Command returns a command that runs name in the namespace, with the
// namespace's hosts file as /etc/hosts.
func (ns *NS) Command(name string, args ...string) *exec.Cmd {
	return exec.Command("ip", append([]string{"netns", "exec", ns.Full, name}, args...)...)
}

// Do runs fn on an OS thread that is in the namespace. Sockets made there
// stay in the namespace wherever they are used from.
func (ns *NS) Do(fn func() error) error {
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		f, err := os.Open(filepath.Join("/run/netns", ns.Full))
		if err != nil {
			errc <- err
			runtime.UnlockOSThread()
			return
		}
		defer f.Close()
		if err := unix.Setns(int(f.Fd()), unix.CLONE_NEWNET); err != nil {
			errc <- fmt.Errorf("joining %s: %w", ns.Full, err)
			runtime.UnlockOSThread()
			return
		}
		// The thread stays in the namespace: it ends with the goroutine,
		// which ends locked.
		errc <- fn()
	}()
	return <-errc
}

// Dial connects from the namespace.
func (ns *NS) Dial(ctx context.Context, network, addr string) (net.Conn, error) {
	var c net.Conn
	err := ns.Do(func() error {
		var err error
		c, err = (&net.Dialer{}).DialContext(ctx, network, addr)
		return err
	})
	return c, err
}

// Listen listens in the namespace.
func (ns *NS) Listen(network, addr string) (net.Listener, error) {
	var l net.Listener
	err := ns.Do(func() error {
		var err error
		l, err = net.Listen(network, addr)
		return err
	})
	return l, err
}

// remove deletes the network's namespaces and hosts files.
func (nw *Net) remove() {
	nw.mu.Lock()
	defer nw.mu.Unlock()
	for _, ns := range nw.nss {
		if err := run("ip", "netns", "del", ns.Full); err != nil {
			nw.t.Errorf("netns: %v", err)
		}
		os.RemoveAll(ns.hostsDir())
	}
	nw.nss = map[string]*NS{}
}

// sweep removes the namespaces and hosts files left by test binaries that
// are gone (killed on a timeout, say).
func sweep() {
	entries, _ := os.ReadDir("/run/netns")
	hosts, _ := os.ReadDir("/etc/netns")
	for _, e := range append(entries, hosts...) {
		pid, ok := ownerPID(e.Name())
		if !ok || pid == os.Getpid() || alive(pid) {
			continue
		}
		run("ip", "netns", "del", e.Name()) //nolint:errcheck // may be only a hosts folder
		os.RemoveAll(filepath.Join("/etc/netns", e.Name()))
	}
}

// ownerPID parses the pid out of a namespace name made by this package.
func ownerPID(name string) (int, bool) {
	rest, ok := strings.CutPrefix(name, prefix)
	if !ok {
		return 0, false
	}
	p, _, ok := strings.Cut(rest, "-")
	if !ok {
		return 0, false
	}
	pid, err := strconv.Atoi(p)
	return pid, err == nil && pid > 0
}

func alive(pid int) bool {
	return !errors.Is(syscall.Kill(pid, 0), syscall.ESRCH)
}
