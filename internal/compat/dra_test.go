package compat_test

import (
	"fmt"
	"testing"

	. "github.com/onsi/gomega"
	resourceapi "k8s.io/api/resource/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/utils/ptr"

	trainenvv1 "github.com/trainenv/trainenv/api/v1alpha1"
	"github.com/trainenv/trainenv/internal/compat"
)

// nodeSlice is the ResourceSlice NVIDIA's DRA driver publishes for a node with n GPUs.
func nodeSlice(node string, n int, product, brand, driver, cudaVersion, compute string) resourceapi.ResourceSlice {
	s := resourceapi.ResourceSlice{
		ObjectMeta: metav1.ObjectMeta{Name: node + "-gpu.nvidia.com", UID: types.UID("uid-" + node), ResourceVersion: "1"},
		Spec: resourceapi.ResourceSliceSpec{
			Driver:   compat.DRADriverName,
			NodeName: ptr.To(node),
			Pool:     resourceapi.ResourcePool{Name: node, Generation: 1, ResourceSliceCount: 1},
		},
	}
	for i := range n {
		d := gpuDevice(product, brand, driver, cudaVersion, compute)
		s.Spec.Devices = append(s.Spec.Devices, resourceapi.Device{Name: fmt.Sprintf("gpu-%d", i), Attributes: d.Attributes})
	}
	return s
}

var draGPU = &trainenvv1.GPUSpec{Count: 1, DeviceClassName: "gpu.nvidia.com"}

func draPools() []resourceapi.ResourceSlice {
	return []resourceapi.ResourceSlice{
		nodeSlice("h100", 8, "NVIDIA H100 80GB HBM3", "Nvidia", "580.105.8", "13.0.0", "9.0.0"),
		nodeSlice("a100-1", 2, "NVIDIA A100-SXM4-80GB", "Nvidia", "550.54.15", "12.4.0", "8.0.0"),
		nodeSlice("t4", 2, "Tesla T4", "Tesla", "470.256.2", "11.4.0", "7.5.0"),
	}
}

func TestCheckDevices(t *testing.T) {
	cases := []struct {
		name     string
		req      []string
		gpu      *trainenvv1.GPUSpec
		reason   string
		nodes    []string
		contains string
	}{
		{"cuda 13.0", []string{"cuda>=13.0"}, draGPU, trainenvv1.ReasonCompatible, []string{"h100"}, "8 device(s) on 1 node(s) satisfy"},
		{"cuda 12.4", []string{"cuda>=12.4"}, draGPU, trainenvv1.ReasonCompatible, []string{"h100", "a100-1"}, ""},
		{"cuda 11.4", []string{"cuda>=11.4"}, draGPU, trainenvv1.ReasonCompatible, []string{"h100", "a100-1", "t4"}, ""},
		{"arch 9.0", []string{"arch>=9.0"}, draGPU, trainenvv1.ReasonCompatible, []string{"h100"}, ""},
		{"product", nil, &trainenvv1.GPUSpec{Count: 1, DeviceClassName: "gpu.nvidia.com", Products: []string{"Tesla-T4"}}, trainenvv1.ReasonCompatible, []string{"t4"}, ""},
		{"no such product", nil, &trainenvv1.GPUSpec{Count: 1, DeviceClassName: "gpu.nvidia.com", Products: []string{"NVIDIA-B200"}}, trainenvv1.ReasonNoMatchingProduct, nil,
			"products available: NVIDIA-A100-SXM4-80GB, NVIDIA-H100-80GB-HBM3, Tesla-T4"},
		{"cuda 13.1", []string{"cuda>=13.1"}, draGPU, trainenvv1.ReasonNoCompatibleNode, nil,
			`the image needs "cuda>=13.1" (from the image's NVIDIA_REQUIRE_CUDA); the cluster has 12 devices: ` +
				`2× NVIDIA A100-SXM4-80GB with driver 550.54.15 (CUDA 12.4), 8× NVIDIA H100 80GB HBM3 with driver 580.105.08 (CUDA 13.0), ` +
				`2× Tesla T4 with driver 470.256.02 (CUDA 11.4). Use an image built`},
		{"arch 10.0 names capabilities", []string{"arch>=10.0"}, draGPU, trainenvv1.ReasonNoCompatibleNode, nil, "(CUDA 11.4) of compute capability 7.5"},
		{"more devices than a node has", []string{"cuda>=12.4"}, &trainenvv1.GPUSpec{Count: 9, DeviceClassName: "gpu.nvidia.com"}, trainenvv1.ReasonNoCompatibleNode, nil,
			"gpu.count is 9, but no node has more than 8 devices that satisfy"},
		{"cpu only", nil, nil, trainenvv1.ReasonNoGPURequested, nil, ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			g := NewWithT(t)
			r := compat.CheckDevices(tc.gpu, requirements(t, tc.req...), draPools())
			g.Expect(r.Reason).To(Equal(tc.reason), r.Message)
			g.Expect(r.OK).To(Equal(tc.reason == trainenvv1.ReasonCompatible || tc.reason == trainenvv1.ReasonNoGPURequested))
			g.Expect(r.Nodes).To(ConsistOf(tc.nodes))
			g.Expect(r.Message).To(ContainSubstring(tc.contains))
		})
	}
}

func TestCheckDevicesWithoutSlices(t *testing.T) {
	g := NewWithT(t)
	other := nodeSlice("x", 1, "Tesla T4", "Tesla", "470.256.2", "11.4.0", "7.5.0")
	other.Spec.Driver = "other.example.com"
	r := compat.CheckDevices(draGPU, requirements(t, "cuda>=11.0"), []resourceapi.ResourceSlice{other})
	g.Expect(r.Reason).To(Equal(trainenvv1.ReasonNoGPUDevices))
	g.Expect(r.Message).To(ContainSubstring("no ResourceSlice publishes a device of the DRA driver gpu.nvidia.com"))
}

// A driver replacing its slices bumps the pool's generation: the old slices' devices are
// gone, whatever is still listed.
func TestCheckDevicesReadsCurrentPoolGeneration(t *testing.T) {
	g := NewWithT(t)
	old := nodeSlice("n", 2, "NVIDIA H100 80GB HBM3", "Nvidia", "580.105.8", "13.0.0", "9.0.0")
	current := nodeSlice("n", 2, "NVIDIA H100 80GB HBM3", "Nvidia", "550.54.15", "12.4.0", "9.0.0")
	current.Name, current.UID, current.Spec.Pool.Generation = "n-2", "uid-n-2", 2
	r := compat.CheckDevices(draGPU, requirements(t, "cuda>=13.0"), []resourceapi.ResourceSlice{old, current})
	g.Expect(r.Reason).To(Equal(trainenvv1.ReasonNoCompatibleNode), r.Message)
	g.Expect(r.Message).To(ContainSubstring("2 devices: 2× NVIDIA H100 80GB HBM3 with driver 550.54.15 (CUDA 12.4)"))
}

// A slice's devices are read once per resourceVersion: a new version is read again.
func TestCheckDevicesRereadsChangedSlices(t *testing.T) {
	g := NewWithT(t)
	s := nodeSlice("memo", 1, "Tesla T4", "Tesla", "470.256.2", "11.4.0", "7.5.0")
	g.Expect(compat.CheckDevices(draGPU, requirements(t, "cuda>=12.0"), []resourceapi.ResourceSlice{s}).OK).To(BeFalse())
	upgraded := nodeSlice("memo", 1, "Tesla T4", "Tesla", "550.54.15", "12.4.0", "7.5.0")
	upgraded.ResourceVersion = "2"
	g.Expect(compat.CheckDevices(draGPU, requirements(t, "cuda>=12.0"), []resourceapi.ResourceSlice{upgraded}).OK).To(BeTrue())
}
