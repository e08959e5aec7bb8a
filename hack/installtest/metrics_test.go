package installtest

import (
	"os"
	"path/filepath"
	"slices"
	"testing"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/yaml"

	"github.com/trainenv/trainenv/hack/render"
)

// metricsServing reads what a Deployment and Service say about the metrics endpoint.
func metricsServing(t *testing.T, objs []*unstructured.Unstructured, prefix string) (args []string, containerPort, servicePort int64) {
	t.Helper()
	d := render.Find(objs, "Deployment", prefix+"-controller-manager")
	s := render.Find(objs, "Service", prefix+"-controller-manager-metrics")
	if d == nil || s == nil {
		t.Fatalf("no manager Deployment or metrics Service named %s-...", prefix)
	}
	containers, _, _ := unstructured.NestedSlice(d.Object, "spec", "template", "spec", "containers")
	args = containerArgs(containers[0])
	ports, _, _ := unstructured.NestedSlice(containers[0].(map[string]any), "ports")
	for _, p := range ports {
		if p.(map[string]any)["name"] == "metrics" {
			containerPort, _, _ = unstructured.NestedInt64(p.(map[string]any), "containerPort")
		}
	}
	sports, _, _ := unstructured.NestedSlice(s.Object, "spec", "ports")
	servicePort, _, _ = unstructured.NestedInt64(sports[0].(map[string]any), "port")
	return args, containerPort, servicePort
}

// Every install path serves metrics securely on 8443 (the manager's --metrics-secure
// default), and its Service points there; the chart can turn it off and mount a certificate.
func TestMetricsServedSecurely(t *testing.T) {
	needHelm(t)
	for name, objs := range map[string][]*unstructured.Unstructured{
		"kustomize config/default": kustomize(t, "default"),
		"helm defaults":            helmTemplate(t, "trainenv-system"),
	} {
		args, cport, sport := metricsServing(t, objs, "trainenv")
		if !slices.Contains(args, "--metrics-bind-address=:8443") || slices.Contains(args, "--metrics-secure=false") {
			t.Errorf("%s: manager args %v", name, args)
		}
		if cport != 8443 || sport != 8443 {
			t.Errorf("%s: container port %d, Service port %d; want 8443", name, cport, sport)
		}
	}
	plain := helmTemplate(t, "trainenv-system", "--set", "metrics.secure=false,metrics.port=8080,serviceMonitor.enabled=true")
	if args, _, sport := metricsServing(t, plain, "trainenv"); !slices.Contains(args, "--metrics-secure=false") || sport != 8080 {
		t.Errorf("metrics.secure=false: args %v, port %d", args, sport)
	}
	if scheme := endpoint(t, render.Find(plain, "ServiceMonitor", "trainenv-controller-manager"))["scheme"]; scheme != "http" {
		t.Errorf("metrics.secure=false: ServiceMonitor scheme %v", scheme)
	}
	certs := helmTemplate(t, "trainenv-system", "--set", "metrics.certSecretName=trainenv-metrics-tls")
	args, _, _ := metricsServing(t, certs, "trainenv")
	d := render.Find(certs, "Deployment", "trainenv-controller-manager")
	volumes, _, _ := unstructured.NestedSlice(d.Object, "spec", "template", "spec", "volumes")
	if !slices.Contains(args, "--metrics-cert-dir=/var/run/trainenv/metrics-certs") || len(volumes) != 1 {
		t.Errorf("metrics.certSecretName: args %v, volumes %v", args, volumes)
	}
}

func endpoint(t *testing.T, sm *unstructured.Unstructured) map[string]any {
	t.Helper()
	if sm == nil {
		t.Fatal("no ServiceMonitor")
	}
	eps, _, _ := unstructured.NestedSlice(sm.Object, "spec", "endpoints")
	return eps[0].(map[string]any)
}

// The ServiceMonitors of config/ and the chart scrape with Prometheus' token over HTTPS.
func TestServiceMonitorsUseTokenAndTLS(t *testing.T) {
	needHelm(t)
	raw, err := os.ReadFile(filepath.Join(render.RepoRoot(), "config", "prometheus", "monitor.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var config unstructured.Unstructured
	if err := yaml.Unmarshal(raw, &config.Object); err != nil {
		t.Fatal(err)
	}
	chart := render.Find(helmTemplate(t, "trainenv-system", "--set", "serviceMonitor.enabled=true"), "ServiceMonitor", "trainenv-controller-manager")
	for name, sm := range map[string]*unstructured.Unstructured{"config/prometheus": &config, "chart": chart} {
		ep := endpoint(t, sm)
		if ep["scheme"] != "https" || ep["bearerTokenFile"] != "/var/run/secrets/kubernetes.io/serviceaccount/token" || ep["port"] != "metrics" {
			t.Errorf("%s: endpoint %v", name, ep)
		}
		if skip, _, _ := unstructured.NestedBool(ep, "tlsConfig", "insecureSkipVerify"); !skip {
			t.Errorf("%s: the default self-signed certificate needs insecureSkipVerify: %v", name, ep)
		}
	}
}
