package policy

import (
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/authn"
	. "github.com/onsi/gomega"
	pcv1alpha1 "github.com/sigstore/policy-controller/pkg/apis/policy/v1alpha1"
	pcv1beta1 "github.com/sigstore/policy-controller/pkg/apis/policy/v1beta1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/yaml"

	trainenvv1 "github.com/trainenv/trainenv/api/v1alpha1"
	"github.com/trainenv/trainenv/internal/testutil/registrytest"
	"github.com/trainenv/trainenv/internal/trust"
)

const trustedBuilder = "https://builder.example.com/trusted"

// TestVerify evaluates real cosign signatures and attestations in an in-process registry
// against ClusterImagePolicies, one case per verdict a user can see.
func TestVerify(t *testing.T) {
	reg := registrytest.New(t)
	release, other := newSigner(t), newSigner(t)
	glob := reg.Host + "/team/**"

	signed := push(t, reg, "team/signed")
	release.sign(t, signed)
	unsigned := push(t, reg, "team/unsigned")
	foreign := push(t, reg, "team/foreign")
	other.sign(t, foreign)
	uncovered := push(t, reg, "elsewhere/app")
	release.sign(t, uncovered)
	provenance := push(t, reg, "team/provenance")
	release.attest(t, provenance, trustedBuilder)
	wrongBuilder := push(t, reg, "team/wrong-builder")
	release.attest(t, wrongBuilder, "https://evil.example.com/builder")

	enforce := keyPolicy("release", glob, release.publicPEM)
	warn := keyPolicy("release", glob, release.publicPEM)
	warn.Spec.Mode = "warn"
	slsa := provenancePolicy("provenance", glob, release.publicPEM, trustedBuilder)
	broken := keyPolicy("broken", glob, "not a PEM key")

	cases := []struct {
		name     string
		policies []pcv1alpha1.ClusterImagePolicy
		opts     Options
		image    string
		status   metav1.ConditionStatus
		reason   string
		allowed  bool
		message  string
	}{
		{"signed with the trusted key", pl(enforce), Options{}, signed, metav1.ConditionTrue, trainenvv1.ReasonVerified, true, "authority release-key [key SHA256:"},
		{"unsigned", pl(enforce), Options{}, unsigned, metav1.ConditionFalse, trainenvv1.ReasonNoSignature, false, "no signatures found"},
		{"signed with another key", pl(enforce), Options{}, foreign, metav1.ConditionFalse, trainenvv1.ReasonUntrustedSigner, false, "no matching signatures"},
		{"no matching policy", pl(enforce), Options{}, uncovered, metav1.ConditionFalse, trainenvv1.ReasonNoMatchingPolicy, false, "no ClusterImagePolicy covers"},
		{"no policy at all", nil, Options{}, signed, metav1.ConditionFalse, trainenvv1.ReasonNoMatchingPolicy, false, "not trusted"},
		{"unmatched allowed for development", pl(enforce), Options{AllowUnmatched: true}, uncovered, metav1.ConditionUnknown, trainenvv1.ReasonUnmatchedAllowed, true, "NOT VERIFIED"},
		{"warn mode, unsigned", pl(warn), Options{}, unsigned, metav1.ConditionTrue, trainenvv1.ReasonVerifiedWithWarnings, true, "ALLOWED WITH WARNINGS, only because the failing policies are in warn mode: policy release (warn mode)"},
		{"all matching policies must pass", pl(enforce, slsa), Options{}, signed, metav1.ConditionFalse, trainenvv1.ReasonAttestationMissing, false, "policy provenance"},
		{"provenance from the trusted builder", pl(slsa), Options{}, provenance, metav1.ConditionTrue, trainenvv1.ReasonVerified, true, "attestations " + slsaV02},
		{"provenance missing", pl(slsa), Options{}, signed, metav1.ConditionFalse, trainenvv1.ReasonAttestationMissing, false, "no matching attestations"},
		{"provenance from another builder", pl(slsa), Options{}, wrongBuilder, metav1.ConditionFalse, trainenvv1.ReasonAttestationPolicyFailed, false, "failed evaluating cue policy"},
		{"invalid matching policy fails closed", pl(enforce, broken), Options{}, signed, metav1.ConditionFalse, trainenvv1.ReasonInvalidPolicy, false, "broken"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			g := NewWithT(t)
			v := New(&StaticSource{Policies: tc.policies}, tc.opts)
			got, err := v.Verify(bg, trust.Request{Image: tc.image, Namespace: "ns", Keychain: authn.DefaultKeychain})
			g.Expect(err).NotTo(HaveOccurred())
			t.Logf("%s: %s", got.Reason, got.Message)
			g.Expect(got.Status).To(Equal(tc.status), got.Message)
			g.Expect(got.Reason).To(Equal(tc.reason), got.Message)
			g.Expect(got.Allowed()).To(Equal(tc.allowed))
			g.Expect(got.Message).To(ContainSubstring(tc.message))
		})
	}
}

func TestVerifyRecordsEvidence(t *testing.T) {
	g := NewWithT(t)
	reg := registrytest.New(t)
	release := newSigner(t)
	img := push(t, reg, "team/app")
	release.sign(t, img)
	release.attest(t, img, trustedBuilder)
	glob := reg.Host + "/team/*"
	v := New(&StaticSource{Policies: pl(
		keyPolicy("release", glob, release.publicPEM),
		provenancePolicy("provenance", glob, release.publicPEM, trustedBuilder),
	)}, Options{})

	got, err := v.Verify(bg, trust.Request{Image: img})
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(got.Reason).To(Equal(trainenvv1.ReasonVerified), got.Message)
	g.Expect(got.Digest).To(Equal(img))
	g.Expect(got.Policies).To(Equal([]string{"provenance", "release"}))
	g.Expect(got.CheckedAt).NotTo(BeZero())
	keyID := keyIDs(mustCompile(t, keyPolicy("x", glob, release.publicPEM)).cip.Authorities)["release-key"]
	g.Expect(keyID).To(HavePrefix("SHA256:"))
	g.Expect(got.Passed).To(ConsistOf(
		trust.AuthorityResult{Policy: "provenance", Authority: "release-key", Signers: []trust.Signer{{KeyID: keyID}}, AttestationTypes: []string{slsaV02}},
		trust.AuthorityResult{Policy: "release", Authority: "release-key", Signers: []trust.Signer{{KeyID: keyID}}},
	))
}

// TestVerifyV1beta1 takes the policy as a platform team writes it (v1beta1 YAML) through
// policy-controller's own conversion.
func TestVerifyV1beta1(t *testing.T) {
	g := NewWithT(t)
	reg := registrytest.New(t)
	release := newSigner(t)
	img := push(t, reg, "team/app")
	release.sign(t, img)
	doc := `apiVersion: policy.sigstore.dev/v1beta1
kind: ClusterImagePolicy
metadata: {name: release, generation: 1}
spec:
  images: [{glob: "` + reg.Host + `/team/*"}]
  authorities:
  - name: release-key
    key:
      data: |
` + indent(release.publicPEM, "        ")
	var in pcv1beta1.ClusterImagePolicy
	g.Expect(yaml.UnmarshalStrict([]byte(doc), &in)).To(Succeed())
	cip, err := FromV1beta1(bg, &in)
	g.Expect(err).NotTo(HaveOccurred())

	got, err := New(&StaticSource{Policies: pl(cip)}, Options{}).Verify(bg, trust.Request{Image: img})
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(got.Reason).To(Equal(trainenvv1.ReasonVerified), got.Message)
}

func TestVerifyRegistryDown(t *testing.T) {
	g := NewWithT(t)
	reg := registrytest.New(t)
	release := newSigner(t)
	img := push(t, reg, "team/app")
	release.sign(t, img)
	v := New(&StaticSource{Policies: pl(keyPolicy("release", reg.Host+"/team/*", release.publicPEM))}, Options{})

	reg.SetDown(true)
	got, err := v.Verify(bg, trust.Request{Image: img})
	g.Expect(err).To(HaveOccurred())
	g.Expect(got.Reason).To(Equal(trainenvv1.ReasonRegistryUnavailable))
	g.Expect(got.Allowed()).To(BeFalse())
	g.Expect(got.Message).To(ContainSubstring("503"))

	// The error was not cached: the registry's return is seen at once.
	reg.SetDown(false)
	got, err = v.Verify(bg, trust.Request{Image: img})
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(got.Reason).To(Equal(trainenvv1.ReasonVerified), got.Message)
}

func TestVerifyRegistryUnauthorized(t *testing.T) {
	g := NewWithT(t)
	reg := registrytest.New(t)
	release := newSigner(t)
	img := push(t, reg, "team/app")
	release.sign(t, img)
	reg.RequireBasicAuth("user", "secret")
	v := New(&StaticSource{Policies: pl(keyPolicy("release", reg.Host+"/team/*", release.publicPEM))}, Options{})

	got, err := v.Verify(bg, trust.Request{Image: img})
	g.Expect(err).To(HaveOccurred())
	g.Expect(got.Reason).To(Equal(trainenvv1.ReasonRegistryUnauthorized), got.Message)

	got, err = v.Verify(bg, trust.Request{Image: img, Keychain: staticKeychain{&authn.Basic{Username: "user", Password: "secret"}}})
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(got.Reason).To(Equal(trainenvv1.ReasonVerified), got.Message)
}

func TestVerifyRejectsTags(t *testing.T) {
	g := NewWithT(t)
	got, err := New(&StaticSource{}, Options{}).Verify(bg, trust.Request{Image: "registry.example.com/app:latest"})
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(got.Status).To(Equal(metav1.ConditionFalse))
	g.Expect(got.Allowed()).To(BeFalse())
}

type staticKeychain struct{ authn.Authenticator }

func (k staticKeychain) Resolve(authn.Resource) (authn.Authenticator, error) {
	return k.Authenticator, nil
}

func pl(ps ...pcv1alpha1.ClusterImagePolicy) []pcv1alpha1.ClusterImagePolicy { return ps }

func mustCompile(t testing.TB, p pcv1alpha1.ClusterImagePolicy) *compiled {
	t.Helper()
	c := compile(bg, &StaticSource{}, &p)
	if c.err != nil {
		t.Fatal(c.err)
	}
	return c
}

func indent(s, prefix string) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	return prefix + strings.Join(lines, "\n"+prefix) + "\n"
}

// TestMatchResources: a policy that selects resources applies when it selects what
// trainenv creates (a StatefulSet or its Pod), and not otherwise.
func TestMatchResources(t *testing.T) {
	reg := registrytest.New(t)
	release := newSigner(t)
	img := push(t, reg, "team/app")
	p := keyPolicy("release", reg.Host+"/team/*", release.publicPEM)
	for resource, want := range map[string]string{
		"pods":         trainenvv1.ReasonNoSignature,
		"statefulsets": trainenvv1.ReasonNoSignature,
		"cronjobs":     trainenvv1.ReasonNoMatchingPolicy,
	} {
		t.Run(resource, func(t *testing.T) {
			g := NewWithT(t)
			group, version := "", "v1"
			if resource != "pods" {
				group = map[string]string{"statefulsets": "apps", "cronjobs": "batch"}[resource]
			}
			p := *p.DeepCopy()
			p.Spec.Match = []pcv1alpha1.MatchResource{{GroupVersionResource: metav1.GroupVersionResource{Group: group, Version: version, Resource: resource}}}
			got, err := New(&StaticSource{Policies: pl(p)}, Options{}).Verify(bg, trust.Request{Image: img})
			g.Expect(err).NotTo(HaveOccurred())
			g.Expect(got.Reason).To(Equal(want), got.Message)
		})
	}
}
