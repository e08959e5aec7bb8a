package policy

import (
	"testing"

	. "github.com/onsi/gomega"
	pcv1alpha1 "github.com/sigstore/policy-controller/pkg/apis/policy/v1alpha1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	ktypes "k8s.io/apimachinery/pkg/types"
	"k8s.io/utils/ptr"

	trainenvv1 "github.com/trainenv/trainenv/api/v1alpha1"
	"github.com/trainenv/trainenv/internal/testutil/registrytest"
	"github.com/trainenv/trainenv/internal/testutil/sigstoretest"
	"github.com/trainenv/trainenv/internal/trust"
)

const (
	ciIssuer  = "https://token.ci.trainenv.test"
	ciSubject = "https://git.trainenv.test/ml/images/.ci/release.yml@refs/heads/main"
)

// TestVerifyKeyless verifies keyless signatures offline: a private Fulcio-like CA and a CT
// log, trusted through a TrustRoot (sigstoreKeys) that the keyless authority references.
// Each certificate carries an SCT from the CT log, and the SCT is checked (the authority
// does not set insecureIgnoreSCT), so the cases below also prove that a certificate the
// trusted log never saw, or that another log saw, is refused. No Rekor entry is made (as
// `cosign sign --tlog-upload=false`): the authority names no ctlog, so policy-controller
// skips the transparency log, as it does for key authorities without one.
func TestVerifyKeyless(t *testing.T) {
	reg := registrytest.New(t)
	ss := sigstoretest.New(t)
	root := ss.TrustRoot(t, "private-sigstore")
	ci := sigstoretest.Identity{Issuer: ciIssuer, Subject: ciSubject}
	glob := reg.Host + "/team/**"

	signed := push(t, reg, "team/keyless")
	ss.Sign(t, signed, ss.Issue(t, ci))
	byAlice := push(t, reg, "team/alice")
	ss.Sign(t, byAlice, ss.Issue(t, sigstoretest.Identity{Issuer: ciIssuer, Subject: "alice@trainenv.test"}))
	otherIssuer := push(t, reg, "team/other-issuer")
	ss.Sign(t, otherIssuer, ss.Issue(t, sigstoretest.Identity{Issuer: "https://accounts.example.com", Subject: ciSubject}))
	noSCT := push(t, reg, "team/no-sct")
	ss.Sign(t, noSCT, ss.Issue(t, ci, sigstoretest.WithoutSCT()))
	foreignLog := push(t, reg, "team/foreign-log")
	ss.Sign(t, foreignLog, ss.Issue(t, ci, sigstoretest.WithSCTFrom(sigstoretest.NewKey(t))))
	otherCA := sigstoretest.New(t)
	foreignCA := push(t, reg, "team/foreign-ca")
	otherCA.Sign(t, foreignCA, otherCA.Issue(t, ci))
	unsigned := push(t, reg, "team/unsigned")

	exact := pcv1alpha1.Identity{Issuer: ciIssuer, Subject: ciSubject}
	regexp := pcv1alpha1.Identity{Issuer: ciIssuer, SubjectRegExp: `^https://git\.trainenv\.test/ml/.+@refs/heads/main$`}
	ignoreSCT := keylessPolicy("keyless", glob, root.Name, exact)
	ignoreSCT.Spec.Authorities[0].Keyless.InsecureIgnoreSCT = ptr.To(true)

	cases := []struct {
		name    string
		policy  pcv1alpha1.ClusterImagePolicy
		image   string
		reason  string
		message string
	}{
		{"right issuer and subject", keylessPolicy("keyless", glob, root.Name, exact), signed, trainenvv1.ReasonVerified, ciSubject + " (issuer " + ciIssuer + ")"},
		{"subject by regexp", keylessPolicy("keyless", glob, root.Name, regexp), signed, trainenvv1.ReasonVerified, ciSubject},
		{"wrong subject", keylessPolicy("keyless", glob, root.Name, exact), byAlice, trainenvv1.ReasonUntrustedSigner, "none of the expected identities matched"},
		{"wrong subject by regexp", keylessPolicy("keyless", glob, root.Name, regexp), byAlice, trainenvv1.ReasonUntrustedSigner, "none of the expected identities matched"},
		{"wrong issuer", keylessPolicy("keyless", glob, root.Name, exact), otherIssuer, trainenvv1.ReasonUntrustedSigner, "none of the expected identities matched"},
		{"certificate without SCT", keylessPolicy("keyless", glob, root.Name, exact), noSCT, trainenvv1.ReasonUntrustedSigner, "SCT"},
		{"SCT from an untrusted CT log", keylessPolicy("keyless", glob, root.Name, exact), foreignLog, trainenvv1.ReasonUntrustedSigner, "ctfe public key not found"},
		{"certificate from another CA", keylessPolicy("keyless", glob, root.Name, exact), foreignCA, trainenvv1.ReasonUntrustedSigner, "certificate signed by unknown authority"},
		{"unsigned", keylessPolicy("keyless", glob, root.Name, exact), unsigned, trainenvv1.ReasonNoSignature, "no signatures found"},
		{"insecureIgnoreSCT accepts a certificate without SCT", ignoreSCT, noSCT, trainenvv1.ReasonVerified, ciSubject},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			g := NewWithT(t)
			v := New(&StaticSource{Policies: pl(tc.policy), Roots: []pcv1alpha1.TrustRoot{*root}}, Options{})
			got, err := v.Verify(bg, trust.Request{Image: tc.image, Namespace: "ns"})
			g.Expect(err).NotTo(HaveOccurred())
			t.Logf("%s: %s", got.Reason, got.Message)
			g.Expect(got.Reason).To(Equal(tc.reason), got.Message)
			g.Expect(got.Allowed()).To(Equal(tc.reason == trainenvv1.ReasonVerified))
			g.Expect(got.Message).To(ContainSubstring(tc.message))
			if got.Allowed() {
				g.Expect(got.Passed).To(ConsistOf(trust.AuthorityResult{Policy: "keyless", Authority: "ci-keyless",
					Signers: []trust.Signer{{Issuer: ciIssuer, Subject: ciSubject}}}))
			}
		})
	}
}

// TestVerifyKeylessTrustRootMissing: a keyless authority whose TrustRoot does not exist
// fails closed as an invalid policy.
func TestVerifyKeylessTrustRootMissing(t *testing.T) {
	g := NewWithT(t)
	reg := registrytest.New(t)
	ss := sigstoretest.New(t)
	img := push(t, reg, "team/app")
	ss.Sign(t, img, ss.Issue(t, sigstoretest.Identity{Issuer: ciIssuer, Subject: ciSubject}))
	p := keylessPolicy("keyless", reg.Host+"/team/*", "absent", pcv1alpha1.Identity{Issuer: ciIssuer, Subject: ciSubject})

	got, err := New(&StaticSource{Policies: pl(p)}, Options{}).Verify(bg, trust.Request{Image: img})
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(got.Allowed()).To(BeFalse())
	g.Expect(got.Reason).To(Equal(trainenvv1.ReasonInvalidPolicy), got.Message)
}

// keylessPolicy trusts certificates of the TrustRoot's CA for the given identities.
func keylessPolicy(name, glob, trustRoot string, ids ...pcv1alpha1.Identity) pcv1alpha1.ClusterImagePolicy {
	return pcv1alpha1.ClusterImagePolicy{
		ObjectMeta: metav1.ObjectMeta{Name: name, UID: ktypes.UID("uid-" + name), Generation: 1},
		Spec: pcv1alpha1.ClusterImagePolicySpec{
			Images: []pcv1alpha1.ImagePattern{{Glob: glob}},
			Authorities: []pcv1alpha1.Authority{{Name: "ci-keyless", Keyless: &pcv1alpha1.KeylessRef{
				URL: sigstoretest.FulcioURL, TrustRootRef: trustRoot, Identities: ids,
			}}},
		},
	}
}

// BenchmarkVerifyKeyless: one keyless-signed image (certificate chain and embedded SCT
// checked against a TrustRoot), cold (a new Verifier) and cached.
func BenchmarkVerifyKeyless(b *testing.B) {
	reg := registrytest.New(b)
	ss := sigstoretest.New(b)
	root := ss.TrustRoot(b, "private-sigstore")
	img := push(b, reg, "team/app")
	ss.Sign(b, img, ss.Issue(b, sigstoretest.Identity{Issuer: ciIssuer, Subject: ciSubject}))
	src := &StaticSource{
		Policies: pl(keylessPolicy("keyless", reg.Host+"/team/*", root.Name, pcv1alpha1.Identity{Issuer: ciIssuer, Subject: ciSubject})),
		Roots:    []pcv1alpha1.TrustRoot{*root},
	}
	verify := func(b *testing.B, v *Verifier) {
		got, err := v.Verify(bg, trust.Request{Image: img})
		if err != nil || got.Reason != trainenvv1.ReasonVerified {
			b.Fatalf("%v: %s", err, got.Message)
		}
	}
	b.Run("cold", func(b *testing.B) {
		for b.Loop() {
			verify(b, New(src, Options{}))
		}
	})
	b.Run("cached", func(b *testing.B) {
		v := New(src, Options{})
		verify(b, v)
		for b.Loop() {
			verify(b, v)
		}
	})
}
