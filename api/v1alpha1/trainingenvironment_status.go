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
	// conditions are ImageResolved, Verified, Compatible, WorkloadReady and the summary Ready.
	// +optional
	// +listType=map
	// +listMapKey=type
	// +patchStrategy=merge
	// +patchMergeKey=type
	Conditions []metav1.Condition `json:"conditions,omitempty" patchStrategy:"merge" patchMergeKey:"type"`

	// observedGeneration is the generation of the spec that the last successful pass acted on.
	// +optional
	ObservedGeneration int64 `json:"observedGeneration,omitempty"`

	// phase summarises the conditions in one word.
	// +optional
	Phase Phase `json:"phase,omitempty"`

	// image is the image as resolved and pinned.
	// +optional
	Image *ImageStatus `json:"image,omitempty"`

	// verification records what was verified, when the trust policy was evaluated.
	// +optional
	Verification *VerificationStatus `json:"verification,omitempty"`

	// shortDigest is the first 12 hex digits of the pinned digest, for `kubectl get`.
	// +optional
	ShortDigest string `json:"shortDigest,omitempty"`

	// nodeName is the node the environment's pod runs on.
	// +optional
	NodeName string `json:"nodeName,omitempty"`

	// podName is the environment's pod.
	// +optional
	PodName string `json:"podName,omitempty"`

	// connect says how to reach the environment, as commands to run.
	// +optional
	// +listType=atomic
	Connect []string `json:"connect,omitempty"`

	// access says what a client needs to reach the environment safely: the SSH host keys
	// to trust and where the Jupyter token is kept (never the token itself).
	// +optional
	Access *AccessStatus `json:"access,omitempty"`

	// preflight is what the GPU preflight found in the current pod, on the node it runs on,
	// once it has run.
	// +optional
	Preflight *PreflightStatus `json:"preflight,omitempty"`

	// idleSuspension records the last suspension for idleness (spec.idleSuspend), and
	// whether the environment has been resumed since.
	// +optional
	IdleSuspension *IdleSuspensionStatus `json:"idleSuspension,omitempty"`

	// lastAccess is the latest access in the environment's audit trail: an SSH login with
	// its key, or a Jupyter login, kernel or terminal. The controller reads the trail from
	// the main container's log every few minutes while the pod runs; it is kept while the
	// environment is suspended.
	// +optional
	LastAccess *LastAccessStatus `json:"lastAccess,omitempty"`

	// activity is what the environment's idle monitor counted last (spec.idleSuspend): what
	// keeps it busy, or for how long nothing has. Read with lastAccess; unset when no pod runs.
	// +optional
	Activity *ActivityStatus `json:"activity,omitempty"`
}

// LastAccessStatus is one access from the audit trail. It holds no secret: a public key's
// fingerprint and its comment in authorized_keys, never a key or a token.
type LastAccessStatus struct {
	// time is when the entrypoint recorded the access.
	// +required
	Time metav1.Time `json:"time"`
	// kind is "ssh" or "jupyter".
	// +kubebuilder:validation:Enum=ssh;jupyter
	// +required
	Kind string `json:"kind"`
	// event is the audit trail's event: ssh.login, jupyter.login, jupyter.kernel or
	// jupyter.terminal.
	// +required
	Event string `json:"event"`
	// user is the account an SSH login used.
	// +optional
	User string `json:"user,omitempty"`
	// keyFingerprint is the SSH key's fingerprint, SHA256:… as `ssh-keygen -l` prints it.
	// +optional
	KeyFingerprint string `json:"keyFingerprint,omitempty"`
	// keyComment is the SSH key's comment in authorized_keys (who it is, e.g. alice@laptop).
	// +optional
	KeyComment string `json:"keyComment,omitempty"`
}

// ActivityStatus is the idle monitor's account, e.g. "busy: 1 process using GPU 0 at 97 %"
// or "no SSH session, no terminal, no busy kernel, no busy process, GPUs idle (GPU 0 at 0 %)".
type ActivityStatus struct {
	// inUse is true while anything counts as use (sessions, terminals, busy kernels, busy
	// processes, GPU utilisation).
	// +required
	InUse bool `json:"inUse"`
	// summary is what the monitor counted.
	// +required
	Summary string `json:"summary"`
	// idleSince is the last moment something was in use, when nothing is now: the
	// environment is suspended at idleSince + spec.idleSuspend.afterMinutes.
	// +optional
	IdleSince *metav1.Time `json:"idleSince,omitempty"`
	// observedAt is when the monitor wrote this account (it writes changes only).
	// +required
	ObservedAt metav1.Time `json:"observedAt"`
}

// AnnotationResumeRequestedAt, set to an RFC 3339 time by `kubectl trainenv resume`, resumes
// an environment suspended for idleness when it is later than
// status.idleSuspension.suspendedAt. Metadata, not spec: the plugin asks, the user's spec
// stays as the user wrote it.
const AnnotationResumeRequestedAt = "trainenv.io/resume-requested-at"

// IdleSuspensionStatus is a suspension for idleness.
type IdleSuspensionStatus struct {
	// suspendedAt is when the environment's entrypoint found it idle and stopped (the main
	// container's termination time, as the kubelet recorded it). A resume request must be
	// later.
	// +required
	SuspendedAt metav1.Time `json:"suspendedAt"`
	// message is the entrypoint's account, e.g. "trainenv: idle for 2h0m0s: no SSH session,
	// no terminal, no busy kernel, no busy process, GPUs idle (GPU 0 at 0 %) since 2026-11-23T10:00:00Z".
	// +optional
	Message string `json:"message,omitempty"`
	// resumedAt is when the environment was resumed (`kubectl trainenv resume`, spec.suspend,
	// or spec.idleSuspend removed). Unset while it is suspended.
	// +optional
	ResumedAt *metav1.Time `json:"resumedAt,omitempty"`
}

// AccessStatus is what clients need to reach the environment.
type AccessStatus struct {
	// ssh is set when spec.ssh is enabled.
	// +optional
	SSH *SSHAccessStatus `json:"ssh,omitempty"`
	// jupyter is set when spec.jupyter is enabled.
	// +optional
	Jupyter *JupyterAccessStatus `json:"jupyter,omitempty"`
}

// SSHAccessStatus identifies the environment's SSH server, so that clients verify it
// without a trust-on-first-use prompt.
type SSHAccessStatus struct {
	// hostKeyAlias is the name the known_hosts entries are written for; use it as ssh's
	// HostKeyAlias (`kubectl trainenv ssh-config` does).
	// +required
	HostKeyAlias string `json:"hostKeyAlias"`
	// hostKeySecretName is the Secret holding the host keys, generated once for this
	// environment and kept across pod restarts.
	// +required
	HostKeySecretName string `json:"hostKeySecretName"`
	// hostKeys are the host keys' fingerprints, "TYPE SHA256:...", as sshd and
	// `ssh-keygen -l` show them.
	// +listType=atomic
	// +required
	HostKeys []string `json:"hostKeys"`
	// knownHosts are known_hosts lines (one per host key) for HostKeyAlias.
	// +required
	KnownHosts string `json:"knownHosts"`
	// authorizedKeys are the fingerprints of the keys that may log in, read from
	// spec.ssh.authorizedKeysSecretRef.
	// +optional
	// +listType=atomic
	AuthorizedKeys []string `json:"authorizedKeys,omitempty"`
}

// JupyterAccessStatus says where the Jupyter token is kept. Reading it needs `get` on that
// Secret: the token never appears in status.
type JupyterAccessStatus struct {
	// tokenSecretRef is the Secret key holding the token: spec.jupyter.tokenSecretRef, or
	// the Secret the operator generated (NAME-jupyter, key "token").
	// +required
	TokenSecretRef SecretKeyReference `json:"tokenSecretRef"`
}

// PreflightStatus is the result of the in-pod GPU preflight (the trainenv-preflight init
// container): the GPUs the pod was given, their driver, and the image's PyTorch.
type PreflightStatus struct {
	// passed is true when the environment can use its GPUs on this node.
	// +required
	Passed bool `json:"passed"`
	// message summarises what passed, or says every failure exactly.
	// +optional
	Message string `json:"message,omitempty"`
	// reason says why it did not pass: PreflightFailed (a check failed, or the preflight
	// could not run) or PreflightNoReport (it exited 0 without its report). Empty when passed.
	// +optional
	Reason string `json:"reason,omitempty"`
	// driverVersion is the NVIDIA driver the pod's GPUs run on, e.g. 550.54.15.
	// +optional
	DriverVersion string `json:"driverVersion,omitempty"`
	// cudaDriverVersion is the highest CUDA version that driver supports, e.g. 12.4.
	// +optional
	CUDADriverVersion string `json:"cudaDriverVersion,omitempty"`
	// gpus are the GPUs the pod sees, grouped: "2x NVIDIA A100-SXM4-80GB (cc 8.0)".
	// +optional
	// +listType=atomic
	GPUs []string `json:"gpus,omitempty"`
	// torch is what the image's PyTorch reported, or why it was not checked.
	// +optional
	Torch string `json:"torch,omitempty"`
	// warnings are findings that do not stop the environment.
	// +optional
	// +listType=atomic
	Warnings []string `json:"warnings,omitempty"`
}

// ImageStatus records the image resolution.
type ImageStatus struct {
	// requested is spec.image as it was when it was resolved.
	// +required
	Requested string `json:"requested"`

	// resolved is the pinned reference the workload runs: registry/repository@sha256:...
	// +required
	Resolved string `json:"resolved"`

	// digest is the pinned manifest digest (for a multi-platform image, the digest of the
	// manifest of the selected platform).
	// +required
	Digest string `json:"digest"`

	// indexDigest is the digest of the multi-platform index the tag pointed at, if any.
	// +optional
	IndexDigest string `json:"indexDigest,omitempty"`

	// platform of the pinned manifest.
	// +optional
	Platform string `json:"platform,omitempty"`

	// resolvedAt is when the tag was resolved to Digest.
	// +required
	ResolvedAt metav1.Time `json:"resolvedAt"`

	// latestDigest is the digest the tag pointed at when last checked, when that differs
	// from Digest (the tag moved and updatePolicy is Pinned).
	// +optional
	LatestDigest string `json:"latestDigest,omitempty"`

	// cudaRequirements are the CUDA requirements the pinned image declares, as
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
	// digest is the reference that was verified, repository@sha256:... (never a tag).
	// +required
	Digest string `json:"digest"`
	// policies are the ClusterImagePolicies that matched the image; all were evaluated.
	// +optional
	// +listType=atomic
	Policies []string `json:"policies,omitempty"`
	// authorities are the policy authorities that passed, with their signers.
	// +optional
	// +listType=atomic
	Authorities []VerifiedAuthority `json:"authorities,omitempty"`
	// warnings are failures of policies in warn mode (the image runs regardless).
	// +optional
	// +listType=atomic
	Warnings []string `json:"warnings,omitempty"`
	// verifiedAt is when these results were first obtained for this digest and policy set.
	// +optional
	VerifiedAt *metav1.Time `json:"verifiedAt,omitempty"`
	// vulnerabilities summarises the newest vulnerability scan of this digest that a
	// matching policy's authorities verified (cosign's vuln attestation), after the OpenVEX
	// statements they verified: why a vulnerability gate refused the image, or what the
	// running image is known to carry. Absent when no verified scan was found.
	// +optional
	Vulnerabilities *VulnerabilitySummary `json:"vulnerabilities,omitempty"`
}

// VulnerabilitySummary counts a scan's distinct vulnerabilities by severity, after VEX.
// A vulnerability found in several packages counts once, at its highest severity; one
// that a trusted OpenVEX statement marks not_affected counts only in notAffected.
type VulnerabilitySummary struct {
	// policy is the ClusterImagePolicy whose authorities verified the scan.
	// +required
	Policy string `json:"policy"`
	// scanner is the scanner's name (from the scan's scanner.uri, e.g. trivy).
	// +optional
	Scanner string `json:"scanner,omitempty"`
	// scannerVersion is the scanner's version as the scan records it.
	// +optional
	ScannerVersion string `json:"scannerVersion,omitempty"`
	// scanFinishedAt is when the scan finished, as the scan records it.
	// +optional
	ScanFinishedAt *metav1.Time `json:"scanFinishedAt,omitempty"`
	// critical vulnerabilities, after VEX.
	// +optional
	Critical int32 `json:"critical"`
	// high vulnerabilities, after VEX.
	// +optional
	High int32 `json:"high"`
	// medium vulnerabilities, after VEX.
	// +optional
	Medium int32 `json:"medium"`
	// low vulnerabilities, after VEX.
	// +optional
	Low int32 `json:"low"`
	// unknown counts vulnerabilities without a severity, after VEX.
	// +optional
	Unknown int32 `json:"unknown"`
	// notAffected counts vulnerabilities of the scan that a trusted OpenVEX statement
	// marks not_affected (counted in no severity above).
	// +optional
	NotAffected int32 `json:"notAffected"`
}

// VerifiedAuthority is one authority of a policy that passed.
type VerifiedAuthority struct {
	// policy is the ClusterImagePolicy's name.
	// +required
	Policy string `json:"policy"`
	// authority is the authority's name within the policy.
	// +required
	Authority string `json:"authority"`
	// signers that verified: a key id, or a certificate issuer and subject (keyless).
	// +optional
	// +listType=atomic
	Signers []VerifiedSigner `json:"signers,omitempty"`
	// attestationTypes are the in-toto predicate types of the verified attestations.
	// +optional
	// +listType=atomic
	AttestationTypes []string `json:"attestationTypes,omitempty"`
}

// VerifiedSigner identifies who signed.
type VerifiedSigner struct {
	// keyID is "SHA256:" and the hex SHA-256 of the public key (key authorities).
	// +optional
	KeyID string `json:"keyID,omitempty"`
	// issuer of the signing certificate (keyless).
	// +optional
	Issuer string `json:"issuer,omitempty"`
	// subject of the signing certificate (keyless).
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
// +kubebuilder:printcolumn:name="Last-Access",type=date,JSONPath=`.status.lastAccess.time`,priority=1
// +kubebuilder:printcolumn:name="Activity",type=string,JSONPath=`.status.activity.summary`,priority=1
type TrainingEnvironment struct {
	metav1.TypeMeta `json:",inline"`
	// metadata is the standard object metadata.
	// +optional
	metav1.ObjectMeta `json:"metadata,omitempty"`

	// spec is the desired environment.
	// +required
	Spec TrainingEnvironmentSpec `json:"spec"`
	// status is what the controller observed.
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
