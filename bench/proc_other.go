//go:build !linux

package main

import "syscall"

// dieWithParent returns nil: only Linux can tie a child's life to its
// parent's. Programs of an interrupted run may need to be stopped by hand.
func dieWithParent() *syscall.SysProcAttr { return nil }
