package installtest

import (
	"context"
	"path/filepath"
	"strings"
	"testing"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/kustomize/api/types"

	"github.com/trainenv/trainenv/hack/render"
)

func kustomize(t *testing.T, overlay string) []*unstructured.Unstructured {
	t.Helper()
	objs, err := render.Kustomize(filepath.Join(render.RepoRoot(), "config", overlay))
	if err != nil {
		t.Fatal(err)
	}
	return objs
}

// config/default is what `kubectl apply -k config/default` installs: it must hold every
// part of the operator and pass the API server's validation.
func TestKustomizeDefaultInstalls(t *testing.T) {
	needAPIServer(t)
	objs := kustomize(t, "default")
	for _, want := range []struct{ kind, name string }{
		{"CustomResourceDefinition", "trainingenvironments.trainenv.io"},
		{"Namespace", "trainenv-system"},
		{"ClusterRole", "trainenv-manager-role"},
		{"Role", "trainenv-leader-election-role"},
		{"Deployment", "trainenv-controller-manager"},
		{"Service", "trainenv-controller-manager-metrics"},
		{"DaemonSet", "trainenv-node-agent"},
		{"ValidatingAdmissionPolicy", "trainenv-node-agent"},
	} {
		if render.Find(objs, want.kind, want.name) == nil {
			t.Errorf("config/default has no %s %s", want.kind, want.name)
		}
	}
	if d := render.Find(objs, "Deployment", "trainenv-controller-manager"); d != nil {
		args, _, _ := unstructured.NestedSlice(d.Object, "spec", "template", "spec", "containers")
		if !strings.Contains(strings.Join(containerArgs(args[0]), " "), "--leader-elect") {
			t.Error("the manager runs without --leader-elect: two replicas would both reconcile")
		}
	}
	install(t, objs)
}

// config/with-sigstore adds policy-controller's CRDs, and the samples' ClusterImagePolicies
// are valid against them.
func TestKustomizeWithSigstoreInstalls(t *testing.T) {
	needAPIServer(t)
	objs := kustomize(t, "with-sigstore")
	for _, crd := range []string{"clusterimagepolicies.policy.sigstore.dev", "trustroots.policy.sigstore.dev"} {
		if render.Find(objs, "CustomResourceDefinition", crd) == nil {
			t.Errorf("config/with-sigstore has no CRD %s", crd)
		}
	}
	install(t, objs)
}

// `kustomize edit set image` in config/manager changes the manager's image and its
// TRAINENV_TOOLS_IMAGE together: the tools copied into user pods come from the same image.
func TestKustomizeToolsImageFollowsImage(t *testing.T) {
	const digest = "sha256:1111111111111111111111111111111111111111111111111111111111111111"
	for _, overlay := range []string{"default", "with-sigstore"} {
		objs, err := render.KustomizeWithImages(overlay, "manager",
			[]types.Image{{Name: "controller", NewName: "registry.example.com/trainenv/manager", Digest: digest}})
		if err != nil {
			t.Fatal(err)
		}
		d := render.Find(objs, "Deployment", "trainenv-controller-manager")
		if d == nil {
			t.Fatalf("%s: no manager Deployment", overlay)
		}
		image, tools := managerImages(t, d)
		if want := "registry.example.com/trainenv/manager@" + digest; image != want || tools != want {
			t.Errorf("%s: image %q, TRAINENV_TOOLS_IMAGE %q; want both %q", overlay, image, tools, want)
		}
	}
}

// managerImages returns the manager container's image and its TRAINENV_TOOLS_IMAGE.
func managerImages(t *testing.T, d *unstructured.Unstructured) (image, tools string) {
	t.Helper()
	containers, _, _ := unstructured.NestedSlice(d.Object, "spec", "template", "spec", "containers")
	for _, c := range containers {
		cm := c.(map[string]any)
		if cm["name"] != "manager" {
			continue
		}
		image, _ = cm["image"].(string)
		env, _ := cm["env"].([]any)
		for _, e := range env {
			em := e.(map[string]any)
			if em["name"] == "TRAINENV_TOOLS_IMAGE" {
				tools, _ = em["value"].(string)
			}
		}
	}
	return image, tools
}

func containerArgs(c any) []string {
	var out []string
	args, _ := c.(map[string]any)["args"].([]any)
	for _, a := range args {
		out = append(out, a.(string))
	}
	return out
}

// Every sample in config/samples is valid against the CRDs (the TrainingEnvironment's CEL
// rules included), and the dry run does reject a broken one.
func TestSamplesAreValid(t *testing.T) {
	needAPIServer(t)
	install(t, kustomize(t, "with-sigstore"))
	files, err := filepath.Glob(filepath.Join(render.RepoRoot(), "config", "samples", "*.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	kinds := map[string]int{}
	for _, f := range files {
		if filepath.Base(f) == "kustomization.yaml" {
			continue
		}
		objs, err := render.DecodeFile(f)
		if err != nil {
			t.Fatal(err)
		}
		for _, o := range objs {
			kinds[o.GetKind()]++
			if o.GetNamespace() == "" && o.GetKind() != "ClusterImagePolicy" {
				o.SetNamespace("default")
			}
			if ns := o.GetNamespace(); ns != "" {
				ensureNamespace(t, ns)
			}
			if err := apply(context.Background(), o, true); err != nil {
				t.Errorf("%s: %s %s: %v", filepath.Base(f), o.GetKind(), o.GetName(), err)
			}
		}
	}
	if kinds["TrainingEnvironment"] < 2 || kinds["ClusterImagePolicy"] < 2 || kinds["Secret"] < 1 {
		t.Errorf("config/samples should hold TrainingEnvironments, key and keyless ClusterImagePolicies and an authorized-keys Secret; has %v", kinds)
	}

	bad := kustomizeSample(t, "trainenv_v1alpha1_trainingenvironment_jupyter_ssh.yaml")
	if err := unstructured.SetNestedField(bad.Object, int64(-1), "spec", "gpu", "count"); err != nil {
		t.Fatal(err)
	}
	if err := apply(context.Background(), bad, true); err == nil {
		t.Error("a TrainingEnvironment with gpu.count -1 passed the dry run: the check validates nothing")
	}
}

func kustomizeSample(t *testing.T, name string) *unstructured.Unstructured {
	t.Helper()
	objs, err := render.DecodeFile(filepath.Join(render.RepoRoot(), "config", "samples", name))
	if err != nil || len(objs) != 1 {
		t.Fatalf("%s: %v (%d objects)", name, err, len(objs))
	}
	ensureNamespace(t, objs[0].GetNamespace())
	return objs[0]
}
