package v1alpha1

// Reasons of the events recorded on a TrainingEnvironment that belong to no condition
// (docs/troubleshooting.md, "Other events"). An event that reports a condition changing
// carries that condition's reason (e.g. NoSignature, Unschedulable, TagMoved), and the
// events of the condition's life (Resumed, PreflightPassed) are declared with it.
const (
	// ReasonCreatedWorkload: a pass created the workload's objects (StatefulSet,
	// NetworkPolicy); the note names them, with the digest pinned in the same pass.
	ReasonCreatedWorkload = "CreatedWorkload"
	// ReasonCreatedPersistentVolumeClaim: the workspace claim was created.
	ReasonCreatedPersistentVolumeClaim = "CreatedPersistentVolumeClaim"
	// ReasonCreatedSecret: a generated Secret (Jupyter token, SSH host keys) was created.
	ReasonCreatedSecret = "CreatedSecret"
	// ReasonAccessed: the environment's audit trail recorded accesses since the controller
	// last read it; one event sums them up (Normal).
	ReasonAccessed = "Accessed"
	// ReasonAccessRefused: the audit trail recorded refused attempts (an SSH key not in
	// authorized_keys, a Jupyter request without the token) and no access (Warning).
	ReasonAccessRefused = "AccessRefused"
)

// Reasons of the events the GPU node agent records on its Node, when the node's GPU state
// changes (not every pass).
const (
	// ReasonNVMLUnavailable: NVML could not be read on the node (no driver, no GPU, or the
	// library is missing); the agent publishes no GPU facts for it (Warning).
	ReasonNVMLUnavailable = "NVMLUnavailable"
	// ReasonGPUUnhealthy: one or more of the node's GPUs reported an error through NVML
	// (Warning).
	ReasonGPUUnhealthy = "GPUUnhealthy"
	// ReasonGPUFactsPublished: the agent published the node's GPU facts as labels (Normal).
	ReasonGPUFactsPublished = "GPUFactsPublished"
)

// Reasons of the events the Kyverno policy generator records on a ClusterImagePolicy.
const (
	// ReasonKyvernoPolicyNotGenerated: the ClusterImagePolicy could not be translated (a
	// missing or malformed key Secret, an authority Kyverno cannot express). An existing
	// generated policy keeps its previous content: removing it would let Kyverno admit
	// anything (Warning).
	ReasonKyvernoPolicyNotGenerated = "KyvernoPolicyNotGenerated"
	// ReasonKyvernoPolicyConflict: an ImageValidatingPolicy of the generated name exists and
	// is not trainenv's; it is left alone (Warning).
	ReasonKyvernoPolicyConflict = "KyvernoPolicyConflict"
)
