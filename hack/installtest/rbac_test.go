package installtest

import (
	"reflect"
	"slices"
	"strings"
	"testing"

	rbacv1 "k8s.io/api/rbac/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"github.com/trainenv/trainenv/hack/render"
)

// Every install path grants no wildcard, and all grant the same rules: kustomize and Helm
// role for role (the chart's names are config/'s with the release prefix), the OLM bundle
// the manager's (OLM cannot install the node agent, see config/manifests/README.md).
// The Kyverno policy generation is an option with its own role (config/kyverno): Helm
// with kyvernoPolicy.enabled grants what config/with-kyverno grants, and the OLM bundle,
// built from config/default, does not offer it.
func TestRBACLeastPrivilegeAndSame(t *testing.T) {
	needHelm(t)
	outputs := map[string][]*unstructured.Unstructured{
		"kustomize config/default":       kustomize(t, "default"),
		"kustomize config/with-sigstore": kustomize(t, "with-sigstore"),
		"kustomize config/with-kyverno":  kustomize(t, "with-kyverno"),
		"helm defaults":                  helmTemplate(t, "trainenv-system"),
		"helm release ops, everything on": helmRelease(t, "ops", "trainenv-system", "--set",
			"sigstoreCRDs.enabled=true,serviceMonitor.enabled=true,prometheusRule.enabled=true,kyvernoPolicy.enabled=true"),
	}
	rules := map[string]map[string][]rbacv1.PolicyRule{}
	for name, objs := range outputs {
		r, err := render.Rules(objs, func(n string) string {
			return "trainenv-" + strings.TrimPrefix(strings.TrimPrefix(n, "ops-trainenv-"), "trainenv-")
		})
		if err != nil {
			t.Fatal(err)
		}
		rules[name] = r
	}
	_, csv := bundleObjects(t)
	bundleRules := strategyPermissions(t, csv)
	bundleObjs, _ := bundleObjects(t)
	if r, err := render.Rules(bundleObjs, ident); err == nil {
		for k, v := range r {
			bundleRules[k] = v
		}
	}
	rules["olm bundle"] = bundleRules

	for name, byRole := range rules {
		if len(byRole) == 0 {
			t.Errorf("%s: no roles", name)
		}
		for role, rs := range byRole {
			for _, r := range rs {
				if w := render.Wildcards(r); len(w) > 0 {
					t.Errorf("%s: %s grants wildcards %v", name, role, w)
				}
			}
		}
	}
	ref := rules["kustomize config/default"]
	for _, name := range []string{"kustomize config/with-sigstore", "helm defaults"} {
		if !reflect.DeepEqual(rules[name], ref) {
			t.Errorf("%s grants other rules than config/default:\n got %v\nwant %v", name, rules[name], ref)
		}
	}
	withKyverno := rules["kustomize config/with-kyverno"]
	if !reflect.DeepEqual(rules["helm release ops, everything on"], withKyverno) {
		t.Errorf("helm, everything on, grants other rules than config/with-kyverno:\n got %v\nwant %v", rules["helm release ops, everything on"], withKyverno)
	}
	kyvernoRole := "ClusterRole/trainenv-kyverno-policy-role"
	if _, ok := ref[kyvernoRole]; ok || len(withKyverno[kyvernoRole]) == 0 || len(withKyverno) != len(ref)+1 {
		t.Errorf("%s must be granted by config/with-kyverno only, on top of config/default's roles", kyvernoRole)
	}
	manager := map[string][]rbacv1.PolicyRule{
		"ClusterRole/trainenv-controller-manager": render.Normalize(ref["ClusterRole/trainenv-manager-role"]),
		// OLM's permissions are the operator namespace's Roles together: leader election
		// and the Notation ConfigMap.
		"Role/trainenv-controller-manager": render.Normalize(append(slices.Clone(ref["Role/trainenv-leader-election-role"]),
			ref["Role/trainenv-manager-role@trainenv-system"]...)),
		"ClusterRole/trainenv-metrics-reader": ref["ClusterRole/trainenv-metrics-reader"],
	}
	if !reflect.DeepEqual(bundleRules, manager) {
		t.Errorf("the OLM bundle grants other rules than config/:\n got %v\nwant %v", bundleRules, manager)
	}
}

// The wildcard check finds what it looks for.
func TestWildcardsFound(t *testing.T) {
	for _, r := range []rbacv1.PolicyRule{
		{APIGroups: []string{"*"}, Resources: []string{"pods"}, Verbs: []string{"get"}},
		{APIGroups: []string{""}, Resources: []string{"pods/*"}, Verbs: []string{"get"}},
		{APIGroups: []string{""}, Resources: []string{"pods"}, Verbs: []string{"*"}},
		{NonResourceURLs: []string{"/metrics/*"}, Verbs: []string{"get"}},
	} {
		if len(render.Wildcards(r)) == 0 {
			t.Errorf("no wildcard found in %+v", r)
		}
	}
	if w := render.Wildcards(rbacv1.PolicyRule{APIGroups: []string{""}, Resources: []string{"pods"}, Verbs: []string{"get"}}); len(w) > 0 {
		t.Errorf("wildcards %v found in a rule without any", w)
	}
}
