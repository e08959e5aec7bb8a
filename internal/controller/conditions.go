package controller

import (
	"fmt"

	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	trainenvv1 "github.com/trainenv/trainenv/api/v1alpha1"
	"github.com/trainenv/trainenv/internal/reconcileerror"
)

// Who writes each condition: one setter per condition type, the only call of setCondition
// for that type, called only from its step's file(s). `grep -n 'setWorkloadReady(' *.go`
// (or setImageResolved, setVerified, setCompatible, setReady) lists every writer;
// TestOneWriterPerCondition keeps it so.
//
//	condition      setter            step (file)
//	ImageResolved  setImageResolved  resolve (resolve.go), incl. a FollowTag candidate refused
//	Verified       setVerified       verify (verify.go)
//	Compatible     setCompatible     checkCompatibility (compatible.go)
//	WorkloadReady  setWorkloadReady  ensureWorkload (workload.go), incl. onVerificationLoss
//	Ready          setReady          summarize (conditions.go), from the others
//
// Steps that did not run in a pass mark their conditions as waiting (runSteps).

// setCondition sets a condition for the current generation and reports whether its status,
// reason or message changed (callers emit events only then, so nothing repeats).
func setCondition(te *trainenvv1.TrainingEnvironment, condType string, status metav1.ConditionStatus, reason, message string) bool {
	old := meta.FindStatusCondition(te.Status.Conditions, condType)
	changed := old == nil || old.Status != status || old.Reason != reason || old.Message != message
	meta.SetStatusCondition(&te.Status.Conditions, metav1.Condition{
		Type: condType, Status: status, Reason: reason, Message: message, ObservedGeneration: te.Generation,
	})
	return changed
}

// summarize sets Ready and the phase from the other conditions and the pass's outcome.
func summarize(te *trainenvv1.TrainingEnvironment, passErr error) {
	for _, t := range []string{trainenvv1.ConditionImageResolved, trainenvv1.ConditionVerified, trainenvv1.ConditionCompatible} {
		c := meta.FindStatusCondition(te.Status.Conditions, t)
		if c == nil || (c.Status != metav1.ConditionTrue && (t != trainenvv1.ConditionVerified || !trainenvv1.VerifiedAllowsRun(c.Status, c.Reason))) {
			notReady(te, c, t, passErr)
			return
		}
	}
	w := meta.FindStatusCondition(te.Status.Conditions, trainenvv1.ConditionWorkloadReady)
	switch {
	case w != nil && w.Reason == trainenvv1.ReasonWorkloadSuspended:
		te.Status.Phase = trainenvv1.PhaseSuspended
		setReady(te, metav1.ConditionTrue, trainenvv1.ReasonSuspended,
			"suspended as asked: GPUs are free and the workspace is kept; set spec.suspend to false to resume")
	case w != nil && w.Reason == trainenvv1.ReasonIdleSuspended:
		te.Status.Phase = trainenvv1.PhaseSuspended
		setReady(te, metav1.ConditionTrue, trainenvv1.ReasonIdleSuspended, w.Message)
	case w != nil && w.Status == metav1.ConditionTrue:
		te.Status.Phase = trainenvv1.PhaseRunning
		setReady(te, metav1.ConditionTrue, trainenvv1.ReasonReady,
			fmt.Sprintf("running %s on node %s", te.Status.Image.Resolved, te.Status.NodeName))
	default:
		notReady(te, w, trainenvv1.ConditionWorkloadReady, passErr)
	}
}

// beforeWorkload are WorkloadReady reasons under which no pod was started yet (Pending).
var beforeWorkload = map[string]bool{
	trainenvv1.ReasonWaitingForChecks:       true,
	trainenvv1.ReasonAuthorizedKeysNotFound: true,
	trainenvv1.ReasonJupyterTokenNotFound:   true,
}

// failedWorkloadReasons are WorkloadReady reasons that put the environment in PhaseFailed:
// its pod will not start until someone acts.
var failedWorkloadReasons = map[string]bool{
	trainenvv1.ReasonContainerFailing:      true,
	trainenvv1.ReasonImagePullFailed:       true,
	trainenvv1.ReasonImagePlatformMismatch: true,
	trainenvv1.ReasonImageMissingSSHD:      true,
	trainenvv1.ReasonImageMissingUser:      true,
	trainenvv1.ReasonImageMissingJupyter:   true,
	trainenvv1.ReasonPreflightFailed:       true,
	trainenvv1.ReasonPreflightNoReport:     true,
}

// notReady sets Ready False with the reason and message of the condition that holds it up.
func notReady(te *trainenvv1.TrainingEnvironment, blocking *metav1.Condition, condType string, passErr error) {
	reason, message := trainenvv1.ReasonProgressing, condType+" is not yet known"
	if blocking != nil {
		reason, message = blocking.Reason, blocking.Message
	}
	switch {
	case reconcileerror.IsStalled(passErr) || (blocking != nil && failedWorkloadReasons[blocking.Reason]):
		te.Status.Phase = trainenvv1.PhaseFailed
	case condType == trainenvv1.ConditionWorkloadReady && blocking != nil && !beforeWorkload[blocking.Reason]:
		te.Status.Phase = trainenvv1.PhaseStarting
	default:
		te.Status.Phase = trainenvv1.PhasePending
	}
	setReady(te, metav1.ConditionFalse, reason, message)
}

// setReady is the only writer of the Ready condition.
func setReady(te *trainenvv1.TrainingEnvironment, status metav1.ConditionStatus, reason, message string) bool {
	return setCondition(te, trainenvv1.ConditionReady, status, reason, message)
}
