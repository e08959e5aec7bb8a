package entrypoint

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"time"

	"github.com/trainenv/trainenv/internal/access"
)

// Paths are where the entrypoint reads and writes; DefaultPaths are the pod's, tests
// use their own.
type Paths struct {
	RuntimeDir     string
	HostKeysDir    string
	AuthorizedKeys string
	Passwd         string
	TerminationLog string
	// ProcDir is where the kernel's TCP tables are read for SSH sessions.
	ProcDir string
	// SSHD is the sshd binary; empty: looked up in the image.
	SSHD                 string
	SSHPort, JupyterPort int
	// KeySyncEvery is how often AuthorizedKeys is copied again for sshd (0: DefaultKeySyncEvery).
	KeySyncEvery time.Duration
}

// DefaultPaths are the paths inside the environment's container.
func DefaultPaths() Paths {
	return Paths{
		RuntimeDir:     access.RuntimeDir,
		HostKeysDir:    access.HostKeysDir,
		AuthorizedKeys: access.AuthorizedKeysDir + "/" + access.AuthorizedKeysFile,
		Passwd:         "/etc/passwd",
		TerminationLog: "/dev/termination-log",
		ProcDir:        "/proc",
		SSHPort:        access.SSHPort,
		JupyterPort:    access.JupyterPort,
		KeySyncEvery:   DefaultKeySyncEvery,
	}
}

// Grace is how long services get to stop after SIGTERM: within the kubelet's default
// terminationGracePeriodSeconds (30) with time left for the entrypoint to exit.
const Grace = 20 * time.Second

// Run is the entrypoint's default mode: it reads the access configuration from the
// environment, prepares and supervises the services, and returns the exit code.
func Run(p Paths, log io.Writer) int {
	cfg, err := access.Decode(os.Getenv(access.ConfigEnv))
	if os.Getenv(access.ConfigEnv) == "" {
		err = fmt.Errorf("%s is not set: the entrypoint runs in the pods trainenv renders", access.ConfigEnv)
	}
	if err == nil {
		var plan *plan
		if plan, err = prepare(cfg, p, log); err == nil {
			return supervise(cfg, p, plan, log)
		}
	}
	msg := "trainenv: " + err.Error()
	if lacks := (errImageLacks{}); errors.As(err, &lacks) {
		msg = lacks.message // already in the format the operator reads
	}
	fmt.Fprintln(log, "trainenv-entrypoint: "+msg)
	if err := writeTerminationMessage(p.TerminationLog, msg); err != nil {
		fmt.Fprintf(log, "trainenv-entrypoint: cannot write the termination message: %v\n", err)
	}
	return 1
}

func supervise(cfg access.Config, p Paths, pl *plan, log io.Writer) int {
	sup := &Supervisor{Services: pl.services, TerminationLog: p.TerminationLog, Grace: Grace, Log: log}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	if pl.keySync != nil {
		go pl.keySync.Run(ctx)
	}
	watched := pl.probes.SSH != nil || pl.probes.Jupyter != nil
	if cfg.IdleSuspendAfterSeconds > 0 && !watched {
		// The image's own command has no activity to watch: it is never idle.
		fmt.Fprintln(log, "trainenv-entrypoint: idle shutdown needs SSH or Jupyter to watch; the image's command runs until it ends")
	}
	if cfg.IdleSuspendAfterSeconds > 0 && watched {
		after := time.Duration(cfg.IdleSuspendAfterSeconds) * time.Second
		stop := make(chan string, 1)
		// Work in progress is activity too: the user's busy processes (everything but the
		// entrypoint, its services and its GPU reader) and the pod's GPUs.
		baseline := &pidSet{}
		baseline.addService(os.Getpid())
		sup.Started = baseline.addService
		pl.probes.CPU = &CPUProbe{ProcDir: p.ProcDir, Root: os.Getpid(), Ignored: baseline.list}
		if len(cfg.GPUActivityCommand) > 0 {
			pl.probes.GPU = &GPUProbe{Command: cfg.GPUActivityCommand, Started: baseline.addHelper}
		}
		m := IdleMonitor{Prober: pl.probes, After: after, Every: min(max(after/10, time.Second), time.Minute), Log: log, Audit: os.Stdout}
		go func() {
			if reason := m.Run(ctx); reason != "" {
				stop <- reason
			}
		}()
		sup.Stop = stop
	}
	return sup.Run()
}

// plan is what prepare decided to run.
type plan struct {
	services []Service
	probes   Probes
	// keySync keeps sshd's authorized_keys in step with the Secret (SSH only).
	keySync *KeySync
}

// prepare writes the configurations and returns the services; its errors are the
// termination message, so they say what to fix.
func prepare(cfg access.Config, p Paths, log io.Writer) (*plan, error) {
	uid, gid := os.Getuid(), os.Getgid()
	if uid == 0 {
		return nil, errors.New("the container runs as root; trainenv runs sshd and Jupyter as a non-root user only")
	}
	// What the image lacks is found before anything else, all at once, so that one start of
	// the container says everything that must change in the image.
	if err := podImageCheck(p, uid).run(cfg); err != nil {
		return nil, err
	}
	if err := os.MkdirAll(p.RuntimeDir, 0o700); err != nil {
		return nil, fmt.Errorf("runtime directory: %w", err)
	}
	pl := &plan{}
	if cfg.SSH != nil {
		svc, authorizedKeys, err := prepareSSH(*cfg.SSH, p, uid, gid, log)
		if err != nil {
			return nil, fmt.Errorf("ssh: %w", err)
		}
		pl.services = append(pl.services, svc)
		every := p.KeySyncEvery
		if every <= 0 {
			every = DefaultKeySyncEvery
		}
		pl.keySync = &KeySync{From: p.AuthorizedKeys, To: authorizedKeys, Every: every, Log: log}
		pl.probes.SSH = &SSHProbe{ProcDir: p.ProcDir, Port: uint16(p.SSHPort)}
	}
	if cfg.Jupyter != nil {
		svc, probe, err := prepareJupyter(*cfg.Jupyter, p)
		if err != nil {
			return nil, fmt.Errorf("jupyter: %w", err)
		}
		pl.services = append(pl.services, svc)
		pl.probes.Jupyter = probe
	}
	if len(pl.services) == 0 {
		if len(cfg.Command) == 0 {
			return nil, errors.New("neither SSH nor Jupyter is enabled and the image has no command to run")
		}
		path, err := exec.LookPath(cfg.Command[0])
		if err != nil {
			return nil, fmt.Errorf("the image's command: %w", err)
		}
		pl.services = append(pl.services, Service{Name: "command", Path: path, Args: cfg.Command[1:], Env: serverEnv(), Main: true})
	}
	return pl, nil
}

// serverEnv is the container's environment without the entrypoint's own configuration.
func serverEnv(extra ...string) []string {
	var env []string
	for _, kv := range os.Environ() {
		if name := envName(kv); name != access.ConfigEnv {
			env = append(env, kv)
		}
	}
	return append(env, extra...)
}
