//go:build !linux

package main

import (
	"syscall"
	"time"
)

// dieWithParent returns nil: only Linux can tie a child's life to its
// parent's. Programs of an interrupted run may need to be stopped by hand.
func dieWithParent() *syscall.SysProcAttr { return nil }

// cpuTimes returns nothing: only Linux is read for CPU times.
func cpuTimes() map[string]time.Duration { return nil }
