package policy

import (
	"testing"

	. "github.com/onsi/gomega"

	trainenvv1 "github.com/trainenv/trainenv/api/v1alpha1"
	"github.com/trainenv/trainenv/internal/testutil/registrytest"
	"github.com/trainenv/trainenv/internal/trust"
)

// TestVerificationRequestCounts pins the registry cost of verifying a digest: a key-signed
// digest costs 3 requests cold (ping, signature manifest, signature blob), none from the
// cache, and a required attestation 2 more (its manifest and blob: one ping serves every
// policy of an evaluation).
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
	g.Expect(counter.Take()).To(Equal([]string{"GET ping", "GET signature manifest", "GET blob"}))
	for range 10 {
		verify(v, signed)
	}
	g.Expect(counter.Take()).To(BeEmpty())

	both := New(&StaticSource{Policies: pl(keyPolicy("release", glob, release.publicPEM),
		provenancePolicy("provenance", glob, release.publicPEM, trustedBuilder))}, Options{Transport: counter})
	verify(both, attested)
	got := counter.Take()
	g.Expect(got).To(HaveLen(5), "%v", got)
	g.Expect(got).To(ConsistOf("GET ping", "GET signature manifest", "GET blob", "GET attestation manifest", "GET blob"))
	verify(both, attested)
	g.Expect(counter.Take()).To(BeEmpty())
}
