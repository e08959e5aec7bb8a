package controller

import (
	"context"
	"fmt"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	trainenvv1 "github.com/trainenv/trainenv/api/v1alpha1"
	"github.com/trainenv/trainenv/internal/compat"
	"github.com/trainenv/trainenv/internal/reconcileerror"
)

// verifyImage asks the trust verifier about the pinned digest; the workload is created
// only if the verdict allows it.
func (r *TrainingEnvironmentReconciler) verifyImage(ctx context.Context, p *pass) error {
	verdict, err := r.Verifier.Verify(ctx, p.te, p.pinned)
	if err != nil {
		setCondition(p.te, trainenvv1.ConditionVerified, metav1.ConditionUnknown, verdict.Reason, fmt.Sprintf("verifying %s: %v", p.pinned, err))
		return err
	}
	changed := setCondition(p.te, trainenvv1.ConditionVerified, verdict.Status, verdict.Reason, verdict.Message)
	if !verdict.Allowed {
		if changed {
			r.event(p.te, corev1.EventTypeWarning, verdict.Reason, "Verify", "%s", verdict.Message)
		}
		return reconcileerror.NewStalled(verdict.Reason, "%s", verdict.Message)
	}
	return nil
}

// checkCompatibility looks for a node that can run the environment. None is a stalled
// pass: the node watch starts a new one when nodes change.
func (r *TrainingEnvironmentReconciler) checkCompatibility(ctx context.Context, p *pass) error {
	te := p.te
	var nodes corev1.NodeList
	if te.Spec.GPU != nil && te.Spec.GPU.Count > 0 {
		if err := r.List(ctx, &nodes); err != nil {
			return err
		}
	}
	res := compat.Check(te.Spec.GPU, nodes.Items)
	if !res.OK {
		if setCondition(te, trainenvv1.ConditionCompatible, metav1.ConditionFalse, res.Reason, res.Message) {
			r.event(te, corev1.EventTypeWarning, res.Reason, "Schedule", "%s", res.Message)
		}
		return reconcileerror.NewStalled(res.Reason, "%s", res.Message)
	}
	setCondition(te, trainenvv1.ConditionCompatible, metav1.ConditionTrue, res.Reason, res.Message)
	return nil
}

func markVerifyWaiting(te *trainenvv1.TrainingEnvironment) {
	setCondition(te, trainenvv1.ConditionVerified, metav1.ConditionUnknown, trainenvv1.ReasonWaitingForImage,
		"waiting for the image to be resolved to a digest")
}

func markCompatibilityWaiting(te *trainenvv1.TrainingEnvironment) {
	setConditionIfAbsent(te, trainenvv1.ConditionCompatible, metav1.ConditionUnknown, trainenvv1.ReasonWaitingForImage,
		"waiting for the image to be resolved and verified")
}

func markWorkloadWaiting(te *trainenvv1.TrainingEnvironment) {
	setConditionIfAbsent(te, trainenvv1.ConditionWorkloadReady, metav1.ConditionFalse, trainenvv1.ReasonWaitingForChecks,
		"no workload until the image is resolved, verified and compatible")
}
