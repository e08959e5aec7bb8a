package main

import (
	"context"
	"fmt"
	"os/exec"
	"path/filepath"
	"strings"
	"time"
)

const (
	shmSize         = "256Mi"
	shmSizeKiB      = 256 * 1024
	keepAlivePeriod = 5 // seconds: sshd's ClientAliveInterval and Jupyter's websocket ping
)

// setup creates the namespace (Pod Security "restricted"), the user's key pair and its
// Secret, and applies the TrainingEnvironment, as a user would.
func (r *run) setup(ctx context.Context) error {
	ns := r.o.namespace
	if err := r.findRealNode(ctx); err != nil {
		return err
	}
	if _, err := r.k.run(ctx, "delete", "namespace", ns, "--ignore-not-found", "--wait=true", "--timeout=150s"); err != nil {
		return err
	}
	if _, err := r.k.runIn(ctx, fmt.Sprintf(`apiVersion: v1
kind: Namespace
metadata:
  name: %s
  labels:
    pod-security.kubernetes.io/enforce: restricted
    pod-security.kubernetes.io/enforce-version: latest
`, ns), "apply", "-f", "-"); err != nil {
		return err
	}
	// Pods can be created in a namespace only once its default ServiceAccount exists.
	if err := poll(ctx, time.Minute, 200*time.Millisecond, "the default ServiceAccount of "+ns, func() (bool, string, error) {
		_, err := r.k.run(ctx, "-n", ns, "get", "serviceaccount", "default")
		return err == nil, fmt.Sprint(err), nil
	}); err != nil {
		return err
	}
	key := filepath.Join(r.work, "id_ed25519")
	if out, err := exec.CommandContext(ctx, "ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "trainenv-e2e", "-f", key).CombinedOutput(); err != nil {
		return fmt.Errorf("ssh-keygen: %w: %s", err, out)
	}
	if _, err := r.k.run(ctx, "-n", ns, "create", "secret", "generic", r.o.name+"-keys", "--from-file=authorized_keys="+key+".pub"); err != nil {
		return err
	}
	r.applied = time.Now()
	_, err := r.k.runIn(ctx, r.manifest(), "apply", "-f", "-")
	return err
}

// manifest is the environment: the reference image, CPU only, Jupyter and SSH with
// keep-alives shorter than the simulated NAT's idle cut, and a workspace on the real
// node's local volumes.
func (r *run) manifest() string {
	return fmt.Sprintf(`apiVersion: trainenv.io/v1alpha1
kind: TrainingEnvironment
metadata:
  name: %[1]s
  namespace: %[2]s
spec:
  image: %[3]s
  resources: {cpu: 500m, memory: 2Gi}
  shmSize: %[4]s
  jupyter:
    enabled: true
    websocketPingIntervalSeconds: %[5]d
  ssh:
    enabled: true
    authorizedKeysSecretRef: {name: %[1]s-keys}
    clientAliveIntervalSeconds: %[5]d
  workspace:
    size: 1Gi
    storageClassName: trainenv-local
`, r.o.name, r.o.namespace, r.o.image, shmSize, keepAlivePeriod)
}

// findRealNode finds the one real node, and cordons the simulated nodes a CPU-only pod
// could be scheduled to (kwok's CPU pool): the environment asks for no GPU and the
// TrainingEnvironment has no node selector, so only then must it land on the real node.
// cleanup uncordons them.
func (r *run) findRealNode(ctx context.Context) error {
	var nodes struct{ Items []node }
	if err := r.k.get(ctx, &nodes, "nodes"); err != nil {
		return err
	}
	var reals []string
	for _, n := range nodes.Items {
		if n.real() {
			reals = append(reals, n.Metadata.Name)
		}
	}
	if len(reals) != 1 {
		return fmt.Errorf("want one real node (a kubelet with containerd), found %d: %v", len(reals), reals)
	}
	r.realNode = reals[0]
	for _, n := range nodes.Items {
		if !n.simulated() || !n.acceptsCPUPods() {
			continue
		}
		if _, err := r.k.run(ctx, "cordon", n.Metadata.Name); err != nil {
			return err
		}
		r.cordoned = append(r.cordoned, n.Metadata.Name)
	}
	if len(r.cordoned) > 0 {
		fmt.Printf("e2e realenv: cordoned the simulated nodes that would take a CPU-only pod (%s) until the end of the check\n", strings.Join(r.cordoned, ", "))
	}
	return nil
}

func (r *run) environment(ctx context.Context) (environment, error) {
	var e environment
	err := r.k.get(ctx, &e, "-n", r.o.namespace, "trainingenvironment", r.o.name)
	return e, err
}

func (r *run) pod(ctx context.Context) (pod, error) {
	var p pod
	err := r.k.get(ctx, &p, "-n", r.o.namespace, "pod", r.o.name+"-0")
	return p, err
}

// waitRunning waits for phase Running with a ready pod other than the one of oldUID.
func (r *run) waitRunning(ctx context.Context, oldUID string) (pod, error) {
	var p pod
	err := poll(ctx, r.o.timeout, 200*time.Millisecond, "the environment Running with a ready pod", func() (bool, string, error) {
		e, err := r.environment(ctx)
		if err != nil {
			return false, err.Error(), nil
		}
		ready := e.condition("Ready")
		why := fmt.Sprintf("phase %q, Ready %s %s: %s", e.Status.Phase, ready.Status, ready.Reason, ready.Message)
		if e.Status.Phase == "Failed" {
			return false, "", fmt.Errorf("the environment failed: %s", why)
		}
		if e.Status.Phase != "Running" {
			return false, why, nil
		}
		p, err = r.pod(ctx)
		if err != nil {
			return false, err.Error(), nil
		}
		return p.ready() && p.Metadata.UID != oldUID, why + "; pod " + p.Status.Phase, nil
	})
	return p, err
}

// checkRunning: Running on the real node, and the kubelet runs the digest the operator pinned.
func (r *run) checkRunning(ctx context.Context) error {
	p, err := r.waitRunning(ctx, "")
	if err != nil {
		return err
	}
	r.record("apply→Running", time.Since(r.applied))
	e, err := r.environment(ctx)
	if err != nil {
		return err
	}
	if p.Spec.NodeName != r.realNode || e.Status.NodeName != r.realNode {
		return fmt.Errorf("the pod runs on %q (status.nodeName %q), not on the real node %s", p.Spec.NodeName, e.Status.NodeName, r.realNode)
	}
	img := e.Status.Image
	if img == nil || !strings.HasPrefix(img.Digest, "sha256:") || !strings.HasSuffix(img.Resolved, "@"+img.Digest) {
		return fmt.Errorf("status.image is not pinned by digest: %+v", img)
	}
	var main *containerStatus
	for i, c := range p.Status.ContainerStatuses {
		if c.Name == "main" {
			main = &p.Status.ContainerStatuses[i]
		}
	}
	if main == nil {
		return fmt.Errorf("the pod has no status for container main")
	}
	// The kubelet reports the image ID containerd resolved: repository@digest of what runs.
	if !strings.HasSuffix(main.ImageID, "@"+img.Digest) {
		return fmt.Errorf("the kubelet reports image ID %q, status.image.resolved is %s", main.ImageID, img.Resolved)
	}
	for _, c := range p.Spec.Containers {
		if c.Name == "main" && c.Image != img.Resolved {
			return fmt.Errorf("the pod's container runs %q, not status.image.resolved %s", c.Image, img.Resolved)
		}
	}
	fmt.Printf("e2e realenv:   %s → %s on %s (kubelet image ID %s)\n", img.Requested, img.Digest, r.realNode, main.ImageID)
	return nil
}
