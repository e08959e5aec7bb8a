package nodeagent_test

import (
	"context"
	"testing"

	. "github.com/onsi/gomega"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	nodev1 "k8s.io/api/node/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/trainenv/trainenv/internal/testutil/gen"
)

// The agent's pod passes Pod Security "restricted" in its namespace: the only thing it
// needs beyond that is the NVIDIA runtime class, which the admission checks exists.
func TestDaemonSetPodIsRestricted(t *testing.T) {
	needAPIServer(t)
	g := NewWithT(t)
	ctx := context.Background()
	ds := &appsv1.DaemonSet{}
	g.Expect(admin.Get(ctx, client.ObjectKey{Namespace: agentNamespace, Name: "trainenv-node-agent"}, ds)).To(Succeed())
	g.Expect(ds.Spec.Template.Spec.RuntimeClassName).To(HaveValue(Equal("nvidia")))

	rc := &nodev1.RuntimeClass{ObjectMeta: metav1.ObjectMeta{Name: "nvidia"}, Handler: "nvidia"}
	g.Expect(admin.Create(ctx, rc)).To(Succeed())
	t.Cleanup(func() { _ = admin.Delete(ctx, rc) })

	pod := gen.Pod("node-agent-probe", gen.WithPodNamespace(agentNamespace), gen.FromTemplate(ds.Spec.Template), gen.OnNode("gpu-node-1"))
	g.Expect(admin.Create(ctx, pod, client.DryRunAll)).To(Succeed())
	// The namespace does enforce it: the same pod sharing the host's PID namespace is refused.
	hostPID := pod.DeepCopy()
	hostPID.Spec.HostPID = true
	g.Expect(admin.Create(ctx, hostPID, client.DryRunAll)).To(MatchError(ContainSubstring("violates PodSecurity \"restricted")))

	var env []string
	for _, e := range pod.Spec.Containers[0].Env {
		env = append(env, e.Name)
	}
	g.Expect(env).To(ContainElements("NODE_NAME", "NVIDIA_VISIBLE_DEVICES", "NVIDIA_DRIVER_CAPABILITIES"))
	g.Expect(pod.Spec.Containers[0].Resources.Requests).NotTo(HaveKey(corev1.ResourceName("nvidia.com/gpu")), "takes no GPU from workloads")
}
