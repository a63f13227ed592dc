// pause: the process that holds a pod sandbox's namespaces (the image containerd calls
// registry.k8s.io/pause). It blocks until SIGINT or SIGTERM and then exits 0. As PID 1 of a pod
// that shares its PID namespace it also reaps orphaned children (SIGCHLD), so no zombie piles up.
//
// Built static with CGO off by hack/images.sh; see docs/images.md.
package main

import (
	"fmt"
	"os"
	"os/signal"
	"syscall"
)

const version = "berth-pause 3.10.1"

func main() {
	if len(os.Args) > 1 && (os.Args[1] == "-v" || os.Args[1] == "--version") {
		fmt.Println(version)
		return
	}
	if os.Getpid() != 1 {
		fmt.Fprintln(os.Stderr, "Warning: pause should be the first process")
	}
	sigs := make(chan os.Signal, 16)
	signal.Notify(sigs, syscall.SIGINT, syscall.SIGTERM, syscall.SIGCHLD)
	for s := range sigs {
		switch s {
		case syscall.SIGCHLD:
			reap()
		default:
			fmt.Fprintf(os.Stderr, "Shutting down, got signal: %v\n", s)
			os.Exit(0)
		}
	}
}

// reap collects every exited child without blocking; signals coalesce, so one SIGCHLD may stand
// for several children.
func reap() {
	for {
		var status syscall.WaitStatus
		pid, err := syscall.Wait4(-1, &status, syscall.WNOHANG, nil)
		if pid <= 0 || err != nil {
			return
		}
	}
}
