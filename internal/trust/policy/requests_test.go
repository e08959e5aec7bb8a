package policy

import (
	"testing"

	. "github.com/onsi/gomega"

	trainenvv1 "github.com/trainenv/trainenv/api/v1alpha1"
	"github.com/trainenv/trainenv/internal/testutil/registrytest"
	"github.com/trainenv/trainenv/internal/trust"
)

// TestVerificationRequestCounts pins the registry cost of verifying a digest, on a registry
// without the referrers API (distribution 2.8): a key-signed digest costs 5 requests cold
// (ping, signature manifest, signature blob, and the referrers API and referrers tag that
// say there is no bundle), none from the cache; a required attestation 2 more (its
// manifest and blob: one ping and one referrers lookup serve every policy of an
// evaluation). A digest signed only in the bundle format costs 6: ping, the absent
// signature manifest, referrers API, referrers tag, bundle manifest, bundle blob.
func TestVerificationRequestCounts(t *testing.T) {
	g := NewWithT(t)
	reg := registrytest.New(t)
	release := newSigner(t)
	glob := reg.Host + "/team/*"
	signed, attested := push(t, reg, "team/signed"), push(t, reg, "team/attested")
	release.sign(t, signed)
	release.sign(t, attested)
	release.attest(t, attested, trustedBuilder)

	counter := &registrytest.CountingTransport{}
	v := New(&StaticSource{Policies: pl(keyPolicy("release", glob, release.publicPEM))}, Options{Transport: counter})
	verify := func(v *Verifier, img string) {
		t.Helper()
		got, err := v.Verify(bg, trust.Request{Image: img})
		g.Expect(err).NotTo(HaveOccurred())
		g.Expect(got.Reason).To(Equal(trainenvv1.ReasonVerified), got.Message)
	}

	verify(v, signed)
	g.Expect(counter.Take()).To(ConsistOf("GET ping", "GET signature manifest", "GET blob", "GET referrers", "GET referrers tag"))
	for range 10 {
		verify(v, signed)
	}
	g.Expect(counter.Take()).To(BeEmpty())

	both := New(&StaticSource{Policies: pl(keyPolicy("release", glob, release.publicPEM),
		provenancePolicy("provenance", glob, release.publicPEM, trustedBuilder))}, Options{Transport: counter})
	verify(both, attested)
	got := counter.Take()
	g.Expect(got).To(HaveLen(7), "%v", got)
	g.Expect(got).To(ConsistOf("GET ping", "GET signature manifest", "GET blob", "GET attestation manifest", "GET blob",
		"GET referrers", "GET referrers tag"))
	verify(both, attested)
	g.Expect(counter.Take()).To(BeEmpty())

	bundled := push(t, reg, "team/bundled")
	release.signBundle(t, bundled)
	verify(v, bundled)
	g.Expect(counter.Take()).To(ConsistOf("GET ping", "GET signature manifest", "GET referrers", "GET referrers tag",
		"GET manifest by digest", "GET blob"))
	for range 10 {
		verify(v, bundled)
	}
	g.Expect(counter.Take()).To(BeEmpty())
}

// TestVerificationRequestCountsReferrersAPI: with the referrers API, the tag fallback is
// not asked: 4 requests cold for a legacy signature, 5 for a bundle.
func TestVerificationRequestCountsReferrersAPI(t *testing.T) {
	g := NewWithT(t)
	reg := registrytest.New(t, registrytest.WithReferrersAPI())
	release := newSigner(t)
	glob := reg.Host + "/team/*"
	signed, bundled := push(t, reg, "team/signed"), push(t, reg, "team/bundled")
	release.sign(t, signed)
	release.signBundle(t, bundled)
	counter := &registrytest.CountingTransport{}
	v := New(&StaticSource{Policies: pl(keyPolicy("release", glob, release.publicPEM))}, Options{Transport: counter})
	for img, want := range map[string][]string{
		signed:  {"GET ping", "GET signature manifest", "GET blob", "GET referrers"},
		bundled: {"GET ping", "GET signature manifest", "GET referrers", "GET manifest by digest", "GET blob"},
	} {
		got, err := v.Verify(bg, trust.Request{Image: img})
		g.Expect(err).NotTo(HaveOccurred())
		g.Expect(got.Reason).To(Equal(trainenvv1.ReasonVerified), got.Message)
		g.Expect(counter.Take()).To(ConsistOf(want))
	}
}
