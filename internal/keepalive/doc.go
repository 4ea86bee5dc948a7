// Package keepalive configures Postgres connections to notice a silent
// peer in seconds: TCP keepalives and, on Linux, TCP_USER_TIMEOUT on our
// end, the same through the server's tcp_* settings on its end, and
// optional lock, statement and idle-in-transaction timeouts.
//
// A peer that vanishes from the network (a partition, a host that lost
// power) sends no reset: without keepalives the kernel keeps such a
// connection for about two hours, and the server keeps its session, with
// every advisory lock and open transaction of it, as long. With Interval
// set to d, either end drops the connection about 3d after the peer went
// silent.
package keepalive
