package controller

import (
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	toolscache "k8s.io/client-go/tools/cache"
)

// The manager caches every pod and StatefulSet trainenv made; at 5,000 environments their
// pod specs were most of its memory (docs/benchmarks.md). The transforms below keep only
// what the reconciler and its watch predicates read; they are the cache's, so what the
// reconciler reads through its client is what they left.

// TransformPod keeps of a cached pod its metadata (labels: the watch maps pods to their
// environment by label), its node, its containers' names and images (runs: is it running
// the pinned digest?) and its status (podState, preflightResult, idleExit). Volumes,
// init containers, commands, environment, probes, affinity and security contexts go.
// managedFields and annotations go too: nothing reads them.
func TransformPod(obj any) (any, error) {
	pod, ok := obj.(*corev1.Pod)
	if !ok {
		return obj, nil
	}
	pod.ManagedFields, pod.Annotations = nil, nil
	containers := make([]corev1.Container, len(pod.Spec.Containers))
	for i, c := range pod.Spec.Containers {
		containers[i] = corev1.Container{Name: c.Name, Image: c.Image}
	}
	pod.Spec = corev1.PodSpec{NodeName: pod.Spec.NodeName, Containers: containers}
	return pod, nil
}

// TransformStatefulSet drops the pod template of a cached StatefulSet: ensureOwned compares
// the spec-hash annotation, never the template, and an update sets the whole template
// (and replicas) from the rendered one before writing. The rest of the spec is kept, so
// that an update writes it back unchanged.
func TransformStatefulSet(obj any) (any, error) {
	sts, ok := obj.(*appsv1.StatefulSet)
	if !ok {
		return obj, nil
	}
	sts.ManagedFields = nil
	sts.Spec.Template = corev1.PodTemplateSpec{}
	return sts, nil
}

var (
	_ toolscache.TransformFunc = TransformPod
	_ toolscache.TransformFunc = TransformStatefulSet
)
