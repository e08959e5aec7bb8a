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
)
