package kyverno

import (
	"context"
	"fmt"
	"os"
	"testing"

	policiesv1 "github.com/kyverno/api/api/policies.kyverno.io/v1"
	. "github.com/onsi/gomega"
	pcv1alpha1 "github.com/sigstore/policy-controller/pkg/apis/policy/v1alpha1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/trainenv/trainenv/internal/testutil/envtestutil"
	"github.com/trainenv/trainenv/internal/testutil/gen"
	"github.com/trainenv/trainenv/internal/testutil/sigstoretest"
	"github.com/trainenv/trainenv/internal/trust/policy"
	"github.com/trainenv/trainenv/internal/workload"
)

var k8s client.Client

// TestMain starts a real kube-apiserver with Kyverno's own ImageValidatingPolicy CRD, from
// the github.com/kyverno/api module the generator is built with.
func TestMain(m *testing.M) {
	crd, err := envtestutil.KyvernoCRD()
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	cfg, stop, err := envtestutil.Start(crd)
	if err != nil {
		fmt.Fprintln(os.Stderr, "starting envtest:", err)
		os.Exit(1)
	}
	scheme := runtime.NewScheme()
	if err := policiesv1.Install(scheme); err != nil {
		panic(err)
	}
	if k8s, err = client.New(cfg, client.Options{Scheme: scheme}); err != nil {
		panic(err)
	}
	code := m.Run()
	_ = stop()
	os.Exit(code)
}

const (
	ciIssuer  = "https://token.ci.trainenv.test"
	ciSubject = "https://git.trainenv.test/ml/images/.ci/release.yml@refs/heads/main"
)

// TestGeneratedPoliciesMatchKyvernosSchema generates the Kyverno policy of each kind of
// ClusterImagePolicy authority, creates it in the API server under Kyverno's real CRD, and
// reads it back unchanged (nothing pruned: every field exists in Kyverno's schema), then
// checks that it trusts what the ClusterImagePolicy trusts.
func TestGeneratedPoliciesMatchKyvernosSchema(t *testing.T) {
	g := NewWithT(t)
	ctx := context.Background()
	ss := sigstoretest.New(t)
	root := ss.TrustRoot(t, "private-sigstore")
	releasePEM, secretPEM := sigstoretest.PublicKeyPEM(t), sigstoretest.PublicKeyPEM(t)
	src := &policy.StaticSource{
		Roots:   []pcv1alpha1.TrustRoot{*root},
		Secrets: map[string]*corev1.Secret{"team-key": {Data: map[string][]byte{"cosign.pub": []byte(secretPEM)}}},
		Policies: []pcv1alpha1.ClusterImagePolicy{
			cip("release", "enforce", pcv1alpha1.Authority{Name: "release-key", Key: &pcv1alpha1.KeyRef{Data: releasePEM}}),
			cip("bundles", "enforce", pcv1alpha1.Authority{Name: "release-key", Key: &pcv1alpha1.KeyRef{Data: releasePEM}, SignatureFormat: "bundle"}),
			cip("team", "warn", pcv1alpha1.Authority{Name: "team-key", Key: &pcv1alpha1.KeyRef{SecretRef: &corev1.SecretReference{Name: "team-key"}}}),
			cip("ci", "enforce", pcv1alpha1.Authority{Name: "ci", Keyless: &pcv1alpha1.KeylessRef{
				URL: sigstoretest.FulcioURL, TrustRootRef: root.Name,
				Identities: []pcv1alpha1.Identity{{Issuer: ciIssuer, SubjectRegExp: "^https://git.trainenv.test/ml/.*$"}},
			}}),
			cip("provenance", "enforce", pcv1alpha1.Authority{Name: "release-key", Key: &pcv1alpha1.KeyRef{Data: releasePEM},
				Attestations: []pcv1alpha1.Attestation{{Name: "slsa", PredicateType: "slsaprovenance",
					Policy: &pcv1alpha1.Policy{Type: "cue", Data: `predicate: builder: id: "https://builder.example.com"`}}}}),
		},
	}

	results, err := Generate(ctx, src)
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(results).To(HaveLen(5))
	byName := map[string]*policiesv1.ImageValidatingPolicy{}
	notes := map[string][]string{}
	for _, r := range results {
		notes[r.Policy.Name] = r.Notes
		sent := r.Policy.DeepCopy()
		g.Expect(k8s.Create(ctx, r.Policy)).To(Succeed(), "Kyverno's CRD accepts %s", sent.Name)
		t.Cleanup(func() { _ = k8s.Delete(context.Background(), sent) })
		got := &policiesv1.ImageValidatingPolicy{}
		g.Expect(k8s.Get(ctx, client.ObjectKeyFromObject(sent), got)).To(Succeed())
		g.Expect(equality.Semantic.DeepEqual(got.Spec, sent.Spec)).To(BeTrue(), "%s read back as sent (nothing pruned):\nsent %+v\ngot  %+v", sent.Name, sent.Spec, got.Spec)
		byName[sent.Name] = got
	}

	release := byName["trainenv-release"].Spec
	g.Expect(release.MatchConstraints.ObjectSelector.MatchExpressions).To(ConsistOf(
		metav1.LabelSelectorRequirement{Key: workload.LabelEnvironment, Operator: metav1.LabelSelectorOpExists}))
	g.Expect(release.MatchImageReferences).To(ConsistOf(policiesv1.MatchImageReference{Glob: "registry.example.com/release/**"}))
	g.Expect(*release.ValidationConfigurations.MutateDigest).To(BeFalse(), "never rewrites the pod")
	g.Expect(*release.ValidationConfigurations.VerifyDigest).To(BeTrue())
	g.Expect(release.Attestors).To(HaveLen(1))
	g.Expect(release.Attestors[0].Cosign.Key.Data).To(Equal(releasePEM))
	g.Expect(release.Validations[0].Expression).To(Equal(pinnedExpression))
	g.Expect(release.Validations[1].Expression).To(Equal(`images.containers.map(image, verifyImageSignatures(image, [attestors["release-key"]]) > 0).all(ok, ok)`))
	g.Expect(string(release.ValidationAction[0])).To(Equal("Deny"))

	team := byName["trainenv-team"].Spec
	g.Expect(team.Attestors[0].Cosign.Key.Data).To(Equal(secretPEM), "the Secret's key, inlined")
	g.Expect(team.ValidationAction).NotTo(ContainElement(BeEquivalentTo("Deny")), "warn mode warns")

	ci := byName["trainenv-ci"].Spec.Attestors[0].Cosign
	g.Expect(ci.Keyless.Identities).To(ConsistOf(policiesv1.Identity{Issuer: ciIssuer, SubjectRegExp: "^https://git.trainenv.test/ml/.*$"}))
	g.Expect(ci.Keyless.Roots).To(Equal(string(root.Spec.SigstoreKeys.CertificateAuthorities[0].CertChain)))
	g.Expect(ci.CTLog.CTLogPubKey).To(Equal(string(root.Spec.SigstoreKeys.CTLogs[0].PublicKey)), "SCTs checked against the TrustRoot's CT log")
	g.Expect(ci.CTLog.InsecureIgnoreSCT).To(BeFalse())

	prov := byName["trainenv-provenance"].Spec
	g.Expect(prov.Attestations).To(ConsistOf(policiesv1.Attestation{Name: "release-key-slsa", InToto: &policiesv1.InToto{Type: "https://slsa.dev/provenance/v0.2"}}))
	g.Expect(prov.Validations[1].Expression).To(ContainSubstring(`verifyAttestationSignatures(image, attestations["release-key-slsa"], [attestors["release-key"]]) > 0`))
	g.Expect(notes["trainenv-provenance"]).To(ContainElement(ContainSubstring("cue predicate policy is checked by trainenv only")))
	g.Expect(notes["trainenv-provenance"]).To(ContainElement(ContainSubstring("kyverno/kyverno#17109")),
		"an attestation without a transparency log: Kyverno denies it (see TestKyvernoCLIAdmitsOnlySignedDigests)")
	g.Expect(notes["trainenv-release"]).NotTo(ContainElement(ContainSubstring("#17109")), "signatures are not affected")
	g.Expect(notes["trainenv-bundles"]).To(ContainElement(ContainSubstring("signatureFormat: bundle is checked by trainenv only")))
	g.Expect(notes["trainenv-release"]).To(BeEmpty())
}

// The schema really is enforced: an attestor that is neither cosign nor notary is refused.
func TestKyvernoSchemaRejectsInvalidPolicies(t *testing.T) {
	g := NewWithT(t)
	results, err := Generate(context.Background(), &policy.StaticSource{Policies: []pcv1alpha1.ClusterImagePolicy{
		cip("broken", "enforce", pcv1alpha1.Authority{Name: "k", Key: &pcv1alpha1.KeyRef{Data: sigstoretest.PublicKeyPEM(t)}}),
	}})
	g.Expect(err).NotTo(HaveOccurred())
	bad := results[0].Policy
	bad.Spec.Attestors[0].Cosign = nil
	err = k8s.Create(context.Background(), bad)
	g.Expect(err).To(HaveOccurred())
	t.Log(err)
}

func TestUntranslatableAuthorityIsAnError(t *testing.T) {
	g := NewWithT(t)
	_, err := Generate(context.Background(), &policy.StaticSource{Policies: []pcv1alpha1.ClusterImagePolicy{
		cip("ci", "enforce", pcv1alpha1.Authority{Name: "ci", Keyless: &pcv1alpha1.KeylessRef{TrustRootRef: "absent",
			Identities: []pcv1alpha1.Identity{{Issuer: ciIssuer, Subject: ciSubject}}}}),
	}})
	g.Expect(err).To(MatchError(ContainSubstring("TrustRoot absent is missing")))
}

func cip(name, mode string, authorities ...pcv1alpha1.Authority) pcv1alpha1.ClusterImagePolicy {
	return *gen.ClusterImagePolicy(name, gen.WithMode(mode),
		gen.ForImages("registry.example.com/"+name+"/**"), gen.WithAuthorities(authorities...))
}
