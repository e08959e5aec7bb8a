package workload_test

import (
	"testing"

	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"

	trainenvv1 "github.com/trainenv/trainenv/api/v1alpha1"
	"github.com/trainenv/trainenv/internal/workload"
)

// GPU node pools are tainted nvidia.com/gpu:NoSchedule (GKE, EKS, AKS, the GPU Operator's
// docs, the local cluster's simulated pools): a pod that asks for GPUs, by extended resource
// or by a DRA claim, tolerates that taint; a CPU pod does not, so it stays off GPU nodes.
func TestGPUEnvironmentsTolerateTheGPUTaint(t *testing.T) {
	nvidia := corev1.Toleration{Key: "nvidia.com/gpu", Operator: corev1.TolerationOpExists, Effect: corev1.TaintEffectNoSchedule}
	for _, tc := range []struct {
		name string
		gpu  *trainenvv1.GPUSpec
		want []corev1.Toleration
	}{
		{name: "extended resource", gpu: &trainenvv1.GPUSpec{Count: 1, ResourceName: "nvidia.com/gpu"}, want: []corev1.Toleration{nvidia}},
		{name: "DRA claim", gpu: &trainenvv1.GPUSpec{Count: 1, ResourceName: "nvidia.com/gpu", DeviceClassName: "gpu.nvidia.com"}, want: []corev1.Toleration{nvidia}},
		{name: "DRA claim, no resource name", gpu: &trainenvv1.GPUSpec{Count: 1, DeviceClassName: "gpu.nvidia.com"}, want: []corev1.Toleration{nvidia}},
		{name: "another vendor's resource", gpu: &trainenvv1.GPUSpec{Count: 1, ResourceName: "amd.com/gpu"}, want: []corev1.Toleration{
			nvidia, {Key: "amd.com/gpu", Operator: corev1.TolerationOpExists, Effect: corev1.TaintEffectNoSchedule},
		}},
		{name: "no GPU", gpu: nil, want: nil},
		{name: "zero GPUs", gpu: &trainenvv1.GPUSpec{Count: 0, ResourceName: "nvidia.com/gpu"}, want: nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			g := NewWithT(t)
			te := environment(func(te *trainenvv1.TrainingEnvironment) { te.Spec.GPU = tc.gpu })
			sts := workload.StatefulSet(te, workload.Inputs{PinnedImage: pinned, ToolsImage: tools, ClaimTemplate: "alice-gpus-x"})
			if tc.want == nil {
				g.Expect(sts.Spec.Template.Spec.Tolerations).To(BeEmpty())
				return
			}
			g.Expect(sts.Spec.Template.Spec.Tolerations).To(Equal(tc.want))
		})
	}
}
