package policy

import (
	"testing"
	"time"

	. "github.com/onsi/gomega"
	pcv1alpha1 "github.com/sigstore/policy-controller/pkg/apis/policy/v1alpha1"

	trainenvv1 "github.com/trainenv/trainenv/api/v1alpha1"
	"github.com/trainenv/trainenv/internal/testutil/registrytest"
	"github.com/trainenv/trainenv/internal/testutil/scandocs"
	"github.com/trainenv/trainenv/internal/trust"
	"github.com/trainenv/trainenv/internal/trust/vulngate"
)

// The gate annotation is part of what a verdict is cached under (annotations do not change
// a policy's generation), an invalid one fails closed, a warn-mode policy's gate only
// warns, and a passing verdict is reused no longer than its scan is fresh.
func TestVulnerabilityGateAnnotation(t *testing.T) {
	g := NewWithT(t)
	reg := registrytest.New(t)
	ci := newSigner(t)
	now := time.Date(2026, 12, 7, 12, 0, 0, 0, time.UTC)
	clock := now
	img := push(t, reg, "ml/pytorch")
	ci.attestLegacy(t, img, vulngate.VulnPredicate, scandocs.Trivy(now.Add(-time.Hour), "CVE-2024-3094:CRITICAL:liblzma5"))

	p := keyPolicy("gate", reg.Host+"/ml/**", ci.publicPEM)
	p.Spec.Authorities[0].Attestations = []pcv1alpha1.Attestation{{Name: "scan", PredicateType: "vuln"}}
	src := &StaticSource{Policies: pl(p)}
	v := New(src, Options{Now: func() time.Time { return clock }})
	verify := func() trust.Verdict {
		got, err := v.Verify(bg, trust.Request{Image: img})
		g.Expect(err).NotTo(HaveOccurred())
		return got
	}

	got := verify()
	g.Expect(got.Reason).To(Equal(trainenvv1.ReasonVerified), "no annotation: the engine's verdict alone")
	g.Expect(got.Vulnerabilities.Counts["CRITICAL"]).To(Equal(1), "the summary is shown without a gate too")
	g.Expect(got.ExpiresAt).To(BeZero())

	src.Policies[0].Annotations = map[string]string{vulngate.AnnotationGate: "{maxScanAge: 2h}"}
	got = verify()
	g.Expect(got.Reason).To(Equal(trainenvv1.ReasonVulnerabilitiesFound), "same generation, new annotation: not the cached verdict")
	g.Expect(got.Message).To(ContainSubstring("CVE-2024-3094 (CRITICAL liblzma5)"))

	src.Policies[0].Annotations[vulngate.AnnotationGate] = "{blockSeverities: [CRITICAL], maxScanAge: 7 days}"
	got = verify()
	g.Expect(got.Reason).To(Equal(trainenvv1.ReasonInvalidPolicy))
	g.Expect(got.Message).To(ContainSubstring("maxScanAge"))

	src.Policies[0].Spec.Mode = "warn"
	src.Policies[0].Generation++
	src.Policies[0].Annotations[vulngate.AnnotationGate] = "{maxScanAge: 2h}"
	got = verify()
	g.Expect(got.Reason).To(Equal(trainenvv1.ReasonVerifiedWithWarnings))
	g.Expect(got.Message).To(ContainSubstring("CVE-2024-3094"))

	src.Policies[0].Spec.Mode = ""
	src.Policies[0].Generation++
	src.Policies[0].Annotations[vulngate.AnnotationGate] = "{blockSeverities: [UNKNOWN], maxScanAge: 2h}"
	got = verify()
	g.Expect(got.Reason).To(Equal(trainenvv1.ReasonVerified))
	g.Expect(got.ExpiresAt).To(Equal(now.Add(time.Hour)), "the scan finished an hour ago and may be two hours old")

	clock = now.Add(59 * time.Minute)
	g.Expect(verify().Reason).To(Equal(trainenvv1.ReasonVerified), "cached until the scan ages out")
	clock = now.Add(61 * time.Minute)
	got = verify()
	g.Expect(got.Reason).To(Equal(trainenvv1.ReasonVulnerabilityScanStale), "the cached verdict expired with the scan")
}
