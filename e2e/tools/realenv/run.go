package main

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"
)

// run is one pass of the checks against one environment.
type run struct {
	ctx  context.Context
	o    options
	k    kube
	work string // keys, ssh configs, logs of the background commands

	realNode string
	cordoned []string
	applied  time.Time

	// connect is `kubectl trainenv connect` running for the whole check.
	connect    *background
	jupyterURL string // with ?token=
	token      string
	sshAddr    string

	timings []timing

	passed, failed, skipped int
	bg                      []*background
}

type timing struct {
	name string
	d    time.Duration
}

func (r *run) record(name string, d time.Duration) { r.timings = append(r.timings, timing{name, d}) }

func newRun(ctx context.Context, o options) (*run, error) {
	work, err := os.MkdirTemp("", "trainenv-realenv-")
	if err != nil {
		return nil, err
	}
	plugin, err := exec.LookPath(o.plugin)
	if err != nil {
		return nil, fmt.Errorf("the kubectl-trainenv plugin: %w (make build puts it in bin/)", err)
	}
	plugin, _ = filepath.Abs(plugin)
	kubectl, err := exec.LookPath(o.kubectl)
	if err != nil {
		return nil, fmt.Errorf("kubectl: %w", err)
	}
	o.plugin, o.kubectl = plugin, kubectl
	env := append(os.Environ(), "PATH="+filepath.Dir(plugin)+string(os.PathListSeparator)+os.Getenv("PATH"), "KUBECONFIG="+o.kubeconfig)
	r := &run{ctx: ctx, o: o, work: work, k: kube{kubectl: kubectl, kubeconfig: o.kubeconfig, env: env}}
	if err := r.setup(ctx); err != nil {
		r.cleanup()
		return nil, err
	}
	return r, nil
}

// background is a command running while the checks go on (connect, an ssh session), its
// output kept in a file.
type background struct {
	name string
	cmd  *exec.Cmd
	log  string
	mu   sync.Mutex
	out  *bytes.Buffer
	done chan struct{}
}

// start runs name args... in the background with the run's environment (PATH with the
// plugin first, KUBECONFIG) plus extraEnv; standard output is kept in memory, standard
// error in work/NAME.log.
func (r *run) start(name string, extraEnv []string, args ...string) (*background, error) {
	b := &background{name: name, log: filepath.Join(r.work, name+".log"), out: &bytes.Buffer{}, done: make(chan struct{})}
	logf, err := os.Create(b.log)
	if err != nil {
		return nil, err
	}
	b.cmd = exec.Command(args[0], args[1:]...)
	b.cmd.Env = append(append([]string{}, r.k.env...), extraEnv...)
	b.cmd.Stdout = lockedWriter{&b.mu, b.out}
	b.cmd.Stderr = logf
	// A group of its own: stopping it stops what it started (ssh's ProxyCommand).
	b.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := b.cmd.Start(); err != nil {
		_ = logf.Close()
		return nil, err
	}
	r.bg = append(r.bg, b)
	go func() {
		_ = b.cmd.Wait()
		_ = logf.Close()
		close(b.done)
	}()
	return b, nil
}

func (b *background) stdout() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.out.String()
}

func (b *background) stderr() string {
	data, _ := os.ReadFile(b.log)
	return string(data)
}

func (b *background) exited() bool {
	select {
	case <-b.done:
		return true
	default:
		return false
	}
}

// stop ends the process group: TERM, then KILL after 5 s.
func (b *background) stop() {
	if b.exited() {
		return
	}
	_ = syscall.Kill(-b.cmd.Process.Pid, syscall.SIGTERM)
	select {
	case <-b.done:
	case <-time.After(5 * time.Second):
		_ = syscall.Kill(-b.cmd.Process.Pid, syscall.SIGKILL)
		<-b.done
	}
}

type lockedWriter struct {
	mu *sync.Mutex
	w  *bytes.Buffer
}

func (l lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}

// collectArtifacts keeps what explains a failure: the environment and pod as the API
// server and kubectl describe show them, events, the background commands' logs.
func (r *run) collectArtifacts(what string, failure error) {
	dir := r.o.artifacts
	if err := os.MkdirAll(dir, 0o755); err != nil {
		fmt.Fprintf(os.Stderr, "e2e realenv: artifacts: %v\n", err)
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	ns := r.o.namespace
	save := func(file string, args ...string) {
		out, err := r.k.run(ctx, args...)
		if err != nil {
			out += "\n" + err.Error()
		}
		_ = writeFile(filepath.Join(dir, file), out)
	}
	_ = writeFile(filepath.Join(dir, "failure.txt"), what+"\n"+failure.Error()+"\n")
	save("environment.txt", "-n", ns, "describe", "trainingenvironment", r.o.name)
	save("environment.yaml", "-n", ns, "get", "trainingenvironment", r.o.name, "-o", "yaml")
	save("pod.txt", "-n", ns, "describe", "pod", r.o.name+"-0")
	save("events.txt", "-n", ns, "get", "events", "--sort-by", ".lastTimestamp")
	save("main.log", "-n", ns, "logs", r.o.name+"-0", "-c", "main", "--tail", "200")
	for _, b := range r.bg {
		_ = writeFile(filepath.Join(dir, b.name+".stderr.log"), b.stderr())
		_ = writeFile(filepath.Join(dir, b.name+".stdout.log"), b.stdout())
	}
}

func (r *run) cleanup() {
	for _, b := range r.bg {
		b.stop()
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	if r.o.keep {
		fmt.Printf("e2e realenv: --keep: namespace %s left as it is\n", r.o.namespace)
	} else if err := r.deleteNamespace(ctx); err != nil {
		fmt.Fprintf(os.Stderr, "e2e realenv: cleanup: %v\n", err)
	}
	for _, n := range r.cordoned {
		if _, err := r.k.run(ctx, "uncordon", n); err != nil {
			fmt.Fprintf(os.Stderr, "e2e realenv: cleanup: %v\n", err)
		}
	}
	_ = os.RemoveAll(r.work)
}

// deleteNamespace deletes the check's namespace and gives the local volumes its claims had
// back to the pool, as a local volume provisioner would: the node's volumes are Retain,
// so a released one keeps its claim reference and data until wiped.
func (r *run) deleteNamespace(ctx context.Context) error {
	var pvs struct {
		Items []struct {
			Metadata struct {
				Name string `json:"name"`
			} `json:"metadata"`
			Spec struct {
				ClaimRef *struct {
					Namespace string `json:"namespace"`
				} `json:"claimRef"`
				Local *struct {
					Path string `json:"path"`
				} `json:"local"`
			} `json:"spec"`
		} `json:"items"`
	}
	if err := r.k.get(ctx, &pvs, "persistentvolumes"); err != nil {
		return err
	}
	if _, err := r.k.run(ctx, "delete", "namespace", r.o.namespace, "--ignore-not-found", "--wait=true", "--timeout=150s"); err != nil {
		return err
	}
	volumes := ""
	if r.o.state != "" {
		volumes, _ = filepath.Abs(filepath.Join(r.o.state, "node", "volumes"))
	}
	for _, pv := range pvs.Items {
		if pv.Spec.ClaimRef == nil || pv.Spec.ClaimRef.Namespace != r.o.namespace || pv.Spec.Local == nil {
			continue
		}
		path := filepath.Clean(pv.Spec.Local.Path)
		if volumes == "" || !strings.HasPrefix(path, volumes+string(filepath.Separator)) {
			fmt.Printf("e2e realenv: volume %s (%s) was released; not under the state directory, left as it is\n", pv.Metadata.Name, path)
			continue
		}
		entries, _ := os.ReadDir(path)
		for _, e := range entries {
			_ = os.RemoveAll(filepath.Join(path, e.Name()))
		}
		if _, err := r.k.run(ctx, "patch", "pv", pv.Metadata.Name, "--type", "json", "-p", `[{"op": "remove", "path": "/spec/claimRef"}]`); err != nil {
			return err
		}
	}
	return nil
}
