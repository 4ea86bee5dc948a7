package main

import (
	"fmt"
	"net"
	"strconv"
)

// claimAddr checks that the listen address addr is free and returns it with
// a free port in place of port 0, so that ordo-dev knows where its programs
// listen before they start. what and flag name the address in errors.
func claimAddr(addr, what, flag string) (string, error) {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return "", fmt.Errorf("%s address %q: %w", what, addr, err)
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return "", fmt.Errorf("%s address %s is not free (choose another with -%s): %w", what, addr, flag, err)
	}
	port := ln.Addr().(*net.TCPAddr).Port
	ln.Close()
	return net.JoinHostPort(host, strconv.Itoa(port)), nil
}

// httpURL returns the http:// URL of a server listening on addr, such as
// http://127.0.0.1:8080 for ":8080".
func httpURL(addr string) string {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return "http://" + addr
	}
	if ip := net.ParseIP(host); host == "" || ip != nil && ip.IsUnspecified() {
		host = "127.0.0.1"
	}
	return "http://" + net.JoinHostPort(host, port)
}
