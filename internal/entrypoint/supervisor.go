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
	// ReadLog, when set, reads the service's standard error (its log) until it ends, and
	// passes it on; without it the log goes to the entrypoint's standard error directly.
	ReadLog func(io.Reader) `json:"-"`
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
	// Started, when set, is told the PID of each service started.
	Started func(pid int)
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

	r := &supervision{s: s, running: map[int]Service{}}
	for _, svc := range s.Services {
		pid, err := start(svc)
		if err != nil {
			r.begin(stopping{code: 1, reason: fmt.Sprintf("trainenv: cannot start %s: %v", svc.Name, err)}, unix.SIGTERM)
			break
		}
		s.logf("started %s (pid %d): %s", svc.Name, pid, strings.Join(append([]string{svc.Path}, svc.Args...), " "))
		r.running[pid] = svc
		if s.Started != nil {
			s.Started(pid)
		}
	}

	reapTick := time.NewTicker(time.Second) // in case a SIGCHLD was coalesced away
	defer reapTick.Stop()
	for len(r.running) > 0 {
		select {
		case sig := <-sigs:
			if sig != unix.SIGCHLD {
				s.logf("received %v: stopping", sig)
				r.begin(stopping{}, sig.(syscall.Signal)) // each one forwarded, as tini does
			}
		case reason := <-s.Stop:
			if r.stop == nil {
				s.logf("stopping: %s", reason)
				r.begin(stopping{reason: reason}, unix.SIGTERM)
			}
		case <-r.kill:
			s.logf("services still running after %v: killing them", s.Grace)
			s.signalAll(r.running, unix.SIGKILL)
		case <-reapTick.C:
		}
		r.reaped(reap())
	}
	reap() // orphans that ended with the services
	if r.stop == nil {
		r.stop = &stopping{code: 1, reason: "trainenv: no service to run"}
	}
	s.terminate(*r.stop)
	return r.stop.code
}

// supervision is one run: the services still running and, once decided, why they stop.
type supervision struct {
	s       *Supervisor
	running map[int]Service
	stop    *stopping
	kill    <-chan time.Time
}

// begin records why everything stops (the first reason wins), starts the grace period
// and sends sig to the services still running.
func (r *supervision) begin(st stopping, sig syscall.Signal) {
	if r.stop == nil {
		r.stop = &st
		r.kill = time.After(r.s.Grace)
	}
	r.s.signalAll(r.running, sig)
}

// reaped handles ended children: orphans need nothing more; a service that ends stops
// the others, unless they are stopping already.
func (r *supervision) reaped(exits []exit) {
	for _, ex := range exits {
		svc, ok := r.running[ex.pid]
		if !ok {
			continue
		}
		delete(r.running, ex.pid)
		r.s.logf("%s (pid %d) %s", svc.Name, ex.pid, ex.describe())
		if r.stop != nil {
			continue
		}
		code := ex.code()
		if !svc.Main {
			code = max(1, code) // a server never ends on its own when all is well
		}
		r.begin(stopping{code: code, reason: fmt.Sprintf("trainenv: %s %s", svc.Name, ex.describe())}, unix.SIGTERM)
	}
}

func start(svc Service) (int, error) {
	stderr := os.Stderr
	var logs *os.File
	if svc.ReadLog != nil {
		r, w, err := os.Pipe()
		if err != nil {
			return 0, err
		}
		logs, stderr = r, w
		defer w.Close() // the service holds its own copy
	}
	p, err := os.StartProcess(svc.Path, append([]string{svc.Path}, svc.Args...), &os.ProcAttr{
		Dir:   svc.Dir,
		Env:   svc.Env,
		Files: []*os.File{os.Stdin, os.Stdout, stderr},
	})
	if err != nil {
		if logs != nil {
			logs.Close()
		}
		return 0, err
	}
	if logs != nil {
		go func() {
			defer logs.Close()
			svc.ReadLog(logs)
			_, _ = io.Copy(io.Discard, logs) // never block the service on a full pipe
		}()
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
