package controller_test

import (
	"fmt"
	"testing"

	. "github.com/onsi/gomega"
	resourceapi "k8s.io/api/resource/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	trainenvv1 "github.com/trainenv/trainenv/api/v1alpha1"
	"github.com/trainenv/trainenv/internal/compat"
	"github.com/trainenv/trainenv/internal/cuda"
	"github.com/trainenv/trainenv/internal/testutil/registrytest"
	"github.com/trainenv/trainenv/internal/workload"
)

// driverSlice creates the ResourceSlice NVIDIA's DRA driver would publish for a node.
func (f *fixture) driverSlice(node string, gpus int, product, brand, driver, cudaVersion, compute string) {
	f.t.Helper()
	s := &resourceapi.ResourceSlice{
		ObjectMeta: metav1.ObjectMeta{Name: node + "-gpu.nvidia.com"},
		Spec: resourceapi.ResourceSliceSpec{
			Driver: compat.DRADriverName, NodeName: ptr.To(node),
			Pool: resourceapi.ResourcePool{Name: node, Generation: 1, ResourceSliceCount: 1},
		},
	}
	for i := range gpus {
		s.Spec.Devices = append(s.Spec.Devices, resourceapi.Device{Name: fmt.Sprintf("gpu-%d", i), Attributes: map[resourceapi.QualifiedName]resourceapi.DeviceAttribute{
			compat.AttrType:              {StringValue: ptr.To(compat.DeviceTypeGPU)},
			compat.AttrProductName:       {StringValue: ptr.To(product)},
			compat.AttrBrand:             {StringValue: ptr.To(brand)},
			compat.AttrDriverVersion:     {VersionValue: ptr.To(driver)},
			compat.AttrCUDADriverVersion: {VersionValue: ptr.To(cudaVersion)},
			compat.AttrComputeCapability: {VersionValue: ptr.To(compute)},
		}})
	}
	if err := k8s.Create(f.ctx, s); err != nil {
		f.t.Fatal(err)
	}
	f.t.Cleanup(func() { _ = k8s.Delete(f.ctx, s) })
}

// On a cluster that publishes ResourceSlices and no GPU Feature Discovery labels, an
// environment with gpu.deviceClassName gets a ResourceClaimTemplate carrying its image's
// CUDA requirement as selectors, and a pod that uses it; an image no device can run gets
// no workload and a condition that names the devices.
func TestDeviceClassEnvironmentGetsAClaimTemplate(t *testing.T) {
	g := NewWithT(t)
	f := newFixture(t)
	reg := registrytest.New(t)
	reg.Push("team/pytorch", "cu128", registrytest.Image(t, "NVIDIA_REQUIRE_CUDA=cuda>=12.8"))
	reg.Push("team/pytorch", "cu131", registrytest.Image(t, "NVIDIA_REQUIRE_CUDA=cuda>=13.1"))
	f.driverSlice("dra-h100", 8, "NVIDIA H100 80GB HBM3", "Nvidia", "580.105.8", "13.0.0", "9.0.0")
	f.driverSlice("dra-t4", 4, "Tesla T4", "Tesla", "470.256.2", "11.4.0", "7.5.0")
	dra := func(te *trainenvv1.TrainingEnvironment) { te.Spec.GPU.DeviceClassName = "gpu.nvidia.com" }

	te := f.create("dra-cu128", reg.Host+"/team/pytorch:cu128", dra)
	_, err, te := f.reconcile(te)
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(te).To(haveCondition(trainenvv1.ConditionCompatible, metav1.ConditionTrue, trainenvv1.ReasonCompatible))
	g.Expect(condition(te, trainenvv1.ConditionCompatible).Message).To(ContainSubstring("8 device(s) on 1 node(s) satisfy"))
	sts, err := f.statefulSet(te)
	g.Expect(err).NotTo(HaveOccurred())
	pod := sts.Spec.Template.Spec
	g.Expect(pod.Affinity).To(BeNil(), "the claim's selectors choose the devices, not node labels")
	g.Expect(pod.ResourceClaims).To(HaveLen(1))
	var tmpl resourceapi.ResourceClaimTemplate
	g.Expect(k8s.Get(f.ctx, client.ObjectKey{Namespace: f.ns, Name: *pod.ResourceClaims[0].ResourceClaimTemplateName}, &tmpl)).To(Succeed())
	g.Expect(metav1.IsControlledBy(&tmpl, te)).To(BeTrue(), "the environment owns its claim template")
	req := tmpl.Spec.Spec.Devices.Requests[0]
	g.Expect(req.Name).To(Equal(workload.GPUClaimName))
	g.Expect(req.Exactly.DeviceClassName).To(Equal("gpu.nvidia.com"))
	g.Expect(req.Exactly.Count).To(BeEquivalentTo(1))
	rs, err := cuda.FromValues([]string{"cuda>=12.8"}, "the image's NVIDIA_REQUIRE_CUDA")
	g.Expect(err).NotTo(HaveOccurred())
	selectors, err := compat.DeviceSelectors(rs, nil)
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(req.Exactly.Selectors).To(Equal([]resourceapi.DeviceSelector{{CEL: &resourceapi.CELDeviceSelector{Expression: selectors[0]}}}))

	// A second pass changes nothing: the template is not rewritten.
	_, err, _ = f.reconcile(te)
	g.Expect(err).NotTo(HaveOccurred())
	var again resourceapi.ResourceClaimTemplate
	g.Expect(k8s.Get(f.ctx, client.ObjectKeyFromObject(&tmpl), &again)).To(Succeed())
	g.Expect(again.ResourceVersion).To(Equal(tmpl.ResourceVersion))

	te = f.create("dra-cu131", reg.Host+"/team/pytorch:cu131", dra)
	_, err, te = f.reconcile(te)
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(te).To(haveCondition(trainenvv1.ConditionCompatible, metav1.ConditionFalse, trainenvv1.ReasonNoCompatibleNode))
	msg := condition(te, trainenvv1.ConditionCompatible).Message
	g.Expect(msg).To(ContainSubstring(`"cuda>=13.1"`))
	g.Expect(msg).To(ContainSubstring("8× NVIDIA H100 80GB HBM3 with driver 580.105.08 (CUDA 13.0)"))
	g.Expect(msg).To(ContainSubstring("4× Tesla T4 with driver 470.256.02 (CUDA 11.4)"))
	_, err = f.statefulSet(te)
	g.Expect(apierrors.IsNotFound(err)).To(BeTrue(), "no workload while no device can run the image")
}
