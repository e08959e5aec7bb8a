package main

import (
	"context"
	"fmt"
	"os/exec"
	"regexp"
	"strings"
	"time"
)

const workspaceFile = "/workspace/trainenv-e2e.txt"

// writeWorkspace writes a file only this run knows to the workspace, as the user.
func (r *run) writeWorkspace(ctx context.Context, content string) error {
	_, err := r.exec(ctx, fmt.Sprintf("printf '%%s' '%s' > %s && sync", content, workspaceFile))
	return err
}

func (r *run) readWorkspace(ctx context.Context, want string) error {
	got, err := r.exec(ctx, "cat "+workspaceFile)
	if err != nil {
		return fmt.Errorf("the workspace file is gone: %w", err)
	}
	if got != want {
		return fmt.Errorf("the workspace file holds %q, want %q", got, want)
	}
	return nil
}

func (r *run) patchSuspend(ctx context.Context, suspend bool) error {
	_, err := r.k.run(ctx, "-n", r.o.namespace, "patch", "trainingenvironment", r.o.name, "--type", "merge",
		"-p", fmt.Sprintf(`{"spec": {"suspend": %t}}`, suspend))
	return err
}

// checkSuspendResume: suspend: true stops the pod and keeps the workspace; suspend: false
// brings it back with the file, and connect, left running, reconnects by itself.
func (r *run) checkSuspendResume(ctx context.Context) error {
	content := "kept across suspend " + randomID()
	if err := r.writeWorkspace(ctx, content); err != nil {
		return err
	}
	old, err := r.pod(ctx)
	if err != nil {
		return err
	}
	before, logged := r.connections(), len(r.connect.stderr())
	start := time.Now()
	if err := r.patchSuspend(ctx, true); err != nil {
		return err
	}
	if err := poll(ctx, r.o.timeout, 200*time.Millisecond, "the environment Suspended with no pod", func() (bool, string, error) {
		e, err := r.environment(ctx)
		if err != nil {
			return false, err.Error(), nil
		}
		_, perr := r.pod(ctx)
		gone := perr != nil && strings.Contains(perr.Error(), "NotFound")
		return e.Status.Phase == "Suspended" && gone, fmt.Sprintf("phase %q, pod gone %t", e.Status.Phase, gone), nil
	}); err != nil {
		return err
	}
	r.record("suspend", time.Since(start))
	start = time.Now()
	if err := r.patchSuspend(ctx, false); err != nil {
		return err
	}
	if _, err := r.waitRunning(ctx, old.Metadata.UID); err != nil {
		return err
	}
	r.record("resume→Running", time.Since(start))
	if err := r.readWorkspace(ctx, content); err != nil {
		return err
	}
	return r.reconnected(ctx, before, logged, "reconnect after resume", "after the resume")
}

// checkPodDeletion: the pod is deleted; the StatefulSet recreates it with the workspace,
// and connect reconnects by itself.
func (r *run) checkPodDeletion(ctx context.Context) error {
	content := "kept across a pod deletion " + randomID()
	if err := r.writeWorkspace(ctx, content); err != nil {
		return err
	}
	old, err := r.pod(ctx)
	if err != nil {
		return err
	}
	before, logged := r.connections(), len(r.connect.stderr())
	start := time.Now()
	if _, err := r.k.run(ctx, "-n", r.o.namespace, "delete", "pod", r.o.name+"-0", "--wait=false"); err != nil {
		return err
	}
	if _, err := r.waitRunning(ctx, old.Metadata.UID); err != nil {
		return err
	}
	r.record("pod deleted→Running", time.Since(start))
	if err := r.readWorkspace(ctx, content); err != nil {
		return err
	}
	return r.reconnected(ctx, before, logged, "reconnect after pod deletion", "after the pod was deleted and recreated")
}

var connectedLine = regexp.MustCompile(`(?m)^connected to pod `)

// connections counts the tunnels connect has opened so far.
func (r *run) connections() int {
	return len(connectedLine.FindAllStringIndex(r.connect.stderr(), -1))
}

// reconnected: connect, running since the Jupyter check, opened a new tunnel by itself,
// and both its Jupyter and its SSH ports work through it.
func (r *run) reconnected(ctx context.Context, before, logged int, name, when string) error {
	if r.connect == nil || r.connect.exited() {
		return fmt.Errorf("connect is not running %s", when)
	}
	start := time.Now()
	base := jupyterBase(r.jupyterURL)
	// connect backs off up to 30 s (+20 %) between attempts while the pod is away.
	if err := poll(ctx, 3*time.Minute, 200*time.Millisecond, "connect reconnecting "+when, func() (bool, string, error) {
		if r.connections() <= before {
			return false, "no new connection yet: " + tail(r.connect.stderr(), 3), nil
		}
		code, body, err := httpGet(ctx, base+"api/status", r.token)
		if err != nil {
			return false, err.Error(), nil
		}
		return code == 200, fmt.Sprintf("%d %s", code, body), nil
	}); err != nil {
		return err
	}
	r.record(name, time.Since(start))
	host, port, _ := strings.Cut(r.sshAddr, ":")
	c := exec.CommandContext(ctx, "ssh", "-i", r.work+"/id_ed25519", "-o", "IdentitiesOnly=yes", "-o", "BatchMode=yes",
		"-o", "ConnectTimeout=30", "-o", "StrictHostKeyChecking=yes", "-o", "HostKeyAlias=trainenv."+r.o.namespace+"."+r.o.name,
		"-o", "UserKnownHostsFile="+r.work+"/ssh_config.known_hosts", "-p", port, r.o.sshUser+"@"+host, "cat "+workspaceFile)
	out, err := c.CombinedOutput()
	if err != nil {
		return fmt.Errorf("ssh through connect's port %s %s: %w: %s", r.sshAddr, when, err, tail(string(out), 5))
	}
	fmt.Printf("e2e realenv:   %s: workspace file intact; connect reconnected (connection %d), Jupyter and ssh through it answer; connect logged meanwhile:\n", when, r.connections())
	for _, l := range strings.Split(strings.TrimSpace(r.connect.stderr()[min(logged, len(r.connect.stderr())):]), "\n") {
		fmt.Printf("e2e realenv:     %s\n", l)
	}
	return nil
}
