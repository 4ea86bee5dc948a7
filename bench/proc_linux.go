package main

import "syscall"

// dieWithParent makes a started program get SIGKILL when the benchmark
// dies, so that no gateway or worker outlives an interrupted run.
func dieWithParent() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
}
