package controller_test

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"testing"

	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/yaml"

	"github.com/trainenv/trainenv/internal/trust/policy"
)

// The manager's generated RBAC (config/rbac/role.yaml), bound to a service account and used
// through impersonation: the policy source reads the Secrets and ConfigMaps that policies
// reference in policy-controller's namespace, by name; it may neither list them (so the
// verifier must read them uncached) nor read ConfigMaps anywhere else.
func TestManagerRBACReadsPolicyReferencesInCosignSystemOnly(t *testing.T) {
	g := NewWithT(t)
	f := newFixture(t)
	ensureNamespace(t, policy.DefaultSystemNamespace)
	sa := &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: "manager", Namespace: f.ns}}
	g.Expect(k8s.Create(f.ctx, sa)).To(Succeed())
	subject := []rbacv1.Subject{{Kind: "ServiceAccount", Name: sa.Name, Namespace: f.ns}}

	raw, err := os.ReadFile(filepath.Join("..", "..", "config", "rbac", "role.yaml"))
	g.Expect(err).NotTo(HaveOccurred())
	var sawRole bool
	for _, doc := range bytes.Split(raw, []byte("\n---\n")) {
		var meta metav1.TypeMeta
		g.Expect(yaml.Unmarshal(doc, &meta)).To(Succeed())
		switch meta.Kind {
		case "ClusterRole":
			var cr rbacv1.ClusterRole
			g.Expect(yaml.Unmarshal(doc, &cr)).To(Succeed())
			cr.Name = "rbac-test-" + f.ns
			create(t, &cr)
			create(t, &rbacv1.ClusterRoleBinding{ObjectMeta: metav1.ObjectMeta{Name: cr.Name}, Subjects: subject,
				RoleRef: rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: cr.Name}})
		case "Role":
			var r rbacv1.Role
			g.Expect(yaml.Unmarshal(doc, &r)).To(Succeed())
			if r.Namespace != policy.DefaultSystemNamespace {
				// The manager's own namespace: the Notation ConfigMap, by name, and nothing else.
				g.Expect(r.Rules).To(Equal([]rbacv1.PolicyRule{{APIGroups: []string{""}, Resources: []string{"configmaps"},
					ResourceNames: []string{"trainenv-notation"}, Verbs: []string{"get"}}}), "the Role in %s", r.Namespace)
				continue
			}
			r.Name = "rbac-test-" + f.ns
			create(t, &r)
			create(t, &rbacv1.RoleBinding{ObjectMeta: metav1.ObjectMeta{Name: r.Name, Namespace: r.Namespace}, Subjects: subject,
				RoleRef: rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "Role", Name: r.Name}})
			sawRole = true
		}
	}
	g.Expect(sawRole).To(BeTrue(), "role.yaml has the namespaced Role")
	key := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "release-key-" + f.ns, Namespace: policy.DefaultSystemNamespace},
		StringData: map[string]string{"cosign.pub": publicKeyPEM(t)}}
	cue := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "builder-policy-" + f.ns, Namespace: policy.DefaultSystemNamespace},
		Data: map[string]string{"policy": `predicate: builder: id: "x"`}}
	elsewhere := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "elsewhere", Namespace: f.ns}}
	for _, o := range []client.Object{key, cue, elsewhere} {
		create(t, o)
	}

	cfg := rest.CopyConfig(envConfig)
	cfg.Impersonate = rest.ImpersonationConfig{UserName: "system:serviceaccount:" + f.ns + ":" + sa.Name}
	manager, err := client.New(cfg, client.Options{Scheme: scheme})
	g.Expect(err).NotTo(HaveOccurred())
	src := &policy.APISource{Policies: manager, Refs: manager}
	g.Eventually(func() error { _, err := src.Secret(f.ctx, key.Name); return err }).Should(Succeed(), "RBAC takes a moment to apply")
	_, err = src.ConfigMap(f.ctx, cue.Name)
	g.Expect(err).NotTo(HaveOccurred())
	_, err = src.ClusterImagePolicies(f.ctx)
	g.Expect(err).NotTo(HaveOccurred())

	err = manager.List(f.ctx, &corev1.SecretList{}, client.InNamespace(policy.DefaultSystemNamespace))
	g.Expect(apierrors.IsForbidden(err)).To(BeTrue(), "no list: a cached reader could not work, the verifier reads by name: %v", err)
	err = manager.Get(f.ctx, client.ObjectKeyFromObject(elsewhere), &corev1.ConfigMap{})
	g.Expect(apierrors.IsForbidden(err)).To(BeTrue(), "ConfigMaps only in %s: %v", policy.DefaultSystemNamespace, err)
}

func ensureNamespace(t *testing.T, name string) {
	t.Helper()
	err := k8s.Create(t.Context(), &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name}})
	if err != nil && !apierrors.IsAlreadyExists(err) {
		t.Fatal(err)
	}
}

func create(t *testing.T, o client.Object) {
	t.Helper()
	if err := k8s.Create(t.Context(), o); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = k8s.Delete(context.Background(), o) })
}
