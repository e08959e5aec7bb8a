package controller

import (
	"context"
	"fmt"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	trainenvv1 "github.com/trainenv/trainenv/api/v1alpha1"
	"github.com/trainenv/trainenv/internal/compat"
	"github.com/trainenv/trainenv/internal/cuda"
	"github.com/trainenv/trainenv/internal/reconcileerror"
	"github.com/trainenv/trainenv/internal/trust"
	"github.com/trainenv/trainenv/internal/workload"
)

// verifyImage asks the trust verifier about the pinned digest; the workload is created
// only if the verdict allows it. Under FollowTag, a new digest of the tag is verified first
// and pinned only if allowed: one that fails never replaces the running digest.
func (r *TrainingEnvironmentReconciler) verifyImage(ctx context.Context, p *pass) error {
	if p.candidate != nil {
		if err := r.verifyCandidate(ctx, p); err != nil {
			return err
		}
	}
	verdict, err := r.verify(ctx, p, p.pinned)
	if err != nil {
		return err
	}
	recordVerification(p.te, verdict)
	if verdict.Allowed() {
		setCondition(p.te, trainenvv1.ConditionVerified, verdict.Status, verdict.Reason, verdict.Message)
		if verdict.Status == metav1.ConditionTrue {
			// Signatures can be deleted and keys revoked while the digest runs: check again.
			p.requeueAfter(reverifyInterval)
		}
		return nil
	}
	message, err := r.verificationLost(ctx, p.te, verdict.Message)
	if err != nil {
		return err
	}
	if setCondition(p.te, trainenvv1.ConditionVerified, verdict.Status, verdict.Reason, message) {
		r.event(p.te, corev1.EventTypeWarning, verdict.Reason, "Verify", "%s", message)
	}
	return reconcileerror.NewStalled(verdict.Reason, "%s", message)
}

// reverifyInterval is how often a verified, running digest is verified again. It equals
// the verifier's default cache lifetime for passing verdicts, so each recheck reaches the
// registry once per image, however many environments run it.
const reverifyInterval = 10 * time.Minute

// verificationLost applies spec.trust.onVerificationLoss when the digest fails verification
// while its workload exists (a signature deleted, a policy changed since it started), and
// returns the Verified message extended with what happened to the workload. Nothing new
// ever starts for a failing digest; Keep (the default) leaves what runs alone, Stop scales
// the StatefulSet to zero, keeping the workspace, until the digest passes again.
func (r *TrainingEnvironmentReconciler) verificationLost(ctx context.Context, te *trainenvv1.TrainingEnvironment, message string) (string, error) {
	if te.Spec.Suspend {
		return message, nil
	}
	sts := &appsv1.StatefulSet{}
	err := r.Get(ctx, types.NamespacedName{Namespace: te.Namespace, Name: workload.StatefulSetName(te)}, sts)
	switch {
	case apierrors.IsNotFound(err):
		return message, nil
	case err != nil:
		return "", err
	case !metav1.IsControlledBy(sts, te):
		return message, nil
	}
	if te.Spec.Trust == nil || te.Spec.Trust.OnVerificationLoss != trainenvv1.VerificationLossStop {
		if sts.Spec.Replicas != nil && *sts.Spec.Replicas == 0 {
			return message, nil
		}
		return message + "; the running workload is KEPT because spec.trust.onVerificationLoss is Keep (the default): " +
			"set it to Stop to stop workloads whose image loses verification", nil
	}
	if sts.Spec.Replicas == nil || *sts.Spec.Replicas > 0 {
		before := sts.DeepCopy()
		sts.Spec.Replicas = ptr.To[int32](0)
		// Without its spec hash, the workload step restores the StatefulSet once the
		// digest passes verification again.
		delete(sts.Annotations, workload.AnnotationSpecHash)
		if err := r.Patch(ctx, sts, client.MergeFrom(before), FieldOwner); err != nil {
			return "", err
		}
		r.event(te, corev1.EventTypeWarning, trainenvv1.ReasonWaitingForChecks, "Stop",
			"stopped StatefulSet %s: its image is no longer verified (spec.trust.onVerificationLoss: Stop)", sts.Name)
	}
	te.Status.Connect = nil
	setCondition(te, trainenvv1.ConditionWorkloadReady, metav1.ConditionFalse, trainenvv1.ReasonWaitingForChecks,
		"stopped because the image is no longer verified (spec.trust.onVerificationLoss: Stop); the workspace is kept")
	return message + "; the workload was STOPPED (scaled to zero, workspace kept) because spec.trust.onVerificationLoss is Stop; " +
		"it starts again once the digest passes verification", nil
}

// verifyCandidate pins the tag's new digest if it is verified, or reports that it was
// refused and keeps the running digest.
func (r *TrainingEnvironmentReconciler) verifyCandidate(ctx context.Context, p *pass) error {
	te, cand := p.te, *p.candidate
	verdict, err := r.verify(ctx, p, cand.Pinned())
	if err != nil {
		return err
	}
	if verdict.Allowed() {
		r.pin(p, cand)
		p.pinned = te.Status.Image.Resolved
		return nil
	}
	msg := fmt.Sprintf("tag %s moved to %s, which failed verification (%s: %s); the environment stays on %s",
		te.Spec.Image, cand.TargetDigest, verdict.Reason, verdict.Message, te.Status.Image.Digest)
	if te.Status.Image.LatestDigest != cand.TargetDigest {
		r.event(te, corev1.EventTypeWarning, trainenvv1.ReasonTagMoved, "Verify", "%s", msg)
	}
	te.Status.Image.LatestDigest = cand.TargetDigest
	setCondition(te, trainenvv1.ConditionImageResolved, metav1.ConditionTrue, trainenvv1.ReasonTagMoved, msg)
	return nil
}

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
		setCondition(p.te, trainenvv1.ConditionVerified, metav1.ConditionUnknown, reason, fmt.Sprintf("verifying %s: %v (retrying)", image, err))
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

// checkCompatibility looks for a node that can run the environment: enough GPUs, of the
// requested product, with a driver that satisfies the image's CUDA requirement. None is a
// stalled pass: the node watch starts a new one when nodes change.
func (r *TrainingEnvironmentReconciler) checkCompatibility(ctx context.Context, p *pass) error {
	te := p.te
	if te.Spec.GPU == nil || te.Spec.GPU.Count == 0 {
		res := compat.Check(te.Spec.GPU, cuda.Requirements{}, nil)
		countCompatibility(res.Reason)
		setCondition(te, trainenvv1.ConditionCompatible, metav1.ConditionTrue, res.Reason, res.Message)
		return nil
	}
	rs, err := cudaRequirements(te)
	if err != nil {
		return r.incompatible(te, trainenvv1.ReasonInvalidCUDARequirement, fmt.Sprintf("%v; fix the requirement or set spec.cuda.require", err))
	}
	// The checks only read the nodes: use the cached objects themselves. A deep copy of
	// every node on every pass was most of the manager's CPU time with 1,000 nodes, and a
	// new list per pass most of its garbage (nodesnapshot.go).
	nodes, err := r.nodes.list(ctx, r.Client)
	if err != nil {
		return err
	}
	res := compat.Check(te.Spec.GPU, rs, nodes)
	if !res.OK {
		return r.incompatible(te, res.Reason, res.Message)
	}
	if p.affinity, err = compat.Affinity(rs, te.Spec.GPU.Products); err != nil {
		return r.incompatible(te, trainenvv1.ReasonInvalidCUDARequirement, err.Error())
	}
	for _, req := range rs.All {
		p.cudaRequirements = append(p.cudaRequirements, req.String())
	}
	countCompatibility(res.Reason)
	setCondition(te, trainenvv1.ConditionCompatible, metav1.ConditionTrue, res.Reason, res.Message)
	return nil
}

// cudaRequirements are spec.cuda.require when given, else what the pinned image declares,
// relaxed when the environment opted into CUDA minor-version compatibility.
func cudaRequirements(te *trainenvv1.TrainingEnvironment) (cuda.Requirements, error) {
	spec := te.Spec.CUDA
	var rs cuda.Requirements
	var err error
	if spec != nil && spec.Require != "" {
		rs, err = cuda.FromValues([]string{spec.Require}, "spec.cuda.require")
	} else {
		rs, err = cuda.FromValues(te.Status.Image.CUDARequirements, "the image's NVIDIA_REQUIRE_CUDA")
	}
	if err != nil || spec == nil || !spec.MinorVersionCompatibility {
		return rs, err
	}
	return cuda.WithMinorVersionCompatibility(rs), nil
}

func (r *TrainingEnvironmentReconciler) incompatible(te *trainenvv1.TrainingEnvironment, reason, message string) error {
	countCompatibility(reason)
	if setCondition(te, trainenvv1.ConditionCompatible, metav1.ConditionFalse, reason, message) {
		r.event(te, corev1.EventTypeWarning, reason, "Schedule", "%s", message)
	}
	return reconcileerror.NewStalled(reason, "%s", message)
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
