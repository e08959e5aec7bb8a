// Package trust decides whether a pinned image digest may run. The controller depends only
// on the Verifier interface, so that the signature and attestation verifier (sigstore
// policy-controller's ClusterImagePolicy engine) plugs in without touching the reconciler.
package trust

import (
	"context"

	"github.com/google/go-containerregistry/pkg/authn"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	trainenvv1 "github.com/trainenv/trainenv/api/v1alpha1"
)

// Request is what to verify.
type Request struct {
	// Image is the pinned reference, repository@sha256:... (never a tag).
	Image string
	// Namespace of the TrainingEnvironment (policies may be scoped by namespace).
	Namespace string
	// Keychain reaches the registry with the environment's pull secrets.
	Keychain authn.Keychain
}

// Verdict is the outcome of verifying one digest.
type Verdict struct {
	// Status is True (may run), False (must not run) or Unknown (not checked).
	Status metav1.ConditionStatus
	// Reason is a stable CamelCase reason for the Verified condition.
	Reason string
	// Message says what was checked and, on failure, what to do.
	Message string
	// Allowed reports whether the workload may be created for this digest.
	Allowed bool
}

// Verifier verifies a pinned digest.
type Verifier interface {
	Verify(ctx context.Context, req Request) (Verdict, error)
}

// NotEnforced is the verifier of an operator built without signature verification. It
// lets the pinned digest run and says plainly, as status Unknown, that nothing was proven.
type NotEnforced struct{}

// Verify implements Verifier.
func (NotEnforced) Verify(context.Context, Request) (Verdict, error) {
	return Verdict{
		Status:  metav1.ConditionUnknown,
		Reason:  trainenvv1.ReasonVerificationNotEnforced,
		Message: "signature verification is not enforced by this operator: the image is pinned to its digest but its origin is not proven",
		Allowed: true,
	}, nil
}
