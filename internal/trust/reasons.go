package trust

import trainenvv1 "github.com/trainenv/trainenv/api/v1alpha1"

// Reasons of the Verified condition set from a policy verdict. They are stable CamelCase
// words that tools may match on. They live here until they move to api/v1alpha1 beside
// ConditionVerified.
const (
	// ReasonVerified: every matching policy passed (Status True).
	ReasonVerified = "Verified"
	// ReasonVerifiedWithWarnings: every enforcing policy passed, and one or more policies in
	// warn mode failed; the digest is allowed and the message names the failures (Status True).
	ReasonVerifiedWithWarnings = "VerifiedWithWarnings"
	// ReasonNoMatchingPolicy: no ClusterImagePolicy covers the image, so it is not trusted
	// (fail closed, Status False).
	ReasonNoMatchingPolicy = "NoMatchingPolicy"
	// ReasonUnmatchedAllowed: no policy covers the image, and the operator runs with
	// unmatched images allowed (a development setting). Status Unknown: nothing was proven.
	ReasonUnmatchedAllowed = "UnmatchedAllowed"
	// ReasonNoSignature: the digest carries no signature at all (Status False).
	ReasonNoSignature = "NoSignature"
	// ReasonUntrustedSigner: the digest is signed, but by no key or identity that the
	// policy trusts (Status False).
	ReasonUntrustedSigner = "UntrustedSigner"
	// ReasonAttestationMissing: the policy requires an attestation (e.g. SLSA provenance)
	// that is absent or not signed by a trusted authority (Status False).
	ReasonAttestationMissing = "AttestationMissing"
	// ReasonAttestationPolicyFailed: the attestation is present and trusted, but its
	// content fails the policy's CUE or Rego check (Status False).
	ReasonAttestationPolicyFailed = "AttestationPolicyFailed"
	// ReasonPolicyDenied: a static "fail" authority or the policy-level CUE/Rego check
	// rejected the digest (Status False).
	ReasonPolicyDenied = "PolicyDenied"
	// ReasonInvalidPolicy: a matching ClusterImagePolicy (or a TrustRoot, Secret or
	// ConfigMap it references) is invalid or unsupported, so the digest cannot be verified
	// (fail closed, Status False). Fix the policy.
	ReasonInvalidPolicy = "InvalidPolicy"
	// ReasonPolicyUnavailable: the policies (or a TUF-backed TrustRoot) could not be read;
	// returned with an error and retried (Status Unknown).
	ReasonPolicyUnavailable = "PolicyUnavailable"
	// ReasonVerificationFailed: verification failed in a way not named above (Status False).
	ReasonVerificationFailed = "VerificationFailed"
	// ReasonRegistryUnavailable: the registry (or transparency log) could not be reached
	// or failed; returned with an error so the check is retried with backoff.
	ReasonRegistryUnavailable = trainenvv1.ReasonRegistryUnavailable
	// ReasonRegistryUnauthorized: the registry refused the credentials while reading
	// signatures; returned with an error and retried.
	ReasonRegistryUnauthorized = trainenvv1.ReasonRegistryUnauthorized
)
