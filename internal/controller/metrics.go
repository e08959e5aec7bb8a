package controller

import (
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	trainenvv1 "github.com/trainenv/trainenv/api/v1alpha1"
	"github.com/trainenv/trainenv/internal/metrics"
	"github.com/trainenv/trainenv/internal/trust"
)

// The reconciler's event metrics. The gauges (environments by phase, GPUs, node agents)
// are not here: metrics.State computes them from the cache at scrape time.

// countVerification counts one verdict of the trust verifier.
func countVerification(v trust.Verdict, err error) {
	reason := v.Reason
	if reason == "" {
		reason = trainenvv1.ReasonVerificationFailed
	}
	metrics.Verifications.WithLabelValues(metrics.Result(v.Allowed(), err), reason).Inc()
}

// countCompatibility counts one decision of the compatibility check.
func countCompatibility(reason string) {
	metrics.CompatibilityDecisions.WithLabelValues(reason).Inc()
}

// countPreflight counts a preflight result the environment did not have before.
func countPreflight(pf *trainenvv1.PreflightStatus) {
	result := "failed"
	if pf.Passed {
		result = "passed"
	}
	metrics.Preflights.WithLabelValues(result).Inc()
}

// observeReady records the time from creation to Ready the first time an environment
// runs. An environment is observed once per manager process: Ready turning True again
// after a suspend, or a restart that finds it already Ready or suspended, is not a first
// start. (A new leader that takes over during a resume may count that resume once.)
func (r *TrainingEnvironmentReconciler) observeReady(before, after *trainenvv1.TrainingEnvironment) {
	ready := meta.FindStatusCondition(after.Status.Conditions, trainenvv1.ConditionReady)
	if ready == nil || ready.Status != metav1.ConditionTrue {
		return
	}
	// By name, with the UID as value: forget drops a deleted environment's entry, and one
	// recreated under the same name is a new environment.
	if seen, loaded := r.readySeen.Swap(client.ObjectKeyFromObject(after), after.UID); loaded && seen == after.UID {
		return
	}
	if meta.IsStatusConditionTrue(before.Status.Conditions, trainenvv1.ConditionReady) || ready.Reason != trainenvv1.ReasonReady {
		return // already Ready (or suspended) when this process first saw it
	}
	if d := r.Clock.Since(after.CreationTimestamp.Time); d >= 0 {
		metrics.TimeToReady.Observe(d.Seconds())
	}
}
