package controller

import (
	"context"
	"fmt"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/log"

	trainenvv1 "github.com/trainenv/trainenv/api/v1alpha1"
	"github.com/trainenv/trainenv/internal/access"
	"github.com/trainenv/trainenv/internal/workload"
)

// Idle suspension (spec.idleSuspend). The in-pod entrypoint watches SSH sessions, Jupyter
// terminals and kernels, and exits with a termination message starting with
// access.IdleMessagePrefix once nothing was in use for the setting. The controller reads
// that from the pod, records it in status.idleSuspension and scales the workload to zero;
// the user's spec is never written. The suspension lasts until a resume request (the
// annotation trainenv.io/resume-requested-at, later than the suspension), spec.suspend, or
// spec.idleSuspend removed.

// idleSuspended says whether the environment is suspended for idleness now.
func idleSuspended(te *trainenvv1.TrainingEnvironment) bool {
	is := te.Status.IdleSuspension
	return is != nil && is.ResumedAt == nil
}

// updateIdleSuspension records a new idle exit of the environment's entrypoint, then ends
// the suspension if something asks for that; both before the workload is rendered.
func (r *TrainingEnvironmentReconciler) updateIdleSuspension(ctx context.Context, p *pass) error {
	te := p.te
	if !idleSuspended(te) && !te.Spec.Suspend && te.Spec.IdleSuspend != nil {
		pod := &corev1.Pod{}
		err := r.Get(ctx, types.NamespacedName{Namespace: te.Namespace, Name: workload.PodName(te)}, pod)
		switch {
		case apierrors.IsNotFound(err):
			pod = nil
		case err != nil:
			return err
		}
		r.recordIdleExit(te, idleExit(pod))
	}
	if !idleSuspended(te) {
		return nil
	}
	if why := resumeReason(ctx, te); why != "" {
		te.Status.IdleSuspension.ResumedAt = ptrTime(r.Clock.Now())
		r.event(te, corev1.EventTypeNormal, trainenvv1.ReasonResumed, "Resume", "idle suspension ended: %s", why)
	}
	return nil
}

// recordIdleExit starts a suspension for exit, unless it is the one already recorded: after a
// resume the same pod may still show it as its container's last state.
func (r *TrainingEnvironmentReconciler) recordIdleExit(te *trainenvv1.TrainingEnvironment, exit *corev1.ContainerStateTerminated) {
	if exit == nil {
		return
	}
	if last := te.Status.IdleSuspension; last != nil && !exit.FinishedAt.After(last.SuspendedAt.Time) {
		return
	}
	te.Status.IdleSuspension = &trainenvv1.IdleSuspensionStatus{SuspendedAt: exit.FinishedAt, Message: strings.TrimSpace(exit.Message)}
	r.event(te, corev1.EventTypeNormal, trainenvv1.ReasonIdleSuspended, "Suspend",
		"suspended because nobody used it (%s): GPUs freed, workspace kept; resume with: kubectl trainenv resume %s -n %s",
		idleAccount(te), te.Name, te.Namespace)
}

// idleExit is the main container's termination by the entrypoint's idle monitor, in its
// current state or, once the kubelet restarted it, its last state; nil when there is none.
func idleExit(pod *corev1.Pod) *corev1.ContainerStateTerminated {
	if pod == nil {
		return nil
	}
	for _, cs := range pod.Status.ContainerStatuses {
		if cs.Name != workload.ContainerName {
			continue
		}
		for _, t := range []*corev1.ContainerStateTerminated{cs.State.Terminated, cs.LastTerminationState.Terminated} {
			if t != nil && strings.HasPrefix(t.Message, access.IdleMessagePrefix) && !t.FinishedAt.IsZero() {
				return t
			}
		}
	}
	return nil
}

// resumeReason says what ends the current idle suspension, or "" when nothing does.
func resumeReason(ctx context.Context, te *trainenvv1.TrainingEnvironment) string {
	switch {
	case te.Spec.Suspend:
		return "spec.suspend is true (the environment stays suspended as asked)"
	case te.Spec.IdleSuspend == nil:
		return "spec.idleSuspend was removed"
	}
	value, ok := te.Annotations[trainenvv1.AnnotationResumeRequestedAt]
	if !ok {
		return ""
	}
	at, err := time.Parse(time.RFC3339, value)
	if err != nil {
		log.FromContext(ctx).Info("ignoring a resume request that is not an RFC 3339 time", "annotation", trainenvv1.AnnotationResumeRequestedAt, "value", value)
		return ""
	}
	if !at.After(te.Status.IdleSuspension.SuspendedAt.Time) {
		return "" // a request older than this suspension
	}
	return fmt.Sprintf("resume requested at %s", at.UTC().Format(time.RFC3339))
}

// idleAccount is the entrypoint's message without its program prefix, e.g. "idle for
// 2h0m0s: no SSH session, no terminal, no busy kernel, no busy process, GPUs idle (GPU 0 at 0 %) since 2026-11-23T10:00:00Z".
func idleAccount(te *trainenvv1.TrainingEnvironment) string {
	return strings.TrimPrefix(te.Status.IdleSuspension.Message, "trainenv: ")
}

// idleSuspendedMessage is WorkloadReady's (and Ready's) message while suspended for idleness.
func idleSuspendedMessage(te *trainenvv1.TrainingEnvironment) string {
	return fmt.Sprintf("scaled to zero because nobody used it for spec.idleSuspend.afterMinutes (%s); GPUs are free and the workspace is kept; "+
		"resume with: kubectl trainenv resume %s -n %s", idleAccount(te), te.Name, te.Namespace)
}

func ptrTime(t time.Time) *metav1.Time {
	mt := metav1.NewTime(t)
	return &mt
}
