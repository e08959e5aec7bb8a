package controller_test

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	eventsv1 "k8s.io/api/events/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/sets"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/yaml"

	trainenvv1 "github.com/trainenv/trainenv/api/v1alpha1"
	"github.com/trainenv/trainenv/internal/testutil/registrytest"
)

// No Secret value ever reaches the manager's logs (at its most verbose) or events: the
// generated Jupyter token and SSH host private keys, and a registry password from a pull
// Secret, through a whole life (pull-secret wait, resolve, access, workload, pod failing).
func TestSecretsNeverReachLogsOrEvents(t *testing.T) {
	g := NewWithT(t)
	f := newFixture(t)
	reg := registrytest.New(t)
	const password = "pull-Secret-Value-7f3a9c"
	reg.RequireBasicAuth("alice", password)
	reg.Push("private/pytorch", "2.4", registrytest.Image(t))
	f.gpuNode("secrets-a100")
	f.putSecret("secrets-keys", map[string]string{"authorized_keys": authorizedKey(t)})
	tm := startManager(t, f.ns)

	// First with wrong credentials (the registry's refusal is logged and shown), then right.
	dockerConfig := func(password string) map[string][]byte {
		return map[string][]byte{corev1.DockerConfigJsonKey: []byte(`{"auths":{"` + reg.Host + `":{"username":"alice","password":"` + password + `"}}}`)}
	}
	regcred := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "regcred", Namespace: f.ns}, Type: corev1.SecretTypeDockerConfigJson,
		Data: dockerConfig("wrong-" + password)}
	g.Expect(k8s.Create(f.ctx, regcred)).To(Succeed())
	te := f.create("secrets", reg.Host+"/private/pytorch:2.4", withAccess, func(te *trainenvv1.TrainingEnvironment) {
		te.Spec.ImagePullSecrets = []corev1.LocalObjectReference{{Name: "regcred"}}
	})
	g.Eventually(func() *trainenvv1.TrainingEnvironment { return f.get(te) }, 20*time.Second, 100*time.Millisecond).Should(
		haveCondition(trainenvv1.ConditionImageResolved, metav1.ConditionFalse, trainenvv1.ReasonRegistryUnauthorized))
	regcred.Data = dockerConfig(password)
	g.Expect(k8s.Update(f.ctx, regcred)).To(Succeed())
	g.Eventually(func() error { _, err := f.statefulSet(te); return err }, 30*time.Second, 100*time.Millisecond).Should(Succeed())
	pod := f.podFor(te, "secrets-a100")
	pod.Status.ContainerStatuses = []corev1.ContainerStatus{{Name: "main", State: corev1.ContainerState{
		Waiting: &corev1.ContainerStateWaiting{Reason: "CrashLoopBackOff", Message: "back-off restarting failed container"}}}}
	g.Expect(k8s.Status().Update(f.ctx, pod)).To(Succeed())
	g.Eventually(func() *trainenvv1.TrainingEnvironment { return f.get(te) }, 20*time.Second, 100*time.Millisecond).Should(
		haveCondition(trainenvv1.ConditionWorkloadReady, metav1.ConditionFalse, trainenvv1.ReasonContainerFailing))

	secrets := map[string]string{"registry password": password}
	token := f.secret("secrets-jupyter")
	secrets["Jupyter token"] = string(token.Data["token"])
	for file, data := range f.secret("secrets-ssh-host-keys").Data {
		if !strings.HasSuffix(file, ".pub") {
			secrets["host key "+file] = string(data)
			// A key's base64 body, in case a log line were to carry it without its PEM frame.
			secrets["host key body "+file] = pemBody(data)
		}
	}
	var list eventsv1.EventList
	g.Expect(k8s.List(f.ctx, &list, client.InNamespace(f.ns))).To(Succeed())
	var events strings.Builder
	for _, e := range list.Items {
		events.WriteString(e.Reason + " " + e.Note + "\n")
	}
	status, err := yaml.Marshal(f.get(te).Status)
	g.Expect(err).NotTo(HaveOccurred())
	logs := tm.logs.String()
	g.Expect(len(logs)).To(BeNumerically(">", 1000), "the logs were captured")
	g.Expect(events.String()).To(ContainSubstring(trainenvv1.ReasonRegistryUnauthorized))
	for what, value := range secrets {
		g.Expect(value).NotTo(BeEmpty(), what)
		g.Expect(logs).NotTo(ContainSubstring(value), "%s in the manager's logs", what)
		g.Expect(events.String()).NotTo(ContainSubstring(value), "%s in events", what)
		g.Expect(string(status)).NotTo(ContainSubstring(value), "%s in status", what)
	}
}

func pemBody(data []byte) string {
	lines := strings.Split(strings.TrimSpace(string(data)), "\n")
	if len(lines) < 3 {
		return string(data)
	}
	return strings.Join(lines[1:len(lines)-1], "")[:64]
}

// The manager's ClusterRole (config/rbac/role.yaml, generated from the kubebuilder markers)
// has no wildcard and no verb the operator does not use: the allowed verbs per resource are
// what the code does with it (reads through the cache: get, list, watch; writes: create,
// update, patch), listed here by hand next to the call sites they stand for.
func TestManagerClusterRoleIsLeastPrivilege(t *testing.T) {
	needEnv(t)
	g := NewWithT(t)
	used := map[string]sets.Set[string]{
		// Reconcile reads it through the cache; patchStatus patches status once per pass.
		"trainenv.io/trainingenvironments":        sets.New("get", "list", "watch"),
		"trainenv.io/trainingenvironments/status": sets.New("patch"),
		// ensureOwned: Get through the cache (list, watch), Create, Update; stopOnVerificationLoss: Patch.
		"apps/statefulsets":                 sets.New("get", "list", "watch", "create", "update", "patch"),
		"networking.k8s.io/networkpolicies": sets.New("get", "list", "watch", "create", "update"),
		// ensureWorkspace: Get through the cache, Create, Patch.
		"/persistentvolumeclaims": sets.New("get", "list", "watch", "create", "patch"),
		// observePod and the pod watch; checkCompatibility lists nodes, the node watch.
		"/pods":  sets.New("get", "list", "watch"),
		"/nodes": sets.New("get", "list", "watch"),
		// observeAccess reads the audit trail from the main container's log (PodLogs).
		"/pods/log": sets.New("get"),
		// gpu.deviceClassName: checkDevices lists ResourceSlices, the slice watch; the
		// workload step's ensureOwned gets (through the cache) and creates the claim template
		// (its spec is immutable: never updated).
		"resource.k8s.io/resourceslices":         sets.New("get", "list", "watch"),
		"resource.k8s.io/resourceclaimtemplates": sets.New("get", "list", "watch", "create"),
		// Pull, token and authorized_keys Secrets read by name, uncached (APIReader);
		// ensureOwnedSecret creates the generated ones. The policy source reads key Secrets
		// and ConfigMaps by name in cosign-system (the Role).
		"/secrets":    sets.New("get", "create"),
		"/configmaps": sets.New("get"),
		// The event recorder (events.k8s.io) creates, and patches an event series.
		"events.k8s.io/events": sets.New("create", "patch"),
		// The policy watches and the verifier's policy source.
		"policy.sigstore.dev/clusterimagepolicies": sets.New("get", "list", "watch"),
		"policy.sigstore.dev/trustroots":           sets.New("get", "list", "watch"),
		// The secure metrics endpoint asks who a scraper is and whether it may read /metrics
		// (internal/metrics/server.go).
		"authentication.k8s.io/tokenreviews":        sets.New("create"),
		"authorization.k8s.io/subjectaccessreviews": sets.New("create"),
	}
	raw, err := os.ReadFile(filepath.Join("..", "..", "config", "rbac", "role.yaml"))
	g.Expect(err).NotTo(HaveOccurred())
	var sawClusterRole bool
	for _, doc := range bytes.Split(raw, []byte("\n---\n")) {
		var role rbacv1.ClusterRole // a Role has the same rules
		g.Expect(yaml.Unmarshal(doc, &role)).To(Succeed())
		sawClusterRole = sawClusterRole || role.Kind == "ClusterRole"
		for _, rule := range role.Rules {
			g.Expect(rule.NonResourceURLs).To(BeEmpty(), "%s: no non-resource URLs", role.Name)
			for _, group := range rule.APIGroups {
				for _, resource := range rule.Resources {
					key := group + "/" + resource
					g.Expect(group+resource+strings.Join(rule.Verbs, "")).NotTo(ContainSubstring("*"), "%s: a wildcard in %s", role.Name, key)
					allowed, ok := used[key]
					g.Expect(ok).To(BeTrue(), "%s grants %s, which the operator does not use", role.Name, key)
					g.Expect(sets.List(sets.New(rule.Verbs...).Difference(allowed))).To(BeEmpty(), "%s: verbs on %s the operator does not use", role.Name, key)
				}
			}
		}
	}
	g.Expect(sawClusterRole).To(BeTrue())
}
