//go:build scalebench

package main

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"

	pcv1alpha1 "github.com/sigstore/policy-controller/pkg/apis/policy/v1alpha1"
	corev1 "k8s.io/api/core/v1"
	flowcontrolv1 "k8s.io/api/flowcontrol/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/kubernetes"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	"sigs.k8s.io/controller-runtime/pkg/client"

	trainenvv1 "github.com/trainenv/trainenv/api/v1alpha1"
)

// cluster is the benchmark's own local control plane (up.sh), reached as admin.
type cluster struct {
	cfg      config
	env      []string // up.sh's port variables, passed on to every script
	registry string   // host:port
	cfgREST  *rest.Config
	c        client.Client
	cs       *kubernetes.Clientset
	scheme   *runtime.Scheme
}

// ports are up.sh's variables and the local manager's; unset ones get the benchmark's own
// defaults, away from make dev's, so that both can run side by side.
var ports = map[string]string{
	"TRAINENV_ETCD_PORT": "42379", "TRAINENV_ETCD_PEER_PORT": "42380", "TRAINENV_APISERVER_PORT": "46443",
	"TRAINENV_KCM_PORT": "46257", "TRAINENV_SCHEDULER_PORT": "46259", "TRAINENV_KWOK_PORT": "46247",
	"TRAINENV_REGISTRY_PORT": "5301", "TRAINENV_METRICS_PORT": "48080", "TRAINENV_PROBE_PORT": "48081",
	"TRAINENV_PPROF_PORT": "48082",
}

func port(name string) string {
	if v := os.Getenv(name); v != "" {
		return v
	}
	return ports[name]
}

// startCluster runs up.sh (idempotent), installs the CRDs and binds the manager's RBAC
// to the non-admin identity up.sh issues a certificate for.
func startCluster(ctx context.Context, cfg config) (*cluster, error) {
	cl := &cluster{cfg: cfg, env: os.Environ(), registry: "127.0.0.1:" + port("TRAINENV_REGISTRY_PORT")}
	for name := range ports {
		cl.env = append(cl.env, name+"="+port(name))
	}
	// Simulated nodes only: the benchmark measures the control plane and the operator, and a
	// real node would clash with make dev's bridge and kubelet ports.
	cl.env = append(cl.env, "TRAINENV_REAL_NODE=0")
	logf("starting the control plane (e2e/cluster/up.sh %s)", cfg.stateDir)
	if err := cl.script("e2e/cluster/up.sh", cfg.binDir, cfg.stateDir); err != nil {
		return nil, err
	}
	var err error
	cl.cfgREST, err = clientcmd.BuildConfigFromFlags("", filepath.Join(cfg.stateDir, "kubeconfig"))
	if err != nil {
		return nil, err
	}
	// The load generator is admin (exempt from priority and fairness) and must not be
	// what limits the rate: no client-side limit.
	cl.cfgREST.QPS, cl.cfgREST.Burst = -1, 0
	cl.scheme = runtime.NewScheme()
	for _, add := range []func(*runtime.Scheme) error{clientgoscheme.AddToScheme, trainenvv1.AddToScheme, pcv1alpha1.AddToScheme} {
		if err := add(cl.scheme); err != nil {
			return nil, err
		}
	}
	if cl.c, err = client.New(cl.cfgREST, client.Options{Scheme: cl.scheme}); err != nil {
		return nil, err
	}
	if cl.cs, err = kubernetes.NewForConfig(cl.cfgREST); err != nil {
		return nil, err
	}
	for _, args := range [][]string{
		{"apply", "--server-side", "-f", "config/crd/bases"},
		{"apply", "--server-side", "-k", "config/sigstore"},
		{"wait", "--for", "condition=Established", "--timeout=60s", "crd/trainingenvironments.trainenv.io",
			"crd/clusterimagepolicies.policy.sigstore.dev", "crd/trustroots.policy.sigstore.dev"},
	} {
		if err := cl.kubectl(args...); err != nil {
			return nil, err
		}
	}
	return cl, cl.bindManagerRBAC(ctx)
}

// bindManagerRBAC grants User trainenv-manager (up.sh's manager.kubeconfig) exactly the
// manager's generated roles, as config/rbac grants them to its ServiceAccount.
func (cl *cluster) bindManagerRBAC(ctx context.Context) error {
	if err := ensure(ctx, cl.c, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "cosign-system"}}); err != nil {
		return err
	}
	if err := cl.kubectl("apply", "--server-side", "-f", "config/rbac/role.yaml"); err != nil {
		return err
	}
	subject := []rbacv1.Subject{{APIGroup: rbacv1.GroupName, Kind: rbacv1.UserKind, Name: "trainenv-manager"}}
	role := rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Name: "trainenv-manager-role"}
	crb := &rbacv1.ClusterRoleBinding{ObjectMeta: metav1.ObjectMeta{Name: "trainenv-manager-bench"}, Subjects: subject, RoleRef: role}
	crb.RoleRef.Kind = "ClusterRole"
	rb := &rbacv1.RoleBinding{ObjectMeta: metav1.ObjectMeta{Name: "trainenv-manager-bench", Namespace: "cosign-system"}, Subjects: subject, RoleRef: role}
	rb.RoleRef.Kind = "Role"
	if err := ensure(ctx, cl.c, crb); err != nil {
		return err
	}
	if err := ensure(ctx, cl.c, rb); err != nil {
		return err
	}
	return cl.countManagerRequests(ctx)
}

// countManagerRequests puts the manager's requests into two FlowSchemas of their own,
// writes and the rest, at the priority level it would get anyway (global-default), so
// that the API server's apiserver_flowcontrol_dispatched_requests_total counts exactly
// the manager's writes. (The manager's own rest_client_requests_total stays empty: a
// dependency registers client-go's metrics before controller-runtime can.)
func (cl *cluster) countManagerRequests(ctx context.Context) error {
	for i, fs := range []struct {
		name  string
		verbs []string
	}{
		{flowWrites, []string{"create", "update", "patch", "delete", "deletecollection"}},
		{"trainenv-manager-other", []string{"*"}},
	} {
		err := ensure(ctx, cl.c, &flowcontrolv1.FlowSchema{
			ObjectMeta: metav1.ObjectMeta{Name: fs.name},
			Spec: flowcontrolv1.FlowSchemaSpec{
				PriorityLevelConfiguration: flowcontrolv1.PriorityLevelConfigurationReference{Name: "global-default"},
				MatchingPrecedence:         int32(500 + i),
				DistinguisherMethod:        &flowcontrolv1.FlowDistinguisherMethod{Type: flowcontrolv1.FlowDistinguisherMethodByUserType},
				Rules: []flowcontrolv1.PolicyRulesWithSubjects{{
					Subjects: []flowcontrolv1.Subject{{Kind: flowcontrolv1.SubjectKindUser, User: &flowcontrolv1.UserSubject{Name: "trainenv-manager"}}},
					ResourceRules: []flowcontrolv1.ResourcePolicyRule{{Verbs: fs.verbs, APIGroups: []string{"*"}, Resources: []string{"*"},
						ClusterScope: true, Namespaces: []string{"*"}}},
				}},
			},
		})
		if err != nil {
			return err
		}
	}
	return nil
}

// flowWrites is the FlowSchema of the manager's writes.
const flowWrites = "trainenv-manager-writes"

// ensure creates obj unless it exists.
func ensure(ctx context.Context, c client.Client, obj client.Object) error {
	if err := c.Create(ctx, obj); err != nil && !apierrors.IsAlreadyExists(err) {
		return fmt.Errorf("creating %T %s: %w", obj, obj.GetName(), err)
	}
	return nil
}

func (cl *cluster) kubectl(args ...string) error {
	args = append([]string{"--kubeconfig", filepath.Join(cl.cfg.stateDir, "kubeconfig")}, args...)
	return cl.run("kubectl", args...)
}

func (cl *cluster) script(path string, args ...string) error {
	return cl.run(filepath.Join(cl.cfg.root, path), args...)
}

func (cl *cluster) run(name string, args ...string) error {
	cmd := exec.Command(name, args...)
	cmd.Dir, cmd.Env = cl.cfg.root, cl.env
	out, err := cmd.CombinedOutput()
	if err != nil {
		return fmt.Errorf("%s %s: %w\n%s", name, strings.Join(args, " "), err, out)
	}
	return nil
}

// stop tears the cluster down (down.sh --purge): the benchmark's state is throwaway.
func (cl *cluster) stop() {
	logf("stopping the control plane")
	if err := cl.script("e2e/cluster/down.sh", cl.cfg.stateDir, "--purge"); err != nil {
		logf("down.sh: %v", err)
	}
}
