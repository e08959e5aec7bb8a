package installtest

import (
	"slices"
	"strings"
	"testing"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"github.com/trainenv/trainenv/hack/render"
)

// The Kyverno policy generation is all or nothing: where an install turns the manager's
// --kyverno-policy on, it binds the role that lets it write ImageValidatingPolicies, and
// where it is off, neither the flag nor the role is there.
func TestKyvernoOptionBindsItsRoleWithItsFlag(t *testing.T) {
	needHelm(t)
	for name, objs := range map[string][]*unstructured.Unstructured{
		"kustomize config/with-kyverno":        kustomize(t, "with-kyverno"),
		"helm kyvernoPolicy.enabled=true":      helmTemplate(t, "trainenv-system", "--set", "kyvernoPolicy.enabled=true"),
		"kustomize config/default (off)":       kustomize(t, "default"),
		"helm defaults (off)":                  helmTemplate(t, "trainenv-system"),
		"kustomize config/with-sigstore (off)": kustomize(t, "with-sigstore"),
	} {
		d := render.Find(objs, "Deployment", "trainenv-controller-manager")
		if d == nil {
			t.Fatalf("%s: no manager Deployment", name)
		}
		containers, _, _ := unstructured.NestedSlice(d.Object, "spec", "template", "spec", "containers")
		flag := slices.Contains(containerArgs(containers[0]), "--kyverno-policy")
		role := render.Find(objs, "ClusterRole", "trainenv-kyverno-policy-role") != nil
		binding := render.Find(objs, "ClusterRoleBinding", "trainenv-kyverno-policy-rolebinding")
		bound := false
		if binding != nil {
			subjects, _, _ := unstructured.NestedSlice(binding.Object, "subjects")
			ref, _, _ := unstructured.NestedString(binding.Object, "roleRef", "name")
			bound = len(subjects) == 1 && subjects[0].(map[string]any)["name"] == "trainenv-controller-manager" &&
				ref == "trainenv-kyverno-policy-role"
		}
		on := !strings.HasSuffix(name, "(off)")
		if flag != on || role != on || bound != on {
			t.Errorf("%s: --kyverno-policy %t, its ClusterRole %t, bound to the manager %t; want all %t", name, flag, role, bound, on)
		}
	}
}

// config/with-kyverno passes the API server's validation.
func TestKustomizeWithKyvernoInstalls(t *testing.T) {
	needAPIServer(t)
	// policy-controller's namespace, which its install creates, holds a Role of config/rbac.
	ensureNamespace(t, "cosign-system")
	install(t, kustomize(t, "with-kyverno"))
}
