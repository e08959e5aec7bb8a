package nodeagent_test

import (
	"context"
	"encoding/json"
	"regexp"
	"testing"

	. "github.com/onsi/gomega"
	admissionv1 "k8s.io/api/admissionregistration/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"

	"github.com/trainenv/trainenv/internal/gpufacts"
)

// The policy's key lists are the ones the agent writes: a key added to ManagedLabelKeys and
// not to the policy would be refused in every cluster, one only in the policy would let the
// agent write a label it never removes.
func TestPolicyKeysAreManagedKeys(t *testing.T) {
	g := NewWithT(t)
	objs, err := agentResources()
	g.Expect(err).NotTo(HaveOccurred())
	var policy admissionv1.ValidatingAdmissionPolicy
	for _, o := range objs {
		if o.GetKind() == "ValidatingAdmissionPolicy" {
			g.Expect(runtime.DefaultUnstructuredConverter.FromUnstructured(o.Object, &policy)).To(Succeed())
		}
	}
	quoted := regexp.MustCompile(`'([^']+)'`)
	keys := func(name string) []string {
		var out []string
		for _, v := range policy.Spec.Variables {
			if v.Name == name {
				for _, m := range quoted.FindAllStringSubmatch(v.Expression, -1) {
					out = append(out, m[1])
				}
			}
		}
		return out
	}
	g.Expect(keys("labelKeys")).To(Equal(gpufacts.ManagedLabelKeys()))
	g.Expect(keys("annotationKeys")).To(Equal(gpufacts.ManagedAnnotationKeys()))
	g.Expect(policy.Spec.MatchConditions[0].Expression).To(ContainSubstring("'" + agentUser + "'"))
}

func TestPolicy(t *testing.T) {
	needAPIServer(t)
	waitForPolicy(t)
	own := newNode(t, "own", map[string]string{gpufacts.LabelNVML: gpufacts.NVMLOK})
	other := newNode(t, "other", nil)
	agent := agentClient(t, own.Name)

	all := map[string]any{}
	for _, k := range gpufacts.ManagedLabelKeys() {
		all[k] = "1"
	}
	every, _ := json.Marshal(map[string]any{"metadata": map[string]any{
		"labels": all, "annotations": map[string]any{gpufacts.AnnotationFacts: `{"nvml":"ok"}`, gpufacts.AnnotationHeartbeat: "2026-11-23T12:00:00Z"},
	}})

	cases := []struct {
		name  string
		as    func() error
		allow bool
		says  string
	}{
		{"own node: every managed label and annotation", func() error {
			return mergePatch(agent, own.Name, string(every))
		}, true, ""},
		{"own node: remove a managed label", func() error {
			return mergePatch(agent, own.Name, `{"metadata":{"labels":{"nvidia.com/gpu.count":null}}}`)
		}, true, ""},
		{"another node", func() error {
			return mergePatch(agent, other.Name, `{"metadata":{"labels":{"trainenv.io/nvml":"ok"}}}`)
		}, false, "its token is bound to node " + own.Name + ", not " + other.Name},
		{"a token bound to no node", func() error {
			return mergePatch(agentClient(t, ""), own.Name, `{"metadata":{"labels":{"trainenv.io/nvml":"ok"}}}`)
		}, false, "its token is bound to no node"},
		{"add a foreign label", func() error {
			return mergePatch(agent, own.Name, `{"metadata":{"labels":{"node-role.kubernetes.io/gpu":""}}}`)
		}, false, "only its own node labels, not node-role.kubernetes.io/gpu"},
		{"change a foreign label", func() error {
			return mergePatch(agent, own.Name, `{"metadata":{"labels":{"topology.kubernetes.io/zone":"zone-b"}}}`)
		}, false, "not topology.kubernetes.io/zone"},
		{"remove a foreign label", func() error {
			return mergePatch(agent, own.Name, `{"metadata":{"labels":{"topology.kubernetes.io/zone":null}}}`)
		}, false, "not topology.kubernetes.io/zone"},
		{"a foreign label hidden among managed ones", func() error {
			return mergePatch(agent, own.Name, `{"metadata":{"labels":{"trainenv.io/nvml":"ok","nvidia.com/gpu.present":"true"}}}`)
		}, false, "not nvidia.com/gpu.present"},
		{"a foreign annotation", func() error {
			return mergePatch(agent, own.Name, `{"metadata":{"annotations":{"example.com/owner":"me"}}}`)
		}, false, "only its own annotations (trainenv.io/gpu-facts, trainenv.io/gpu-facts-heartbeat), not example.com/owner"},
		{"spec: cordon", func() error {
			return mergePatch(agent, own.Name, `{"spec":{"unschedulable":true}}`)
		}, false, "may not change a node's spec"},
		{"spec: taint", func() error {
			return mergePatch(agent, own.Name, `{"spec":{"taints":[{"key":"x","effect":"NoSchedule"}]}}`)
		}, false, "may not change a node's spec"},
		{"finalizer", func() error {
			return mergePatch(agent, own.Name, `{"metadata":{"finalizers":["example.com/keep"]}}`)
		}, false, "finalizers or owner references"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			g := NewWithT(t)
			err := tc.as()
			if tc.allow {
				g.Expect(err).NotTo(HaveOccurred())
				return
			}
			g.Expect(deniedByPolicy(err, tc.says)).To(BeTrue(), "%v", err)
			t.Log(err)
		})
	}

	t.Run("other users are not restricted", func(t *testing.T) {
		NewWithT(t).Expect(mergePatch(admin, own.Name, `{"metadata":{"labels":{"topology.kubernetes.io/zone":"zone-b"}}}`)).To(Succeed())
	})
	t.Run("RBAC: no delete, no status", func(t *testing.T) {
		g := NewWithT(t)
		g.Expect(apierrors.IsForbidden(agent.Delete(context.Background(), getNode(t, own.Name)))).To(BeTrue())
		err := agent.Status().Update(context.Background(), getNode(t, own.Name))
		g.Expect(apierrors.IsForbidden(err)).To(BeTrue(), "%v", err)
	})
}

// Should RBAC ever grant the agent a subresource, the policy still refuses it.
func TestPolicyRefusesSubresources(t *testing.T) {
	needAPIServer(t)
	waitForPolicy(t)
	g := NewWithT(t)
	ctx := context.Background()
	role := &rbacv1.ClusterRole{
		ObjectMeta: metav1.ObjectMeta{Name: "test-node-status"},
		Rules:      []rbacv1.PolicyRule{{APIGroups: []string{""}, Resources: []string{"nodes/status"}, Verbs: []string{"patch"}}},
	}
	binding := &rbacv1.ClusterRoleBinding{
		ObjectMeta: metav1.ObjectMeta{Name: "test-node-status"},
		RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: role.Name},
		Subjects:   []rbacv1.Subject{{Kind: "ServiceAccount", Name: "trainenv-node-agent", Namespace: agentNamespace}},
	}
	g.Expect(admin.Create(ctx, role)).To(Succeed())
	g.Expect(admin.Create(ctx, binding)).To(Succeed())
	t.Cleanup(func() { _ = admin.Delete(ctx, binding); _ = admin.Delete(ctx, role) })

	own := newNode(t, "own", nil)
	agent := agentClient(t, own.Name)
	g.Eventually(func() error {
		return agent.Status().Patch(ctx, own, rawMerge(`{"status":{"capacity":{"nvidia.com/gpu":"8"}}}`))
	}).Should(Satisfy(func(err error) bool { return deniedByPolicy(err, "may not update nodes/status") }))
}
