// Package trust decides whether a pinned image digest may run. The controller depends only
// on the Verifier interface, so that the signature and attestation verifier (sigstore
// policy-controller's ClusterImagePolicy engine) plugs in without touching the reconciler.
package trust

import (
	"context"
	"time"

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

	// What was verified, for status. Empty when no policy was evaluated.

	// Digest is the reference that was verified, repository@sha256:....
	Digest string
	// Policies names every matching ClusterImagePolicy, and notation:NAME for the Notation
	// trust policy statement that covers the digest, sorted; all of them were evaluated.
	Policies []string
	// Passed lists, per policy, the authorities that were satisfied.
	Passed []AuthorityResult
	// Warnings are failures of policies in warn mode; the digest is allowed regardless.
	Warnings []string
	// CheckedAt is when the policies were evaluated; a cached verdict keeps its original time.
	CheckedAt time.Time
	// ExpiresAt is when an allowing verdict stops holding by itself: its vulnerability scan
	// ages past the gate's limit. Zero: not limited in time.
	ExpiresAt time.Time
	// Vulnerabilities summarises the newest verified vulnerability scan, after verified
	// VEX statements; nil when no matching policy verified a scan.
	Vulnerabilities *VulnerabilitySummary
}

// VulnerabilitySummary is a verified scan's distinct vulnerabilities by severity, after VEX.
type VulnerabilitySummary struct {
	// Policy is the ClusterImagePolicy whose authorities verified the scan.
	Policy                  string
	Scanner, ScannerVersion string
	ScanFinishedAt          time.Time
	// Counts are by severity (CRITICAL, HIGH, MEDIUM, LOW, UNKNOWN).
	Counts map[string]int
	// NotAffected counts the scan's vulnerabilities a trusted VEX statement suppressed.
	NotAffected int
}

// AuthorityResult is one authority of one policy that the digest satisfied.
type AuthorityResult struct {
	Policy    string
	Authority string
	// Signers that verified: a key (KeyID) or a certificate identity (Issuer, Subject).
	Signers []Signer
	// AttestationTypes are the in-toto predicate types of the verified attestations.
	AttestationTypes []string
	// Static is true when the authority passes by configuration (static: {action: pass}).
	Static bool
}

// Signer identifies who signed: KeyID for key authorities, Issuer and Subject for keyless.
type Signer struct {
	// KeyID is "SHA256:" and the hex SHA-256 of the public key's DER (PKIX) encoding.
	KeyID   string `json:"keyID,omitempty"`
	Issuer  string `json:"issuer,omitempty"`
	Subject string `json:"subject,omitempty"`
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
	}, nil
}

// Allowed reports whether the workload may be created for this digest, by the one rule
// of api/v1alpha1 (VerifiedAllowsRun) on the verdict's status and reason.
func (v Verdict) Allowed() bool {
	return trainenvv1.VerifiedAllowsRun(v.Status, v.Reason)
}
