package v1alpha1

import (
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
)

// UpdatePolicy says what happens when the image tag moves to a new digest.
// +kubebuilder:validation:Enum=Pinned;FollowTag
type UpdatePolicy string

const (
	// UpdatePolicyPinned resolves the tag once and keeps that digest for the life of the
	// environment. A later move of the tag is reported (condition and event), never applied.
	UpdatePolicyPinned UpdatePolicy = "Pinned"
	// UpdatePolicyFollowTag re-resolves the tag periodically and rolls the environment to the
	// new digest, which must pass verification again before it runs.
	UpdatePolicyFollowTag UpdatePolicy = "FollowTag"
)

// MaxNameLength is the longest TrainingEnvironment name the API accepts: a StatefulSet's
// controller names its revisions NAME-HASH (a hash of up to 10 characters) and puts that
// name in its pods' controller-revision-hash label, whose values are limited to 63
// characters. Every other derived name (NAME-0, NAME-workspace, NAME-ssh-host-keys,
// NAME-jupyter) fits its own limit below this one.
const MaxNameLength = 52

// TrainingEnvironmentSpec is the desired environment: which image, on how many GPUs, reached how.
// +kubebuilder:validation:XValidation:rule="!has(self.shmSize) || !has(self.resources) || !has(self.resources.memory) || !quantity(self.shmSize).isGreaterThan(quantity(self.resources.memory))",message="shmSize must not exceed resources.memory: /dev/shm is memory-backed and counts against the memory limit, so the pod would be OOM-killed once shared memory fills; lower shmSize (default 1Gi) or raise resources.memory"
// +kubebuilder:validation:XValidation:rule="!has(self.ssh) || !self.ssh.enabled || has(self.ssh.authorizedKeysSecretRef)",message="ssh.enabled requires ssh.authorizedKeysSecretRef: SSH is key-only, name the Secret holding the authorized_keys"
// +kubebuilder:validation:XValidation:rule="!has(self.idleSuspend) || (has(self.ssh) && self.ssh.enabled) || (has(self.jupyter) && self.jupyter.enabled)",message="idleSuspend needs ssh or jupyter enabled: idleness is measured by SSH sessions, Jupyter terminals and busy kernels"
type TrainingEnvironmentSpec struct {
	// image is the container image, by tag (registry/repo:tag) or by digest
	// (registry/repo@sha256:...). The controller resolves a tag to a digest and the
	// environment only ever runs that digest.
	// +required
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=1024
	// +kubebuilder:validation:XValidation:rule="self.matches('^((([a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])([.]([a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9]))*)(:[0-9]+)?/)?[a-z0-9]+(([._]|__|[-]+)[a-z0-9]+)*(/[a-z0-9]+(([._]|__|[-]+)[a-z0-9]+)*)*(:[a-zA-Z0-9_][a-zA-Z0-9_.-]{0,127})?(@[A-Za-z][A-Za-z0-9]*([-_+.][A-Za-z][A-Za-z0-9]*)*:[0-9a-fA-F]{32,})?$')",message="image must be an image reference such as registry.example.com/team/pytorch:2.4-cuda12.4 or registry.example.com/team/pytorch@sha256:<64 hex digits> (lower-case repository, optional :tag, optional @digest)"
	Image string `json:"image"`

	// imagePullSecrets name Secrets in this namespace (kubernetes.io/dockerconfigjson or
	// kubernetes.io/dockercfg) used both by the controller to resolve the image and by the pod.
	// +optional
	// +listType=atomic
	// +kubebuilder:validation:MaxItems=16
	ImagePullSecrets []corev1.LocalObjectReference `json:"imagePullSecrets,omitempty"`

	// updatePolicy says what happens when the tag moves: Pinned keeps the first digest and
	// reports the move; FollowTag re-resolves every FollowTagIntervalSeconds and rolls to it.
	// +optional
	// +kubebuilder:default=Pinned
	UpdatePolicy UpdatePolicy `json:"updatePolicy,omitempty"`

	// followTagIntervalSeconds is how often the tag is looked up again (FollowTag), or
	// checked for moves to report (Pinned). Ignored for images given by digest.
	// +optional
	// +kubebuilder:default=600
	// +kubebuilder:validation:Minimum=60
	// +kubebuilder:validation:Maximum=86400
	FollowTagIntervalSeconds int32 `json:"followTagIntervalSeconds,omitempty"`

	// platform selects the manifest of a multi-platform image, as os/architecture[/variant].
	// +optional
	// +kubebuilder:default="linux/amd64"
	// +kubebuilder:validation:Pattern=`^[a-z0-9]+/[a-z0-9_]+(/[a-z0-9]+)?$`
	Platform string `json:"platform,omitempty"`

	// gpu is what the environment needs of GPUs. Omitted: a CPU-only environment.
	// +optional
	GPU *GPUSpec `json:"gpu,omitempty"`

	// cuda states the image's CUDA requirement explicitly. Omitted: it is read from the
	// image's NVIDIA_REQUIRE_CUDA / CUDA_VERSION environment.
	// +optional
	CUDA *CUDASpec `json:"cuda,omitempty"`

	// resources are the CPU and memory the environment requests (memory is also its limit).
	// +optional
	Resources *ResourcesSpec `json:"resources,omitempty"`

	// shmSize is the size of /dev/shm, a memory-backed volume. PyTorch data loaders with
	// workers pass tensors through shared memory; the container runtime's 64Mi default makes
	// them fail with "bus error". It counts against the memory limit.
	// +optional
	// +kubebuilder:default="1Gi"
	// +kubebuilder:validation:XValidation:rule="quantity(self).isGreaterThan(quantity('0'))",message="shmSize must be greater than zero, e.g. 1Gi"
	ShmSize *resource.Quantity `json:"shmSize,omitempty"`

	// jupyter configures the Jupyter server in the environment.
	// +optional
	Jupyter *JupyterSpec `json:"jupyter,omitempty"`

	// ssh configures the SSH server in the environment.
	// +optional
	SSH *SSHSpec `json:"ssh,omitempty"`

	// workspace is a persistent volume mounted into the environment. It survives suspend
	// and pod restarts. Omitted: no persistent storage.
	// +optional
	Workspace *WorkspaceSpec `json:"workspace,omitempty"`

	// suspend stops the environment and frees its GPUs; the workspace is kept.
	// +optional
	Suspend bool `json:"suspend,omitempty"`

	// idleSuspend opts into suspending the environment when nobody has used it for a while.
	// Omitted: never, so that long-running work is not stopped by surprise.
	// +optional
	IdleSuspend *IdleSuspendSpec `json:"idleSuspend,omitempty"`

	// trust says what happens to a running environment whose image loses its verification.
	// Who and what is trusted is cluster policy (ClusterImagePolicy), never set here.
	// +optional
	Trust *TrustSpec `json:"trust,omitempty"`
}

// IdleSuspendSpec suspends an environment nobody uses, to free its GPUs.
//
// The environment is idle while it has no SSH session (a shell, VS Code, a tunnel: any open
// connection to sshd), no open Jupyter terminal (open counts, even when quiet: a training
// run in it may print nothing for hours), no busy kernel, no work in progress (a process
// of the user's using 5 % of a CPU or more, or running, when probed: a run started under
// nohup or tmux and left alone counts) and no utilisation of the pod's GPUs, and the
// Jupyter server sees no other use. The entrypoint's log and the suspension's message say
// what was measured. When idle for AfterMinutes, it is suspended as with
// spec.suspend (GPUs freed, workspace kept, status.idleSuspension says when and why), and
// stays suspended until `kubectl trainenv resume NAME`, or spec.suspend set to true and
// back, or this field removed. The spec is never changed by the operator.
type IdleSuspendSpec struct {
	// afterMinutes is how long the environment must be idle before it is suspended.
	// +required
	// +kubebuilder:validation:Minimum=30
	// +kubebuilder:validation:Maximum=10080
	AfterMinutes int32 `json:"afterMinutes"`
}

// VerificationLossPolicy says what happens to a running workload whose pinned digest no
// longer passes verification (a signature deleted, a policy changed).
// +kubebuilder:validation:Enum=Keep;Stop
type VerificationLossPolicy string

const (
	// VerificationLossKeep leaves the workload running; Verified turns False with an event.
	VerificationLossKeep VerificationLossPolicy = "Keep"
	// VerificationLossStop scales the workload to zero (the workspace is kept) until the
	// digest passes verification again.
	VerificationLossStop VerificationLossPolicy = "Stop"
)

// TrustSpec is the environment's choice of what to do when trust is lost.
type TrustSpec struct {
	// onVerificationLoss is what happens on a loss of trust: Keep (the default) keeps a
	// running workload running when its digest stops passing verification, so that work in
	// progress is not killed by a policy edit; Stop stops it. Either way Verified turns False with an event, nothing new
	// starts, and the Verified condition's message says which applied.
	// +optional
	// +kubebuilder:default=Keep
	OnVerificationLoss VerificationLossPolicy `json:"onVerificationLoss,omitempty"`
}

// GPUSpec is what the environment needs of GPUs, asked for one of two ways: as an extended
// resource that a device plugin advertises (resourceName, the default), or through Dynamic
// Resource Allocation (deviceClassName): a ResourceClaim for count devices of a DeviceClass,
// with the image's CUDA requirement as device selectors, so that the scheduler picks GPUs
// whose driver and compute capability can run the image.
// +kubebuilder:validation:XValidation:rule="!has(self.deviceClassName) || !has(self.resourceName) || self.resourceName == 'nvidia.com/gpu'",message="gpu.resourceName and gpu.deviceClassName are alternatives: with deviceClassName (Dynamic Resource Allocation) leave resourceName out"
// +kubebuilder:validation:XValidation:rule="!has(self.deviceClassName) || self.count >= 1",message="gpu.deviceClassName needs gpu.count of at least 1 (omit gpu for a CPU-only environment)"
type GPUSpec struct {
	// count is the number of GPUs, requested as an extended resource, or as devices of
	// DeviceClassName. 0 means none.
	// +optional
	// +kubebuilder:default=1
	// +kubebuilder:validation:Minimum=0
	// +kubebuilder:validation:Maximum=64
	Count int32 `json:"count,omitempty"`

	// resourceName is the extended resource that device plugins advertise GPUs as.
	// +optional
	// +kubebuilder:default="nvidia.com/gpu"
	// +kubebuilder:validation:MaxLength=253
	// +kubebuilder:validation:Pattern=`^([a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*)/[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?$`
	ResourceName string `json:"resourceName,omitempty"`

	// deviceClassName asks for the GPUs through Dynamic Resource Allocation
	// (resource.k8s.io/v1) instead of an extended resource: the environment gets a
	// ResourceClaimTemplate for count devices of this DeviceClass (which the platform team
	// created, e.g. gpu.nvidia.com for NVIDIA's DRA driver), whose selectors require the
	// image's CUDA requirement and products on each device. Compatibility is then checked
	// against the devices the cluster's ResourceSlices publish. Omitted: resourceName.
	// +optional
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=253
	// +kubebuilder:validation:Pattern=`^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$`
	// +kubebuilder:validation:XValidation:rule="self == oldSelf",message="gpu.deviceClassName cannot be changed; delete and re-create the environment (the workspace is kept)"
	DeviceClassName string `json:"deviceClassName,omitempty"`

	// products restricts the environment to nodes whose GPU product (the
	// nvidia.com/gpu.product node label, e.g. NVIDIA-A100-SXM4-80GB) is one of these; with
	// deviceClassName, to devices whose productName attribute, spaces written as hyphens, is.
	// +optional
	// +listType=set
	// +kubebuilder:validation:MaxItems=32
	// +kubebuilder:validation:items:MaxLength=63
	// +kubebuilder:validation:items:Pattern=`^[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?$`
	Products []string `json:"products,omitempty"`
}

// CUDASpec states or relaxes the image's CUDA requirement.
type CUDASpec struct {
	// require replaces the image's declared requirement. It uses the syntax of the
	// NVIDIA_REQUIRE_CUDA variable of CUDA images, e.g. "cuda>=12.4" or
	// "cuda>=12.4 brand=tesla,driver>=535,driver<536". Omitted: the image's requirement.
	// +optional
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=1024
	// +kubebuilder:validation:XValidation:rule="self.startsWith('cuda') || self.startsWith('driver') || self.startsWith('arch') || self.startsWith('brand')",message="cuda.require uses the NVIDIA_REQUIRE_CUDA syntax, e.g. cuda>=12.4 or cuda>=12.4 brand=tesla,driver>=535,driver<536"
	Require string `json:"require,omitempty"`

	// minorVersionCompatibility also accepts nodes whose driver supports an older CUDA of
	// the same major release, at or above that major's minimum driver (CUDA minor-version
	// compatibility: a 12.4 image on a 12.2 driver). Features newer than the driver's CUDA
	// are then unavailable, and the container runs with NVIDIA_DISABLE_REQUIRE=true so that
	// the NVIDIA runtime agrees. Off by default.
	// +optional
	MinorVersionCompatibility bool `json:"minorVersionCompatibility,omitempty"`
}

// ResourcesSpec is the CPU and memory of the environment.
// +kubebuilder:validation:XValidation:rule="!has(self.cpu) || quantity(self.cpu).isGreaterThan(quantity('0'))",message="resources.cpu must be greater than zero, e.g. \"8\""
// +kubebuilder:validation:XValidation:rule="!has(self.memory) || quantity(self.memory).isGreaterThan(quantity('0'))",message="resources.memory must be greater than zero, e.g. 64Gi"
type ResourcesSpec struct {
	// cpu requested, e.g. "8".
	// +optional
	CPU *resource.Quantity `json:"cpu,omitempty"`
	// memory requested and used as the limit, e.g. "64Gi".
	// +optional
	Memory *resource.Quantity `json:"memory,omitempty"`
}

// SecretKeyReference names a key of a Secret in the environment's namespace.
type SecretKeyReference struct {
	// name of the Secret.
	// +required
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=253
	// +kubebuilder:validation:Pattern=`^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$`
	Name string `json:"name"`
	// key in the Secret's data. Defaults depend on the use.
	// +optional
	// +kubebuilder:validation:MaxLength=253
	// +kubebuilder:validation:Pattern=`^[-._a-zA-Z0-9]+$`
	Key string `json:"key,omitempty"`
}

// JupyterSpec configures the Jupyter server. Authentication is always on.
type JupyterSpec struct {
	// enabled runs the Jupyter server.
	// +required
	Enabled bool `json:"enabled"`

	// tokenSecretRef names the Secret key holding the access token (key defaults to
	// "token"). Omitted: the operator generates a random token in a Secret of its own.
	// +optional
	TokenSecretRef *SecretKeyReference `json:"tokenSecretRef,omitempty"`

	// websocketPingIntervalSeconds keeps idle browser tabs connected through proxies and
	// the kubelet's streaming idle timeout.
	// +optional
	// +kubebuilder:default=30
	// +kubebuilder:validation:Minimum=5
	// +kubebuilder:validation:Maximum=3600
	WebsocketPingIntervalSeconds int32 `json:"websocketPingIntervalSeconds,omitempty"`

	// cullIdleKernelsAfterSeconds shuts down kernels idle this long. Omitted: never, so
	// that long-running training is not culled by surprise.
	// +optional
	// +kubebuilder:validation:Minimum=300
	CullIdleKernelsAfterSeconds *int32 `json:"cullIdleKernelsAfterSeconds,omitempty"`
}

// SSHSpec configures the SSH server. It is key-only: passwords are never accepted.
type SSHSpec struct {
	// enabled runs the SSH server.
	// +required
	Enabled bool `json:"enabled"`

	// authorizedKeysSecretRef names the Secret key holding the authorized_keys file (key
	// defaults to "authorized_keys"). Required when enabled.
	// +optional
	AuthorizedKeysSecretRef *SecretKeyReference `json:"authorizedKeysSecretRef,omitempty"`

	// clientAliveIntervalSeconds is how often the server probes an idle client.
	// +optional
	// +kubebuilder:default=30
	// +kubebuilder:validation:Minimum=5
	// +kubebuilder:validation:Maximum=3600
	ClientAliveIntervalSeconds int32 `json:"clientAliveIntervalSeconds,omitempty"`

	// clientAliveCountMax is how many unanswered probes end a session: with the defaults a
	// client that vanished is dropped after five minutes, a live one is never dropped.
	// +optional
	// +kubebuilder:default=10
	// +kubebuilder:validation:Minimum=1
	// +kubebuilder:validation:Maximum=1000
	ClientAliveCountMax int32 `json:"clientAliveCountMax,omitempty"`

	// tcpKeepAlive turns on TCP keepalives as well.
	// +optional
	// +kubebuilder:default=true
	TCPKeepAlive *bool `json:"tcpKeepAlive,omitempty"`
}

// WorkspaceSpec is the persistent workspace volume.
// +kubebuilder:validation:XValidation:rule="quantity(self.size).isGreaterThan(quantity('0'))",message="workspace.size must be greater than zero, e.g. 100Gi"
// +kubebuilder:validation:XValidation:rule="has(self.storageClassName) == has(oldSelf.storageClassName) && (!has(self.storageClassName) || self.storageClassName == oldSelf.storageClassName)",message="workspace.storageClassName cannot be changed once set"
type WorkspaceSpec struct {
	// size of the volume. It may grow (where the storage class allows expansion), not shrink.
	// +required
	// +kubebuilder:validation:XValidation:rule="!quantity(self).isLessThan(quantity(oldSelf))",message="workspace.size can only grow: a PersistentVolumeClaim cannot shrink; to start smaller, create a new environment"
	Size resource.Quantity `json:"size"`

	// storageClassName of the volume. Omitted: the cluster's default class.
	// +optional
	// +kubebuilder:validation:MaxLength=253
	StorageClassName *string `json:"storageClassName,omitempty"`

	// mountPath where the workspace appears in the container. It must not be, or lie
	// under, a path the environment mounts itself: /dev, /proc, /sys, /tmp and /trainenv.
	// +optional
	// +kubebuilder:default="/workspace"
	// +kubebuilder:validation:Pattern=`^/[^:]*$`
	// +kubebuilder:validation:XValidation:rule="self != '/' && !self.endsWith('/') && !self.contains('//') && !self.matches('(^|/)[.][.]?(/|$)')",message="workspace.mountPath must be a clean absolute path: not /, no trailing slash, no empty, . or .. segments"
	// +kubebuilder:validation:XValidation:rule="!['/dev', '/proc', '/sys', '/tmp', '/trainenv'].exists(p, self == p || self.startsWith(p + '/'))",message="workspace.mountPath must not be or lie under /dev, /proc, /sys, /tmp or /trainenv: the environment mounts its shared memory, temporary files and tools there"
	// +kubebuilder:validation:MaxLength=1024
	MountPath string `json:"mountPath,omitempty"`

	// keepOnDelete keeps the volume when the TrainingEnvironment is deleted, so that work is
	// never lost by accident; delete the PersistentVolumeClaim by hand when done.
	// +optional
	// +kubebuilder:default=true
	KeepOnDelete *bool `json:"keepOnDelete,omitempty"`
}
