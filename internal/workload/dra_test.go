package workload_test

import (
	"testing"

	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	resourceapi "k8s.io/api/resource/v1"

	trainenvv1 "github.com/trainenv/trainenv/api/v1alpha1"
	"github.com/trainenv/trainenv/internal/workload"
)

func withDRA(te *trainenvv1.TrainingEnvironment) {
	te.Spec.GPU.DeviceClassName = "gpu.nvidia.com"
}

// With spec.gpu.deviceClassName the pod asks for its GPUs through a claim made from the
// environment's template: no extended resource, the preflight and the user's container
// both name the claim (the preflight checks the devices the environment will use).
func TestDRAEnvironmentGetsAClaimInsteadOfTheExtendedResource(t *testing.T) {
	g := NewWithT(t)
	te := environment(withDRA)
	selectors := []string{`has(device.attributes["gpu.nvidia.com"].cudaDriverVersion) && device.attributes["gpu.nvidia.com"].cudaDriverVersion.compareTo(semver("12.4.0")) >= 0`}
	tmpl := workload.ResourceClaimTemplate(te, selectors)
	g.Expect(tmpl.Namespace).To(Equal("ml"))
	g.Expect(tmpl.Name).To(HavePrefix("alice-gpus-"))
	g.Expect(tmpl.Spec.Spec.Devices.Requests).To(Equal([]resourceapi.DeviceRequest{{Name: workload.GPUClaimName, Exactly: &resourceapi.ExactDeviceRequest{
		DeviceClassName: "gpu.nvidia.com",
		Selectors:       []resourceapi.DeviceSelector{{CEL: &resourceapi.CELDeviceSelector{Expression: selectors[0]}}},
		AllocationMode:  resourceapi.DeviceAllocationModeExactCount,
		Count:           2,
	}}}))

	sts := workload.StatefulSet(te, workload.Inputs{PinnedImage: pinned, ToolsImage: tools, ClaimTemplate: tmpl.Name})
	pod := sts.Spec.Template.Spec
	g.Expect(pod.ResourceClaims).To(Equal([]corev1.PodResourceClaim{{Name: workload.GPUClaimName, ResourceClaimTemplateName: &tmpl.Name}}))
	var preflight *corev1.Container
	for i, c := range pod.InitContainers {
		if c.Name == workload.PreflightContainerName {
			preflight = &pod.InitContainers[i]
		}
	}
	g.Expect(preflight).NotTo(BeNil())
	for _, c := range []corev1.Container{pod.Containers[0], *preflight} {
		g.Expect(c.Resources.Claims).To(Equal([]corev1.ResourceClaim{{Name: workload.GPUClaimName}}), c.Name)
		g.Expect(c.Resources.Limits).NotTo(HaveKey(corev1.ResourceName("nvidia.com/gpu")), c.Name)
		g.Expect(c.Resources.Requests).NotTo(HaveKey(corev1.ResourceName("nvidia.com/gpu")), c.Name)
	}
}

// A template's spec is immutable: other selectors, count or class make another name.
func TestClaimTemplateNameFollowsItsSpec(t *testing.T) {
	g := NewWithT(t)
	te := environment(withDRA)
	a := workload.ResourceClaimTemplate(te, []string{"true"})
	g.Expect(workload.ResourceClaimTemplate(te, []string{"true"}).Name).To(Equal(a.Name))
	g.Expect(workload.ResourceClaimTemplate(te, []string{"false"}).Name).NotTo(Equal(a.Name))
	te.Spec.GPU.Count = 4
	g.Expect(workload.ResourceClaimTemplate(te, []string{"true"}).Name).NotTo(Equal(a.Name))
}

func TestExtendedResourcePathHasNoClaim(t *testing.T) {
	g := NewWithT(t)
	pod := workload.StatefulSet(environment(), workload.Inputs{PinnedImage: pinned, ToolsImage: tools}).Spec.Template.Spec
	g.Expect(pod.ResourceClaims).To(BeEmpty())
	g.Expect(pod.Containers[0].Resources.Claims).To(BeEmpty())
}
