package controller

import (
	"fmt"
	"strings"
	"unicode/utf8"

	corev1 "k8s.io/api/core/v1"

	trainenvv1 "github.com/trainenv/trainenv/api/v1alpha1"
	"github.com/trainenv/trainenv/internal/preflight/report"
	"github.com/trainenv/trainenv/internal/workload"
)

// maxRawMessage bounds a termination message that is not a preflight report (the log tail
// of a preflight that could not run) in the condition.
const maxRawMessage = 1024

// preflightResult reads the preflight init container's latest finished run from the pod:
// nil when the pod has none or it has not finished yet. While the kubelet restarts a failed
// preflight, the failure is in lastState.
func preflightResult(pod *corev1.Pod) *trainenvv1.PreflightStatus {
	if pod == nil {
		return nil
	}
	for _, cs := range pod.Status.InitContainerStatuses {
		if cs.Name != workload.PreflightContainerName {
			continue
		}
		if t := cs.State.Terminated; t != nil {
			return preflightStatus(t)
		}
		if t := cs.LastTerminationState.Terminated; t != nil {
			return preflightStatus(t)
		}
	}
	return nil
}

// preflightRunning tells whether the preflight is running now with no earlier result.
func preflightRunning(pod *corev1.Pod) bool {
	for _, cs := range pod.Status.InitContainerStatuses {
		if cs.Name == workload.PreflightContainerName {
			return cs.State.Running != nil && cs.LastTerminationState.Terminated == nil
		}
	}
	return false
}

// preflightStatus turns a terminated preflight into status. The exit code decides; the
// report, when the message is one, says what was found.
func preflightStatus(t *corev1.ContainerStateTerminated) *trainenvv1.PreflightStatus {
	r, err := report.Decode(t.Message)
	if err != nil {
		// No report: the preflight did not run to its end (it could not start in the image,
		// or was killed); the message, if any, is the end of its log.
		// Exit 0 without it is no pass either (fail closed): nothing is known of the GPUs.
		if t.ExitCode == 0 {
			return &trainenvv1.PreflightStatus{Passed: false, Reason: trainenvv1.ReasonPreflightNoReport,
				Message: "the preflight exited 0 without its report (killed, replaced by a program of the image, or its termination message cut short): not counted as passed"}
		}
		msg := fmt.Sprintf("the preflight exited with code %d (%s) without a report", t.ExitCode, t.Reason)
		if raw := strings.TrimSpace(t.Message); raw != "" {
			msg += ": " + truncate(raw, maxRawMessage)
		}
		return &trainenvv1.PreflightStatus{Passed: false, Reason: trainenvv1.ReasonPreflightFailed, Message: msg}
	}
	s := &trainenvv1.PreflightStatus{
		Passed:            r.Passed && t.ExitCode == 0,
		Message:           r.Summary(),
		DriverVersion:     r.Driver,
		CUDADriverVersion: r.CUDA,
		GPUs:              r.GPUSummary(),
		Torch:             r.TorchSummary(),
		Warnings:          r.Warnings,
	}
	if r.Passed && t.ExitCode != 0 {
		s.Message = fmt.Sprintf("the preflight reported success but exited with code %d (%s)", t.ExitCode, t.Reason)
	}
	if !s.Passed {
		s.Reason = trainenvv1.ReasonPreflightFailed
	}
	return s
}

// truncate cuts s to at most n bytes on a character boundary.
func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n] + "…"
}

// recordPreflight puts the pod's preflight result into status and marks each change of it
// with an event, so that `kubectl describe` shows when the GPUs passed or failed and why.
func (r *TrainingEnvironmentReconciler) recordPreflight(te *trainenvv1.TrainingEnvironment, pf *trainenvv1.PreflightStatus) {
	old := te.Status.Preflight
	te.Status.Preflight = pf
	if pf == nil || (old != nil && old.Passed == pf.Passed && old.Message == pf.Message) {
		return
	}
	countPreflight(pf)
	if pf.Passed {
		note := fmt.Sprintf("GPU preflight passed on node %s: %s", te.Status.NodeName, pf.Message)
		if len(pf.Warnings) > 0 {
			note += "; warnings: " + strings.Join(pf.Warnings, "; ")
		}
		r.event(te, corev1.EventTypeNormal, trainenvv1.ReasonPreflightPassed, "Preflight", "%s", truncate(note, maxEventNote))
		return
	}
	if pf.Reason == trainenvv1.ReasonPreflightNoReport {
		r.event(te, corev1.EventTypeWarning, trainenvv1.ReasonPreflightNoReport, "Preflight", "%s",
			fmt.Sprintf("GPU preflight on node %s left no report: %s", te.Status.NodeName, pf.Message))
		return
	}
	r.event(te, corev1.EventTypeWarning, trainenvv1.ReasonPreflightFailed, "Preflight", "%s",
		truncate(fmt.Sprintf("GPU preflight failed on node %s: %s", te.Status.NodeName, pf.Message), maxEventNote))
}

// maxEventNote keeps event notes within the 1 kB that events.k8s.io allows.
const maxEventNote = 1000

// preflightFailed is WorkloadReady for a pod whose preflight failed.
func preflightFailed(pod *corev1.Pod, pf *trainenvv1.PreflightStatus) podStatus {
	if pf.Reason == trainenvv1.ReasonPreflightNoReport {
		return podStatus{reason: trainenvv1.ReasonPreflightNoReport, message: fmt.Sprintf(
			"the GPU preflight of pod %s on node %s exited 0 without its report, so its GPUs are unchecked: %s. "+
				"The kubelet does not run it again; to rerun it: kubectl delete pod %s (the workspace is kept); "+
				"`kubectl logs %s -c %s` shows what it printed",
			pod.Name, pod.Spec.NodeName, pf.Message, pod.Name, pod.Name, workload.PreflightContainerName)}
	}
	return podStatus{reason: trainenvv1.ReasonPreflightFailed, message: fmt.Sprintf(
		"the GPU preflight of pod %s on node %s failed: %s. The kubelet retries it; `kubectl logs %s -c %s` has the details",
		pod.Name, pod.Spec.NodeName, pf.Message, pod.Name, workload.PreflightContainerName)}
}
