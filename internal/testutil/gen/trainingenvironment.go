package gen

import (
	"time"

	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	trainenvv1 "github.com/trainenv/trainenv/api/v1alpha1"
)

// TrainingEnvironmentModifier edits a TrainingEnvironment being built.
type TrainingEnvironmentModifier func(*trainenvv1.TrainingEnvironment)

// TrainingEnvironment returns an environment named name, edited by mods in order.
func TrainingEnvironment(name string, mods ...TrainingEnvironmentModifier) *trainenvv1.TrainingEnvironment {
	te := &trainenvv1.TrainingEnvironment{ObjectMeta: metav1.ObjectMeta{Name: name}}
	for _, m := range mods {
		m(te)
	}
	return te
}

// WithNamespace sets the environment's namespace.
func WithNamespace(ns string) TrainingEnvironmentModifier {
	return func(te *trainenvv1.TrainingEnvironment) { te.Namespace = ns }
}

// WithTypeMeta sets apiVersion and kind, as clients that work on unstructured objects need.
func WithTypeMeta() TrainingEnvironmentModifier {
	return func(te *trainenvv1.TrainingEnvironment) {
		te.APIVersion, te.Kind = trainenvv1.GroupVersion.String(), "TrainingEnvironment"
	}
}

// WithImage sets spec.image.
func WithImage(image string) TrainingEnvironmentModifier {
	return func(te *trainenvv1.TrainingEnvironment) { te.Spec.Image = image }
}

// WithGPU requests count GPUs (spec.gpu.count).
func WithGPU(count int32) TrainingEnvironmentModifier {
	return func(te *trainenvv1.TrainingEnvironment) {
		if te.Spec.GPU == nil {
			te.Spec.GPU = &trainenvv1.GPUSpec{}
		}
		te.Spec.GPU.Count = count
	}
}

// WithWorkspace sets the workspace volume's size, e.g. "10Gi".
func WithWorkspace(size string) TrainingEnvironmentModifier {
	return func(te *trainenvv1.TrainingEnvironment) {
		te.Spec.Workspace = &trainenvv1.WorkspaceSpec{Size: resource.MustParse(size)}
	}
}

// WithSuspend sets spec.suspend.
func WithSuspend(suspend bool) TrainingEnvironmentModifier {
	return func(te *trainenvv1.TrainingEnvironment) { te.Spec.Suspend = suspend }
}

// WithIdleSuspend suspends the environment after minutes without activity.
func WithIdleSuspend(minutes int32) TrainingEnvironmentModifier {
	return func(te *trainenvv1.TrainingEnvironment) {
		te.Spec.IdleSuspend = &trainenvv1.IdleSuspendSpec{AfterMinutes: minutes}
	}
}

// WithPhase sets status.phase.
func WithPhase(phase trainenvv1.Phase) TrainingEnvironmentModifier {
	return func(te *trainenvv1.TrainingEnvironment) { te.Status.Phase = phase }
}

// WithIdleSuspension records in status that the environment was suspended for idleness at
// at, with message.
func WithIdleSuspension(at time.Time, message string) TrainingEnvironmentModifier {
	return func(te *trainenvv1.TrainingEnvironment) {
		te.Status.IdleSuspension = &trainenvv1.IdleSuspensionStatus{SuspendedAt: metav1.NewTime(at), Message: message}
	}
}

// WithoutGPU removes spec.gpu: the environment runs on CPU.
func WithoutGPU() TrainingEnvironmentModifier {
	return func(te *trainenvv1.TrainingEnvironment) { te.Spec.GPU = nil }
}

// WithResources sets the CPU and memory the environment requests, e.g. "4" and "16Gi".
func WithResources(cpu, memory string) TrainingEnvironmentModifier {
	return func(te *trainenvv1.TrainingEnvironment) {
		c, m := resource.MustParse(cpu), resource.MustParse(memory)
		te.Spec.Resources = &trainenvv1.ResourcesSpec{CPU: &c, Memory: &m}
	}
}
