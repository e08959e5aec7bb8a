package controller

import (
	"context"
	"fmt"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	trainenvv1 "github.com/trainenv/trainenv/api/v1alpha1"
	"github.com/trainenv/trainenv/internal/reconcileerror"
	"github.com/trainenv/trainenv/internal/trust"
)

// verifyImage asks the trust verifier about the pinned digest; the workload is created
// only if the verdict allows it. Under FollowTag, a new digest of the tag is verified first
// and pinned only if allowed: one that fails never replaces the running digest.
func (r *TrainingEnvironmentReconciler) verifyImage(ctx context.Context, p *pass) error {
	if p.candidate != nil {
		if err := r.pinIfVerified(ctx, p); err != nil {
			return err
		}
	}
	verdict, err := r.verify(ctx, p, p.pinned)
	if err != nil {
		return err
	}
	recordVerification(p.te, verdict)
	if verdict.Allowed() {
		setVerified(p.te, verdict.Status, verdict.Reason, verdict.Message)
		if verdict.Status == metav1.ConditionTrue {
			// Signatures can be deleted and keys revoked while the digest runs: check again,
			// and no later than the verified vulnerability scan ages past its gate's limit.
			p.requeueAfter(reverifyInterval)
			if !verdict.ExpiresAt.IsZero() {
				p.requeueAfter(max(verdict.ExpiresAt.Sub(r.Clock.Now()), time.Second))
			}
		}
		return nil
	}
	// What happens to a running workload is the workload step's to decide and do; the
	// Verified message says which applied.
	message, err := r.stopOnVerificationLoss(ctx, p, verdict.Message)
	if err != nil {
		return err
	}
	if setVerified(p.te, verdict.Status, verdict.Reason, message) {
		r.event(p.te, corev1.EventTypeWarning, verdict.Reason, "Verify", "%s", message)
	}
	return reconcileerror.NewStalled(verdict.Reason, "%s", message)
}

// reverifyInterval is how often a verified, running digest is verified again. It equals
// the verifier's default cache lifetime for passing verdicts, so each recheck reaches the
// registry once per image, however many environments run it.
const reverifyInterval = 10 * time.Minute

// verify runs the verifier; an error (registry down) leaves Verified Unknown and is
// returned for backoff.
func (r *TrainingEnvironmentReconciler) verify(ctx context.Context, p *pass, image string) (trust.Verdict, error) {
	verdict, err := r.Verifier.Verify(ctx, trust.Request{Image: image, Namespace: p.te.Namespace, Keychain: p.keychain})
	countVerification(verdict, err)
	if err != nil {
		reason := verdict.Reason
		if reason == "" {
			reason = trainenvv1.ReasonVerificationFailed
		}
		setVerified(p.te, metav1.ConditionUnknown, reason, fmt.Sprintf("verifying %s: %v (retrying)", image, err))
	}
	return verdict, err
}

// recordVerification copies what was verified into status. verifiedAt changes only with
// the results themselves, so a re-verification with the same outcome writes nothing.
func recordVerification(te *trainenvv1.TrainingEnvironment, v trust.Verdict) {
	if v.Digest == "" {
		te.Status.Verification = nil
		return
	}
	next := &trainenvv1.VerificationStatus{Digest: v.Digest, Policies: v.Policies, Warnings: v.Warnings}
	for _, a := range v.Passed {
		va := trainenvv1.VerifiedAuthority{Policy: a.Policy, Authority: a.Authority, AttestationTypes: a.AttestationTypes}
		for _, s := range a.Signers {
			va.Signers = append(va.Signers, trainenvv1.VerifiedSigner{KeyID: s.KeyID, Issuer: s.Issuer, Subject: s.Subject})
		}
		next.Authorities = append(next.Authorities, va)
	}
	next.Vulnerabilities = vulnerabilityStatus(v.Vulnerabilities)
	if prev := te.Status.Verification; prev != nil {
		next.VerifiedAt = prev.VerifiedAt
		if equality.Semantic.DeepEqual(prev, next) {
			return
		}
	}
	at := metav1.NewTime(v.CheckedAt)
	next.VerifiedAt = &at
	te.Status.Verification = next
}

// vulnerabilityStatus is the verified scan's summary as status shows it.
func vulnerabilityStatus(s *trust.VulnerabilitySummary) *trainenvv1.VulnerabilitySummary {
	if s == nil {
		return nil
	}
	out := &trainenvv1.VulnerabilitySummary{Policy: s.Policy, Scanner: s.Scanner, ScannerVersion: s.ScannerVersion,
		Critical: int32(s.Counts["CRITICAL"]), High: int32(s.Counts["HIGH"]), Medium: int32(s.Counts["MEDIUM"]),
		Low: int32(s.Counts["LOW"]), Unknown: int32(s.Counts["UNKNOWN"]), NotAffected: int32(s.NotAffected)}
	if !s.ScanFinishedAt.IsZero() {
		at := metav1.NewTime(s.ScanFinishedAt)
		out.ScanFinishedAt = &at
	}
	return out
}

// setVerified is the only writer of the Verified condition.
func setVerified(te *trainenvv1.TrainingEnvironment, status metav1.ConditionStatus, reason, message string) bool {
	return setCondition(te, trainenvv1.ConditionVerified, status, reason, message)
}

func markVerifyWaiting(te *trainenvv1.TrainingEnvironment) {
	setVerified(te, metav1.ConditionUnknown, trainenvv1.ReasonWaitingForImage,
		"waiting for the image to be resolved to a digest")
}
