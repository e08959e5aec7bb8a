package compat_test

import (
	"fmt"
	"testing"

	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/types"

	trainenvv1 "github.com/trainenv/trainenv/api/v1alpha1"
	"github.com/trainenv/trainenv/internal/compat"
)

// Node facts are memoised by UID and resourceVersion: a node whose labels change (and so
// its resourceVersion) is judged by its new labels, not by what was parsed before.
func TestCheckFollowsNodeVersion(t *testing.T) {
	g := NewWithT(t)
	rs := requirements(t, "cuda>=12.4")
	n := labelledNode("n1", gpuNodeLabels("gfd", "535.104.05", "12.2", "8.0", ""))
	n.UID, n.ResourceVersion = types.UID("memo-uid-1"), "1"
	g.Expect(compat.Check(gpu1, rs, []corev1.Node{n}).Reason).To(Equal(trainenvv1.ReasonNoCompatibleNode))
	g.Expect(compat.Check(gpu1, rs, []corev1.Node{n}).Reason).To(Equal(trainenvv1.ReasonNoCompatibleNode), "memoised")

	n.Labels = gpuNodeLabels("gfd", "550.54.15", "12.4", "8.0", "")
	n.ResourceVersion = "2"
	res := compat.Check(gpu1, rs, []corev1.Node{n})
	g.Expect(res.OK).To(BeTrue(), res.Message)
	g.Expect(res.Nodes).To(Equal([]string{"n1"}))

	// A node without a UID (not from the API) is always parsed afresh.
	n.UID, n.ResourceVersion = "", ""
	n.Labels = gpuNodeLabels("gfd", "535.104.05", "12.2", "8.0", "")
	g.Expect(compat.Check(gpu1, rs, []corev1.Node{n}).OK).To(BeFalse())
}

// BenchmarkCheck1000Nodes is one pass's compatibility check in the scale benchmark's
// cluster: 1,000 nodes whose facts are memoised after the first pass.
func BenchmarkCheck1000Nodes(b *testing.B) {
	nodes := make([]corev1.Node, 1000)
	drivers := []string{"550.54.15", "575.57.08", "580.65.06", "535.183.01", "470.256.02"}
	cudas := []string{"12.4", "12.9", "13.0", "12.2", "11.4"}
	for i := range nodes {
		nodes[i] = labelledNode(fmt.Sprintf("node-%d", i), gpuNodeLabels("gfd", drivers[i%5], cudas[i%5], "8.0", ""))
		nodes[i].UID, nodes[i].ResourceVersion = types.UID(fmt.Sprintf("bench-%d", i)), "1"
	}
	rs := requirements(b, "cuda>=12.4")
	b.ReportAllocs()
	for b.Loop() {
		if !compat.Check(gpu1, rs, nodes).OK {
			b.Fatal("no node fits")
		}
	}
}
