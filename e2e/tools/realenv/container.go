package main

import (
	"context"
	"fmt"
	"strconv"
	"strings"
)

// exec runs a shell command in the environment's container (kubectl exec).
func (r *run) exec(ctx context.Context, script string) (string, error) {
	return r.k.run(ctx, "-n", r.o.namespace, "exec", r.o.name+"-0", "-c", "main", "--", "/bin/sh", "-c", script)
}

// checkContainer asks the kernel, from inside the container, what it applied.
func (r *run) checkContainer(ctx context.Context) error {
	status, err := r.exec(ctx, "id -u; id -g; grep -E '^(CapEff|CapPrm|CapBnd|NoNewPrivs|Seccomp):' /proc/self/status")
	if err != nil {
		return err
	}
	fields := strings.Fields(status)
	if len(fields) < 2 || fields[0] != "1000" || fields[1] != "1000" {
		return fmt.Errorf("want uid and gid 1000, got %q", status)
	}
	want := map[string]string{"CapEff:": "0000000000000000", "CapPrm:": "0000000000000000", "CapBnd:": "0000000000000000", "NoNewPrivs:": "1", "Seccomp:": "2"}
	for i := 2; i+1 < len(fields); i += 2 {
		if w, ok := want[fields[i]]; ok {
			if fields[i+1] != w {
				return fmt.Errorf("%s is %s in the container, want %s", fields[i], fields[i+1], w)
			}
			delete(want, fields[i])
		}
	}
	if len(want) > 0 {
		return fmt.Errorf("/proc/self/status lacks %v: %q", want, status)
	}

	mounts, err := r.exec(ctx, "cat /proc/self/mountinfo")
	if err != nil {
		return err
	}
	root, ok := mountAt(mounts, "/")
	if !ok || !hasOption(root.options, "ro") {
		return fmt.Errorf("the root file system is not mounted read-only: %+v", root)
	}
	if out, err := r.exec(ctx, "touch /trainenv-e2e-probe 2>&1"); err == nil || !strings.Contains(out+err.Error(), "Read-only file system") {
		return fmt.Errorf("writing to / did not fail with a read-only file system: %s", outcome(err, out))
	}
	shm, ok := mountAt(mounts, "/dev/shm")
	if !ok || shm.fsType != "tmpfs" {
		return fmt.Errorf("/dev/shm is not a tmpfs: %+v", shm)
	}
	if size := tmpfsSizeKiB(shm.superOptions); size != shmSizeKiB {
		return fmt.Errorf("/dev/shm is %d KiB (%s), want shmSize %s = %d KiB", size, shm.superOptions, shmSize, shmSizeKiB)
	}

	p, err := r.pod(ctx)
	if err != nil {
		return err
	}
	if p.Spec.AutomountServiceAccountToken == nil || *p.Spec.AutomountServiceAccountToken {
		return fmt.Errorf("the pod does not set automountServiceAccountToken: false")
	}
	if out, err := r.exec(ctx, "ls -A /var/run/secrets/kubernetes.io/serviceaccount 2>/dev/null; test ! -e /var/run/secrets/kubernetes.io/serviceaccount/token"); err != nil {
		return fmt.Errorf("a service-account token is mounted: %s", outcome(err, out))
	}

	// The tools init container copied the entrypoint and the preflight; the entrypoint is
	// the container's PID 1, and the preflight is the real program (it prints its flags).
	var tools *containerStatus
	for i, c := range p.Status.InitContainerStatuses {
		if c.Name == "trainenv-tools" {
			tools = &p.Status.InitContainerStatuses[i]
		}
	}
	if tools == nil || tools.State.Terminated == nil || tools.State.Terminated.ExitCode != 0 {
		return fmt.Errorf("the tools init container did not complete: %+v", tools)
	}
	out, err := r.exec(ctx, "test -x /trainenv/bin/entrypoint && test -x /trainenv/bin/preflight && tr '\\0' ' ' </proc/1/cmdline && echo && /trainenv/bin/preflight -h 2>&1 || true")
	if err != nil {
		return err
	}
	if !strings.HasPrefix(out, "/trainenv/bin/entrypoint") {
		return fmt.Errorf("the container's PID 1 is not the copied entrypoint: %q", firstLine(out))
	}
	if !strings.Contains(out, "-gpus") {
		return fmt.Errorf("/trainenv/bin/preflight -h did not print the preflight's flags: %q", out)
	}
	fmt.Printf("e2e realenv:   uid/gid 1000, CapEff/CapPrm/CapBnd 0, NoNewPrivs 1, seccomp filter, / read-only, /dev/shm tmpfs %d KiB, no token; PID 1 %s\n", shmSizeKiB, strings.TrimSpace(firstLine(out)))
	return nil
}

// checkPreflight: the preflight ran in the image and its report reached status.
func (r *run) checkPreflight(ctx context.Context) error {
	e, err := r.environment(ctx)
	if err != nil {
		return err
	}
	pf := e.Status.Preflight
	if pf == nil {
		return fmt.Errorf("status.preflight is empty: the preflight did not run for this CPU-only environment")
	}
	if !pf.Passed {
		return fmt.Errorf("the preflight did not pass: %s %s", pf.Reason, pf.Message)
	}
	if pf.Torch == "" || len(pf.GPUs) > 0 {
		return fmt.Errorf("want torch checked and no GPU reported on the CPU node, got torch %q, GPUs %v (%s)", pf.Torch, pf.GPUs, pf.Message)
	}
	if !strings.Contains(strings.ToLower(pf.Message), "skip") {
		return fmt.Errorf("the preflight's message does not say the GPU checks were skipped: %q", pf.Message)
	}
	fmt.Printf("e2e realenv:   status.preflight: passed, %q (torch: %q)\n", pf.Message, pf.Torch)
	return nil
}

type mount struct {
	mountPoint, options, fsType, superOptions string
}

// mountAt finds the last mount at path in /proc/self/mountinfo (the one in effect).
func mountAt(mountinfo, path string) (mount, bool) {
	var m mount
	found := false
	for _, line := range strings.Split(mountinfo, "\n") {
		pre, post, ok := strings.Cut(line, " - ")
		f, g := strings.Fields(pre), strings.Fields(post)
		if !ok || len(f) < 6 || len(g) < 3 || f[4] != path {
			continue
		}
		m, found = mount{mountPoint: f[4], options: f[5], fsType: g[0], superOptions: g[2]}, true
	}
	return m, found
}

func hasOption(options, o string) bool {
	for _, x := range strings.Split(options, ",") {
		if x == o {
			return true
		}
	}
	return false
}

// tmpfsSizeKiB reads size=NNNk from a tmpfs's super options.
func tmpfsSizeKiB(superOptions string) int {
	for _, x := range strings.Split(superOptions, ",") {
		if v, ok := strings.CutPrefix(x, "size="); ok {
			n, err := strconv.Atoi(strings.TrimSuffix(v, "k"))
			if err == nil && strings.HasSuffix(v, "k") {
				return n
			}
		}
	}
	return -1
}

// outcome describes a command's result for a message: whether it failed, and its output.
func outcome(err error, out string) string {
	if err == nil {
		return "succeeded: " + out
	}
	return "failed (" + err.Error() + "): " + out
}

func firstLine(s string) string {
	line, _, _ := strings.Cut(s, "\n")
	return line
}
