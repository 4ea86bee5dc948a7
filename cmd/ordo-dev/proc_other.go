//go:build !linux

package main

import (
	"os/exec"
	"syscall"
)

// procAttr puts a program in its own process group, so that a Ctrl-C at the
// terminal reaches only ordo-dev, which then stops the programs in order.
func procAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true}
}

// startProcess starts cmd.
func startProcess(cmd *exec.Cmd) error { return cmd.Start() }
