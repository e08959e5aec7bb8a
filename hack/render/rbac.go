package render

import (
	"fmt"
	"slices"
	"strings"

	rbacv1 "k8s.io/api/rbac/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
)

// Rules returns the rules of every Role and ClusterRole among objs, keyed by
// "Kind/name" with the name given by nameOf (so that outputs naming roles differently,
// e.g. after a Helm release prefix, can be compared).
func Rules(objs []*unstructured.Unstructured, nameOf func(string) string) (map[string][]rbacv1.PolicyRule, error) {
	out := map[string][]rbacv1.PolicyRule{}
	// controller-gen names the Role of every namespace alike (manager-role): a name found in
	// more than one namespace is told apart by its namespace, KIND/NAME@NAMESPACE.
	namespaces := map[string]map[string]bool{}
	for _, o := range objs {
		k := o.GetKind() + "/" + o.GetName()
		if namespaces[k] == nil {
			namespaces[k] = map[string]bool{}
		}
		namespaces[k][o.GetNamespace()] = true
	}
	for _, o := range objs {
		if o.GetKind() != "Role" && o.GetKind() != "ClusterRole" {
			continue
		}
		var r rbacv1.ClusterRole // Role and ClusterRole carry the same rules field.
		if err := runtime.DefaultUnstructuredConverter.FromUnstructured(o.Object, &r); err != nil {
			return nil, fmt.Errorf("%s %s: %w", o.GetKind(), o.GetName(), err)
		}
		key := o.GetKind() + "/" + nameOf(o.GetName())
		if len(namespaces[o.GetKind()+"/"+o.GetName()]) > 1 {
			key += "@" + o.GetNamespace()
		}
		out[key] = Normalize(r.Rules)
	}
	return out, nil
}

// Normalize expands every rule into one rule per (group, resource or URL, resourceName) with
// sorted verbs, sorted: two rule lists granting the same are equal after it.
func Normalize(rules []rbacv1.PolicyRule) []rbacv1.PolicyRule {
	var flat []rbacv1.PolicyRule
	orEmpty := func(s []string) []string {
		if len(s) == 0 {
			return []string{""}
		}
		return s
	}
	for _, r := range rules {
		verbs := slices.Sorted(slices.Values(r.Verbs))
		for _, url := range r.NonResourceURLs {
			flat = append(flat, rbacv1.PolicyRule{NonResourceURLs: []string{url}, Verbs: verbs})
		}
		for _, g := range r.APIGroups {
			for _, res := range r.Resources {
				for _, name := range orEmpty(r.ResourceNames) {
					nr := rbacv1.PolicyRule{APIGroups: []string{g}, Resources: []string{res}, Verbs: verbs}
					if name != "" {
						nr.ResourceNames = []string{name}
					}
					flat = append(flat, nr)
				}
			}
		}
	}
	key := func(r rbacv1.PolicyRule) string {
		return strings.Join([]string{strings.Join(r.APIGroups, ","), strings.Join(r.Resources, ","),
			strings.Join(r.ResourceNames, ","), strings.Join(r.NonResourceURLs, ","), strings.Join(r.Verbs, ",")}, "|")
	}
	slices.SortFunc(flat, func(a, b rbacv1.PolicyRule) int { return strings.Compare(key(a), key(b)) })
	return slices.CompactFunc(flat, func(a, b rbacv1.PolicyRule) bool { return key(a) == key(b) })
}

// Wildcards lists the "*" in a rule's groups, resources, verbs, names or URLs.
func Wildcards(r rbacv1.PolicyRule) []string {
	var found []string
	for field, vals := range map[string][]string{"apiGroups": r.APIGroups, "resources": r.Resources,
		"verbs": r.Verbs, "resourceNames": r.ResourceNames, "nonResourceURLs": r.NonResourceURLs} {
		for _, v := range vals {
			if strings.Contains(v, "*") {
				found = append(found, field+"="+v)
			}
		}
	}
	slices.Sort(found)
	return found
}
