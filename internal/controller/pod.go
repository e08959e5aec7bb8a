package controller

import (
	"fmt"

	corev1 "k8s.io/api/core/v1"

	trainenvv1 "github.com/trainenv/trainenv/api/v1alpha1"
	"github.com/trainenv/trainenv/internal/workload"
)

// podStatus is what the environment's pod says about WorkloadReady.
type podStatus struct {
	ready   bool
	reason  string
	message string
	// warning marks states the user must notice (an event is emitted).
	warning bool
}

// podState reads the pod (nil: not created yet) and its preflight result (preflightResult)
// as a pure function.
func podState(pod *corev1.Pod, pf *trainenvv1.PreflightStatus, pinned string) podStatus {
	if pod == nil {
		return podStatus{reason: trainenvv1.ReasonPodStarting, message: "waiting for the StatefulSet to create the pod"}
	}
	for _, c := range pod.Status.Conditions {
		if c.Type == corev1.PodScheduled && c.Status == corev1.ConditionFalse && c.Reason == corev1.PodReasonUnschedulable {
			return podStatus{reason: trainenvv1.ReasonUnschedulable, warning: true,
				message: fmt.Sprintf("pod %s cannot be scheduled: %s", pod.Name, c.Message)}
		}
	}
	if pf != nil && !pf.Passed {
		return preflightFailed(pod, pf)
	}
	if st, failing := failingContainer(pod); failing {
		return st
	}
	if !runs(pod, pinned) {
		return podStatus{reason: trainenvv1.ReasonPodStarting, message: fmt.Sprintf("pod %s is being replaced to run %s", pod.Name, pinned)}
	}
	for _, c := range pod.Status.Conditions {
		if c.Type == corev1.PodReady && c.Status == corev1.ConditionTrue {
			return podStatus{ready: true, reason: trainenvv1.ReasonPodReady, message: fmt.Sprintf("pod %s is ready on node %s", pod.Name, pod.Spec.NodeName)}
		}
	}
	if preflightRunning(pod) {
		return podStatus{reason: trainenvv1.ReasonPodStarting, message: fmt.Sprintf("pod %s is checking its GPUs on node %s (preflight)", pod.Name, pod.Spec.NodeName)}
	}
	return podStatus{reason: trainenvv1.ReasonPodStarting, message: fmt.Sprintf("pod %s is %s", pod.Name, pod.Status.Phase)}
}

func runs(pod *corev1.Pod, pinned string) bool {
	for _, c := range pod.Spec.Containers {
		if c.Name == workload.ContainerName {
			return c.Image == pinned
		}
	}
	return false
}

// connectCommands tells the user how to reach a ready environment: the kubectl plugin
// keeps the port-forwards up and verifies the SSH host keys from status.access.
func connectCommands(te *trainenvv1.TrainingEnvironment) []string {
	pod := workload.PodName(te)
	cmds := []string{fmt.Sprintf("kubectl -n %s exec -it %s -c %s -- /bin/bash", te.Namespace, pod, workload.ContainerName)}
	if workload.JupyterEnabled(te) || workload.SSHEnabled(te) {
		cmds = append(cmds, fmt.Sprintf("kubectl trainenv connect %s -n %s", te.Name, te.Namespace))
	}
	if workload.SSHEnabled(te) {
		cmds = append(cmds, fmt.Sprintf("kubectl trainenv ssh-config %s -n %s >> ~/.ssh/config", te.Name, te.Namespace))
	}
	return cmds
}
