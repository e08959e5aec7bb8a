package installtest

import (
	"context"
	"encoding/json"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	rbacv1 "k8s.io/api/rbac/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"

	"github.com/trainenv/trainenv/hack/render"
)

func bundleDir() string { return filepath.Join(render.RepoRoot(), "bundle", "manifests") }

// bundleObjects are the bundle's manifests; csv is its ClusterServiceVersion.
func bundleObjects(t *testing.T) (objs []*unstructured.Unstructured, csv *unstructured.Unstructured) {
	t.Helper()
	files, err := filepath.Glob(filepath.Join(bundleDir(), "*.yaml"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no bundle in %s (make bundle): %v", bundleDir(), err)
	}
	for _, f := range files {
		got, err := render.DecodeFile(f)
		if err != nil {
			t.Fatal(err)
		}
		for _, o := range got {
			if o.GetKind() == "ClusterServiceVersion" {
				csv = o
			} else {
				objs = append(objs, o)
			}
		}
	}
	if csv == nil {
		t.Fatal("the bundle has no ClusterServiceVersion")
	}
	return objs, csv
}

// strategyPermissions returns the install strategy's rules per service account, as
// "ClusterRole" (clusterPermissions) and "Role" (permissions) entries.
func strategyPermissions(t *testing.T, csv *unstructured.Unstructured) map[string][]rbacv1.PolicyRule {
	t.Helper()
	out := map[string][]rbacv1.PolicyRule{}
	for field, kind := range map[string]string{"clusterPermissions": "ClusterRole", "permissions": "Role"} {
		perms, _, _ := unstructured.NestedSlice(csv.Object, "spec", "install", "spec", field)
		for _, p := range perms {
			var sp struct {
				ServiceAccountName string              `json:"serviceAccountName"`
				Rules              []rbacv1.PolicyRule `json:"rules"`
			}
			if err := runtime.DefaultUnstructuredConverter.FromUnstructured(p.(map[string]any), &sp); err != nil {
				t.Fatal(err)
			}
			key := kind + "/" + sp.ServiceAccountName
			out[key] = render.Normalize(append(out[key], sp.Rules...))
		}
	}
	return out
}

// The install strategy grants the manager exactly what config/rbac grants it in and for the
// operator's namespace.
func TestBundlePermissionsEqualConfig(t *testing.T) {
	_, csv := bundleObjects(t)
	config := kustomize(t, "default")
	want := map[string][]rbacv1.PolicyRule{}
	for _, o := range config {
		if o.GetKind() != "ClusterRoleBinding" && o.GetKind() != "RoleBinding" {
			continue
		}
		if o.GetLabels()["app.kubernetes.io/component"] != "manager" {
			continue
		}
		if o.GetKind() == "RoleBinding" && o.GetNamespace() != "trainenv-system" {
			// A CSV grants nothing outside the operator's namespace: the policy-namespace
			// Role is bound by the admin (config/manifests/README.md).
			continue
		}
		roleName, _, _ := unstructured.NestedString(o.Object, "roleRef", "name")
		roleKind, _, _ := unstructured.NestedString(o.Object, "roleRef", "kind")
		role := render.Find(config, roleKind, roleName)
		if roleKind == "Role" {
			// controller-gen names every namespace's Role alike: take the binding's.
			role = findIn(config, o.GetNamespace(), roleKind, roleName)
		}
		rules, err := render.Rules([]*unstructured.Unstructured{role}, ident)
		if err != nil {
			t.Fatal(err)
		}
		kind := strings.TrimSuffix(o.GetKind(), "Binding")
		key := kind + "/trainenv-controller-manager"
		want[key] = render.Normalize(append(want[key], rules[roleKind+"/"+roleName]...))
	}
	if got := strategyPermissions(t, csv); !reflect.DeepEqual(got, want) {
		t.Errorf("the CSV's permissions differ from config/rbac (run make bundle):\n got %v\nwant %v", got, want)
	}
}

func ident(s string) string { return s }

func findIn(objs []*unstructured.Unstructured, namespace, kind, name string) *unstructured.Unstructured {
	for _, o := range objs {
		if o.GetNamespace() == namespace && o.GetKind() == kind && o.GetName() == name {
			return o
		}
	}
	return nil
}

// The bundle's CRD, Service and ClusterRole, the install strategy's Deployment and every
// alm-examples entry pass the API server's validation.
func TestBundleInstalls(t *testing.T) {
	needAPIServer(t)
	objs, csv := bundleObjects(t)
	const ns = "trainenv-olm"
	ensureNamespace(t, ns)
	deployments, _, _ := unstructured.NestedSlice(csv.Object, "spec", "install", "spec", "deployments")
	if len(deployments) != 1 {
		t.Fatalf("install strategy has %d deployments, want 1", len(deployments))
	}
	for _, d := range deployments {
		dm := d.(map[string]any)
		dep := &unstructured.Unstructured{Object: map[string]any{"apiVersion": "apps/v1", "kind": "Deployment", "spec": dm["spec"]}}
		dep.SetName(dm["name"].(string))
		objs = append(objs, dep)
		if image, tools := managerImages(t, dep); image == "" || !strings.Contains(image, "@sha256:") || tools != image {
			t.Errorf("install strategy image %q, TRAINENV_TOOLS_IMAGE %q: want the same image, by digest", image, tools)
		}
	}
	var examples []map[string]any
	if err := json.Unmarshal([]byte(csv.GetAnnotations()["alm-examples"]), &examples); err != nil || len(examples) == 0 {
		t.Fatalf("alm-examples: %v (%d examples)", err, len(examples))
	}
	for _, e := range examples {
		objs = append(objs, &unstructured.Unstructured{Object: e})
	}
	for _, o := range objs {
		if o.GetKind() != "CustomResourceDefinition" && o.GetKind() != "ClusterRole" {
			o.SetNamespace(ns) // OLM puts namespaced manifests in the operator's namespace.
		}
	}
	install(t, objs)

	bad := &unstructured.Unstructured{Object: examples[0]}
	bad = bad.DeepCopy()
	_ = unstructured.SetNestedField(bad.Object, "", "spec", "image")
	if err := apply(context.Background(), bad, true); err == nil {
		t.Error("an alm-example with an empty image passed the dry run: the check validates nothing")
	}
}
