// Package entrypoint is PID 1 of an environment's main container: it writes the sshd and
// Jupyter configurations, runs both as the container's non-root user, forwards signals,
// reaps zombies, stops the environment when it has been idle too long, and exits (so the
// kubelet restarts the container) when a service dies.
package entrypoint

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// Service is one program the supervisor runs.
type Service struct {
	Name string
	Path string
	Args []string
	Env  []string
	Dir  string
	// Main: the service is the image's own command, whose exit status becomes the
	// entrypoint's. Servers (sshd, Jupyter) are not main: any exit of theirs is a failure.
	Main bool
}

// Supervisor runs services as PID 1 does: it forwards SIGTERM and SIGINT to them, reaps
// every child that ends (services and the orphans the kernel hands to PID 1), and stops
// all of them when one ends or when Stop says so.
type Supervisor struct {
	Services []Service
	// TerminationLog receives why the supervisor stopped; the kubelet shows it as the
	// container's termination message. Written only if the file exists.
	TerminationLog string
	// Grace is how long services get between SIGTERM and SIGKILL.
	Grace time.Duration
	// Stop, when it delivers, stops everything; the string is the termination message.
	Stop <-chan string
	Log  io.Writer
}

// stopping is why the supervisor is shutting its services down.
type stopping struct {
	code   int
	reason string
}

// Run starts the services and supervises them until all have ended; it returns the exit
// code of the entrypoint.
func (s *Supervisor) Run() int {
	sigs := make(chan os.Signal, 32)
	signal.Notify(sigs, unix.SIGCHLD, unix.SIGTERM, unix.SIGINT)
	defer signal.Stop(sigs)
	if os.Getpid() != 1 {
		// Orphaned grandchildren come to us as they would to PID 1 (also in tests).
		if err := unix.Prctl(unix.PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0); err != nil {
			s.logf("cannot become a subreaper: %v", err)
		}
	}

	running := map[int]Service{}
	var stop *stopping
	var kill <-chan time.Time
	begin := func(st stopping) {
		if stop != nil {
			return
		}
		stop = &st
		s.signalAll(running, unix.SIGTERM)
		kill = time.After(s.Grace)
	}
	for _, svc := range s.Services {
		pid, err := start(svc)
		if err != nil {
			begin(stopping{code: 1, reason: fmt.Sprintf("trainenv: cannot start %s: %v", svc.Name, err)})
			break
		}
		s.logf("started %s (pid %d): %s", svc.Name, pid, strings.Join(append([]string{svc.Path}, svc.Args...), " "))
		running[pid] = svc
	}

	reapTick := time.NewTicker(time.Second) // in case a SIGCHLD was coalesced away
	defer reapTick.Stop()
	for len(running) > 0 {
		select {
		case sig := <-sigs:
			if sig != unix.SIGCHLD {
				s.logf("received %v: stopping", sig)
				begin(stopping{})
				s.signalAll(running, sig.(syscall.Signal))
			}
		case reason := <-s.Stop:
			s.logf("stopping: %s", reason)
			begin(stopping{reason: reason})
		case <-kill:
			s.logf("services still running after %v: killing them", s.Grace)
			s.signalAll(running, unix.SIGKILL)
		case <-reapTick.C:
		}
		for _, ex := range reap() {
			svc, ok := running[ex.pid]
			if !ok {
				continue // an orphan: reaped, nothing else to do
			}
			delete(running, ex.pid)
			s.logf("%s (pid %d) %s", svc.Name, ex.pid, ex.describe())
			if svc.Main {
				begin(stopping{code: ex.code(), reason: fmt.Sprintf("trainenv: %s %s", svc.Name, ex.describe())})
			} else {
				begin(stopping{code: max(1, ex.code()), reason: fmt.Sprintf("trainenv: %s %s", svc.Name, ex.describe())})
			}
		}
	}
	reap() // orphans that ended with the services
	if stop == nil {
		stop = &stopping{code: 1, reason: "trainenv: no service to run"}
	}
	s.terminate(*stop)
	return stop.code
}

func start(svc Service) (int, error) {
	p, err := os.StartProcess(svc.Path, append([]string{svc.Path}, svc.Args...), &os.ProcAttr{
		Dir:   svc.Dir,
		Env:   svc.Env,
		Files: []*os.File{os.Stdin, os.Stdout, os.Stderr},
	})
	if err != nil {
		return 0, err
	}
	pid := p.Pid
	// The supervisor reaps with wait4(-1), never through the Process: let its handle go.
	_ = p.Release()
	return pid, nil
}

func (s *Supervisor) signalAll(running map[int]Service, sig syscall.Signal) {
	for pid, svc := range running {
		// Only unreaped children are in running, so pid cannot have been reused.
		if err := unix.Kill(pid, sig); err != nil && !errors.Is(err, unix.ESRCH) {
			s.logf("signal %v to %s (pid %d): %v", sig, svc.Name, pid, err)
		}
	}
}

// exit is a reaped child.
type exit struct {
	pid    int
	status unix.WaitStatus
}

func (e exit) describe() string {
	if e.status.Signaled() {
		return fmt.Sprintf("was killed by signal %d (%v)", int(e.status.Signal()), e.status.Signal())
	}
	return fmt.Sprintf("exited with status %d", e.status.ExitStatus())
}

// code is the shell's convention: the exit status, or 128 + the signal.
func (e exit) code() int {
	if e.status.Signaled() {
		return 128 + int(e.status.Signal())
	}
	return e.status.ExitStatus()
}

// reap collects every child that has ended, without blocking.
func reap() []exit {
	var done []exit
	for {
		var ws unix.WaitStatus
		pid, err := unix.Wait4(-1, &ws, unix.WNOHANG, nil)
		if errors.Is(err, unix.EINTR) {
			continue
		}
		if err != nil || pid <= 0 {
			return done // ECHILD: no children; 0: none has ended
		}
		done = append(done, exit{pid: pid, status: ws})
	}
}

// terminate logs why the supervisor stops and writes it as the termination message.
func (s *Supervisor) terminate(st stopping) {
	if st.reason == "" {
		s.logf("all services stopped")
		return
	}
	s.logf("%s", st.reason)
	if err := writeTerminationMessage(s.TerminationLog, st.reason); err != nil {
		s.logf("cannot write the termination message: %v", err)
	}
}

// writeTerminationMessage writes msg to path if the file is there: the kubelet provides
// it in every container; outside one the entrypoint creates nothing in /dev.
func writeTerminationMessage(path, msg string) error {
	if path == "" {
		return nil
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_TRUNC, 0)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	_, err = f.WriteString(msg + "\n")
	return errors.Join(err, f.Close())
}

func (s *Supervisor) logf(format string, args ...any) {
	if s.Log != nil {
		fmt.Fprintf(s.Log, "trainenv-entrypoint: "+format+"\n", args...)
	}
}
