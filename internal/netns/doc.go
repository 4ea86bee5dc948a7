// Package netns builds throwaway networks of Linux network namespaces for
// partition tests: each part of a system (a Postgres server, a worker, a
// gateway, the test's own client) runs in a namespace of its own, every
// pair of parts that talk has a point-to-point link of its own (a veth
// pair with a private 10.x subnet that exists only inside the two
// namespaces), and names resolve per namespace (/etc/netns/NS/hosts, bind
// mounted over /etc/hosts by `ip netns exec`), so one link can be cut
// without the others.
//
// A link is cut silently: a blackhole queueing discipline on both of its
// ends drops every packet, so neither peer ever sees a reset, as in a real
// partition. Healing removes the disciplines; connections whose timers
// did not expire carry on.
//
// It needs root and iproute2 (`ip`, `tc`). Namespaces, links and hosts
// files are removed when the test ends, failed or not, and those left by
// an earlier test binary that was killed are removed when a new network
// is made. The test's own code reaches into a namespace with Dial and
// Listen.
package netns
