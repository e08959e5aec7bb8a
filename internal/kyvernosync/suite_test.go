package kyvernosync

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"testing"

	policiesv1 "github.com/kyverno/api/api/policies.kyverno.io/v1"
	pcv1alpha1 "github.com/sigstore/policy-controller/pkg/apis/policy/v1alpha1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/rest"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/log/zap"
	"sigs.k8s.io/yaml"

	"github.com/trainenv/trainenv/internal/testutil/envtestutil"
)

var (
	envConfig *rest.Config
	k8s       client.Client // the test's own, as cluster admin
	scheme    = runtime.NewScheme()
)

// TestMain starts a real kube-apiserver with the project's and policy-controller's CRDs but
// not Kyverno's: the test installs it while the controller waits for it.
func TestMain(m *testing.M) {
	for _, add := range []func(*runtime.Scheme) error{clientgoscheme.AddToScheme, pcv1alpha1.AddToScheme, policiesv1.Install} {
		if err := add(scheme); err != nil {
			panic(err)
		}
	}
	ctrl.SetLogger(zap.New(zap.WriteTo(os.Stderr)))
	cfg, stop, err := envtestutil.Start()
	if err != nil {
		fmt.Fprintln(os.Stderr, "starting envtest:", err)
		os.Exit(1)
	}
	envConfig = cfg
	if k8s, err = client.New(cfg, client.Options{Scheme: scheme}); err != nil {
		panic(err)
	}
	code := m.Run()
	_ = stop()
	os.Exit(code)
}

// kyvernoCRD is Kyverno's own ImageValidatingPolicy CRD, from the github.com/kyverno/api
// module the generator is built with.
func kyvernoCRD(t *testing.T) string {
	t.Helper()
	crd, err := envtestutil.KyvernoCRD()
	if err != nil {
		t.Fatal(err)
	}
	return crd
}

// managerIdentity is the manager's service account as an install binds it.
const managerIdentity = "system:serviceaccount:trainenv-system:trainenv-controller-manager"

// bindManagerRBAC creates the roles an install with --kyverno-policy binds to the manager
// (config/rbac/role.yaml, controller-gen's, and config/kyverno/role.yaml), bound to
// managerIdentity, and returns a config that impersonates it: the controller runs with
// exactly the permissions it is installed with.
func bindManagerRBAC(t *testing.T) *rest.Config {
	t.Helper()
	subject := []rbacv1.Subject{{Kind: "ServiceAccount", Name: "trainenv-controller-manager", Namespace: "trainenv-system"}}
	for _, file := range []string{"../../config/rbac/role.yaml", "../../config/kyverno/role.yaml"} {
		raw, err := os.ReadFile(file)
		if err != nil {
			t.Fatal(err)
		}
		for i, doc := range bytes.Split(raw, []byte("\n---\n")) {
			var meta metav1.TypeMeta
			if err := yaml.Unmarshal(doc, &meta); err != nil {
				t.Fatalf("%s: %v", file, err)
			}
			name := fmt.Sprintf("kyvernosync-test-%s-%d", filepath.Base(filepath.Dir(file)), i)
			switch meta.Kind {
			case "ClusterRole":
				var cr rbacv1.ClusterRole
				mustUnmarshal(t, doc, &cr)
				cr.ObjectMeta = metav1.ObjectMeta{Name: name}
				create(t, &cr)
				create(t, &rbacv1.ClusterRoleBinding{ObjectMeta: metav1.ObjectMeta{Name: name}, Subjects: subject,
					RoleRef: rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: name}})
			case "Role":
				var r rbacv1.Role
				mustUnmarshal(t, doc, &r)
				r.ObjectMeta = metav1.ObjectMeta{Name: name, Namespace: r.Namespace}
				create(t, &r)
				create(t, &rbacv1.RoleBinding{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: r.Namespace}, Subjects: subject,
					RoleRef: rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "Role", Name: name}})
			}
		}
	}
	cfg := rest.CopyConfig(envConfig)
	cfg.Impersonate = rest.ImpersonationConfig{UserName: managerIdentity}
	return cfg
}

func mustUnmarshal(t *testing.T, doc []byte, into any) {
	t.Helper()
	if err := yaml.Unmarshal(doc, into); err != nil {
		t.Fatal(err)
	}
}

func create(t *testing.T, o client.Object) {
	t.Helper()
	if err := k8s.Create(t.Context(), o); err != nil {
		t.Fatalf("creating %T %s: %v", o, o.GetName(), err)
	}
	t.Cleanup(func() { _ = k8s.Delete(context.Background(), o) })
}
