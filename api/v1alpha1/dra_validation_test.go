package v1alpha1_test

import (
	"context"
	"fmt"
	"testing"

	. "github.com/onsi/gomega"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/controller-runtime/pkg/client"

	trainenvv1 "github.com/trainenv/trainenv/api/v1alpha1"
)

// spec.gpu.deviceClassName (Dynamic Resource Allocation) is the alternative to the
// extended resource: validated at apply, on a real API server.
func TestGPUDeviceClassValidation(t *testing.T) {
	image := "registry.example.com/team/pytorch:2.4"
	cases := []struct {
		name    string
		gpu     map[string]any
		message string // empty: accepted
	}{
		{"device class, count defaulted", map[string]any{"deviceClassName": "gpu.nvidia.com"}, ""},
		{"device class with count and products", map[string]any{"deviceClassName": "gpu.nvidia.com", "count": 4, "products": []any{"NVIDIA-H100-80GB-HBM3"}}, ""},
		{"device class with the default resource name", map[string]any{"deviceClassName": "gpu.nvidia.com", "resourceName": "nvidia.com/gpu"}, ""},
		{"both paths", map[string]any{"deviceClassName": "gpu.nvidia.com", "resourceName": "example.com/gpu"}, "gpu.resourceName and gpu.deviceClassName are alternatives"},
		{"device class with no devices", map[string]any{"deviceClassName": "gpu.nvidia.com", "count": 0}, "gpu.deviceClassName needs gpu.count of at least 1"},
		{"device class not a name", map[string]any{"deviceClassName": "GPU Class"}, "spec.gpu.deviceClassName in body should match"},
		{"device class empty", map[string]any{"deviceClassName": ""}, "spec.gpu.deviceClassName in body should be at least 1 chars long"},
	}
	for i, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			g := NewWithT(t)
			err := create(object(fmt.Sprintf("dra-%d", i), map[string]any{"image": image, "gpu": tc.gpu}))
			if tc.message == "" {
				g.Expect(err).NotTo(HaveOccurred())
				return
			}
			g.Expect(err).To(HaveOccurred())
			g.Expect(err.Error()).To(ContainSubstring(tc.message))
		})
	}
}

func TestGPUDeviceClassDefaultsAndImmutability(t *testing.T) {
	g := NewWithT(t)
	ctx := context.Background()
	u := object("dra-defaults", map[string]any{
		"image": "registry.example.com/team/pytorch:2.4",
		"gpu":   map[string]any{"deviceClassName": "gpu.nvidia.com"},
	})
	g.Expect(create(u)).To(Succeed())
	te := &trainenvv1.TrainingEnvironment{}
	g.Expect(k8s.Get(ctx, client.ObjectKeyFromObject(u), te)).To(Succeed())
	g.Expect(te.Spec.GPU.Count).To(BeEquivalentTo(1))
	g.Expect(te.Spec.GPU.DeviceClassName).To(Equal("gpu.nvidia.com"))

	g.Expect(k8s.Get(ctx, client.ObjectKeyFromObject(u), u)).To(Succeed())
	g.Expect(unstructured.SetNestedField(u.Object, "mig.nvidia.com", "spec", "gpu", "deviceClassName")).To(Succeed())
	err := k8s.Update(ctx, u)
	g.Expect(err).To(HaveOccurred())
	g.Expect(err.Error()).To(ContainSubstring("gpu.deviceClassName cannot be changed"))

	g.Expect(k8s.Get(ctx, client.ObjectKeyFromObject(u), u)).To(Succeed())
	g.Expect(unstructured.SetNestedField(u.Object, int64(2), "spec", "gpu", "count")).To(Succeed())
	g.Expect(k8s.Update(ctx, u)).To(Succeed(), "the count may change")
}
