package policy

import (
	"testing"

	. "github.com/onsi/gomega"
	pcv1alpha1 "github.com/sigstore/policy-controller/pkg/apis/policy/v1alpha1"

	trainenvv1 "github.com/trainenv/trainenv/api/v1alpha1"
	"github.com/trainenv/trainenv/internal/testutil/registrytest"
	"github.com/trainenv/trainenv/internal/testutil/sigstoretest"
	"github.com/trainenv/trainenv/internal/trust"
)

// Negative cases from sigstore's advisories, through policy-controller's engine as trainenv
// runs it. Each would let an image run that the policy does not admit.

// CVE-2022-35929 (cosign) and CVE-2022-35930 (policy-controller): an attestation of
// another predicate type, even signed by the trusted key and with content the policy
// would accept, does not satisfy a required SLSA provenance; nor does one whose OCI
// annotation claims the required type while its signed statement is of another.
func TestAttestationOfAnotherPredicateTypeDoesNotSatisfy(t *testing.T) {
	reg := registrytest.New(t)
	release := newSigner(t)
	glob := reg.Host + "/team/*"
	policy := provenancePolicy("provenance", glob, release.publicPEM, trustedBuilder)
	const custom = "https://cosign.sigstore.dev/attestation/v1"

	cases := []struct {
		name                      string
		statement, annotationType string
	}{
		{"custom predicate, custom annotation", "custom", custom},
		{"custom predicate, annotation claiming SLSA v0.2", "custom", slsaV02},
		{"SPDX predicate, annotation claiming SLSA v0.2", "spdxjson", slsaV02},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			g := NewWithT(t)
			img := push(t, reg, "team/app")
			release.sign(t, img)
			release.attestAs(t, img, tc.statement, tc.annotationType, trustedBuilder)
			got, err := New(&StaticSource{Policies: pl(policy)}, Options{}).Verify(bg, trust.Request{Image: img})
			g.Expect(err).NotTo(HaveOccurred())
			t.Logf("%s: %s", got.Reason, got.Message)
			g.Expect(got.Allowed()).To(BeFalse())
			g.Expect(got.Reason).To(Or(Equal(trainenvv1.ReasonAttestationMissing), Equal(trainenvv1.ReasonAttestationPolicyFailed)))
		})
	}
	// The control: the same key and content as an SLSA v0.2 statement pass.
	g := NewWithT(t)
	img := push(t, reg, "team/app")
	release.attestAs(t, img, "slsaprovenance", slsaV02, trustedBuilder)
	got, err := New(&StaticSource{Policies: pl(policy)}, Options{}).Verify(bg, trust.Request{Image: img})
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(got.Reason).To(Equal(trainenvv1.ReasonVerified), got.Message)
}

// GHSA-fx35-mq7g-6g98: a signature made with a bare public key (no certificate) must not
// pass a keyless authority, whose identity checks need a certificate; a key authority's
// signature does not stand in for an identity.
func TestBareKeySignatureDoesNotSkipIdentityChecks(t *testing.T) {
	g := NewWithT(t)
	reg := registrytest.New(t)
	ss := sigstoretest.New(t)
	root := ss.TrustRoot(t, "private-sigstore")
	img := push(t, reg, "team/app")
	newSigner(t).sign(t, img) // cosign sign --key: no certificate
	p := keylessPolicy("keyless", reg.Host+"/team/*", root.Name, pcv1alpha1.Identity{Issuer: ciIssuer, Subject: ciSubject})

	got, err := New(&StaticSource{Policies: pl(p), Roots: []pcv1alpha1.TrustRoot{*root}}, Options{}).Verify(bg, trust.Request{Image: img})
	g.Expect(err).NotTo(HaveOccurred())
	t.Logf("%s: %s", got.Reason, got.Message)
	g.Expect(got.Allowed()).To(BeFalse())
	g.Expect(got.Reason).To(Equal(trainenvv1.ReasonUntrustedSigner))

	// Signed keyless as the right identity as well: then, and only then, it passes.
	ss.Sign(t, img, ss.Issue(t, sigstoretest.Identity{Issuer: ciIssuer, Subject: ciSubject}))
	got, err = New(&StaticSource{Policies: pl(p), Roots: []pcv1alpha1.TrustRoot{*root}}, Options{}).Verify(bg, trust.Request{Image: img})
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(got.Reason).To(Equal(trainenvv1.ReasonVerified), got.Message)
}
