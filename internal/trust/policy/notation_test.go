package policy

import (
	"testing"
	"time"

	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"

	trainenvv1 "github.com/trainenv/trainenv/api/v1alpha1"
	"github.com/trainenv/trainenv/internal/testutil/registrytest"
	"github.com/trainenv/trainenv/internal/trust"
)

// TestVerifyNotation: Notation signatures attached as OCI referrers, signed by notation-go
// with certificates of a test CA, verified against a trust policy and trust store given
// as the ConfigMap's data, with the reasons of the cosign path, on a registry with the
// referrers API and on one without it (the referrers tag, as distribution 2.8).
func TestVerifyNotation(t *testing.T) {
	for _, api := range []bool{false, true} {
		name := "referrers tag (no referrers API, as distribution 2.8)"
		var opts []registrytest.Option
		if api {
			name, opts = "referrers API", []registrytest.Option{registrytest.WithReferrersAPI()}
		}
		t.Run(name, func(t *testing.T) { testVerifyNotation(t, registrytest.New(t, opts...)) })
	}
}

func testVerifyNotation(t *testing.T, reg *registrytest.Registry) {
	ca, otherCA := newNotaryCA(t, "trainenv test CA"), newNotaryCA(t, "someone else's CA")
	ca.serveCRL(t)
	release := ca.validLeaf(t, "release")
	img := func(name string, sign ...func(string)) string {
		i := push(t, reg, "team/"+name)
		for _, s := range sign {
			s(i)
		}
		return i
	}
	signed := img("signed", func(i string) { release.sign(t, i) })
	unsigned := img("unsigned")
	foreign := img("foreign", func(i string) { otherCA.validLeaf(t, "release").sign(t, i) })
	expiredCert := img("expired-cert", func(i string) {
		ca.leaf(t, "expired", time.Now().Add(-48*time.Hour), time.Now().Add(-24*time.Hour)).signedAt(t, i, time.Now().Add(-36*time.Hour), 0)
	})
	expiredSig := img("expired-signature", func(i string) {
		release.signedAt(t, i, time.Now().Add(-10*time.Minute), time.Minute)
	})
	revokedLeaf := ca.validLeaf(t, "revoked")
	revoked := img("revoked", func(i string) { revokedLeaf.sign(t, i) })
	ca.revoke(revokedLeaf.cert)
	elsewhere := img("elsewhere", func(i string) { release.sign(t, i) })
	copied := img("copied", func(i string) { copySignatures(t, elsewhere, i) })
	mixed := img("mixed", func(i string) { otherCA.validLeaf(t, "x").sign(t, i) }, func(i string) { release.sign(t, i) })

	strict := StaticNotationSource{
		NotationTrustPolicyKey: trustPolicy(t, "team", "strict", []string{"*"}, "ca:trainenv"),
		"ca.trainenv.pem":      ca.pem(),
	}
	cases := []struct {
		name    string
		image   string
		reason  string
		message string
	}{
		{"signed by a leaf of the trusted CA", signed, trainenvv1.ReasonVerified, "policy notation:team authority notation [CN=release,O=trainenv tests,C=US (issuer CN=trainenv test CA"},
		{"no signature", unsigned, trainenvv1.ReasonNoSignature, "no Notation signature is attached"},
		{"signed under another CA", foreign, trainenvv1.ReasonUntrustedSigner, "no matching signatures"},
		{"certificate expired", expiredCert, trainenvv1.ReasonSignatureExpired, "expired"},
		{"signature expired", expiredSig, trainenvv1.ReasonSignatureExpired, "digital signature has expired"},
		{"certificate revoked (CRL)", revoked, trainenvv1.ReasonSignerRevoked, "is revoked"},
		{"a signature made for another digest", copied, trainenvv1.ReasonUntrustedSigner, "content descriptor mismatch"},
		{"an untrusted signature and a trusted one", mixed, trainenvv1.ReasonVerified, "CN=release"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			g := NewWithT(t)
			got, err := New(&StaticSource{}, Options{Notation: strict}).Verify(bg, trust.Request{Image: tc.image, Namespace: "ns"})
			g.Expect(err).NotTo(HaveOccurred())
			t.Logf("%s: %s", got.Reason, got.Message)
			g.Expect(got.Reason).To(Equal(tc.reason), got.Message)
			g.Expect(got.Allowed()).To(Equal(tc.reason == trainenvv1.ReasonVerified))
			g.Expect(got.Message).To(ContainSubstring(tc.message))
			g.Expect(got.Policies).To(Equal([]string{"notation:team"}))
		})
	}

	t.Run("a ClusterImagePolicy and a Notation statement both cover the digest: both must pass", func(t *testing.T) {
		g := NewWithT(t)
		cosigned := newSigner(t)
		both := img("both", func(i string) { release.sign(t, i) }, func(i string) { cosigned.sign(t, i) })
		cosignOnly := img("cosign-only", func(i string) { cosigned.sign(t, i) })
		v := New(&StaticSource{Policies: pl(keyPolicy("release", reg.Host+"/team/**", cosigned.publicPEM))}, Options{Notation: strict})
		got, err := v.Verify(bg, trust.Request{Image: both})
		g.Expect(err).NotTo(HaveOccurred())
		g.Expect(got.Reason).To(Equal(trainenvv1.ReasonVerified), got.Message)
		g.Expect(got.Policies).To(ConsistOf("release", "notation:team"))
		g.Expect(got.Passed).To(HaveLen(2))
		got, err = v.Verify(bg, trust.Request{Image: cosignOnly})
		g.Expect(err).NotTo(HaveOccurred())
		g.Expect(got.Reason).To(Equal(trainenvv1.ReasonNoSignature), got.Message)
		g.Expect(got.Message).To(ContainSubstring("policy notation:team: no signatures found"))
	})

	t.Run("registry scopes: a statement for another repository covers nothing", func(t *testing.T) {
		g := NewWithT(t)
		scoped := StaticNotationSource{NotationTrustPolicyKey: trustPolicy(t, "other", "strict", []string{reg.Host + "/team/elsewhere"}, "ca:trainenv"), "ca.trainenv.pem": ca.pem()}
		v := New(&StaticSource{}, Options{Notation: scoped})
		got, err := v.Verify(bg, trust.Request{Image: signed})
		g.Expect(err).NotTo(HaveOccurred())
		g.Expect(got.Reason).To(Equal(trainenvv1.ReasonNoMatchingPolicy), got.Message)
		got, err = v.Verify(bg, trust.Request{Image: elsewhere})
		g.Expect(err).NotTo(HaveOccurred())
		g.Expect(got.Reason).To(Equal(trainenvv1.ReasonVerified), got.Message)
	})

	t.Run("level skip proves nothing: not a policy", func(t *testing.T) {
		g := NewWithT(t)
		skip := StaticNotationSource{NotationTrustPolicyKey: `{"version":"1.0","trustPolicies":[{"name":"skip","registryScopes":["*"],"signatureVerification":{"level":"skip"}}]}`}
		got, err := New(&StaticSource{}, Options{Notation: skip}).Verify(bg, trust.Request{Image: unsigned})
		g.Expect(err).NotTo(HaveOccurred())
		g.Expect(got.Reason).To(Equal(trainenvv1.ReasonNoMatchingPolicy), got.Message)
	})

	t.Run("level permissive logs expiry, as notation does", func(t *testing.T) {
		g := NewWithT(t)
		permissive := StaticNotationSource{NotationTrustPolicyKey: trustPolicy(t, "team", "permissive", []string{"*"}, "ca:trainenv"), "ca.trainenv.pem": ca.pem()}
		got, err := New(&StaticSource{}, Options{Notation: permissive}).Verify(bg, trust.Request{Image: expiredSig})
		g.Expect(err).NotTo(HaveOccurred())
		g.Expect(got.Reason).To(Equal(trainenvv1.ReasonVerified), got.Message)
	})

	t.Run("CRL unreachable: revocation unknown is transient, not a pass", func(t *testing.T) {
		g := NewWithT(t)
		down := newNotaryCA(t, "CA with a dead CRL")
		down.serveCRL(t)
		leaf := down.validLeaf(t, "release")
		down.crl.Close()
		i := img("crl-down", func(i string) { leaf.sign(t, i) })
		src := StaticNotationSource{NotationTrustPolicyKey: trustPolicy(t, "team", "strict", []string{"*"}, "ca:down"), "ca.down.pem": down.pem()}
		got, err := New(&StaticSource{}, Options{Notation: src}).Verify(bg, trust.Request{Image: i})
		g.Expect(err).To(HaveOccurred())
		g.Expect(got.Status).To(Equal(metav1.ConditionUnknown))
		g.Expect(got.Allowed()).To(BeFalse())
		g.Expect(got.Message).To(ContainSubstring("revocation status"))
	})
}

// TestNotationInvalidConfig: a Notation ConfigMap that does not parse or validate fails
// every image closed, with a message naming what is wrong.
func TestNotationInvalidConfig(t *testing.T) {
	reg := registrytest.New(t)
	ca := newNotaryCA(t, "ca")
	img := push(t, reg, "team/app")
	policyOK := trustPolicy(t, "team", "strict", []string{"*"}, "ca:trainenv")
	for name, tc := range map[string]struct {
		data    StaticNotationSource
		message string
	}{
		"no trust policy":         {StaticNotationSource{"ca.trainenv.pem": ca.pem()}, "no key trustpolicy.json"},
		"not JSON":                {StaticNotationSource{NotationTrustPolicyKey: "{", "ca.trainenv.pem": ca.pem()}, "trustpolicy.json"},
		"unknown field":           {StaticNotationSource{NotationTrustPolicyKey: `{"version":"1.0","trustPolicy":[]}`}, "unknown field"},
		"invalid level":           {StaticNotationSource{NotationTrustPolicyKey: trustPolicy(t, "team", "lenient", []string{"*"}, "ca:trainenv"), "ca.trainenv.pem": ca.pem()}, "lenient"},
		"missing trust store":     {StaticNotationSource{NotationTrustPolicyKey: policyOK}, "has no key ca.trainenv.pem"},
		"not a certificate":       {StaticNotationSource{NotationTrustPolicyKey: policyOK, "ca.trainenv.pem": "hello"}, "not PEM"},
		"unknown trust store key": {StaticNotationSource{NotationTrustPolicyKey: policyOK, "ca.trainenv.pem": ca.pem(), "root.pem": ca.pem()}, "root.pem"},
	} {
		t.Run(name, func(t *testing.T) {
			g := NewWithT(t)
			got, err := New(&StaticSource{}, Options{Notation: tc.data}).Verify(bg, trust.Request{Image: img})
			g.Expect(err).NotTo(HaveOccurred())
			g.Expect(got.Reason).To(Equal(trainenvv1.ReasonInvalidPolicy), got.Message)
			g.Expect(got.Message).To(ContainSubstring(tc.message))
		})
	}
}

// TestNotationRequestCounts pins the registry cost of a Notation-verified digest and the
// cache: cold, ping, the manifest's descriptor (HEAD), the referrers (API, then the tag on
// a registry without it), the signature manifest and its envelope blob; nothing when cached.
// A registry failure is transient: an error, never a verdict.
func TestNotationRequestCounts(t *testing.T) {
	for _, api := range []bool{false, true} {
		var opts []registrytest.Option
		want := []string{"GET ping", "HEAD manifest by digest", "GET referrers", "GET referrers tag", "GET manifest by digest", "GET blob"}
		if api {
			opts = []registrytest.Option{registrytest.WithReferrersAPI()}
			want = []string{"GET ping", "HEAD manifest by digest", "GET referrers", "GET manifest by digest", "GET blob"}
		}
		t.Run(want[len(want)-3], func(t *testing.T) {
			g := NewWithT(t)
			reg := registrytest.New(t, opts...)
			ca := newNotaryCA(t, "ca")
			img := push(t, reg, "team/app")
			ca.validLeaf(t, "release").sign(t, img)
			counter := &registrytest.CountingTransport{}
			src := StaticNotationSource{NotationTrustPolicyKey: trustPolicy(t, "team", "strict", []string{"*"}, "ca:trainenv"), "ca.trainenv.pem": ca.pem()}
			v := New(&StaticSource{}, Options{Notation: src, Transport: counter})
			verify := func() {
				got, err := v.Verify(bg, trust.Request{Image: img})
				g.Expect(err).NotTo(HaveOccurred())
				g.Expect(got.Reason).To(Equal(trainenvv1.ReasonVerified), got.Message)
			}
			verify()
			g.Expect(counter.Take()).To(ConsistOf(want))
			for range 10 {
				verify()
			}
			g.Expect(counter.Take()).To(BeEmpty())

			reg.SetDown(true)
			got, err := New(&StaticSource{}, Options{Notation: src}).Verify(bg, trust.Request{Image: img})
			g.Expect(err).To(HaveOccurred())
			g.Expect(got.Reason).To(Equal(trainenvv1.ReasonRegistryUnavailable), got.Message)
			g.Expect(got.Allowed()).To(BeFalse())
		})
	}
}

// TestConfigMapNotationSource: the ConfigMap is read by name; its absence is no Notation
// trust (not an error), and its version follows the object.
func TestConfigMapNotationSource(t *testing.T) {
	g := NewWithT(t)
	c := fake.NewClientBuilder().Build()
	src := &ConfigMapNotationSource{Reader: c, Namespace: "trainenv-system", Name: "trainenv-notation"}
	data, version, err := src.NotationTrust(bg)
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(data).To(BeNil())
	g.Expect(version).To(BeEmpty())

	cm := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: "trainenv-system", Name: "trainenv-notation"},
		Data: map[string]string{NotationTrustPolicyKey: "{}"}}
	g.Expect(c.Create(bg, cm)).To(Succeed())
	data, v1, err := src.NotationTrust(bg)
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(data).To(HaveKeyWithValue(NotationTrustPolicyKey, "{}"))
	cm.Data[NotationTrustPolicyKey] = `{"version":"1.0"}`
	g.Expect(c.Update(bg, cm)).To(Succeed())
	_, v2, err := src.NotationTrust(bg)
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(v2).NotTo(Equal(v1))
}
