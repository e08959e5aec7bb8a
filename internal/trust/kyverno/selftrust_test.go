package kyverno

import (
	"context"
	"testing"

	policiesv1 "github.com/kyverno/api/api/policies.kyverno.io/v1"
	. "github.com/onsi/gomega"
	"k8s.io/apimachinery/pkg/api/equality"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/trainenv/trainenv/internal/testutil/sigstoretest"
)

// TestSelfTrustPolicies: the policies that trust trainenv's own images are accepted by
// policy-controller's validation and Kyverno's CRD as they are, cover every pod (the
// manager's and node agent's too, not only environments'), check init containers (the
// tools image) as well as containers, and trust exactly the given signer.
func TestSelfTrustPolicies(t *testing.T) {
	g := NewWithT(t)
	ctx := context.Background()
	key := sigstoretest.PublicKeyPEM(t)
	cip, ivp, err := SelfTrustPolicies(ctx, SelfTrust{Images: []string{"registry.example.com/trainenv/**"}, PublicKey: key})
	g.Expect(err).NotTo(HaveOccurred())

	g.Expect(cip.Name).To(Equal(SelfTrustName))
	g.Expect(cip.Spec.Authorities).To(HaveLen(1))
	g.Expect(cip.Spec.Authorities[0].Key.Data).To(Equal(key))
	checked := cip.DeepCopy()
	checked.SetDefaults(ctx)
	g.Expect(checked.Validate(ctx)).To(BeNil(), "policy-controller's own validation accepts it")

	sent := ivp.DeepCopy()
	g.Expect(k8s.Create(ctx, ivp)).To(Succeed(), "Kyverno's CRD accepts it")
	t.Cleanup(func() { _ = k8s.Delete(context.Background(), sent) })
	got := &policiesv1.ImageValidatingPolicy{}
	g.Expect(k8s.Get(ctx, client.ObjectKeyFromObject(sent), got)).To(Succeed())
	g.Expect(equality.Semantic.DeepEqual(got.Spec, sent.Spec)).To(BeTrue(), "read back as sent (nothing pruned)")
	s := got.Spec
	g.Expect(s.MatchConstraints.ObjectSelector).To(BeNil(), "every pod, not only environments'")
	g.Expect(s.MatchImageReferences).To(ConsistOf(policiesv1.MatchImageReference{Glob: "registry.example.com/trainenv/**"}))
	g.Expect(s.Attestors).To(HaveLen(1))
	g.Expect(s.Attestors[0].Cosign.Key.Data).To(Equal(key))
	g.Expect(*s.ValidationConfigurations.MutateDigest).To(BeFalse())
	g.Expect(s.Validations[1].Expression).To(ContainSubstring(`images.initContainers`))
	g.Expect(string(s.ValidationAction[0])).To(Equal("Deny"))

	_, ivp, err = SelfTrustPolicies(ctx, SelfTrust{Images: []string{"ghcr.io/trainenv/**"},
		Issuer: "https://token.actions.githubusercontent.com", SubjectRegExp: `^https://github\.com/trainenv/trainenv/\.github/workflows/release\.yml@refs/tags/v.*$`})
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(ivp.Spec.Attestors[0].Cosign.Keyless.Identities).To(HaveLen(1))

	for _, bad := range []SelfTrust{
		{PublicKey: key},
		{Images: []string{"x/**"}},
		{Images: []string{"x/**"}, PublicKey: key, Issuer: "https://issuer"},
		{Images: []string{"x/**"}, Issuer: "https://issuer"},
	} {
		_, _, err := SelfTrustPolicies(ctx, bad)
		g.Expect(err).To(HaveOccurred(), "%+v", bad)
	}
}
