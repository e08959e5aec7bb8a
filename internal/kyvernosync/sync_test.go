package kyvernosync

import (
	"context"
	"testing"
	"time"

	policiesv1 "github.com/kyverno/api/api/policies.kyverno.io/v1"
	. "github.com/onsi/gomega"
	pcv1alpha1 "github.com/sigstore/policy-controller/pkg/apis/policy/v1alpha1"
	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	corev1 "k8s.io/api/core/v1"
	eventsv1 "k8s.io/api/events/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/rest"
	"k8s.io/utils/ptr"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/config"
	"sigs.k8s.io/controller-runtime/pkg/envtest"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"

	"github.com/trainenv/trainenv/internal/testutil/gen"
	"github.com/trainenv/trainenv/internal/testutil/sigstoretest"
	"github.com/trainenv/trainenv/internal/trust/kyverno"
	"github.com/trainenv/trainenv/internal/trust/policy"
)

// One manager, run as the installed service account, follows the ClusterImagePolicies
// through the life of a cluster: started before Kyverno, it waits for Kyverno's CRD; then it
// creates, updates, repairs and deletes the generated ImageValidatingPolicies, re-reads a
// rotated key Secret, follows TrustRoots, and leaves alone a policy that is not its own.
func TestKyvernoPolicyFollowsClusterImagePolicies(t *testing.T) {
	g := NewWithT(t)
	g.SetDefaultEventuallyTimeout(30 * time.Second)
	ctx := t.Context()
	for _, ns := range []string{policy.DefaultSystemNamespace, "trainenv-system"} {
		// Kept: envtest runs no namespace controller, a deleted namespace would stay Terminating.
		if err := k8s.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}); err != nil && !apierrors.IsAlreadyExists(err) {
			t.Fatal(err)
		}
	}
	cfg := bindManagerRBAC(t)
	keyA, keyB := sigstoretest.PublicKeyPEM(t), sigstoretest.PublicKeyPEM(t)
	secret := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "release-key", Namespace: policy.DefaultSystemNamespace},
		StringData: map[string]string{"cosign.pub": keyA}}
	create(t, secret)
	release := clusterImagePolicy("release", pcv1alpha1.Authority{Name: "release-key",
		Key: &pcv1alpha1.KeyRef{SecretRef: &corev1.SecretReference{Name: secret.Name}}})
	create(t, release)

	// Last, after the manager stopped: no garbage collector runs in envtest to remove what
	// it generated, and a next run (go test -count=N) must start without it.
	t.Cleanup(func() {
		_ = k8s.DeleteAllOf(context.Background(), &policiesv1.ImageValidatingPolicy{},
			client.MatchingLabels{kyverno.ManagedByLabel: kyverno.ManagedBy})
	})
	stopped := startManager(t, cfg)
	// No Kyverno yet: the manager keeps running and generates nothing.
	g.Consistently(stopped, "2s").ShouldNot(Receive(), "the manager must not fail without Kyverno's CRD")
	if _, err := envtest.InstallCRDs(envConfig, envtest.CRDInstallOptions{Paths: []string{kyvernoCRD(t)}}); err != nil {
		t.Fatal(err)
	}

	ivp := &policiesv1.ImageValidatingPolicy{}
	key := types.NamespacedName{Name: kyverno.PolicyName(release.Name)}
	g.Eventually(func() error { return k8s.Get(ctx, key, ivp) }).Should(Succeed(), "generated once Kyverno's CRD is served")
	g.Expect(ivp.Labels).To(HaveKeyWithValue(kyverno.ManagedByLabel, kyverno.ManagedBy))
	g.Expect(ivp.Annotations).To(HaveKeyWithValue(kyverno.SourceAnnotation, release.Name))
	g.Expect(ivp.OwnerReferences).To(ConsistOf(metav1.OwnerReference{APIVersion: "policy.sigstore.dev/v1alpha1",
		Kind: "ClusterImagePolicy", Name: release.Name, UID: release.UID, Controller: ptr.To(true)}),
		"owned by its ClusterImagePolicy: the garbage collector removes it with it")
	g.Expect(ivp.ManagedFields).To(ContainElement(And(
		HaveField("Manager", string(FieldOwner)), HaveField("Operation", metav1.ManagedFieldsOperationApply))))
	g.Expect(ivp.Spec.Attestors).To(HaveLen(1))
	g.Expect(ivp.Spec.Attestors[0].Cosign.Key.Data).To(Equal(keyA), "the key read from the Secret")
	g.Expect(ivp.Spec.ValidationAction).To(Equal([]admissionregistrationv1.ValidationAction{admissionregistrationv1.Deny}))

	// The ClusterImagePolicy changes: the generated policy follows.
	patch := client.MergeFrom(release.DeepCopy())
	release.Spec.Mode = "warn"
	release.Spec.Images = []pcv1alpha1.ImagePattern{{Glob: "registry.example.com/ml/**"}}
	g.Expect(k8s.Patch(ctx, release, patch)).To(Succeed())
	g.Eventually(func(g Gomega) {
		g.Expect(k8s.Get(ctx, key, ivp)).To(Succeed())
		g.Expect(ivp.Spec.ValidationAction).To(Equal([]admissionregistrationv1.ValidationAction{admissionregistrationv1.Warn, admissionregistrationv1.Audit}))
		g.Expect(ivp.Spec.MatchImageReferences).To(ConsistOf(policiesv1.MatchImageReference{Glob: "registry.example.com/ml/**"}))
	}).Should(Succeed())

	// A hand edit of the generated policy is taken back.
	edit := client.MergeFrom(ivp.DeepCopy())
	ivp.Spec.ValidationAction = []admissionregistrationv1.ValidationAction{admissionregistrationv1.Audit}
	g.Expect(k8s.Patch(ctx, ivp, edit, client.FieldOwner("someone"))).To(Succeed())
	g.Eventually(func() []admissionregistrationv1.ValidationAction {
		g.Expect(k8s.Get(ctx, key, ivp)).To(Succeed())
		return ivp.Spec.ValidationAction
	}).Should(Equal([]admissionregistrationv1.ValidationAction{admissionregistrationv1.Warn, admissionregistrationv1.Audit}))

	// A rotated key (Secrets are not watched) reaches the policy within the resync.
	secret.StringData = map[string]string{"cosign.pub": keyB}
	g.Expect(k8s.Update(ctx, secret)).To(Succeed())
	g.Eventually(func() string {
		g.Expect(k8s.Get(ctx, key, ivp)).To(Succeed())
		return ivp.Spec.Attestors[0].Cosign.Key.Data
	}).Should(Equal(keyB))

	// The ClusterImagePolicy is deleted: so is its policy.
	g.Expect(k8s.Delete(ctx, release)).To(Succeed())
	g.Eventually(func() bool { return apierrors.IsNotFound(k8s.Get(ctx, key, ivp)) }).Should(BeTrue())

	t.Run("a TrustRoot that appears later", func(t *testing.T) { trustRootLater(t, NewWithT(t)) })
	t.Run("a policy of the same name that is not trainenv's", func(t *testing.T) { foreignPolicy(t, NewWithT(t)) })
}

// A keyless policy whose TrustRoot is missing is not generated (an event says why); the
// TrustRoot's creation, not a retry (an hour away here), generates it.
func trustRootLater(t *testing.T, g *WithT) {
	ctx := t.Context()
	root := sigstoretest.New(t).TrustRoot(t, "private-sigstore")
	ci := clusterImagePolicy("ci", pcv1alpha1.Authority{Name: "ci", Keyless: &pcv1alpha1.KeylessRef{
		URL: sigstoretest.FulcioURL, TrustRootRef: root.Name,
		Identities: []pcv1alpha1.Identity{{Issuer: "https://token.ci.trainenv.test", Subject: "release"}},
	}})
	create(t, ci)
	g.Eventually(func() []string { return eventsAbout(t, ci.Name) }, "20s").Should(ContainElement(And(
		HavePrefix(ReasonNotGenerated+": "), ContainSubstring("TrustRoot private-sigstore is missing"))))
	ivp := &policiesv1.ImageValidatingPolicy{}
	key := types.NamespacedName{Name: kyverno.PolicyName(ci.Name)}
	g.Expect(apierrors.IsNotFound(k8s.Get(ctx, key, ivp))).To(BeTrue())

	create(t, root)
	g.Eventually(func() error { return k8s.Get(ctx, key, ivp) }, "20s").Should(Succeed())
	g.Expect(ivp.Spec.Attestors[0].Cosign.Keyless.Roots).To(Equal(string(root.Spec.SigstoreKeys.CertificateAuthorities[0].CertChain)))
}

// An ImageValidatingPolicy of the generated name that someone else made is neither
// overwritten nor deleted; an event names the conflict.
func foreignPolicy(t *testing.T, g *WithT) {
	ctx := t.Context()
	theirs := clusterImagePolicy("team", pcv1alpha1.Authority{Name: "k", Key: &pcv1alpha1.KeyRef{Data: sigstoretest.PublicKeyPEM(t)}})
	res, err := kyverno.GenerateFor(ctx, &policy.StaticSource{}, theirs)
	g.Expect(err).NotTo(HaveOccurred())
	foreign := res.Policy
	foreign.Labels, foreign.Annotations = nil, nil
	create(t, foreign)
	before := foreign.ResourceVersion

	create(t, clusterImagePolicy("team", pcv1alpha1.Authority{Name: "other", Key: &pcv1alpha1.KeyRef{Data: sigstoretest.PublicKeyPEM(t)}}))
	g.Eventually(func() []string { return eventsAbout(t, "team") }, "20s").Should(ContainElement(And(
		HavePrefix(ReasonConflict+": "), ContainSubstring("not managed by trainenv"))))
	g.Expect(k8s.Delete(ctx, &pcv1alpha1.ClusterImagePolicy{ObjectMeta: metav1.ObjectMeta{Name: "team"}})).To(Succeed())
	g.Consistently(func() string {
		live := &policiesv1.ImageValidatingPolicy{}
		g.Expect(k8s.Get(ctx, client.ObjectKeyFromObject(foreign), live)).To(Succeed())
		return live.ResourceVersion
	}, "2s").Should(Equal(before), "not trainenv's: never written, never deleted")
}

// startManager runs the controller as the manager does with --kyverno-policy, with short
// intervals; the channel receives the manager's exit.
func startManager(t *testing.T, cfg *rest.Config) <-chan error {
	t.Helper()
	mgr, err := ctrl.NewManager(cfg, ctrl.Options{Scheme: scheme, Metrics: metricsserver.Options{BindAddress: "0"},
		// go test -count=N starts a manager per run in one process.
		Controller: config.Controller{SkipNameValidation: ptr.To(true)}})
	if err != nil {
		t.Fatal(err)
	}
	src := &policy.APISource{Policies: mgr.GetClient(), Refs: mgr.GetAPIReader()}
	if err := Setup(mgr, Options{Source: src, Resync: time.Second, Retry: time.Hour, CRDPoll: 200 * time.Millisecond}); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	stopped := make(chan error, 1)
	go func() { stopped <- mgr.Start(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-stopped; err != nil {
			t.Errorf("the manager stopped with an error: %v", err)
		}
	})
	return stopped
}

func clusterImagePolicy(name string, a pcv1alpha1.Authority) *pcv1alpha1.ClusterImagePolicy {
	return gen.ClusterImagePolicy(name, gen.ForImages("registry.example.com/"+name+"/**"), gen.WithAuthority(a))
}

// eventsAbout lists the events about a ClusterImagePolicy as "reason: note" (cluster-scoped
// objects' events land in the default namespace).
func eventsAbout(t *testing.T, cipName string) []string {
	var list eventsv1.EventList
	if err := k8s.List(t.Context(), &list, client.InNamespace(metav1.NamespaceDefault)); err != nil {
		t.Fatal(err)
	}
	var reasons []string
	for _, e := range list.Items {
		if e.Regarding.Kind == "ClusterImagePolicy" && e.Regarding.Name == cipName {
			reasons = append(reasons, e.Reason+": "+e.Note)
		}
	}
	return reasons
}
