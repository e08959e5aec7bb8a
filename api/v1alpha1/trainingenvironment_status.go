package v1alpha1

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// Phase is a one-word summary of where the environment is, for `kubectl get`. Conditions
// carry the detail; tools should read those.
// +kubebuilder:validation:Enum=Pending;Starting;Running;Suspended;Failed
type Phase string

const (
	// PhasePending: the image is being resolved, verified or checked; nothing runs yet.
	PhasePending Phase = "Pending"
	// PhaseStarting: the workload exists and its pod is not ready yet.
	PhaseStarting Phase = "Starting"
	// PhaseRunning: the pod is ready.
	PhaseRunning Phase = "Running"
	// PhaseSuspended: spec.suspend is true, or the environment was idle (spec.idleSuspend);
	// GPUs are free, the workspace is kept.
	PhaseSuspended Phase = "Suspended"
	// PhaseFailed: the environment cannot progress until the user acts (see conditions).
	PhaseFailed Phase = "Failed"
)

// TrainingEnvironmentStatus is what the controller observed.
type TrainingEnvironmentStatus struct {
	// ObservedGeneration is the generation of the spec that the last successful pass acted on.
	// +optional
	ObservedGeneration int64 `json:"observedGeneration,omitempty"`

	// Conditions: ImageResolved, Verified, Compatible, WorkloadReady and the summary Ready.
	// +optional
	// +listType=map
	// +listMapKey=type
	// +patchStrategy=merge
	// +patchMergeKey=type
	Conditions []metav1.Condition `json:"conditions,omitempty" patchStrategy:"merge" patchMergeKey:"type"`

	// Phase summarises the conditions in one word.
	// +optional
	Phase Phase `json:"phase,omitempty"`

	// Image is the image as resolved and pinned.
	// +optional
	Image *ImageStatus `json:"image,omitempty"`

	// Verification records what was verified, when the trust policy was evaluated.
	// +optional
	Verification *VerificationStatus `json:"verification,omitempty"`

	// ShortDigest is the first 12 hex digits of the pinned digest, for `kubectl get`.
	// +optional
	ShortDigest string `json:"shortDigest,omitempty"`

	// NodeName is the node the environment's pod runs on.
	// +optional
	NodeName string `json:"nodeName,omitempty"`

	// PodName is the environment's pod.
	// +optional
	PodName string `json:"podName,omitempty"`

	// Connect says how to reach the environment, as commands to run.
	// +optional
	// +listType=atomic
	Connect []string `json:"connect,omitempty"`

	// Access says what a client needs to reach the environment safely: the SSH host keys
	// to trust and where the Jupyter token is kept (never the token itself).
	// +optional
	Access *AccessStatus `json:"access,omitempty"`

	// Preflight is what the GPU preflight found in the current pod, on the node it runs on,
	// once it has run.
	// +optional
	Preflight *PreflightStatus `json:"preflight,omitempty"`

	// IdleSuspension records the last suspension for idleness (spec.idleSuspend), and
	// whether the environment has been resumed since.
	// +optional
	IdleSuspension *IdleSuspensionStatus `json:"idleSuspension,omitempty"`
}

// AnnotationResumeRequestedAt, set to an RFC 3339 time by `kubectl trainenv resume`, resumes
// an environment suspended for idleness when it is later than
// status.idleSuspension.suspendedAt. Metadata, not spec: the plugin asks, the user's spec
// stays as the user wrote it.
const AnnotationResumeRequestedAt = "trainenv.io/resume-requested-at"

// IdleSuspensionStatus is a suspension for idleness.
type IdleSuspensionStatus struct {
	// SuspendedAt is when the environment's entrypoint found it idle and stopped (the main
	// container's termination time, as the kubelet recorded it). A resume request must be
	// later.
	SuspendedAt metav1.Time `json:"suspendedAt"`
	// Message is the entrypoint's account, e.g. "trainenv: idle for 2h0m0s: no SSH session,
	// no terminal, no busy kernel, no busy process, GPUs idle (GPU 0 at 0 %) since 2026-11-23T10:00:00Z".
	// +optional
	Message string `json:"message,omitempty"`
	// ResumedAt is when the environment was resumed (`kubectl trainenv resume`, spec.suspend,
	// or spec.idleSuspend removed). Unset while it is suspended.
	// +optional
	ResumedAt *metav1.Time `json:"resumedAt,omitempty"`
}

// AccessStatus is what clients need to reach the environment.
type AccessStatus struct {
	// SSH is set when spec.ssh is enabled.
	// +optional
	SSH *SSHAccessStatus `json:"ssh,omitempty"`
	// Jupyter is set when spec.jupyter is enabled.
	// +optional
	Jupyter *JupyterAccessStatus `json:"jupyter,omitempty"`
}

// SSHAccessStatus identifies the environment's SSH server, so that clients verify it
// without a trust-on-first-use prompt.
type SSHAccessStatus struct {
	// HostKeyAlias is the name the known_hosts entries are written for; use it as ssh's
	// HostKeyAlias (`kubectl trainenv ssh-config` does).
	HostKeyAlias string `json:"hostKeyAlias"`
	// HostKeySecretName is the Secret holding the host keys, generated once for this
	// environment and kept across pod restarts.
	HostKeySecretName string `json:"hostKeySecretName"`
	// HostKeys are the host keys' fingerprints, "TYPE SHA256:...", as sshd and
	// `ssh-keygen -l` show them.
	// +listType=atomic
	HostKeys []string `json:"hostKeys"`
	// KnownHosts are known_hosts lines (one per host key) for HostKeyAlias.
	KnownHosts string `json:"knownHosts"`
	// AuthorizedKeys are the fingerprints of the keys that may log in, read from
	// spec.ssh.authorizedKeysSecretRef.
	// +optional
	// +listType=atomic
	AuthorizedKeys []string `json:"authorizedKeys,omitempty"`
}

// JupyterAccessStatus says where the Jupyter token is kept. Reading it needs `get` on that
// Secret: the token never appears in status.
type JupyterAccessStatus struct {
	// TokenSecretRef is the Secret key holding the token: spec.jupyter.tokenSecretRef, or
	// the Secret the operator generated (NAME-jupyter, key "token").
	TokenSecretRef SecretKeyReference `json:"tokenSecretRef"`
}

// PreflightStatus is the result of the in-pod GPU preflight (the trainenv-preflight init
// container): the GPUs the pod was given, their driver, and the image's PyTorch.
type PreflightStatus struct {
	// Passed is true when the environment can use its GPUs on this node.
	Passed bool `json:"passed"`
	// Message summarises what passed, or says every failure exactly.
	// +optional
	Message string `json:"message,omitempty"`
	// Reason says why it did not pass: PreflightFailed (a check failed, or the preflight
	// could not run) or PreflightNoReport (it exited 0 without its report). Empty when passed.
	// +optional
	Reason string `json:"reason,omitempty"`
	// DriverVersion is the NVIDIA driver the pod's GPUs run on, e.g. 550.54.15.
	// +optional
	DriverVersion string `json:"driverVersion,omitempty"`
	// CUDADriverVersion is the highest CUDA version that driver supports, e.g. 12.4.
	// +optional
	CUDADriverVersion string `json:"cudaDriverVersion,omitempty"`
	// GPUs are the GPUs the pod sees, grouped: "2x NVIDIA A100-SXM4-80GB (cc 8.0)".
	// +optional
	// +listType=atomic
	GPUs []string `json:"gpus,omitempty"`
	// Torch is what the image's PyTorch reported, or why it was not checked.
	// +optional
	Torch string `json:"torch,omitempty"`
	// Warnings are findings that do not stop the environment.
	// +optional
	// +listType=atomic
	Warnings []string `json:"warnings,omitempty"`
}

// ImageStatus records the image resolution.
type ImageStatus struct {
	// Requested is spec.image as it was when it was resolved.
	Requested string `json:"requested"`

	// Resolved is the pinned reference the workload runs: registry/repository@sha256:...
	Resolved string `json:"resolved"`

	// Digest is the pinned manifest digest (for a multi-platform image, the digest of the
	// manifest of the selected platform).
	Digest string `json:"digest"`

	// IndexDigest is the digest of the multi-platform index the tag pointed at, if any.
	// +optional
	IndexDigest string `json:"indexDigest,omitempty"`

	// Platform of the pinned manifest.
	// +optional
	Platform string `json:"platform,omitempty"`

	// ResolvedAt is when the tag was resolved to Digest.
	ResolvedAt metav1.Time `json:"resolvedAt"`

	// LatestDigest is the digest the tag pointed at when last checked, when that differs
	// from Digest (the tag moved and updatePolicy is Pinned).
	// +optional
	LatestDigest string `json:"latestDigest,omitempty"`

	// CUDARequirements are the CUDA requirements the pinned image declares, as
	// nvidia-container-toolkit reads them (each NVIDIA_REQUIRE_* value, or cuda>=X.Y from a
	// legacy CUDA_VERSION), and, when the image sets TORCH_CUDA_ARCH_LIST, the compute
	// capabilities its PyTorch has kernels for as arch terms; all must hold on the node.
	// Empty: the image declares none.
	// +optional
	// +listType=atomic
	CUDARequirements []string `json:"cudaRequirements,omitempty"`
}

// VerificationStatus is what the trust policy verified.
type VerificationStatus struct {
	// Digest is the reference that was verified, repository@sha256:... (never a tag).
	Digest string `json:"digest"`
	// Policies are the ClusterImagePolicies that matched the image; all were evaluated.
	// +optional
	// +listType=atomic
	Policies []string `json:"policies,omitempty"`
	// Authorities are the policy authorities that passed, with their signers.
	// +optional
	// +listType=atomic
	Authorities []VerifiedAuthority `json:"authorities,omitempty"`
	// Warnings are failures of policies in warn mode (the image runs regardless).
	// +optional
	// +listType=atomic
	Warnings []string `json:"warnings,omitempty"`
	// VerifiedAt is when these results were first obtained for this digest and policy set.
	// +optional
	VerifiedAt *metav1.Time `json:"verifiedAt,omitempty"`
}

// VerifiedAuthority is one authority of a policy that passed.
type VerifiedAuthority struct {
	// Policy is the ClusterImagePolicy's name.
	Policy string `json:"policy"`
	// Authority is the authority's name within the policy.
	Authority string `json:"authority"`
	// Signers that verified: a key id, or a certificate issuer and subject (keyless).
	// +optional
	// +listType=atomic
	Signers []VerifiedSigner `json:"signers,omitempty"`
	// AttestationTypes are the in-toto predicate types of the verified attestations.
	// +optional
	// +listType=atomic
	AttestationTypes []string `json:"attestationTypes,omitempty"`
}

// VerifiedSigner identifies who signed.
type VerifiedSigner struct {
	// KeyID is "SHA256:" and the hex SHA-256 of the public key (key authorities).
	// +optional
	KeyID string `json:"keyID,omitempty"`
	// Issuer of the signing certificate (keyless).
	// +optional
	Issuer string `json:"issuer,omitempty"`
	// Subject of the signing certificate (keyless).
	// +optional
	Subject string `json:"subject,omitempty"`
}

// TrainingEnvironment is a GPU training environment: a verified, digest-pinned image run
// as a hardened pod, reached through Jupyter or SSH.
//
// Its name becomes the name of a StatefulSet (a DNS label: no dots) and, with an 11-character
// revision suffix, the value of its pods' controller-revision-hash label (63 at most), so the
// API refuses a name that could never run (MaxNameLength).
// +kubebuilder:validation:XValidation:rule="size(self.metadata.name) <= 52",message="metadata.name must be at most 52 characters: it names the environment's StatefulSet, whose pods carry the name plus an 11-character revision hash in a label limited to 63 characters"
// +kubebuilder:validation:XValidation:rule="self.metadata.name.matches('^[a-z0-9]([-a-z0-9]*[a-z0-9])?$')",message="metadata.name must be a DNS label (lower-case letters, digits and '-', no dots): it names the environment's StatefulSet and pod"
// +kubebuilder:object:root=true
// +kubebuilder:subresource:status
// +kubebuilder:resource:shortName=trainenv;te,categories=all
// +kubebuilder:printcolumn:name="Phase",type=string,JSONPath=`.status.phase`
// +kubebuilder:printcolumn:name="Ready",type=string,JSONPath=`.status.conditions[?(@.type=="Ready")].status`
// +kubebuilder:printcolumn:name="Reason",type=string,JSONPath=`.status.conditions[?(@.type=="Ready")].reason`
// +kubebuilder:printcolumn:name="Digest",type=string,JSONPath=`.status.shortDigest`
// +kubebuilder:printcolumn:name="GPUs",type=integer,JSONPath=`.spec.gpu.count`
// +kubebuilder:printcolumn:name="Node",type=string,JSONPath=`.status.nodeName`
// +kubebuilder:printcolumn:name="Age",type=date,JSONPath=`.metadata.creationTimestamp`
// +kubebuilder:printcolumn:name="Image",type=string,JSONPath=`.spec.image`,priority=1
type TrainingEnvironment struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	// +required
	Spec TrainingEnvironmentSpec `json:"spec"`
	// +optional
	Status TrainingEnvironmentStatus `json:"status,omitempty"`
}

// TrainingEnvironmentList is a list of TrainingEnvironments.
// +kubebuilder:object:root=true
type TrainingEnvironmentList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []TrainingEnvironment `json:"items"`
}

func init() {
	SchemeBuilder.Register(&TrainingEnvironment{}, &TrainingEnvironmentList{})
}
