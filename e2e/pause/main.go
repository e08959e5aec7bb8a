// Command pause is the sandbox ("pause") container of the local cluster's real node: it
// holds a pod's namespaces open and does nothing else. The dev cluster cannot pull
// registry.k8s.io/pause, so it builds this one (a static binary in an image, see e2e/binimage).
//
// As PID 1 of a shared process namespace it reaps orphans; it exits 0 on SIGINT/SIGTERM.
package main

import (
	"os"
	"os/signal"
	"syscall"
)

func main() {
	sigs := make(chan os.Signal, 8)
	signal.Notify(sigs, syscall.SIGINT, syscall.SIGTERM, syscall.SIGCHLD)
	for s := range sigs {
		if s != syscall.SIGCHLD {
			os.Exit(0)
		}
		reap()
	}
}

// reap collects every exited child without blocking.
func reap() {
	for {
		var ws syscall.WaitStatus
		pid, err := syscall.Wait4(-1, &ws, syscall.WNOHANG, nil)
		if pid <= 0 || err != nil {
			return
		}
	}
}
