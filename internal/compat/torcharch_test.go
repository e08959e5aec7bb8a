package compat_test

import (
	"fmt"
	"slices"
	"testing"

	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/component-helpers/scheduling/corev1/nodeaffinity"

	trainenvv1 "github.com/trainenv/trainenv/api/v1alpha1"
	"github.com/trainenv/trainenv/internal/compat"
	"github.com/trainenv/trainenv/internal/cuda"
)

// An image whose torch has kernels up to compute capability 9.0 (TORCH_CUDA_ARCH_LIST
// without 10.0 and without PTX) is not placed on Blackwell nodes, whatever labels them; one
// with 9.0+PTX is. The affinity admits exactly what the verdict says.
func TestTorchArchListExcludesComputeCapability(t *testing.T) {
	nodes := []corev1.Node{}
	for _, scheme := range []string{"agent", "gfd", "gfd-deprecated"} {
		nodes = append(nodes,
			labelledNode("b200-"+scheme, gpuNodeLabels(scheme, "570.124.06", "12.8", "10.0", "nvidia")),
			labelledNode("h100-"+scheme, gpuNodeLabels(scheme, "570.124.06", "12.8", "9.0", "nvidia")),
			labelledNode("t4-"+scheme, gpuNodeLabels(scheme, "570.124.06", "12.8", "7.5", "tesla")))
	}
	cases := []struct {
		list string
		fit  []string
	}{
		{"8.0 8.6 9.0", []string{"h100-agent", "h100-gfd", "h100-gfd-deprecated"}},
		{"8.0 8.6 9.0+PTX", []string{"b200-agent", "b200-gfd", "b200-gfd-deprecated", "h100-agent", "h100-gfd", "h100-gfd-deprecated"}},
		{"7.5 10.0", []string{"b200-agent", "b200-gfd", "b200-gfd-deprecated", "t4-agent", "t4-gfd", "t4-gfd-deprecated"}},
	}
	for _, tc := range cases {
		t.Run(tc.list, func(t *testing.T) {
			g := NewWithT(t)
			arch, ok := cuda.TorchArchRequirement([]string{"TORCH_CUDA_ARCH_LIST=" + tc.list})
			g.Expect(ok).To(BeTrue())
			rs := requirements(t, "cuda>=12.4", arch)
			r := compat.Check(gpu1, rs, nodes)
			g.Expect(r.Nodes).To(ConsistOf(tc.fit))
			terms, err := compat.Affinity(rs, nil)
			g.Expect(err).NotTo(HaveOccurred())
			selector, err := nodeaffinity.NewNodeSelector(&corev1.NodeSelector{NodeSelectorTerms: terms})
			g.Expect(err).NotTo(HaveOccurred())
			for i := range nodes {
				g.Expect(selector.Match(&nodes[i])).To(Equal(slices.Contains(tc.fit, nodes[i].Name)), nodes[i].Name)
			}
		})
	}

	t.Run("only Blackwell nodes: the message names their compute capability", func(t *testing.T) {
		g := NewWithT(t)
		arch, _ := cuda.TorchArchRequirement([]string{"TORCH_CUDA_ARCH_LIST=8.0 8.6 9.0"})
		r := compat.Check(gpu1, requirements(t, "cuda>=12.4", arch), nodes[:1])
		g.Expect(r.Reason).To(Equal(trainenvv1.ReasonNoCompatibleNode))
		g.Expect(r.Message).To(ContainSubstring(`"arch>=8.0,arch<10.0"`))
		g.Expect(r.Message).To(ContainSubstring("1 node with driver 570.124.06 (CUDA 12.8) and GPUs of compute capability 10.0"))
	})
}

// A real image requirement (31 brand/driver alternatives) ANDed with an arch list stays
// within the node selector term limit: ranges are merged first.
func TestTorchArchListWithRealRequirementFitsAffinity(t *testing.T) {
	g := NewWithT(t)
	arch, _ := cuda.TorchArchRequirement([]string{"TORCH_CUDA_ARCH_LIST=5.2 6.0 6.1 7.0 7.5 8.0 8.6 9.0"})
	require := "cuda>=12.4"
	for _, d := range []int{470, 525, 535} {
		for _, b := range []string{"tesla", "unknown", "nvidia", "nvidiartx", "geforce", "geforcertx", "quadro", "quadrortx", "titan", "titanrtx"} {
			require += fmt.Sprintf(" brand=%s,driver>=%d,driver<%d", b, d, d+1)
		}
	}
	_, err := compat.Affinity(requirements(t, require, arch), nil)
	g.Expect(err).NotTo(HaveOccurred())
}
