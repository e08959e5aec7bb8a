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
	// PhaseSuspended: spec.suspend is true; GPUs are free, the workspace is kept.
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
	// legacy CUDA_VERSION); all must hold on the node. Empty: the image declares none.
	// +optional
	// +listType=atomic
	CUDARequirements []string `json:"cudaRequirements,omitempty"`
}

// TrainingEnvironment is a GPU training environment: a verified, digest-pinned image run
// as a hardened pod, reached through Jupyter or SSH.
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
