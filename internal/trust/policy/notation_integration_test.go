package policy

import (
	"testing"

	. "github.com/onsi/gomega"

	trainenvv1 "github.com/trainenv/trainenv/api/v1alpha1"
	"github.com/trainenv/trainenv/internal/testutil/distribution"
	"github.com/trainenv/trainenv/internal/testutil/registrytest"
	"github.com/trainenv/trainenv/internal/trust"
)

// TestNotationDistributionInteroperability: Notation signatures pushed by notation-go
// (oras) into the real distribution 2.8 registry, which has no referrers API, land in the
// sha256-<hex> referrers tag index next to the sigstore bundle the real cosign v3 CLI
// attaches to the same digest; trainenv finds each tool's referrer among the other's and
// verifies a digest that a ClusterImagePolicy and a Notation statement both cover, with the
// request count of the unit tests plus the legacy .sig lookup. Run by `make test`.
func TestNotationDistributionInteroperability(t *testing.T) {
	g := NewWithT(t)
	w := distribution.NewCosign3World(t)
	ca, otherCA := newNotaryCA(t, "trainenv test CA"), newNotaryCA(t, "someone else's CA")
	release := ca.validLeaf(t, "release")

	both := w.Push(t, "team/both")
	release.sign(t, both)
	w.SignBundle(t, "release", both)
	notationOnly := w.Push(t, "team/notation-only")
	release.sign(t, notationOnly)
	cosignOnly := w.Push(t, "team/cosign-only")
	w.SignBundle(t, "release", cosignOnly)
	foreign := w.Push(t, "team/foreign")
	w.SignBundle(t, "release", foreign)
	otherCA.validLeaf(t, "release").sign(t, foreign)

	notary := StaticNotationSource{NotationTrustPolicyKey: trustPolicy(t, "team", "strict", []string{"*"}, "ca:trainenv"), "ca.trainenv.pem": ca.pem()}
	cip := &StaticSource{Policies: pl(keyPolicy("release", w.Host+"/team/**", w.PublicKey(t, "release")))}
	for _, tc := range []struct {
		name   string
		src    *StaticSource
		image  string
		reason string
	}{
		{"cosign v3 bundle and Notation signature, both policies", cip, both, trainenvv1.ReasonVerified},
		{"Notation signature alone, Notation statement alone", &StaticSource{}, notationOnly, trainenvv1.ReasonVerified},
		{"Notation signature alone, both policies", cip, notationOnly, trainenvv1.ReasonNoSignature},
		{"cosign v3 bundle alone, both policies", cip, cosignOnly, trainenvv1.ReasonNoSignature},
		{"Notation signature under another CA beside a trusted bundle", cip, foreign, trainenvv1.ReasonUntrustedSigner},
	} {
		t.Run(tc.name, func(t *testing.T) {
			g := NewWithT(t)
			got, err := New(tc.src, Options{Notation: notary}).Verify(bg, trust.Request{Image: tc.image})
			g.Expect(err).NotTo(HaveOccurred())
			t.Logf("%s: %s", got.Reason, got.Message)
			g.Expect(got.Reason).To(Equal(tc.reason), got.Message)
		})
	}

	counter := &registrytest.CountingTransport{}
	v := New(cip, Options{Notation: notary, Transport: counter})
	got, err := v.Verify(bg, trust.Request{Image: both})
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(got.Reason).To(Equal(trainenvv1.ReasonVerified), got.Message)
	g.Expect(got.Policies).To(ConsistOf("release", "notation:team"))
	// One referrers listing serves both formats: ping, the absent .sig, referrers API
	// (404 on distribution 2.8), referrers tag, bundle manifest and blob, HEAD, Notation
	// signature manifest and envelope.
	g.Expect(counter.Take()).To(ConsistOf("GET ping", "GET signature manifest", "GET referrers", "GET referrers tag",
		"GET manifest by digest", "GET blob", "HEAD manifest by digest", "GET manifest by digest", "GET blob"))
	_, err = v.Verify(bg, trust.Request{Image: both})
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(counter.Take()).To(BeEmpty())
}
