package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"time"
)

// kube runs kubectl against one kubeconfig: the checks use kubectl, as a user does.
type kube struct {
	kubectl    string
	kubeconfig string
	env        []string
}

func (k kube) cmd(ctx context.Context, args ...string) *exec.Cmd {
	c := exec.CommandContext(ctx, k.kubectl, append([]string{"--kubeconfig", k.kubeconfig}, args...)...)
	c.Env = k.env
	return c
}

// run runs kubectl and returns its standard output; the error carries its standard error.
func (k kube) run(ctx context.Context, args ...string) (string, error) {
	return k.runIn(ctx, "", args...)
}

func (k kube) runIn(ctx context.Context, stdin string, args ...string) (string, error) {
	c := k.cmd(ctx, args...)
	var out, errOut bytes.Buffer
	c.Stdout, c.Stderr = &out, &errOut
	if stdin != "" {
		c.Stdin = strings.NewReader(stdin)
	}
	if err := c.Run(); err != nil {
		return out.String(), fmt.Errorf("kubectl %s: %w: %s", strings.Join(args, " "), err, strings.TrimSpace(errOut.String()))
	}
	return out.String(), nil
}

// get reads one object as JSON into v.
func (k kube) get(ctx context.Context, v any, args ...string) error {
	out, err := k.run(ctx, append([]string{"get", "-o", "json"}, args...)...)
	if err != nil {
		return err
	}
	return json.Unmarshal([]byte(out), v)
}

// poll calls f every interval until it returns true, an error it marks fatal, or timeout
// passes; then the last reason f gave is in the error.
func poll(ctx context.Context, timeout, interval time.Duration, what string, f func() (bool, string, error)) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	last := ""
	for {
		ok, why, err := f()
		if err != nil {
			return fmt.Errorf("%s: %w", what, err)
		}
		if ok {
			return nil
		}
		if why != "" {
			last = why
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%s: not within %s (last seen: %s)", what, timeout, orNone(last))
		case <-time.After(interval):
		}
	}
}

func orNone(s string) string {
	if s == "" {
		return "nothing"
	}
	return s
}

// The parts of the objects the checks read.

type condition struct {
	Type    string `json:"type"`
	Status  string `json:"status"`
	Reason  string `json:"reason"`
	Message string `json:"message"`
}

type environment struct {
	Metadata struct {
		Generation int64 `json:"generation"`
	} `json:"metadata"`
	Status struct {
		Phase              string      `json:"phase"`
		ObservedGeneration int64       `json:"observedGeneration"`
		NodeName           string      `json:"nodeName"`
		PodName            string      `json:"podName"`
		Conditions         []condition `json:"conditions"`
		Image              *struct {
			Requested string `json:"requested"`
			Resolved  string `json:"resolved"`
			Digest    string `json:"digest"`
		} `json:"image"`
		Access *struct {
			SSH *struct {
				HostKeyAlias string   `json:"hostKeyAlias"`
				HostKeys     []string `json:"hostKeys"`
				KnownHosts   string   `json:"knownHosts"`
			} `json:"ssh"`
			Jupyter *struct {
				TokenSecretRef struct {
					Name string `json:"name"`
					Key  string `json:"key"`
				} `json:"tokenSecretRef"`
			} `json:"jupyter"`
		} `json:"access"`
		Preflight *struct {
			Passed   bool     `json:"passed"`
			Reason   string   `json:"reason"`
			Message  string   `json:"message"`
			Torch    string   `json:"torch"`
			GPUs     []string `json:"gpus"`
			Warnings []string `json:"warnings"`
		} `json:"preflight"`
	} `json:"status"`
}

func (e environment) condition(t string) condition {
	for _, c := range e.Status.Conditions {
		if c.Type == t {
			return c
		}
	}
	return condition{Type: t, Status: "absent"}
}

type containerStatus struct {
	Name    string `json:"name"`
	Ready   bool   `json:"ready"`
	Image   string `json:"image"`
	ImageID string `json:"imageID"`
	State   struct {
		Running    *struct{} `json:"running"`
		Terminated *struct {
			ExitCode int    `json:"exitCode"`
			Reason   string `json:"reason"`
			Message  string `json:"message"`
		} `json:"terminated"`
	} `json:"state"`
}

type pod struct {
	Metadata struct {
		UID               string  `json:"uid"`
		DeletionTimestamp *string `json:"deletionTimestamp"`
	} `json:"metadata"`
	Spec struct {
		NodeName                     string `json:"nodeName"`
		AutomountServiceAccountToken *bool  `json:"automountServiceAccountToken"`
		InitContainers               []struct {
			Name string `json:"name"`
		} `json:"initContainers"`
		Containers []struct {
			Name  string `json:"name"`
			Image string `json:"image"`
		} `json:"containers"`
	} `json:"spec"`
	Status struct {
		Phase                 string            `json:"phase"`
		ContainerStatuses     []containerStatus `json:"containerStatuses"`
		InitContainerStatuses []containerStatus `json:"initContainerStatuses"`
	} `json:"status"`
}

func (p pod) ready() bool {
	if p.Status.Phase != "Running" || p.Metadata.DeletionTimestamp != nil {
		return false
	}
	for _, c := range p.Status.ContainerStatuses {
		if !c.Ready {
			return false
		}
	}
	return len(p.Status.ContainerStatuses) > 0
}

type node struct {
	Metadata struct {
		Name        string            `json:"name"`
		Annotations map[string]string `json:"annotations"`
	} `json:"metadata"`
	Spec struct {
		Unschedulable bool `json:"unschedulable"`
		Taints        []struct {
			Key    string `json:"key"`
			Effect string `json:"effect"`
		} `json:"taints"`
	} `json:"spec"`
	Status struct {
		Allocatable map[string]string `json:"allocatable"`
		NodeInfo    struct {
			ContainerRuntimeVersion string `json:"containerRuntimeVersion"`
			KubeletVersion          string `json:"kubeletVersion"`
		} `json:"nodeInfo"`
	} `json:"status"`
}

// simulated: kwok plays this node's kubelet; its pods never run.
func (n node) simulated() bool { return n.Metadata.Annotations["kwok.x-k8s.io/node"] != "" }

// real: a kubelet with containerd, not a simulated node.
func (n node) real() bool {
	return !n.simulated() && strings.HasPrefix(n.Status.NodeInfo.ContainerRuntimeVersion, "containerd://")
}

// acceptsCPUPods: a CPU-only pod without tolerations could be scheduled there.
func (n node) acceptsCPUPods() bool {
	if n.Spec.Unschedulable {
		return false
	}
	for _, t := range n.Spec.Taints {
		if t.Effect == "NoSchedule" || t.Effect == "NoExecute" {
			return false
		}
	}
	return true
}

func writeFile(path, content string) error { return os.WriteFile(path, []byte(content), 0o600) }
