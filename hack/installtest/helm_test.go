package installtest

import (
	"fmt"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"github.com/trainenv/trainenv/hack/render"
)

const kubeVersion = "--kube-version=1.37.2"

func helmTemplate(t *testing.T, namespace string, args ...string) []*unstructured.Unstructured {
	t.Helper()
	return helmRelease(t, "trainenv", namespace, args...)
}

func helmRelease(t *testing.T, release, namespace string, args ...string) []*unstructured.Unstructured {
	t.Helper()
	objs, err := render.HelmTemplate(release, namespace, append([]string{kubeVersion}, args...)...)
	if err != nil {
		t.Fatal(err)
	}
	return objs
}

func TestHelmLintStrict(t *testing.T) {
	needHelm(t)
	for _, set := range []string{"", "serviceMonitor.enabled=true,prometheusRule.enabled=true,sigstoreCRDs.enabled=true,grafanaDashboard.enabled=true"} {
		args := []string{"lint", "--strict", render.ChartDir(), kubeVersion}
		if set != "" {
			args = append(args, "--set", set)
		}
		if out, err := render.RunHelm(args...); err != nil {
			t.Errorf("helm lint --strict %s: %v\n%s", set, err, out)
		}
	}
}

// What helm template renders, for several value sets, passes the API server's validation.
func TestHelmTemplateInstalls(t *testing.T) {
	needHelm(t)
	needAPIServer(t)
	for name, set := range map[string]string{
		"defaults": "",
		"ha, sigstore CRDs, no agent": "replicaCount=2,sigstoreCRDs.enabled=true,nodeAgent.enabled=false," +
			"tolerations[0].key=dedicated,tolerations[0].operator=Exists,nodeSelector.pool=system",
		"labels, digests, agent placement": "commonLabels.team=ml,commonAnnotations.owner=platform," +
			"image.digest=sha256:" + strings.Repeat("a", 64) + ",nodeAgent.image.digest=sha256:" + strings.Repeat("b", 64) +
			",nodeAgent.nodeSelector.gpu=a100,manager.logLevel=debug,kyvernoPolicy.enabled=true",
	} {
		t.Run(name, func(t *testing.T) {
			ensureNamespace(t, "trainenv-helm")
			var args []string
			if set != "" {
				args = []string{"--set", set}
			}
			install(t, helmTemplate(t, "trainenv-helm", args...))
		})
	}
}

// The chart takes its CRDs and agent policy from config/ and keeps the CRDs on uninstall.
func TestHelmMatchesConfig(t *testing.T) {
	needHelm(t)
	config := kustomize(t, "with-sigstore")
	chart := helmTemplate(t, "trainenv-system", "--set", "sigstoreCRDs.enabled=true")
	for _, c := range config {
		if c.GetKind() != "CustomResourceDefinition" {
			continue
		}
		h := render.Find(chart, c.GetKind(), c.GetName())
		if h == nil {
			t.Errorf("the chart has no CRD %s", c.GetName())
			continue
		}
		if !reflect.DeepEqual(normalized(t, h.Object["spec"]), normalized(t, c.Object["spec"])) {
			t.Errorf("the chart's CRD %s differs from config/: run make helm-sync", c.GetName())
		}
		if h.GetAnnotations()["helm.sh/resource-policy"] != "keep" {
			t.Errorf("CRD %s lacks helm.sh/resource-policy: keep", c.GetName())
		}
	}
	// With the release named like config/ names things, the agent policy is config/'s.
	for _, kind := range []string{"ValidatingAdmissionPolicy", "ValidatingAdmissionPolicyBinding"} {
		c, h := render.Find(config, kind, "trainenv-node-agent"), render.Find(chart, kind, "trainenv-node-agent")
		if c == nil || h == nil || !reflect.DeepEqual(normalized(t, h.Object["spec"]), normalized(t, c.Object["spec"])) {
			t.Errorf("the chart's %s differs from config/agent's", kind)
		}
	}
}

// Values reach the objects they are for.
func TestHelmValues(t *testing.T) {
	needHelm(t)
	digest := "sha256:" + strings.Repeat("c", 64)
	objs := helmTemplate(t, "ops", "--set", "image.repository=r.example/tm,image.digest="+digest+
		",replicaCount=2,kyvernoPolicy.enabled=true,nodeAgent.nodeSelector.pool=gpu,crds.enabled=false")
	d := render.Find(objs, "Deployment", "trainenv-controller-manager")
	if d == nil {
		t.Fatal("no manager Deployment")
	}
	image, tools := managerImages(t, d)
	if image != "r.example/tm@"+digest || tools != image {
		t.Errorf("image %q, TRAINENV_TOOLS_IMAGE %q; want both r.example/tm@%s", image, tools, digest)
	}
	if r, _, _ := unstructured.NestedInt64(d.Object, "spec", "replicas"); r != 2 {
		t.Errorf("replicas %d, want 2", r)
	}
	containers, _, _ := unstructured.NestedSlice(d.Object, "spec", "template", "spec", "containers")
	if args := containerArgs(containers[0]); !slices.Contains(args, "--kyverno-policy") || !slices.Contains(args, "--leader-elect") {
		t.Errorf("manager args %v lack --kyverno-policy or --leader-elect", args)
	}
	ds := render.Find(objs, "DaemonSet", "trainenv-node-agent")
	if sel, _, _ := unstructured.NestedString(ds.Object, "spec", "template", "spec", "nodeSelector", "pool"); sel != "gpu" {
		t.Errorf("node agent nodeSelector pool=%q, want gpu", sel)
	}
	if render.Find(objs, "CustomResourceDefinition", "trainingenvironments.trainenv.io") != nil {
		t.Error("crds.enabled=false still renders the CRD")
	}
	vap := render.Find(objs, "ValidatingAdmissionPolicy", "trainenv-node-agent")
	conds, _, _ := unstructured.NestedSlice(vap.Object, "spec", "matchConditions")
	if expr := conds[0].(map[string]any)["expression"]; !strings.Contains(expr.(string), "system:serviceaccount:ops:trainenv-node-agent") {
		t.Errorf("the agent policy does not name the release's agent: %v", expr)
	}
	// A tools image of its own, and a private registry's CA mounted where Go finds it.
	tdigest := "sha256:" + strings.Repeat("d", 64)
	objs = helmTemplate(t, "ops", "--set", "image.repository=r.example/tm,image.digest="+digest+
		",toolsImage.repository=r.example/tools,toolsImage.digest="+tdigest+",registryCA.configMapName=kube-root-ca.crt")
	d = render.Find(objs, "Deployment", "trainenv-controller-manager")
	if image, tools := managerImages(t, d); image != "r.example/tm@"+digest || tools != "r.example/tools@"+tdigest {
		t.Errorf("image %q, TRAINENV_TOOLS_IMAGE %q; want r.example/tm@%s and r.example/tools@%s", image, tools, digest, tdigest)
	}
	vols, _, _ := unstructured.NestedSlice(d.Object, "spec", "template", "spec", "volumes")
	if len(vols) != 1 || vols[0].(map[string]any)["configMap"].(map[string]any)["name"] != "kube-root-ca.crt" {
		t.Errorf("volumes %v, want the registry CA ConfigMap kube-root-ca.crt", vols)
	}
	containers, _, _ = unstructured.NestedSlice(d.Object, "spec", "template", "spec", "containers")
	if env := fmt.Sprint(containers[0].(map[string]any)["env"]); !strings.Contains(env, "SSL_CERT_DIR") {
		t.Errorf("manager env %s lacks SSL_CERT_DIR", env)
	}

	off := helmTemplate(t, "ops", "--set", "nodeAgent.enabled=false")
	for _, o := range off {
		if o.GetLabels()["app.kubernetes.io/component"] == "node-agent" {
			t.Errorf("nodeAgent.enabled=false still renders %s %s", o.GetKind(), o.GetName())
		}
	}
}

// values.schema.json rejects what would install something broken, with the schema's error.
func TestHelmSchemaRejectsBadValues(t *testing.T) {
	needHelm(t)
	for _, set := range []string{
		"replicas=2",                             // unknown key (the value is replicaCount)
		"replicaCount=-1",                        // out of range
		"image.digest=sha256:abc",                // not a digest
		"image.pullPolicy=Sometimes",             // not an enum value
		"nodeAgent.enabled=yes",                  // not a boolean
		"nodeAgent.interval=soon",                // not a duration
		"tolerations[0].operator=Maybe",          // not a toleration operator
		"serviceMonitor.scrapeTimeout=10s",       // unknown key
		"resources.requests.cpu=lots",            // not a quantity
		"manager.logLevel=verbose",               // not a level
		"metrics.secure=maybe",                   // not a boolean
		"serviceMonitor.tlsConfig.insecure=true", // not a SafeTLSConfig field
	} {
		_, err := render.RunHelm("template", "trainenv", render.ChartDir(), kubeVersion, "--set", set)
		if err == nil {
			t.Errorf("--set %s rendered; the schema should reject it", set)
		} else if !strings.Contains(err.Error(), "values don't meet the specifications of the schema") {
			t.Errorf("--set %s failed, but not with a schema error: %v", set, err)
		}
	}
	if _, err := render.RunHelm("template", "trainenv", render.ChartDir(), kubeVersion, "--values",
		filepath.Join(render.ChartDir(), "values.yaml")); err != nil {
		t.Errorf("the chart's own values.yaml fails its schema: %v", err)
	}
}
