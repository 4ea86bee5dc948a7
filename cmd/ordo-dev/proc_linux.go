package main

import (
	"os/exec"
	"runtime"
	"sync"
	"syscall"
)

// procAttr puts a program in its own process group, so that a Ctrl-C at the
// terminal reaches only ordo-dev, which then stops the programs in order. The
// kernel kills the program when the thread that started it exits; as
// startProcess starts every program from one thread that lives as long as
// ordo-dev, they die with ordo-dev, even when it is killed.
func procAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
}

// starter runs functions on a goroutine locked to its OS thread for good.
var starter = sync.OnceValue(func() chan<- func() {
	funcs := make(chan func())
	go func() {
		runtime.LockOSThread() // never unlocked: the thread must outlive the programs
		for f := range funcs {
			f()
		}
	}()
	return funcs
})

// startProcess starts cmd from starter's thread: see procAttr.
func startProcess(cmd *exec.Cmd) error {
	errc := make(chan error, 1)
	starter() <- func() { errc <- cmd.Start() }
	return <-errc
}
