// Command realenv checks a real TrainingEnvironment end to end on the local cluster's real
// node (kubelet + containerd), through the paths a user takes: kubectl apply, the
// kubectl-trainenv plugin, ssh, the Jupyter REST and websocket API, and a real headless
// browser (Debian's chromium, driven by chromedp). It applies an environment of the
// reference PyTorch image with Jupyter, SSH and a workspace in a namespace enforcing Pod
// Security "restricted", checks what the user is promised, prints one summary line with
// counts and timings, and deletes what it created.
//
// It is a module of its own (e2e/tools/realenv) so that chromedp stays out of the
// operator's module. e2e/cluster/check-realenv.sh runs it; see there for the flags used.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"
)

type options struct {
	kubectl    string
	plugin     string
	kubeconfig string
	state      string
	image      string
	namespace  string
	name       string
	artifacts  string
	chromium   string
	sshUser    string
	idle       time.Duration
	natIdleCut time.Duration
	timeout    time.Duration
	keep       bool
}

func main() {
	var o options
	flag.StringVar(&o.kubectl, "kubectl", "kubectl", "kubectl command")
	flag.StringVar(&o.plugin, "plugin", "kubectl-trainenv", "the kubectl-trainenv plugin (its directory is put first on PATH, so that `kubectl trainenv` finds it)")
	flag.StringVar(&o.kubeconfig, "kubeconfig", os.Getenv("KUBECONFIG"), "kubeconfig of the cluster (default $KUBECONFIG)")
	flag.StringVar(&o.state, "state", "", "the local cluster's state directory (its local volumes are recycled after the check); empty: leave released volumes alone")
	flag.StringVar(&o.image, "image", "", "the reference PyTorch image (a tag or a digest)")
	flag.StringVar(&o.namespace, "namespace", "trainenv-realenv-check", "namespace to create (deleted at the end)")
	flag.StringVar(&o.name, "name", "realenv", "name of the TrainingEnvironment")
	flag.StringVar(&o.artifacts, "artifacts", "", "directory for artifacts on failure (screenshot, logs, descriptions); default STATE/artifacts/realenv or a temporary directory")
	flag.StringVar(&o.chromium, "chromium", "chromium", "the headless browser (Debian's chromium)")
	flag.StringVar(&o.sshUser, "ssh-user", "jovyan", "the image's uid-1000 user")
	flag.DurationVar(&o.idle, "idle", 40*time.Second, "how long the SSH session and the Jupyter websocket stay idle in the keep-alive check")
	flag.DurationVar(&o.natIdleCut, "nat-idle-cut", 15*time.Second, "the simulated NAT in front of the API server cuts connections idle this long")
	flag.DurationVar(&o.timeout, "timeout", 5*time.Minute, "deadline of each wait for the environment (image pull included)")
	flag.BoolVar(&o.keep, "keep", false, "keep the namespace and its environment after the check (for debugging)")
	flag.Parse()
	if o.image == "" || o.kubeconfig == "" {
		fmt.Fprintln(os.Stderr, "usage: realenv --image IMAGE [--kubeconfig FILE] [--state DIR] [--plugin PATH]")
		os.Exit(2)
	}
	if o.artifacts == "" {
		o.artifacts = filepath.Join(o.state, "artifacts", "realenv")
		if o.state == "" {
			o.artifacts = filepath.Join(os.TempDir(), "trainenv-realenv-artifacts")
		}
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := runChecks(ctx, o)
	stop()
	os.Exit(code)
}

func runChecks(ctx context.Context, o options) int {
	r, err := newRun(ctx, o)
	if err != nil {
		fmt.Fprintf(os.Stderr, "e2e realenv: %v\n", err)
		return 1
	}
	defer r.cleanup()
	r.check("environment Running on the real node, running the pinned digest", r.checkRunning)
	r.check("inside the container: uid 1000, no capabilities, no_new_privs, read-only root, no token, /dev/shm, tools", r.checkContainer)
	r.check("kubectl trainenv connect: Jupyter URL, token required, a kernel runs torch over the websocket", r.checkJupyter)
	r.check("the Jupyter URL in headless chromium: the page loads and the page's own JavaScript runs a cell", r.checkBrowser)
	r.check("ssh through ssh-config/ssh-proxy: pinned host key, torch; password and root refused", r.checkSSH)
	r.check("keep-alive: an SSH session and a Jupyter websocket outlive an idle period behind an idle-cutting NAT", r.checkKeepAlive)
	r.check("the workspace survives suspend and resume; connect reconnects after the pod is recreated", r.checkSuspendResume)
	r.check("the workspace survives a pod deletion; connect reconnects by itself", r.checkPodDeletion)
	r.check("the preflight's report in status.preflight (CPU: GPU checks skipped, torch checked)", r.checkPreflight)
	return r.summary()
}

// check runs one check unless an earlier one failed (each builds on the environment the
// ones before left), and records its outcome and duration.
func (r *run) check(what string, f func(context.Context) error) {
	if r.failed > 0 {
		r.skipped++
		fmt.Printf("e2e realenv: skip: %s\n", what)
		return
	}
	start := time.Now()
	err := f(r.ctx)
	if err == nil && r.ctx.Err() != nil {
		err = r.ctx.Err()
	}
	if err != nil {
		r.failed++
		fmt.Fprintf(os.Stderr, "e2e realenv: FAIL: %s (%s): %v\n", what, since(start), err)
		r.collectArtifacts(what, err)
		return
	}
	r.passed++
	fmt.Printf("e2e realenv: ok: %s (%s)\n", what, since(start))
}

func (r *run) summary() int {
	var t []string
	for _, m := range r.timings {
		t = append(t, m.name+" "+m.d.Round(10*time.Millisecond).String())
	}
	fmt.Printf("e2e realenv: %d passed, %d failed, %d skipped (%s)\n", r.passed, r.failed, r.skipped, strings.Join(t, ", "))
	if r.failed > 0 {
		fmt.Fprintf(os.Stderr, "e2e realenv: artifacts in %s\n", r.o.artifacts)
		return 1
	}
	return 0
}

func since(t time.Time) string { return time.Since(t).Round(10 * time.Millisecond).String() }
