package main

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/yaml"

	"github.com/trainenv/trainenv/hack/render"
)

// buildCSV fills the hand-written CSV base with what config/ renders to.
func buildCSV(objs []*unstructured.Unstructured, version, image string) (map[string]any, error) {
	manifests := filepath.Join(render.RepoRoot(), "config", "manifests")
	data, err := os.ReadFile(filepath.Join(manifests, "bases", packageName+".clusterserviceversion.yaml"))
	if err != nil {
		return nil, err
	}
	csv := map[string]any{}
	if err := yaml.Unmarshal(data, &csv); err != nil {
		return nil, err
	}
	u := &unstructured.Unstructured{Object: csv}
	u.SetName(packageName + ".v" + version)
	icon, err := os.ReadFile(filepath.Join(manifests, "icon.svg"))
	if err != nil {
		return nil, err
	}
	install, err := installStrategy(objs)
	if err != nil {
		return nil, err
	}
	owned, err := ownedCRDs(u, objs)
	if err != nil {
		return nil, err
	}
	examples, err := almExamples(owned)
	if err != nil {
		return nil, err
	}
	annotations := u.GetAnnotations()
	annotations["containerImage"] = image
	annotations["alm-examples"] = examples
	u.SetAnnotations(annotations)
	set := func(value any, path ...string) {
		if err == nil {
			err = unstructured.SetNestedField(csv, value, path...)
		}
	}
	set(version, "spec", "version")
	set([]any{map[string]any{"base64data": base64.StdEncoding.EncodeToString(icon), "mediatype": "image/svg+xml"}}, "spec", "icon")
	set([]any{map[string]any{"name": "manager", "image": image}}, "spec", "relatedImages")
	set(install, "spec", "install")
	set(owned, "spec", "customresourcedefinitions", "owned")
	return csv, err
}

// installStrategy is the manager Deployment with the rules bound to its service account.
func installStrategy(objs []*unstructured.Unstructured) (map[string]any, error) {
	var deployments []any
	var sa string
	for _, o := range objs {
		if o.GetKind() != "Deployment" {
			continue
		}
		spec, _, _ := unstructured.NestedMap(o.Object, "spec")
		sa, _, _ = unstructured.NestedString(spec, "template", "spec", "serviceAccountName")
		labels := map[string]any{}
		for k, v := range o.GetLabels() {
			labels[k] = v
		}
		deployments = append(deployments, map[string]any{"name": o.GetName(), "label": labels, "spec": spec})
	}
	if len(deployments) != 1 || sa == "" {
		return nil, fmt.Errorf("want one manager Deployment with a service account, found %d", len(deployments))
	}
	roles := map[string]*unstructured.Unstructured{}
	for _, o := range objs {
		if o.GetKind() == "Role" || o.GetKind() == "ClusterRole" {
			roles[o.GetKind()+"/"+o.GetName()] = o
		}
	}
	var permissions, clusterPermissions []any
	for _, b := range bindingsOf(objs, sa) {
		if !b.clusterWide && b.namespace != operatorNamespace {
			// A CSV's permissions are granted in the operator's namespace only: the Role in
			// policy-controller's namespace is bound by the admin (config/manifests/README.md).
			continue
		}
		role := roles[b.roleKey]
		if role == nil {
			return nil, fmt.Errorf("%s binds %s, which config/ does not define", b.binding, b.roleKey)
		}
		rules, _, _ := unstructured.NestedSlice(role.Object, "rules")
		entry := map[string]any{"serviceAccountName": sa, "rules": rules}
		if b.clusterWide {
			clusterPermissions = append(clusterPermissions, entry)
		} else {
			permissions = append(permissions, entry)
		}
	}
	return map[string]any{"strategy": "deployment", "spec": map[string]any{
		"deployments": deployments, "permissions": permissions, "clusterPermissions": clusterPermissions,
	}}, nil
}

type binding struct {
	binding, roleKey, namespace string
	clusterWide                 bool
}

// operatorNamespace is the namespace config/ installs the manager in.
const operatorNamespace = "trainenv-system"

// bindingsOf lists the (Cluster)RoleBindings whose subjects include the service account.
func bindingsOf(objs []*unstructured.Unstructured, sa string) []binding {
	var out []binding
	for _, o := range objs {
		if o.GetKind() != "RoleBinding" && o.GetKind() != "ClusterRoleBinding" {
			continue
		}
		subjects, _, _ := unstructured.NestedSlice(o.Object, "subjects")
		if !slices.ContainsFunc(subjects, func(s any) bool {
			m, _ := s.(map[string]any)
			return m["kind"] == "ServiceAccount" && m["name"] == sa
		}) {
			continue
		}
		kind, _, _ := unstructured.NestedString(o.Object, "roleRef", "kind")
		name, _, _ := unstructured.NestedString(o.Object, "roleRef", "name")
		out = append(out, binding{binding: o.GetKind() + "/" + o.GetName(), roleKey: kind + "/" + name,
			namespace: o.GetNamespace(), clusterWide: o.GetKind() == "ClusterRoleBinding"})
	}
	return out
}

func boundRoles(objs []*unstructured.Unstructured) map[string]bool {
	out := map[string]bool{}
	for _, o := range objs {
		if o.GetKind() != "Deployment" {
			continue
		}
		sa, _, _ := unstructured.NestedString(o.Object, "spec", "template", "spec", "serviceAccountName")
		for _, b := range bindingsOf(objs, sa) {
			out[b.roleKey] = true
		}
	}
	return out
}

// ownedCRDs completes the base's owned entries with descriptors derived from the CRD schemas.
func ownedCRDs(csv *unstructured.Unstructured, objs []*unstructured.Unstructured) ([]any, error) {
	owned, _, err := unstructured.NestedSlice(csv.Object, "spec", "customresourcedefinitions", "owned")
	if err != nil {
		return nil, err
	}
	var crds int
	for _, o := range objs {
		if o.GetKind() == "CustomResourceDefinition" {
			crds++
		}
	}
	if len(owned) != crds {
		return nil, fmt.Errorf("config/ has %d CRDs, the CSV base owns %d: describe each in config/manifests/bases", crds, len(owned))
	}
	for _, e := range owned {
		entry := e.(map[string]any)
		crd := render.Find(objs, "CustomResourceDefinition", fmt.Sprint(entry["name"]))
		if crd == nil {
			return nil, fmt.Errorf("the CSV base owns %v, which config/ does not define", entry["name"])
		}
		spec, status, err := descriptors(crd, fmt.Sprint(entry["version"]))
		if err != nil {
			return nil, err
		}
		entry["specDescriptors"], entry["statusDescriptors"] = spec, status
	}
	return owned, nil
}

// almExamples is every sample in config/samples of an owned kind, as the JSON array OLM's
// console offers as templates.
func almExamples(owned []any) (string, error) {
	kinds := map[string]bool{}
	for _, e := range owned {
		kinds[fmt.Sprint(e.(map[string]any)["kind"])] = true
	}
	files, err := filepath.Glob(filepath.Join(render.RepoRoot(), "config", "samples", "*.yaml"))
	if err != nil {
		return "", err
	}
	var examples []any
	for _, f := range files {
		if filepath.Base(f) == "kustomization.yaml" {
			continue
		}
		objs, err := render.DecodeFile(f)
		if err != nil {
			return "", err
		}
		for _, o := range objs {
			if kinds[o.GetKind()] {
				o.SetNamespace("")
				examples = append(examples, o.Object)
			}
		}
	}
	if len(examples) == 0 {
		return "", fmt.Errorf("config/samples has no sample of an owned kind")
	}
	data, err := json.MarshalIndent(examples, "", "  ")
	return string(data), err
}
