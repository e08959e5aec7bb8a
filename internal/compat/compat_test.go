package compat_test

import (
	"testing"

	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	trainenvv1 "github.com/trainenv/trainenv/api/v1alpha1"
	"github.com/trainenv/trainenv/internal/compat"
	"github.com/trainenv/trainenv/internal/cuda"
)

func node(name, product string, gpus int64) corev1.Node {
	n := corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: name, Labels: map[string]string{}}}
	if product != "" {
		n.Labels[compat.LabelGPUProduct] = product
	}
	if gpus > 0 {
		n.Status.Allocatable = corev1.ResourceList{"nvidia.com/gpu": *resource.NewQuantity(gpus, resource.DecimalSI)}
	}
	return n
}

func TestCheck(t *testing.T) {
	nodes := []corev1.Node{node("cpu", "", 0), node("a100", "NVIDIA-A100-SXM4-80GB", 8), node("t4", "Tesla-T4", 1)}
	gpu := func(count int32, products ...string) *trainenvv1.GPUSpec {
		return &trainenvv1.GPUSpec{Count: count, ResourceName: "nvidia.com/gpu", Products: products}
	}
	cases := []struct {
		name   string
		gpu    *trainenvv1.GPUSpec
		nodes  []corev1.Node
		ok     bool
		reason string
		fit    []string
	}{
		{"cpu only", nil, nodes, true, trainenvv1.ReasonNoGPURequested, nil},
		{"zero gpus", gpu(0), nil, true, trainenvv1.ReasonNoGPURequested, nil},
		{"one gpu fits both", gpu(1), nodes, true, trainenvv1.ReasonCompatible, []string{"a100", "t4"}},
		{"eight only on a100", gpu(8), nodes, true, trainenvv1.ReasonCompatible, []string{"a100"}},
		{"too many", gpu(16), nodes, false, trainenvv1.ReasonNoGPUNodes, nil},
		{"no gpu nodes", gpu(1), nodes[:1], false, trainenvv1.ReasonNoGPUNodes, nil},
		{"product match", gpu(1, "Tesla-T4"), nodes, true, trainenvv1.ReasonCompatible, []string{"t4"}},
		{"product missing", gpu(1, "NVIDIA-H100-80GB-HBM3"), nodes, false, trainenvv1.ReasonNoMatchingProduct, nil},
		{"product has too few", gpu(2, "Tesla-T4"), nodes, false, trainenvv1.ReasonNoMatchingProduct, nil},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			g := NewWithT(t)
			r := compat.Check(tc.gpu, cuda.Requirements{}, tc.nodes)
			g.Expect(r.OK).To(Equal(tc.ok), r.Message)
			g.Expect(r.Reason).To(Equal(tc.reason))
			g.Expect(r.Nodes).To(ConsistOf(tc.fit))
			g.Expect(r.Message).NotTo(BeEmpty())
		})
	}
}

func TestNoMatchingProductNamesWhatExists(t *testing.T) {
	g := NewWithT(t)
	r := compat.Check(&trainenvv1.GPUSpec{Count: 1, ResourceName: "nvidia.com/gpu", Products: []string{"H100"}},
		cuda.Requirements{}, []corev1.Node{node("a", "NVIDIA-A100-SXM4-80GB", 8)})
	g.Expect(r.Message).To(ContainSubstring("NVIDIA-A100-SXM4-80GB"))
}
