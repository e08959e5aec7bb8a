package controller_test

import (
	"context"
	"crypto/tls"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	. "github.com/onsi/gomega"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	authenticationv1 "k8s.io/api/authentication/v1"
	authorizationv1 "k8s.io/api/authorization/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/clock"
	"k8s.io/utils/ptr"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"
	crcontroller "sigs.k8s.io/controller-runtime/pkg/controller"
	"sigs.k8s.io/yaml"

	trainenvv1 "github.com/trainenv/trainenv/api/v1alpha1"
	"github.com/trainenv/trainenv/internal/controller"
	"github.com/trainenv/trainenv/internal/gpufacts"
	"github.com/trainenv/trainenv/internal/metrics"
	"github.com/trainenv/trainenv/internal/registry"
	"github.com/trainenv/trainenv/internal/testutil/gen"
)

// startMetricsManager runs the reconciler in a manager that serves metrics as the manager
// binary does (HTTPS, authenticated and authorized by the API server) on a free port, and
// whose cache sees only the test's namespace. It returns the metrics URL.
func startMetricsManager(t *testing.T, f *fixture) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	_ = l.Close()
	mgr, err := ctrl.NewManager(envConfig, ctrl.Options{
		Scheme:  scheme,
		Metrics: metrics.ServerOptions(metrics.ServerConfig{BindAddress: addr, Secure: true}),
		Cache:   cache.Options{DefaultNamespaces: map[string]cache.Config{f.ns: {}}},
	})
	if err != nil {
		t.Fatal(err)
	}
	r := &controller.TrainingEnvironmentReconciler{
		Client: mgr.GetClient(), APIReader: mgr.GetAPIReader(), Recorder: mgr.GetEventRecorder("trainenv"),
		Resolver: registry.NewResolver(nil, 64), Verifier: f.r.Verifier, Clock: clock.RealClock{}, ToolsImage: testToolsImage,
	}
	if err := r.SetupWithManager(mgr, crcontroller.Options{SkipNameValidation: ptr.To(true)}); err != nil {
		t.Fatal(err)
	}
	unregister, err := metrics.RegisterState(&metrics.State{Reader: mgr.GetCache()})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = mgr.Start(ctx)
	}()
	t.Cleanup(func() { cancel(); <-done; unregister() })
	return "https://" + addr + "/metrics"
}

// scrape GETs url as Prometheus would, with token as bearer (none if empty).
func scrape(url, token string) (int, string, error) {
	c := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{
		// The manager's certificate is self-signed; ForceAttemptHTTP2 offers h2, which the
		// server must decline.
		TLSClientConfig: &tls.Config{InsecureSkipVerify: true}, ForceAttemptHTTP2: true,
	}}
	req, err := http.NewRequest(http.MethodGet, url, nil)
	if err != nil {
		return 0, "", err
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := c.Do(req)
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if resp.ProtoMajor != 1 {
		return 0, "", &net.AddrError{Err: "served over " + resp.Proto + ", not HTTP/1.1", Addr: url}
	}
	return resp.StatusCode, string(body), err
}

// serviceAccountToken creates a service account and a token for it.
func serviceAccountToken(t *testing.T, f *fixture, name string) string {
	t.Helper()
	sa := &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: f.ns}}
	create(t, sa)
	tr := &authenticationv1.TokenRequest{Spec: authenticationv1.TokenRequestSpec{ExpirationSeconds: ptr.To[int64](3600)}}
	if err := k8s.SubResource("token").Create(f.ctx, sa, tr); err != nil {
		t.Fatal(err)
	}
	return tr.Status.Token
}

// bindMetricsReader binds config/rbac's metrics-reader ClusterRole to the service account
// and waits until the API server authorizes it, so that no denial gets cached.
func bindMetricsReader(t *testing.T, f *fixture, sa string) {
	t.Helper()
	g := NewWithT(t)
	raw, err := os.ReadFile(filepath.Join("..", "..", "config", "rbac", "metrics_reader_role.yaml"))
	g.Expect(err).NotTo(HaveOccurred())
	var role rbacv1.ClusterRole
	g.Expect(yaml.Unmarshal(raw, &role)).To(Succeed())
	role.Name = "metrics-reader-" + f.ns
	create(t, &role)
	user := "system:serviceaccount:" + f.ns + ":" + sa
	create(t, &rbacv1.ClusterRoleBinding{ObjectMeta: metav1.ObjectMeta{Name: role.Name},
		Subjects: []rbacv1.Subject{{Kind: "ServiceAccount", Name: sa, Namespace: f.ns}},
		RoleRef:  rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: role.Name}})
	g.Eventually(func() bool {
		sar := &authorizationv1.SubjectAccessReview{Spec: authorizationv1.SubjectAccessReviewSpec{
			User: user, NonResourceAttributes: &authorizationv1.NonResourceAttributes{Path: "/metrics", Verb: "get"}}}
		return k8s.Create(f.ctx, sar) == nil && sar.Status.Allowed
	}, 10*time.Second, 100*time.Millisecond).Should(BeTrue())
}

// parse reads a text exposition into families by name.
func parse(t *testing.T, body string) map[string]*dto.MetricFamily {
	t.Helper()
	p := expfmt.NewTextParser(model.UTF8Validation)
	families, err := p.TextToMetricFamilies(strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	return families
}

// value returns the value of the series of family name with exactly these labels (-1 if
// none): a gauge's or counter's value, a histogram's sample count.
func value(families map[string]*dto.MetricFamily, name string, labels ...string) float64 {
	f := families[name]
	if f == nil {
		return -1
	}
	for _, m := range f.GetMetric() {
		got := []string{}
		for _, l := range m.GetLabel() {
			got = append(got, l.GetName(), l.GetValue())
		}
		if strings.Join(got, "\x00") != strings.Join(labels, "\x00") {
			continue
		}
		switch {
		case m.Gauge != nil:
			return m.GetGauge().GetValue()
		case m.Counter != nil:
			return m.GetCounter().GetValue()
		case m.Histogram != nil:
			return float64(m.GetHistogram().GetSampleCount())
		}
	}
	return -1
}

// agentNode is a GPU node whose node agent reported just now.
func (f *fixture) agentNode(name string) {
	f.t.Helper()
	n := f.gpuNode(name, gen.WithGPUProduct("Tesla-T4"), gen.WithGPUs(1))
	patch := client.MergeFrom(n.DeepCopy())
	n.Labels[gpufacts.LabelNVML] = gpufacts.NVMLOK
	n.Annotations = map[string]string{gpufacts.AnnotationHeartbeat: gpufacts.FormatHeartbeat(time.Now())}
	if err := k8s.Patch(f.ctx, n, patch); err != nil {
		f.t.Fatal(err)
	}
}

// count reads a series from a scrape, 0 when it is absent (a counter not yet incremented).
func count(families map[string]*dto.MetricFamily, name string, labels ...string) float64 {
	return max(value(families, name, labels...), 0)
}

// The metrics endpoint, scraped as Prometheus scrapes it, after the manager reconciled real
// environments: only an authorized token reads it; the gauges count this namespace's
// environments and the GPU nodes' agents; the counters moved by what the passes did.
func TestMetricsEndpointAfterReconciles(t *testing.T) {
	g := NewWithT(t)
	f := newFixture(t)
	k := newKeylessTrust(f)
	f.gpuNode("metrics-a100")
	f.agentNode("metrics-agent")
	url := startMetricsManager(t, f)

	g.Eventually(func() (int, error) { code, _, err := scrape(url, ""); return code, err },
		20*time.Second, 100*time.Millisecond).Should(Equal(http.StatusUnauthorized), "no token")
	code, _, err := scrape(url, serviceAccountToken(t, f, "stranger"))
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(code).To(Equal(http.StatusForbidden), "a token without the metrics-reader role")
	token := serviceAccountToken(t, f, "prometheus")
	bindMetricsReader(t, f, "prometheus")
	scrapeOK := func() map[string]*dto.MetricFamily {
		code, body, err := scrape(url, token)
		g.Expect(err).NotTo(HaveOccurred())
		g.Expect(code).To(Equal(http.StatusOK), body)
		return parse(t, body)
	}
	before := scrapeOK()

	signed := k.push(t, "signed", ciSubject)
	running := f.create("running", signed)
	f.create("starting", signed)
	f.create("suspended", signed, gen.WithSuspend(true), gen.WithGPU(4))
	f.create("unsigned", k.push(t, "unsigned", ""))
	g.Eventually(func() error { _, err := f.statefulSet(running); return err }, 30*time.Second, 100*time.Millisecond).Should(Succeed())
	f.setInitStatus(f.podFor(running, "metrics-a100"), corev1.ContainerStatus{State: terminated(0, passing)},
		&corev1.ContainerStatus{Ready: true, State: corev1.ContainerState{Running: &corev1.ContainerStateRunning{}}}, true)
	g.Eventually(func() map[string]trainenvv1.Phase {
		var list trainenvv1.TrainingEnvironmentList
		g.Expect(k8s.List(f.ctx, &list, client.InNamespace(f.ns))).To(Succeed())
		out := map[string]trainenvv1.Phase{}
		for _, te := range list.Items {
			out[te.Name] = te.Status.Phase
		}
		return out
	}, 30*time.Second, 100*time.Millisecond).Should(Equal(map[string]trainenvv1.Phase{"running": trainenvv1.PhaseRunning,
		"starting": trainenvv1.PhaseStarting, "suspended": trainenvv1.PhaseSuspended, "unsigned": trainenvv1.PhaseFailed}))

	var after map[string]*dto.MetricFamily
	g.Eventually(func() float64 { // the cache may trail the API by a moment
		after = scrapeOK()
		return value(after, "trainenv_environments", "phase", "Running")
	}, 10*time.Second, 100*time.Millisecond).Should(Equal(1.0))
	for phase, n := range map[string]float64{"Pending": 0, "Starting": 1, "Running": 1, "Suspended": 1, "Failed": 1} {
		g.Expect(value(after, "trainenv_environments", "phase", phase)).To(Equal(n), phase)
	}
	g.Expect(value(after, "trainenv_gpus_requested")).To(Equal(3.0), "1 each, the suspended 4 not")
	g.Expect(value(after, "trainenv_gpus_running")).To(Equal(1.0))
	g.Expect(value(after, "trainenv_node_agent_up", "node", "metrics-agent")).To(Equal(1.0))
	g.Expect(value(after, "trainenv_node_agent_up", "node", "metrics-a100")).To(Equal(0.0), "GFD labels, no agent")

	moved := func(name string, labels ...string) float64 {
		return count(after, name, labels...) - count(before, name, labels...)
	}
	g.Expect(moved("trainenv_environment_time_to_ready_seconds")).To(Equal(1.0), "once, for the one that ran")
	g.Expect(moved("trainenv_preflights_total", "result", "passed")).To(Equal(1.0))
	g.Expect(moved("trainenv_verifications_total", "reason", "Verified", "result", "verified")).To(BeNumerically(">=", 3))
	g.Expect(moved("trainenv_verifications_total", "reason", "NoSignature", "result", "failed")).To(BeNumerically(">=", 1))
	g.Expect(moved("trainenv_verification_cache_lookups_total", "result", "miss")).To(BeNumerically(">=", 2), "two digests")
	g.Expect(moved("trainenv_verification_cache_lookups_total", "result", "hit")).To(BeNumerically(">=", 2), "three environments, one digest")
	g.Expect(moved("trainenv_verification_duration_seconds", "result", "verified")).To(BeNumerically(">=", 1))
	g.Expect(moved("trainenv_verification_duration_seconds", "result", "failed")).To(BeNumerically(">=", 1))
	g.Expect(moved("trainenv_compatibility_decisions_total", "reason", "Compatible")).To(BeNumerically(">=", 3))
	g.Expect(moved("trainenv_registry_requests_total", "operation", "resolve", "outcome", "ok")).To(BeNumerically(">", 0))
	g.Expect(moved("trainenv_registry_requests_total", "operation", "verify", "outcome", "ok")).To(BeNumerically(">", 0))
	g.Expect(moved("trainenv_registry_requests_total", "operation", "verify", "outcome", "not_found")).To(BeNumerically(">", 0),
		"the unsigned digest has no signature tag")
	g.Expect(moved("trainenv_registry_request_duration_seconds", "operation", "verify")).To(BeNumerically(">", 0))
	g.Expect(after).To(HaveKey("controller_runtime_reconcile_total"), "controller-runtime's own metrics beside trainenv's")
}
