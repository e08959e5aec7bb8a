package installtest

import (
	"context"
	"fmt"
	"os"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/wait"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/envtest"

	"github.com/trainenv/trainenv/hack/render"
)

// One API server for the package, started with no CRDs: each test installs the CRDs its
// install path ships, for real, before dry-running the rest.
var (
	admin  client.Client
	envErr error
)

func TestMain(m *testing.M) {
	if os.Getenv("KUBEBUILDER_ASSETS") == "" {
		envErr = fmt.Errorf("KUBEBUILDER_ASSETS is not set: run the tests with `make test`")
		os.Exit(m.Run())
	}
	env := &envtest.Environment{}
	cfg, err := env.Start()
	if err != nil {
		fmt.Fprintln(os.Stderr, "starting envtest:", err)
		os.Exit(1)
	}
	scheme := runtime.NewScheme()
	_ = clientgoscheme.AddToScheme(scheme)
	_ = apiextensionsv1.AddToScheme(scheme)
	admin, err = client.New(cfg, client.Options{Scheme: scheme})
	if err == nil {
		// config/default expects policy-controller's namespace, where the manager may read
		// the Secrets and ConfigMaps that policies reference (config/with-sigstore creates it).
		err = admin.Create(context.Background(), &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "cosign-system"}})
	}
	code := 1
	if err != nil {
		fmt.Fprintln(os.Stderr, "client:", err)
	} else {
		code = m.Run()
	}
	if err := env.Stop(); err != nil {
		fmt.Fprintln(os.Stderr, "stopping envtest:", err)
	}
	os.Exit(code)
}

// required is set by `make test`: there, a missing API server or helm fails the tests
// instead of skipping them, so CI cannot pass without running them.
func required() bool { return os.Getenv("TRAINENV_REQUIRE_TOOLS") != "" }

func needAPIServer(t *testing.T) {
	t.Helper()
	if envErr == nil {
		return
	}
	if required() {
		t.Fatal(envErr)
	}
	t.Skip(envErr)
}

func needHelm(t *testing.T) {
	t.Helper()
	if _, err := render.Helm(); err != nil {
		if required() {
			t.Fatal(err)
		}
		t.Skip(err)
	}
}

const fieldOwner = client.FieldOwner("trainenv-install-test")

// install applies CRDs and Namespaces for real (and waits for the CRDs to be served), then
// every other object with a server-side dry run: the API server validates each object
// (schemas, CEL rules, references it can check) without storing it.
func install(t *testing.T, objs []*unstructured.Unstructured) {
	t.Helper()
	ctx := context.Background()
	for _, o := range objs {
		if o.GetKind() == "CustomResourceDefinition" || o.GetKind() == "Namespace" {
			if err := apply(ctx, o, false); err != nil {
				t.Fatalf("applying %s %s: %v", o.GetKind(), o.GetName(), err)
			}
		}
	}
	for _, o := range objs {
		if o.GetKind() == "CustomResourceDefinition" {
			waitEstablished(t, o.GetName())
		}
	}
	for _, o := range objs {
		if o.GetKind() == "CustomResourceDefinition" || o.GetKind() == "Namespace" {
			continue
		}
		if err := apply(ctx, o, true); err != nil {
			t.Errorf("server-side dry run of %s %s/%s: %v", o.GetKind(), o.GetNamespace(), o.GetName(), err)
		}
	}
}

func apply(ctx context.Context, o *unstructured.Unstructured, dryRun bool) error {
	opts := []client.ApplyOption{fieldOwner, client.ForceOwnership}
	if dryRun {
		opts = append(opts, client.DryRunAll)
	}
	return admin.Apply(ctx, client.ApplyConfigurationFromUnstructured(o.DeepCopy()), opts...)
}

func waitEstablished(t *testing.T, name string) {
	t.Helper()
	err := wait.PollUntilContextTimeout(context.Background(), 50*time.Millisecond, 30*time.Second, true,
		func(ctx context.Context) (bool, error) {
			var crd apiextensionsv1.CustomResourceDefinition
			if err := admin.Get(ctx, client.ObjectKey{Name: name}, &crd); err != nil {
				return false, client.IgnoreNotFound(err)
			}
			for _, c := range crd.Status.Conditions {
				if c.Type == apiextensionsv1.Established && c.Status == apiextensionsv1.ConditionTrue {
					return true, nil
				}
			}
			return false, nil
		})
	if err != nil {
		t.Fatalf("CRD %s not established: %v", name, err)
	}
}

// ensureNamespace creates a namespace for dry-run objects of samples that name one.
func ensureNamespace(t *testing.T, name string) {
	t.Helper()
	ns := &unstructured.Unstructured{}
	ns.SetAPIVersion("v1")
	ns.SetKind("Namespace")
	ns.SetName(name)
	if err := admin.Create(context.Background(), ns); err != nil && !apierrors.IsAlreadyExists(err) {
		t.Fatal(err)
	}
}
