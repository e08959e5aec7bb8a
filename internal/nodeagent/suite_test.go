package nodeagent_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/types"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/yaml"

	"github.com/trainenv/trainenv/internal/testutil/envtestutil"
	"github.com/trainenv/trainenv/internal/testutil/gen"
)

// The agent's identity as config/agent names it, and the user-info extra the kubelet puts in
// a pod-bound service-account token.
const (
	agentNamespace = "trainenv-system"
	agentUser      = "system:serviceaccount:" + agentNamespace + ":trainenv-node-agent"
	nodeNameExtra  = "authentication.kubernetes.io/node-name"
)

// One real kube-apiserver and etcd for the package, with config/agent applied, so the
// admission policy and RBAC the tests run into are the ones shipped. The NVML tests need
// neither and run without KUBEBUILDER_ASSETS; the API tests skip then, saying why.
var (
	envConfig *rest.Config
	admin     client.Client
	envErr    error
)

func TestMain(m *testing.M) {
	cfg, stop, err := envtestutil.Start()
	if err != nil {
		envErr = err
		os.Exit(m.Run())
	}
	envConfig = cfg
	admin, err = client.New(cfg, client.Options{Scheme: clientgoscheme.Scheme})
	if err == nil {
		err = applyAgentConfig(context.Background())
	}
	code := 1
	if err != nil {
		fmt.Fprintln(os.Stderr, "setting up envtest:", err)
	} else {
		code = m.Run()
	}
	if err := stop(); err != nil {
		fmt.Fprintln(os.Stderr, "stopping envtest:", err)
	}
	os.Exit(code)
}

func needAPIServer(t *testing.T) {
	t.Helper()
	if envErr != nil {
		t.Skip("no API server: ", envErr)
	}
}

func configDir() string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Join(filepath.Dir(file), "..", "..", "config", "agent")
}

// agentResources reads the objects of config/agent, in the order its kustomization lists
// them (so a file left out of the kustomization is left out here too).
func agentResources() ([]*unstructured.Unstructured, error) {
	var k struct {
		Resources []string `json:"resources"`
	}
	data, err := os.ReadFile(filepath.Join(configDir(), "kustomization.yaml"))
	if err == nil {
		err = yaml.Unmarshal(data, &k)
	}
	if err != nil {
		return nil, err
	}
	var objs []*unstructured.Unstructured
	for _, name := range k.Resources {
		data, err := os.ReadFile(filepath.Join(configDir(), name))
		if err != nil {
			return nil, err
		}
		dec := utilyaml.NewYAMLOrJSONDecoder(bytes.NewReader(data), 4096)
		for {
			u := &unstructured.Unstructured{}
			if err := dec.Decode(&u.Object); errors.Is(err, io.EOF) {
				break
			} else if err != nil {
				return nil, fmt.Errorf("%s: %w", name, err)
			}
			if len(u.Object) > 0 {
				objs = append(objs, u)
			}
		}
	}
	return objs, nil
}

// applyAgentConfig creates the namespace config/default would (Pod Security "restricted")
// and everything in config/agent.
func applyAgentConfig(ctx context.Context) error {
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{
		Name:   agentNamespace,
		Labels: map[string]string{"pod-security.kubernetes.io/enforce": "restricted"},
	}}
	if err := admin.Create(ctx, ns); err != nil {
		return err
	}
	objs, err := agentResources()
	if err != nil {
		return err
	}
	for _, o := range objs {
		if err := admin.Create(ctx, o); err != nil {
			return fmt.Errorf("creating %s %s: %w", o.GetKind(), o.GetName(), err)
		}
	}
	return nil
}

// agentClient acts as the agent's service account with a token bound to node (none when
// node is ""), as the kubelet issues it to the agent's pod.
func agentClient(t *testing.T, node string) client.Client {
	t.Helper()
	cfg := rest.CopyConfig(envConfig)
	cfg.Impersonate = rest.ImpersonationConfig{
		UserName: agentUser,
		Groups:   []string{"system:serviceaccounts", "system:serviceaccounts:" + agentNamespace, "system:authenticated"},
	}
	if node != "" {
		cfg.Impersonate.Extra = map[string][]string{nodeNameExtra: {node}}
	}
	c, err := client.New(cfg, client.Options{Scheme: clientgoscheme.Scheme})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// newNode creates a node with some labels and an annotation that are not the agent's, and
// deletes it after the test.
func newNode(t *testing.T, prefix string, labels map[string]string) *corev1.Node {
	t.Helper()
	n := gen.Node("", gen.WithNodeGenerateName(prefix+"-"),
		gen.WithNodeLabels(map[string]string{"topology.kubernetes.io/zone": "zone-a"}), gen.WithNodeLabels(labels),
		gen.WithNodeAnnotations(map[string]string{"example.com/owner": "team-a"}))
	if err := admin.Create(context.Background(), n); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = admin.Delete(context.Background(), n) })
	return n
}

func getNode(t *testing.T, name string) *corev1.Node {
	t.Helper()
	n := &corev1.Node{}
	if err := admin.Get(context.Background(), client.ObjectKey{Name: name}, n); err != nil {
		t.Fatal(err)
	}
	return n
}

func rawMerge(patch string) client.Patch { return client.RawPatch(types.MergePatchType, []byte(patch)) }

func mergePatch(c client.Client, node, patch string) error {
	return c.Patch(context.Background(), &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: node}}, rawMerge(patch))
}

var policyActive sync.Once

// waitForPolicy waits until the API server enforces the admission policy: it loads policies
// and bindings asynchronously after they are created.
func waitForPolicy(t *testing.T) {
	t.Helper()
	policyActive.Do(func() {
		n := newNode(t, "policy-probe", nil)
		agent := agentClient(t, n.Name)
		NewWithT(t).Eventually(func() string {
			err := mergePatch(agent, n.Name, `{"metadata":{"labels":{"probe":"x"}}}`)
			if err == nil {
				_ = mergePatch(admin, n.Name, `{"metadata":{"labels":{"probe":null}}}`)
				return ""
			}
			return err.Error()
		}).WithTimeout(30 * time.Second).WithPolling(200 * time.Millisecond).Should(ContainSubstring("ValidatingAdmissionPolicy"))
	})
}

// deniedByPolicy checks an error is the admission policy's denial, saying want.
func deniedByPolicy(err error, want string) bool {
	return err != nil && strings.Contains(err.Error(), "ValidatingAdmissionPolicy 'trainenv-node-agent'") &&
		strings.Contains(err.Error(), want)
}
