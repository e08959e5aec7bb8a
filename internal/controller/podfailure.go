package controller

import (
	"fmt"
	"slices"
	"strings"

	corev1 "k8s.io/api/core/v1"

	trainenvv1 "github.com/trainenv/trainenv/api/v1alpha1"
	"github.com/trainenv/trainenv/internal/access"
	"github.com/trainenv/trainenv/internal/workload"
)

// Why a container of the environment's pod does not run, as WorkloadReady says it: a pull the
// node cannot do, an image the entrypoint found lacking (its termination message,
// access.ImageLacksMessage), or a crash of unknown cause with its last exit code and
// termination message. Pure functions of the pod, table-tested in status_test.go.

// failingWaitReasons are container waiting reasons that will not clear by themselves
// (besides the pulls, pullWaitReasons).
var failingWaitReasons = map[string]bool{
	"CrashLoopBackOff": true, "CreateContainerConfigError": true, "CreateContainerError": true, "InvalidImageName": true,
}

// pullWaitReasons are the kubelet's waiting reasons of a pull that failed (the last two are
// the CRI's own errors, kubelet 1.30+).
var pullWaitReasons = map[string]bool{
	"ErrImagePull": true, "ImagePullBackOff": true, "RegistryUnavailable": true, "SignatureValidationFailed": true,
}

// lackReasons gives each thing an image can lack its WorkloadReady reason.
var lackReasons = map[access.ImageLack]string{
	access.LackPlatform: trainenvv1.ReasonImagePlatformMismatch,
	access.LackSSHD:     trainenvv1.ReasonImageMissingSSHD,
	access.LackUser:     trainenvv1.ReasonImageMissingUser,
	access.LackJupyter:  trainenvv1.ReasonImageMissingJupyter,
}

// failingContainer reports the first container of the pod (init containers first) that
// cannot run, and ok false when none is failing.
func failingContainer(pod *corev1.Pod) (podStatus, bool) {
	for _, cs := range slices.Concat(pod.Status.InitContainerStatuses, pod.Status.ContainerStatuses) {
		if w := cs.State.Waiting; w != nil && pullWaitReasons[w.Reason] {
			return pullFailed(pod, cs, w), true
		}
		if cs.Name == workload.ContainerName {
			if st, ok := imageLacks(pod, cs); ok {
				return st, true
			}
		}
		if w := cs.State.Waiting; w != nil && failingWaitReasons[w.Reason] {
			return containerFailing(pod, cs, w), true
		}
	}
	return podStatus{}, false
}

// pullFailed is WorkloadReady for a container whose image the node cannot pull. The message
// is the same whether the kubelet is pulling or backing off, so that its retries do not
// rewrite the condition or repeat the event.
func pullFailed(pod *corev1.Pod, cs corev1.ContainerStatus, w *corev1.ContainerStateWaiting) podStatus {
	pullErr := pullError(w)
	reason, hint := trainenvv1.ReasonImagePullFailed, pullHint(pod, pullErr)
	if platformMismatch(pullErr) {
		reason = trainenvv1.ReasonImagePlatformMismatch
		hint = "the image has no manifest for the node's platform: use an image built for it (a multi-platform image, with spec.platform set to the nodes' platform)"
	}
	if cs.Name == workload.ToolsInitContainerName {
		hint = "this is trainenv's own tools image (the operator's --tools-image): ask the platform team to make it pullable on the node"
	}
	return podStatus{reason: reason, warning: true, message: fmt.Sprintf(
		"node %s cannot pull the image of container %s of pod %s (%s): %s; %s. The kubelet keeps retrying with back-off; `kubectl describe pod %s` shows the pulls",
		orUnknownNode(pod.Spec.NodeName), cs.Name, pod.Name, imageOf(pod, cs), truncate(pullErr, maxRawMessage), hint, pod.Name)}
}

// pullError is the error of the last pull: the kubelet's message for a failed pull, and
// the same error inside its back-off message (`Back-off pulling image "IMAGE": ErrImagePull:
// ERROR`); the waiting reason when there is none (a back-off after a kubelet restart).
func pullError(w *corev1.ContainerStateWaiting) string {
	msg := strings.TrimSpace(w.Message)
	if rest, backOff := strings.CutPrefix(msg, "Back-off pulling image "); backOff {
		_, msg, _ = strings.Cut(rest, `": `)
		for r := range pullWaitReasons {
			msg = strings.TrimPrefix(msg, r+": ")
		}
	}
	if msg == "" {
		return w.Reason
	}
	return msg
}

// platformMismatch tells a kubelet's pull error that no manifest fits the node's platform
// (containerd: "no match for platform in manifest"; CRI-O: "no image found in manifest list
// for architecture …").
func platformMismatch(message string) bool {
	m := strings.ToLower(message)
	return strings.Contains(m, "no match for platform") || strings.Contains(m, "no image found in manifest list for architecture") ||
		strings.Contains(m, "no matching manifest")
}

// pullHint says what to look at for a pull error, from the kubelet's words.
func pullHint(pod *corev1.Pod, message string) string {
	m := strings.ToLower(message)
	auth := false
	// Words, not status codes: a digest in the message may hold any run of digits.
	for _, w := range []string{"unauthorized", "forbidden", "denied", "authentication required", "authorization failed", "insufficient_scope", "no basic auth credentials"} {
		auth = auth || strings.Contains(m, w)
	}
	var secrets []string
	for _, s := range pod.Spec.ImagePullSecrets {
		secrets = append(secrets, s.Name)
	}
	switch {
	case auth && len(secrets) == 0:
		return "the registry wants credentials and the pod has no pull Secret: name one in spec.imagePullSecrets (a kubernetes.io/dockerconfigjson Secret in this namespace)"
	case auth:
		return fmt.Sprintf("the registry refused the credentials of the pull Secret(s) %s: check that they hold a valid login for this registry", strings.Join(secrets, ", "))
	case strings.Contains(m, "not found") || strings.Contains(m, "manifest unknown"):
		return "the registry no longer has the pinned digest (deleted since it was resolved?), or the node reaches another registry under that name; push the image again or pin another"
	}
	return "check that the node can reach the registry and that spec.imagePullSecrets names Secrets valid for it"
}

// imageLacks is WorkloadReady for a main container whose entrypoint stopped because the image
// lacks something: its current or last termination.
func imageLacks(pod *corev1.Pod, cs corev1.ContainerStatus) (podStatus, bool) {
	t := lastTermination(cs)
	if t == nil || t.ExitCode == 0 {
		return podStatus{}, false
	}
	lacks, detail, ok := access.ParseImageLacks(t.Message)
	if !ok {
		return podStatus{}, false
	}
	return podStatus{reason: lackReasons[lacks[0]], warning: true, message: fmt.Sprintf(
		"the image %s cannot run this environment: %s. The kubelet restarts the container with back-off; fix the image and set spec.image to it (or change the spec)",
		imageOf(pod, cs), truncate(detail, maxRawMessage))}, true
}

// containerFailing is WorkloadReady for a failing container of no known cause: the kubelet's
// words and, for a crash, the last exit code and termination message. The kubelet's
// back-off message of a crash loop ("back-off 40s restarting failed container=…") is left
// out: it grows with each restart and says nothing more, and a message that changes with
// each restart would rewrite the status and repeat the event.
func containerFailing(pod *corev1.Pod, cs corev1.ContainerStatus, w *corev1.ContainerStateWaiting) podStatus {
	msg := fmt.Sprintf("container %s of pod %s: %s: %s", cs.Name, pod.Name, w.Reason, w.Message)
	if w.Reason == "CrashLoopBackOff" {
		msg = fmt.Sprintf("container %s of pod %s keeps crashing (CrashLoopBackOff)", cs.Name, pod.Name)
	}
	if t := lastTermination(cs); t != nil {
		msg += fmt.Sprintf("; it last exited with code %d (%s)", t.ExitCode, t.Reason)
		if m := strings.TrimSpace(t.Message); m != "" {
			msg += ": " + truncate(m, maxRawMessage)
		} else {
			msg += fmt.Sprintf(" without a termination message; `kubectl logs %s -c %s --previous` shows its output", pod.Name, cs.Name)
		}
	}
	return podStatus{reason: trainenvv1.ReasonContainerFailing, warning: true, message: msg}
}

// lastTermination is the container's termination now or, while the kubelet waits to restart
// it, its last one; nil while it runs.
func lastTermination(cs corev1.ContainerStatus) *corev1.ContainerStateTerminated {
	switch {
	case cs.State.Terminated != nil:
		return cs.State.Terminated
	case cs.State.Waiting != nil:
		return cs.LastTerminationState.Terminated
	}
	return nil
}

// imageOf is the container's image as the spec names it, else as the kubelet reports it: the
// manager's cache keeps no init containers of pods (cachetransform.go), and the preflight is
// one. The kubelet reports the spec's reference while a pull fails, but containerd's image
// ID (sha256:…) once the container ran, which names nothing a user wrote.
func imageOf(pod *corev1.Pod, cs corev1.ContainerStatus) string {
	for _, c := range slices.Concat(pod.Spec.InitContainers, pod.Spec.Containers) {
		if c.Name == cs.Name {
			return c.Image
		}
	}
	if cs.Image != "" {
		return cs.Image
	}
	return "unknown"
}

func orUnknownNode(node string) string {
	if node == "" {
		return "(not yet known)"
	}
	return node
}
