package gen

import (
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// PodModifier edits a Pod being built.
type PodModifier func(*corev1.Pod)

// Pod returns a pod named name, edited by mods in order.
func Pod(name string, mods ...PodModifier) *corev1.Pod {
	p := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: name}}
	for _, m := range mods {
		m(p)
	}
	return p
}

// WithPodNamespace sets the pod's namespace.
func WithPodNamespace(ns string) PodModifier {
	return func(p *corev1.Pod) { p.Namespace = ns }
}

// WithPodTypeMeta sets apiVersion v1 and kind Pod, as tools that read manifests need.
func WithPodTypeMeta() PodModifier {
	return func(p *corev1.Pod) { p.APIVersion, p.Kind = "v1", "Pod" }
}

// FromTemplate gives the pod a template's labels and spec, as a StatefulSet or DaemonSet
// controller would create it.
func FromTemplate(t corev1.PodTemplateSpec) PodModifier {
	return func(p *corev1.Pod) {
		p.Labels = t.Labels
		p.Spec = *t.Spec.DeepCopy()
	}
}

// OnNode sets spec.nodeName, as the scheduler would.
func OnNode(node string) PodModifier {
	return func(p *corev1.Pod) { p.Spec.NodeName = node }
}

// WithContainer adds a container.
func WithContainer(name, image string) PodModifier {
	return func(p *corev1.Pod) {
		p.Spec.Containers = append(p.Spec.Containers, corev1.Container{Name: name, Image: image})
	}
}

// WithPodPhase sets status.phase.
func WithPodPhase(phase corev1.PodPhase) PodModifier {
	return func(p *corev1.Pod) { p.Status.Phase = phase }
}

// WithPodCondition appends a status condition.
func WithPodCondition(t corev1.PodConditionType, s corev1.ConditionStatus, reason, message string) PodModifier {
	return func(p *corev1.Pod) {
		p.Status.Conditions = append(p.Status.Conditions, corev1.PodCondition{Type: t, Status: s, Reason: reason, Message: message})
	}
}

// WithWaitingContainer appends the status of a container waiting for reason.
func WithWaitingContainer(container, reason, message string) PodModifier {
	return func(p *corev1.Pod) {
		p.Status.ContainerStatuses = append(p.Status.ContainerStatuses, corev1.ContainerStatus{
			Name: container, State: corev1.ContainerState{Waiting: &corev1.ContainerStateWaiting{Reason: reason, Message: message}},
		})
	}
}
