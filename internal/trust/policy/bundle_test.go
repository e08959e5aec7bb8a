package policy

import (
	"crypto/x509"
	"testing"

	. "github.com/onsi/gomega"
	pcv1alpha1 "github.com/sigstore/policy-controller/pkg/apis/policy/v1alpha1"

	trainenvv1 "github.com/trainenv/trainenv/api/v1alpha1"
	"github.com/trainenv/trainenv/internal/testutil/registrytest"
	"github.com/trainenv/trainenv/internal/testutil/sigstoretest"
	"github.com/trainenv/trainenv/internal/trust"
)

const vulnPredicate = "https://cosign.sigstore.dev/attestation/vuln/v1"

// TestVerifyBundles: sigstore bundles attached as OCI referrers (cosign v3's default) are
// verified with the same policies, reasons and evidence as legacy signatures, and an
// authority finds signatures in either format unless it pins signatureFormat.
func TestVerifyBundles(t *testing.T) {
	for _, api := range []bool{false, true} {
		name := "referrers tag (no referrers API, as distribution 2.8)"
		var opts []registrytest.Option
		if api {
			name, opts = "referrers API", []registrytest.Option{registrytest.WithReferrersAPI()}
		}
		t.Run(name, func(t *testing.T) { testVerifyBundles(t, registrytest.New(t, opts...)) })
	}
}

func testVerifyBundles(t *testing.T, reg *registrytest.Registry) {
	release, other := newSigner(t), newSigner(t)
	glob := reg.Host + "/team/**"
	img := func(name string, sign ...func(string)) string {
		i := push(t, reg, "team/"+name)
		for _, s := range sign {
			s(i)
		}
		return i
	}
	bundled := img("bundled", func(i string) { release.signBundle(t, i) })
	foreign := img("foreign", func(i string) { other.signBundle(t, i) })
	unsigned := img("unsigned")
	legacyForeignBundleTrusted := img("mixed", func(i string) { other.sign(t, i) }, func(i string) { release.signBundle(t, i) })
	legacyOnly := img("legacy", func(i string) { release.sign(t, i) })
	both := img("both", func(i string) { release.sign(t, i) }, func(i string) { release.signBundle(t, i) })
	elsewhere := img("elsewhere")
	copied := img("copied", func(i string) {
		// A bundle the trusted key made for another digest, attached to this one.
		attachBundle(t, i, release.sv, bundleSpec{subject: elsewhere, predicateType: cosignSignPredicate, predicate: "{}"})
	})
	release.signBundle(t, elsewhere)
	attestedOnly := img("attested-only", func(i string) { release.attestBundle(t, i, trustedBuilder) })
	wrongBuilder := img("wrong-builder", func(i string) { release.attestBundle(t, i, "https://evil.example.com/builder") })
	foreignAttestation := img("foreign-attestation", func(i string) { other.attestBundle(t, i, trustedBuilder) })
	provenanceLegacyVulnBundle := img("two-formats", func(i string) {
		release.attest(t, i, trustedBuilder)
		attachBundle(t, i, release.sv, bundleSpec{predicateType: vulnPredicate, predicate: `{"scanner":{"uri":"pkg:github/aquasecurity/trivy@0.58.1"}}`})
	})

	key := keyPolicy("release", glob, release.publicPEM)
	pinned := func(format string) pcv1alpha1.ClusterImagePolicy {
		p := keyPolicy("release", glob, release.publicPEM)
		p.Spec.Authorities[0].SignatureFormat = format
		return p
	}
	slsa := provenancePolicy("provenance", glob, release.publicPEM, trustedBuilder)
	twoAttestations := provenancePolicy("two", glob, release.publicPEM, trustedBuilder)
	twoAttestations.Spec.Authorities[0].Attestations = append(twoAttestations.Spec.Authorities[0].Attestations, pcv1alpha1.Attestation{
		Name: "scan", PredicateType: "vuln",
		Policy: &pcv1alpha1.Policy{Type: "cue", Data: `predicate: scanner: uri: =~"^pkg:github/aquasecurity/trivy@"`},
	})

	cases := []struct {
		name    string
		policy  pcv1alpha1.ClusterImagePolicy
		image   string
		reason  string
		message string
	}{
		{"bundle signed with the trusted key", key, bundled, trainenvv1.ReasonVerified, "authority release-key [key SHA256:"},
		{"bundle signed with another key", key, foreign, trainenvv1.ReasonUntrustedSigner, "no matching signatures"},
		{"no signature in either format", key, unsigned, trainenvv1.ReasonNoSignature, "no signatures found"},
		{"legacy by another key, bundle by the trusted key", key, legacyForeignBundleTrusted, trainenvv1.ReasonVerified, "release-key"},
		{"legacy only", key, legacyOnly, trainenvv1.ReasonVerified, "release-key"},
		{"both formats", key, both, trainenvv1.ReasonVerified, "release-key"},
		{"bundle for another digest", key, copied, trainenvv1.ReasonUntrustedSigner, "no matching signatures"},
		{"an attestation bundle is no signature", key, attestedOnly, trainenvv1.ReasonNoSignature, "no signatures found"},
		{"signatureFormat legacy ignores bundles", pinned("legacy"), bundled, trainenvv1.ReasonNoSignature, "no signatures found"},
		{"signatureFormat bundle ignores legacy signatures", pinned("bundle"), legacyOnly, trainenvv1.ReasonNoSignature, "no signatures found"},
		{"signatureFormat bundle", pinned("bundle"), bundled, trainenvv1.ReasonVerified, "release-key"},
		{"an unknown signatureFormat fails closed", pinned("cosign-v3"), bundled, trainenvv1.ReasonInvalidPolicy, `signatureFormat "cosign-v3"`},
		{"provenance bundle from the trusted builder", slsa, attestedOnly, trainenvv1.ReasonVerified, "attestations " + slsaV02},
		{"provenance bundle from another builder", slsa, wrongBuilder, trainenvv1.ReasonAttestationPolicyFailed, "failed evaluating cue policy"},
		{"provenance bundle signed with another key", slsa, foreignAttestation, trainenvv1.ReasonAttestationMissing, "no matching attestations"},
		{"provenance required, only a signature bundle", slsa, bundled, trainenvv1.ReasonAttestationMissing, "no matching attestations"},
		{"two attestations, one per format", twoAttestations, provenanceLegacyVulnBundle, trainenvv1.ReasonVerified, "attestations " + slsaV02 + ", vuln]"},
		{"two attestations, the bundle one missing", twoAttestations, attestedOnly, trainenvv1.ReasonAttestationMissing, "no matching attestations"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			g := NewWithT(t)
			got, err := New(&StaticSource{Policies: pl(tc.policy)}, Options{}).Verify(bg, trust.Request{Image: tc.image, Namespace: "ns"})
			g.Expect(err).NotTo(HaveOccurred())
			t.Logf("%s: %s", got.Reason, got.Message)
			g.Expect(got.Reason).To(Equal(tc.reason), got.Message)
			g.Expect(got.Allowed()).To(Equal(tc.reason == trainenvv1.ReasonVerified))
			g.Expect(got.Message).To(ContainSubstring(tc.message))
		})
	}
}

// TestVerifyKeylessBundles: keyless bundles (a certificate from the private CA, with an
// SCT from its CT log) under a keyless authority with a TrustRoot, bundle versions v0.1
// (certificate chain) and v0.3 (leaf only).
func TestVerifyKeylessBundles(t *testing.T) {
	reg := registrytest.New(t)
	ss := sigstoretest.New(t)
	root := ss.TrustRoot(t, "private-sigstore")
	ci := sigstoretest.Identity{Issuer: ciIssuer, Subject: ciSubject}
	glob := reg.Host + "/team/**"
	keyless := func(i string, c sigstoretest.Cert, spec bundleSpec) {
		spec.cert = &c
		if spec.predicateType == "" {
			spec.predicateType, spec.predicate = cosignSignPredicate, "{}"
		}
		attachBundle(t, i, certSigner(t, c), spec)
	}
	v03 := push(t, reg, "team/v03")
	keyless(v03, ss.Issue(t, ci), bundleSpec{})
	v01 := push(t, reg, "team/v01")
	keyless(v01, ss.Issue(t, ci), bundleSpec{mediaType: bundleV01, chain: []*x509.Certificate{ss.Intermediate, ss.Root}})
	alice := push(t, reg, "team/alice")
	keyless(alice, ss.Issue(t, sigstoretest.Identity{Issuer: ciIssuer, Subject: "alice@trainenv.test"}), bundleSpec{})
	noSCT := push(t, reg, "team/no-sct")
	keyless(noSCT, ss.Issue(t, ci, sigstoretest.WithoutSCT()), bundleSpec{})
	otherCA := sigstoretest.New(t)
	foreignCA := push(t, reg, "team/foreign-ca")
	keyless(foreignCA, otherCA.Issue(t, ci), bundleSpec{})
	keySigned := push(t, reg, "team/key-signed")
	release := newSigner(t)
	release.signBundle(t, keySigned)
	attested := push(t, reg, "team/attested")
	keyless(attested, ss.Issue(t, ci), bundleSpec{predicateType: slsaV02, predicate: provenance(trustedBuilder)})

	exact := pcv1alpha1.Identity{Issuer: ciIssuer, Subject: ciSubject}
	policy := keylessPolicy("keyless", glob, root.Name, exact)
	slsa := keylessPolicy("keyless", glob, root.Name, exact)
	slsa.Spec.Authorities[0].Attestations = []pcv1alpha1.Attestation{{Name: "provenance", PredicateType: slsaV02,
		Policy: &pcv1alpha1.Policy{Type: "cue", Data: `predicate: builder: id: "` + trustedBuilder + `"`}}}
	cases := []struct {
		name    string
		policy  pcv1alpha1.ClusterImagePolicy
		image   string
		reason  string
		message string
	}{
		{"bundle v0.3 from the trusted identity", policy, v03, trainenvv1.ReasonVerified, ciSubject + " (issuer " + ciIssuer + ")"},
		{"bundle v0.1 with the certificate chain", policy, v01, trainenvv1.ReasonVerified, ciSubject},
		{"another subject", policy, alice, trainenvv1.ReasonUntrustedSigner, "no matching signatures"},
		{"certificate without SCT", policy, noSCT, trainenvv1.ReasonUntrustedSigner, "certificate timestamp"},
		{"certificate from another CA", policy, foreignCA, trainenvv1.ReasonUntrustedSigner, "certificate"},
		{"bundle signed with a bare key", policy, keySigned, trainenvv1.ReasonUntrustedSigner, "no matching signatures"},
		{"keyless provenance bundle", slsa, attested, trainenvv1.ReasonVerified, "attestations " + slsaV02},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			g := NewWithT(t)
			v := New(&StaticSource{Policies: pl(tc.policy), Roots: []pcv1alpha1.TrustRoot{*root}}, Options{})
			got, err := v.Verify(bg, trust.Request{Image: tc.image, Namespace: "ns"})
			g.Expect(err).NotTo(HaveOccurred())
			t.Logf("%s: %s", got.Reason, got.Message)
			g.Expect(got.Reason).To(Equal(tc.reason), got.Message)
			g.Expect(got.Message).To(ContainSubstring(tc.message))
			if got.Allowed() {
				g.Expect(got.Passed).To(HaveLen(1))
				g.Expect(got.Passed[0].Signers).To(ConsistOf(trust.Signer{Issuer: ciIssuer, Subject: ciSubject}))
			}
		})
	}

	// A keyless bundle under a key authority is refused as from an untrusted signer.
	g := NewWithT(t)
	got, err := New(&StaticSource{Policies: pl(keyPolicy("release", glob, release.publicPEM))}, Options{}).Verify(bg, trust.Request{Image: v03})
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(got.Reason).To(Equal(trainenvv1.ReasonUntrustedSigner), got.Message)
}
