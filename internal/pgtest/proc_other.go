//go:build !linux

package pgtest

import (
	"errors"
	"os/exec"
	"syscall"
)

// serverProcAttr runs postgres in its own process group, as cred.
func serverProcAttr(cred *syscall.Credential) *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Credential: cred, Setpgid: true}
}

func startProcess(cmd *exec.Cmd, netns string) error {
	if netns != "" {
		return errors.New("network namespaces are Linux's")
	}
	return cmd.Start()
}

// childPIDs returns nil: without /proc, Kill only kills the postmaster, whose
// children exit when they notice it is gone.
func childPIDs(int) []int { return nil }

func isZombie(int) bool { return false }
