package metrics_test

import (
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	. "github.com/onsi/gomega"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	dto "github.com/prometheus/client_model/go"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/runtime"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"

	trainenvv1 "github.com/trainenv/trainenv/api/v1alpha1"
	"github.com/trainenv/trainenv/internal/gpufacts"
	"github.com/trainenv/trainenv/internal/metrics"
	"github.com/trainenv/trainenv/internal/testutil/gen"
)

var now = time.Date(2026, 11, 23, 12, 0, 0, 0, time.UTC)

func env(name string, phase trainenvv1.Phase, gpus int32, suspend bool) *trainenvv1.TrainingEnvironment {
	return gen.TrainingEnvironment(name, gen.WithNamespace("ml"), gen.WithImage("r.example/pytorch:2.4"),
		gen.WithGPU(gpus), gen.WithSuspend(suspend), gen.WithPhase(phase))
}

// node is a node with gpus GPUs in its capacity (none: a CPU node).
func node(name string, gpus int64, labels, annotations map[string]string) *corev1.Node {
	mods := []gen.NodeModifier{gen.WithNodeLabels(labels), gen.WithNodeAnnotations(annotations)}
	if gpus > 0 {
		mods = append(mods, gen.WithGPUCapacity(gpus, false))
	}
	return gen.Node(name, mods...)
}

// state is a State over a fake cache holding environments in every phase and nodes with a
// live, a stale and no agent, and a CPU node.
func state(t *testing.T) *metrics.State {
	t.Helper()
	scheme := runtime.NewScheme()
	if err := clientgoscheme.AddToScheme(scheme); err != nil {
		t.Fatal(err)
	}
	if err := trainenvv1.AddToScheme(scheme); err != nil {
		t.Fatal(err)
	}
	ok := map[string]string{gpufacts.LabelNVML: gpufacts.NVMLOK}
	objs := []client.Object{
		env("new", "", 1, false),
		env("pending", trainenvv1.PhasePending, 2, false),
		env("starting", trainenvv1.PhaseStarting, 4, false),
		env("running-a", trainenvv1.PhaseRunning, 8, false),
		env("running-b", trainenvv1.PhaseRunning, 1, false),
		env("suspended", trainenvv1.PhaseSuspended, 8, true),
		env("failed", trainenvv1.PhaseFailed, 2, false),
		node("gpu-live", 8, ok, map[string]string{gpufacts.AnnotationHeartbeat: gpufacts.FormatHeartbeat(now.Add(-14 * time.Minute))}),
		node("gpu-stale", 8, ok, map[string]string{gpufacts.AnnotationHeartbeat: gpufacts.FormatHeartbeat(now.Add(-16 * time.Minute))}),
		node("gpu-no-agent", 4, nil, nil),
		node("gpu-unlabelled", 4, nil, map[string]string{gpufacts.AnnotationHeartbeat: gpufacts.FormatHeartbeat(now)}),
		node("cpu", 0, nil, nil),
	}
	c := fake.NewClientBuilder().WithScheme(scheme).WithObjects(objs...).WithStatusSubresource(&trainenvv1.TrainingEnvironment{}).Build()
	return &metrics.State{Reader: c, Now: func() time.Time { return now }}
}

// The gauges count the cache: phases (a new environment is Pending, every phase present),
// GPUs not suspended and running, and one agent series per GPU node.
func TestStateGauges(t *testing.T) {
	expected := `
# HELP trainenv_environments TrainingEnvironments by status.phase (one not yet reconciled counts as Pending).
# TYPE trainenv_environments gauge
trainenv_environments{phase="Failed"} 1
trainenv_environments{phase="Pending"} 2
trainenv_environments{phase="Running"} 2
trainenv_environments{phase="Starting"} 1
trainenv_environments{phase="Suspended"} 1
# HELP trainenv_gpus_requested GPUs requested by TrainingEnvironments that are not suspended.
# TYPE trainenv_gpus_requested gauge
trainenv_gpus_requested 18
# HELP trainenv_gpus_running GPUs held by TrainingEnvironments in phase Running.
# TYPE trainenv_gpus_running gauge
trainenv_gpus_running 9
# HELP trainenv_node_agent_up 1 when the node agent's facts on a GPU node are fresh (trainenv.io/nvml label, heartbeat within 15 minutes), else 0.
# TYPE trainenv_node_agent_up gauge
trainenv_node_agent_up{node="gpu-live"} 1
trainenv_node_agent_up{node="gpu-no-agent"} 0
trainenv_node_agent_up{node="gpu-stale"} 0
trainenv_node_agent_up{node="gpu-unlabelled"} 0
`
	if err := testutil.CollectAndCompare(state(t), strings.NewReader(expected)); err != nil {
		t.Error(err)
	}
}

// touch gives every labelled metric a series, so that collectors report them.
func touch() {
	metrics.Verifications.WithLabelValues(metrics.ResultVerified, "Verified")
	metrics.VerificationDuration.WithLabelValues(metrics.ResultVerified)
	metrics.VerificationCacheLookups.WithLabelValues("hit")
	metrics.RegistryRequests.WithLabelValues("resolve", "ok")
	metrics.RegistryRequestDuration.WithLabelValues("resolve")
	metrics.RegistryRetries.WithLabelValues("resolve")
	metrics.CompatibilityDecisions.WithLabelValues("Compatible")
	metrics.Preflights.WithLabelValues("passed")
}

func all(t *testing.T) []prometheus.Collector {
	touch()
	return []prometheus.Collector{
		metrics.Verifications, metrics.VerificationDuration, metrics.VerificationCacheLookups,
		metrics.RegistryRequests, metrics.RegistryRequestDuration, metrics.RegistryRetries,
		metrics.CompatibilityDecisions, metrics.TimeToReady, metrics.Preflights, state(t),
	}
}

// Prometheus' own linter (promlint: units, _total, help, naming) finds nothing.
func TestMetricsLint(t *testing.T) {
	for _, c := range all(t) {
		problems, err := testutil.CollectAndLint(c)
		if err != nil {
			t.Fatal(err)
		}
		for _, p := range problems {
			t.Errorf("%s: %s", p.Metric, p.Text)
		}
	}
}

type documented struct {
	kind   string
	labels []string
}

// readme reads the metrics table of config/prometheus/README.md.
func readme(t *testing.T) map[string]documented {
	t.Helper()
	data, err := os.ReadFile(filepath.Join("..", "..", "config", "prometheus", "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	row := regexp.MustCompile("(?m)^\\| `(trainenv_[a-z_]+)` \\| ([a-z]+) \\|([^|]*)\\|")
	label := regexp.MustCompile("`([a-z_]+)`")
	out := map[string]documented{}
	for _, m := range row.FindAllStringSubmatch(string(data), -1) {
		d := documented{kind: m[2]}
		for _, l := range label.FindAllStringSubmatch(m[3], -1) {
			d.labels = append(d.labels, l[1])
		}
		slices.Sort(d.labels)
		out[m[1]] = d
	}
	return out
}

// The registry serves exactly the metrics the README documents, with their types and labels:
// the alerts and the dashboard are checked against that table (e2e/tools/promcheck).
func TestMetricsMatchREADME(t *testing.T) {
	g := NewWithT(t)
	reg := prometheus.NewPedanticRegistry()
	reg.MustRegister(all(t)...)
	families, err := reg.Gather()
	g.Expect(err).NotTo(HaveOccurred())
	served := map[string]documented{}
	for _, f := range families {
		d := documented{kind: strings.ToLower(f.GetType().String())}
		for _, l := range f.GetMetric()[0].GetLabel() {
			d.labels = append(d.labels, l.GetName())
		}
		slices.Sort(d.labels)
		served[f.GetName()] = d
	}
	g.Expect(served).To(Equal(readme(t)))
	g.Expect(served).To(HaveLen(13))
	g.Expect(served["trainenv_environment_time_to_ready_seconds"].kind).To(Equal(strings.ToLower(dto.MetricType_HISTOGRAM.String())))
}

func TestResult(t *testing.T) {
	g := NewWithT(t)
	g.Expect(metrics.Result(true, nil)).To(Equal(metrics.ResultVerified))
	g.Expect(metrics.Result(false, nil)).To(Equal(metrics.ResultFailed))
	g.Expect(metrics.Result(true, os.ErrDeadlineExceeded)).To(Equal(metrics.ResultError))
}

// The secure server authorizes through the API server; plain HTTP has no filter.
func TestServerOptions(t *testing.T) {
	g := NewWithT(t)
	secure := metrics.ServerOptions(metrics.ServerConfig{BindAddress: ":8443", Secure: true, CertDir: "/certs"})
	g.Expect(secure.SecureServing).To(BeTrue())
	g.Expect(secure.FilterProvider).NotTo(BeNil())
	g.Expect(secure.CertDir).To(Equal("/certs"))
	g.Expect(secure.TLSOpts).To(HaveLen(1), "HTTP/2 off")
	plain := metrics.ServerOptions(metrics.ServerConfig{BindAddress: ":8080"})
	g.Expect(plain.SecureServing).To(BeFalse())
	g.Expect(plain.FilterProvider).To(BeNil())
}
