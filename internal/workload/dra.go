package workload

import (
	corev1 "k8s.io/api/core/v1"
	resourceapi "k8s.io/api/resource/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	trainenvv1 "github.com/trainenv/trainenv/api/v1alpha1"
)

// GPUClaimName is the name of the pod's ResourceClaim (and of the claim's device request)
// when GPUs come through Dynamic Resource Allocation (spec.gpu.deviceClassName).
const GPUClaimName = "gpus"

// UsesDRA reports whether the environment asks for GPUs through Dynamic Resource Allocation.
func UsesDRA(te *trainenvv1.TrainingEnvironment) bool {
	gpu := te.Spec.GPU
	return gpu != nil && gpu.Count > 0 && gpu.DeviceClassName != ""
}

// ResourceClaimTemplate renders the template of the pod's GPU claim: count devices of the
// DeviceClass, each satisfying selectors (the image's CUDA requirement and the products,
// compiled by compat.DeviceSelectors). A template's spec cannot change, so its name carries
// the hash of its spec: new selectors are a new template, and the pod template follows it.
func ResourceClaimTemplate(te *trainenvv1.TrainingEnvironment, selectors []string) *resourceapi.ResourceClaimTemplate {
	sel := make([]resourceapi.DeviceSelector, len(selectors))
	for i, s := range selectors {
		sel[i] = resourceapi.DeviceSelector{CEL: &resourceapi.CELDeviceSelector{Expression: s}}
	}
	spec := resourceapi.ResourceClaimTemplateSpec{
		ObjectMeta: metav1.ObjectMeta{Labels: Labels(te)},
		Spec: resourceapi.ResourceClaimSpec{Devices: resourceapi.DeviceClaim{
			Requests: []resourceapi.DeviceRequest{{Name: GPUClaimName, Exactly: &resourceapi.ExactDeviceRequest{
				DeviceClassName: te.Spec.GPU.DeviceClassName,
				Selectors:       sel,
				AllocationMode:  resourceapi.DeviceAllocationModeExactCount,
				Count:           int64(te.Spec.GPU.Count),
			}}},
		}},
	}
	return &resourceapi.ResourceClaimTemplate{
		ObjectMeta: metav1.ObjectMeta{Name: te.Name + "-gpus-" + SpecHash(spec)[:10], Namespace: te.Namespace, Labels: Labels(te)},
		Spec:       spec,
	}
}

// withGPUClaim gives the pod the claim made from the template; the containers reference it
// in their resources (gpuResources).
func withGPUClaim(spec *corev1.PodSpec, template string) {
	spec.ResourceClaims = []corev1.PodResourceClaim{{Name: GPUClaimName, ResourceClaimTemplateName: &template}}
}
