package controller_test

import (
	"context"
	"fmt"
	"os"
	"sync"
	"testing"
	"time"

	pcv1alpha1 "github.com/sigstore/policy-controller/pkg/apis/policy/v1alpha1"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/rest"
	clocktesting "k8s.io/utils/clock/testing"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	logf "sigs.k8s.io/controller-runtime/pkg/log"
	"sigs.k8s.io/controller-runtime/pkg/log/zap"

	trainenvv1 "github.com/trainenv/trainenv/api/v1alpha1"
	"github.com/trainenv/trainenv/internal/controller"
	"github.com/trainenv/trainenv/internal/registry"
	"github.com/trainenv/trainenv/internal/testutil/envtestutil"
	"github.com/trainenv/trainenv/internal/testutil/gen"
	"github.com/trainenv/trainenv/internal/testutil/registrytest"
	"github.com/trainenv/trainenv/internal/trust"
)

// One real kube-apiserver and etcd for the package (envtest), started by the first test
// that needs one (needEnv). The tests call Reconcile directly with a fake clock, so every
// pass is deterministic; the API is real.
var (
	k8s       client.Client
	envConfig *rest.Config
	scheme    = runtime.NewScheme()
	// controlPlane restarts kube-apiserver for the fault tests.
	controlPlane *envtestutil.Env
)

func TestMain(m *testing.M) {
	logf.SetLogger(zap.New(zap.WriteTo(os.Stderr), zap.UseDevMode(true), zap.Level(zapLevel())))
	if err := clientgoscheme.AddToScheme(scheme); err != nil {
		panic(err)
	}
	if err := trainenvv1.AddToScheme(scheme); err != nil {
		panic(err)
	}
	if err := pcv1alpha1.AddToScheme(scheme); err != nil {
		panic(err)
	}
	code := m.Run()
	if controlPlane != nil {
		if err := controlPlane.Stop(); err != nil {
			fmt.Fprintln(os.Stderr, "stopping envtest:", err)
		}
	}
	os.Exit(code)
}

var (
	envOnce sync.Once
	envErr  error
)

// needEnv starts the package's kube-apiserver and etcd on first use, so that a run of
// only the client-free tests (go test -run 'TestSummarize|TestPodState') starts none.
func needEnv(t testing.TB) {
	t.Helper()
	envOnce.Do(func() {
		controlPlane, envErr = envtestutil.StartEnv()
		if envErr != nil {
			return
		}
		envConfig = controlPlane.Config
		k8s, envErr = client.New(envConfig, client.Options{Scheme: scheme})
	})
	if envErr != nil {
		t.Fatalf("starting envtest: %v", envErr)
	}
}

func zapLevel() zapcoreLevel {
	if os.Getenv("TEST_VERBOSE") != "" {
		return -2
	}
	return 2
}

// fixture is one test's namespace, reconciler and fake clock.
type fixture struct {
	t     *testing.T
	ctx   context.Context
	ns    string
	clock *clocktesting.FakeClock
	r     *controller.TrainingEnvironmentReconciler
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	needEnv(t)
	ctx := context.Background()
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{
		GenerateName: "te-",
		Labels:       map[string]string{"pod-security.kubernetes.io/enforce": "restricted"},
	}}
	if err := k8s.Create(ctx, ns); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = k8s.Delete(ctx, ns) })
	clock := clocktesting.NewFakeClock(time.Date(2026, 11, 23, 12, 0, 0, 0, time.UTC))
	return &fixture{t: t, ctx: ctx, ns: ns.Name, clock: clock, r: &controller.TrainingEnvironmentReconciler{
		Client:     k8s,
		APIReader:  k8s,
		Resolver:   registry.NewResolver(nil, 64),
		Verifier:   trust.NotEnforced{},
		Clock:      clock,
		ToolsImage: testToolsImage,
	}}
}

// testToolsImage stands for the operator's image in rendered pods.
const testToolsImage = "registry.example.com/trainenv/manager@sha256:fedcba9876543210fedcba9876543210fedcba9876543210fedcba9876543210"

// create creates a TrainingEnvironment (one GPU, a 10Gi workspace, then mods) with the CRD's
// defaults applied by the API server.
func (f *fixture) create(name, image string, mods ...gen.TrainingEnvironmentModifier) *trainenvv1.TrainingEnvironment {
	f.t.Helper()
	te := gen.TrainingEnvironment(name, append([]gen.TrainingEnvironmentModifier{
		gen.WithNamespace(f.ns), gen.WithImage(image), gen.WithGPU(1), gen.WithWorkspace("10Gi"),
	}, mods...)...)
	if err := k8s.Create(f.ctx, te); err != nil {
		f.t.Fatal(err)
	}
	return te
}

// pinnedOnNode pushes an image, adds a GPU node and creates an environment for it that one
// pass has pinned and started: the common starting point of workload tests.
func (f *fixture) pinnedOnNode(name string, mods ...gen.TrainingEnvironmentModifier) *trainenvv1.TrainingEnvironment {
	f.t.Helper()
	reg := registrytest.New(f.t)
	reg.Push("team/pytorch", "2.4", registrytest.Image(f.t))
	f.gpuNode(name + "-a100")
	te := f.create(name, reg.Host+"/team/pytorch:2.4", mods...)
	if _, err, _ := f.reconcile(te); err != nil {
		f.t.Fatal(err)
	}
	return f.get(te)
}

// podFor creates the environment's pod on node, as the StatefulSet controller and the
// scheduler would (envtest runs neither), from the StatefulSet's template. The namespace
// enforces Pod Security "restricted", so the real admission checks the rendered pod.
func (f *fixture) podFor(te *trainenvv1.TrainingEnvironment, node string) *corev1.Pod {
	f.t.Helper()
	sts, err := f.statefulSet(te)
	if err != nil {
		f.t.Fatal(err)
	}
	pod := gen.Pod(te.Name+"-0", gen.WithPodNamespace(f.ns), gen.FromTemplate(sts.Spec.Template), gen.OnNode(node))
	if err := k8s.Create(f.ctx, pod); err != nil {
		f.t.Fatalf("the rendered pod is not admitted: %v", err)
	}
	return pod
}

// reconcile runs one pass and returns its result and the environment as stored afterwards.
//
//nolint:revive,staticcheck // Reconcile's own (Result, error), then what it left: res, err, te := f.reconcile(te).
func (f *fixture) reconcile(te *trainenvv1.TrainingEnvironment) (ctrl.Result, error, *trainenvv1.TrainingEnvironment) {
	f.t.Helper()
	res, err := f.r.Reconcile(f.ctx, ctrl.Request{NamespacedName: client.ObjectKeyFromObject(te)})
	return res, err, f.get(te)
}

func (f *fixture) get(te *trainenvv1.TrainingEnvironment) *trainenvv1.TrainingEnvironment {
	f.t.Helper()
	out := &trainenvv1.TrainingEnvironment{}
	if err := k8s.Get(f.ctx, client.ObjectKeyFromObject(te), out); err != nil {
		f.t.Fatal(err)
	}
	return out
}

func (f *fixture) statefulSet(te *trainenvv1.TrainingEnvironment) (*appsv1.StatefulSet, error) {
	sts := &appsv1.StatefulSet{}
	err := k8s.Get(f.ctx, client.ObjectKey{Namespace: f.ns, Name: te.Name}, sts)
	return sts, err
}

// gpuNode creates a node (cluster-scoped, removed after the test) with 8 allocatable GPUs,
// labelled as GPU Feature Discovery labels an NVIDIA-A100-SXM4-80GB with driver 550.54.15
// (CUDA 12.4); mods change any of these.
func (f *fixture) gpuNode(name string, mods ...gen.NodeModifier) *corev1.Node {
	f.t.Helper()
	n := gen.Node(name, append([]gen.NodeModifier{
		gen.WithGPUProduct("NVIDIA-A100-SXM4-80GB"), gen.WithGPUs(8), gen.WithDriver("550.54.15"), gen.WithCUDA("12.4"),
	}, mods...)...)
	status := n.Status
	if err := k8s.Create(f.ctx, n); err != nil {
		f.t.Fatal(err)
	}
	f.t.Cleanup(func() { _ = k8s.Delete(context.Background(), n) })
	n.Status = status
	if err := k8s.Status().Update(f.ctx, n); err != nil {
		f.t.Fatal(err)
	}
	return n
}
