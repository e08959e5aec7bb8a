package v1alpha1

import metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

// Condition types and their reasons, declared together. Every condition is positive
// polarity: True is good. Reasons are stable CamelCase words that tools may match on;
// messages are for people and say what to do.

const (
	// ConditionReady summarises the others: True when the environment is running the
	// verified, pinned image on a compatible node, or is suspended as asked.
	ConditionReady = "Ready"

	// ReasonReady: everything is in place.
	ReasonReady = "Ready"
	// ReasonSuspended: spec.suspend is true.
	ReasonSuspended = "Suspended"
	// ReasonIdleSuspended (Ready and WorkloadReady): suspended because nobody used the
	// environment for spec.idleSuspend.afterMinutes; `kubectl trainenv resume NAME` resumes.
	ReasonIdleSuspended = "IdleSuspended"
	// ReasonResumed is the reason of the event that marks the end of an idle suspension.
	ReasonResumed = "Resumed"
	// ReasonProgressing: the environment is moving towards Ready; nothing needs doing.
	ReasonProgressing = "Progressing"
)

const (
	// ConditionImageResolved is True when the image reference has been resolved to a
	// digest that the workload is pinned to.
	ConditionImageResolved = "ImageResolved"

	// ReasonResolved: the tag (or digest) was resolved and pinned.
	ReasonResolved = "Resolved"
	// ReasonTagMoved: the tag now points at another digest; the environment stays on its
	// pinned digest because updatePolicy is Pinned (condition stays True).
	ReasonTagMoved = "TagMoved"
	// ReasonInvalidReference: spec.image does not parse as an image reference.
	ReasonInvalidReference = "InvalidReference"
	// ReasonImageNotFound: the registry has no such repository, tag or digest.
	ReasonImageNotFound = "ImageNotFound"
	// ReasonRegistryUnauthorized: the registry refused the credentials (or their absence).
	ReasonRegistryUnauthorized = "RegistryUnauthorized"
	// ReasonRegistryUnavailable: the registry could not be reached or failed.
	ReasonRegistryUnavailable = "RegistryUnavailable"
	// ReasonPlatformNotFound: a multi-platform image has no manifest for spec.platform.
	ReasonPlatformNotFound = "PlatformNotFound"
	// ReasonPullSecretNotFound: an imagePullSecrets entry names a Secret that does not exist.
	ReasonPullSecretNotFound = "PullSecretNotFound"
	// ReasonTagCheckFailed: the periodic look-up of a pinned tag failed (registry error,
	// pull Secret gone); the environment keeps its pinned, verified digest and the condition
	// stays True. The message says what failed; the look-up is tried again.
	ReasonTagCheckFailed = "TagCheckFailed"
)

const (
	// ConditionVerified is True when the pinned digest passed the cluster's trust policy.
	// The workload runs only when it is True, or Unknown with one of the reasons that an
	// explicit operator setting allows (see VerifiedAllowsRun).
	ConditionVerified = "Verified"

	// ReasonVerified: every matching policy passed (Status True).
	ReasonVerified = "Verified"
	// ReasonVerifiedWithWarnings: every enforcing policy passed, and one or more policies in
	// warn mode failed; the digest is allowed and the message names the failures (Status True).
	ReasonVerifiedWithWarnings = "VerifiedWithWarnings"
	// ReasonVerificationNotEnforced: this operator build does not verify signatures; the
	// image is pinned but its origin is not proven (Status Unknown, never True; allowed to run).
	ReasonVerificationNotEnforced = "VerificationNotEnforced"
	// ReasonUnmatchedAllowed: no policy covers the image, and the operator runs with
	// unmatched images allowed (a development setting). Status Unknown: nothing was proven
	// (allowed to run).
	ReasonUnmatchedAllowed = "UnmatchedAllowed"
	// ReasonWaitingForImage: nothing to verify until the image is resolved (Status Unknown).
	ReasonWaitingForImage = "WaitingForImage"
	// ReasonNoMatchingPolicy: no ClusterImagePolicy covers the image, so it is not trusted
	// (fail closed, Status False).
	ReasonNoMatchingPolicy = "NoMatchingPolicy"
	// ReasonNoSignature: the digest carries no signature at all (Status False).
	ReasonNoSignature = "NoSignature"
	// ReasonUntrustedSigner: the digest is signed, but by no key or identity that the
	// policy trusts (Status False).
	ReasonUntrustedSigner = "UntrustedSigner"
	// ReasonSignatureExpired: the digest is signed by a trusted signer, but the signature
	// has expired, or the certificate that made it has expired (a Notation signature
	// without a trusted timestamp is checked against the certificate's validity now).
	// Sign again with a valid certificate (Status False).
	ReasonSignatureExpired = "SignatureExpired"
	// ReasonSignerRevoked: the certificate that signed the digest (or one of its CAs) is
	// revoked, by its CA's CRL or OCSP responder (Status False). Sign again with a valid
	// certificate; never run what a revoked key signed.
	ReasonSignerRevoked = "SignerRevoked"
	// ReasonAttestationMissing: the policy requires an attestation (e.g. SLSA provenance)
	// that is absent or not signed by a trusted authority (Status False).
	ReasonAttestationMissing = "AttestationMissing"
	// ReasonAttestationPolicyFailed: the attestation is present and trusted, but its
	// content fails the policy's CUE or Rego check (Status False).
	ReasonAttestationPolicyFailed = "AttestationPolicyFailed"
	// ReasonVulnerabilitiesFound: the policy's vulnerability gate (annotation
	// trainenv.io/vulnerability-gate) refused the digest: its verified scan lists
	// vulnerabilities of a blocking severity that no trusted OpenVEX statement marks
	// not_affected; the message names them (Status False).
	ReasonVulnerabilitiesFound = "VulnerabilitiesFound"
	// ReasonVulnerabilityScanStale: the policy's vulnerability gate refused the digest
	// because its newest verified scan is older than the gate's maxScanAge; a running
	// environment reaches it when its scan ages out, and spec.trust.onVerificationLoss
	// applies (Status False).
	ReasonVulnerabilityScanStale = "VulnerabilityScanStale"
	// ReasonVulnerabilityScanMissing: the policy's vulnerability gate found no
	// vulnerability scan attested by an authority of the policy (Status False).
	ReasonVulnerabilityScanMissing = "VulnerabilityScanMissing"
	// ReasonPolicyDenied: a static "fail" authority or the policy-level CUE/Rego check
	// rejected the digest (Status False).
	ReasonPolicyDenied = "PolicyDenied"
	// ReasonInvalidPolicy: a matching ClusterImagePolicy (or a TrustRoot, Secret or
	// ConfigMap it references) is invalid or unsupported, so the digest cannot be verified
	// (fail closed, Status False). Fix the policy.
	ReasonInvalidPolicy = "InvalidPolicy"
	// ReasonPolicyUnavailable: the policies (or a TUF-backed TrustRoot) could not be read;
	// retried with backoff (Status Unknown).
	ReasonPolicyUnavailable = "PolicyUnavailable"
	// ReasonVerificationFailed: verification failed in a way not named above (Status False),
	// or an error without a reason of its own (Status Unknown, retried).
	//
	// The registry reasons of ImageResolved also serve Verified: ReasonRegistryUnavailable
	// (the registry or transparency log could not be reached) and ReasonRegistryUnauthorized
	// (the registry refused the credentials while reading signatures), both Status Unknown
	// and retried with backoff.
	ReasonVerificationFailed = "VerificationFailed"
)

// VerifiedAllowsRun is the one rule of whether a workload may run the pinned digest, given
// its Verified condition: when it is True, or Unknown for a reason that an explicit
// operator setting allows (verification not enforced, unmatched images allowed). Every
// other Unknown (waiting, registry down) and every False keeps the workload from starting.
func VerifiedAllowsRun(status metav1.ConditionStatus, reason string) bool {
	switch status {
	case metav1.ConditionTrue:
		return true
	case metav1.ConditionUnknown:
		return reason == ReasonVerificationNotEnforced || reason == ReasonUnmatchedAllowed
	}
	return false
}

const (
	// ConditionCompatible is True when some node can run the environment: enough GPUs of
	// the requested resource and product, and a driver that satisfies the image's CUDA
	// requirement.
	ConditionCompatible = "Compatible"

	// ReasonCompatible: at least one node fits.
	ReasonCompatible = "Compatible"
	// ReasonNoGPURequested: a CPU-only environment; any node fits.
	ReasonNoGPURequested = "NoGPURequested"
	// ReasonNoGPUNodes: no node advertises the GPU resource in the requested count.
	ReasonNoGPUNodes = "NoGPUNodes"
	// ReasonNoMatchingProduct: nodes (or DRA devices) have GPUs, but none of the requested
	// products.
	ReasonNoMatchingProduct = "NoMatchingProduct"
	// ReasonNoCompatibleNode: nodes (or DRA devices) have the GPUs, but no driver satisfies
	// the image's CUDA requirement; the message names the requirement and what the cluster
	// has.
	ReasonNoCompatibleNode = "NoCompatibleNode"
	// ReasonNoGPUDevices (gpu.deviceClassName): no ResourceSlice in the cluster publishes a
	// device of NVIDIA's DRA driver; is the driver installed?
	ReasonNoGPUDevices = "NoGPUDevices"
	// ReasonInvalidCUDARequirement: the image's NVIDIA_REQUIRE_* or spec.cuda.require does
	// not parse.
	ReasonInvalidCUDARequirement = "InvalidCUDARequirement"
)

const (
	// ConditionWorkloadReady is True when the environment's pod is running and ready.
	ConditionWorkloadReady = "WorkloadReady"

	// ReasonPodReady: the pod is running and ready.
	ReasonPodReady = "PodReady"
	// ReasonPodStarting: the workload exists and its pod is being scheduled or started.
	ReasonPodStarting = "PodStarting"
	// ReasonUnschedulable: the scheduler cannot place the pod; its message says why.
	ReasonUnschedulable = "Unschedulable"
	// ReasonContainerFailing: a container keeps failing for a cause trainenv does not
	// recognise (a crash loop, a configuration the kubelet refuses); the message quotes the
	// kubelet and, for a crash, the last exit code and termination message.
	ReasonContainerFailing = "ContainerFailing"
	// ReasonImagePullFailed: the node cannot pull an image of the pod (ErrImagePull,
	// ImagePullBackOff): a pull Secret missing or wrong for the node, the image gone from
	// the registry, the registry unreachable from the node. The message quotes the kubelet.
	ReasonImagePullFailed = "ImagePullFailed"
	// ReasonImagePlatformMismatch: the image is built for another platform (OS or CPU
	// architecture) than the node's: the kubelet found no manifest for the node's platform,
	// or the entrypoint found the image's programs built for another architecture.
	ReasonImagePlatformMismatch = "ImagePlatformMismatch"
	// ReasonImageMissingSSHD: SSH is enabled but the image has no sshd (OpenSSH's server);
	// the entrypoint stopped at start and said so. Install it in the image or disable SSH.
	ReasonImageMissingSSHD = "ImageMissingSSHD"
	// ReasonImageMissingUser: SSH is enabled but the image has no user with uid 1000 in
	// /etc/passwd (sshd logs in only users it can look up), and the file is not writable
	// for the entrypoint to add one. Add the user to the image.
	ReasonImageMissingUser = "ImageMissingUser"
	// ReasonImageMissingJupyter: Jupyter is enabled but the image has no jupyter-lab,
	// jupyter-server or jupyter on its PATH. Install JupyterLab (or jupyter_server) or
	// disable Jupyter.
	ReasonImageMissingJupyter = "ImageMissingJupyter"
	// ReasonWorkloadSuspended: scaled to zero because spec.suspend is true.
	ReasonWorkloadSuspended = "WorkloadSuspended"
	// ReasonWaitingForChecks: no workload until the image is resolved, verified and compatible.
	ReasonWaitingForChecks = "WaitingForChecks"
	// ReasonAuthorizedKeysNotFound: spec.ssh.authorizedKeysSecretRef names a Secret or key
	// that does not exist; the workload waits for it.
	ReasonAuthorizedKeysNotFound = "AuthorizedKeysNotFound"
	// ReasonInvalidAuthorizedKeys: the authorized_keys Secret does not parse, or holds no
	// key; the message names the line. Fix the Secret.
	ReasonInvalidAuthorizedKeys = "InvalidAuthorizedKeys"
	// ReasonJupyterTokenNotFound: spec.jupyter.tokenSecretRef names a Secret or key that
	// does not exist; the workload waits for it.
	ReasonJupyterTokenNotFound = "JupyterTokenNotFound"
	// ReasonPreflightFailed: the GPU preflight in the pod failed on the node the pod landed
	// on (GPUs missing or unhealthy, driver too old for the image, torch cannot use CUDA);
	// the message says exactly what, status.preflight has the detail. The kubelet retries it.
	ReasonPreflightFailed = "PreflightFailed"
	// ReasonPreflightNoReport: the preflight exited 0 without its report (killed, replaced
	// by a program of the image, its termination message cut short). Without a report
	// nothing is known about the GPUs, so it does not count as passed; the kubelet does not
	// run an init container again that exited 0: delete the pod to run it again.
	ReasonPreflightNoReport = "PreflightNoReport"
	// ReasonPreflightPassed is the reason of the event that marks a passing preflight (the
	// condition then moves on to PodStarting or PodReady).
	ReasonPreflightPassed = "PreflightPassed"
)
