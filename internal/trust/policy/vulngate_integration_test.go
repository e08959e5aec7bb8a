package policy

import (
	"testing"
	"time"

	. "github.com/onsi/gomega"
	pcv1alpha1 "github.com/sigstore/policy-controller/pkg/apis/policy/v1alpha1"

	trainenvv1 "github.com/trainenv/trainenv/api/v1alpha1"
	"github.com/trainenv/trainenv/internal/testutil/distribution"
	"github.com/trainenv/trainenv/internal/testutil/scandocs"
	"github.com/trainenv/trainenv/internal/trust"
)

// TestSupplyChainGatesCLI: scans, VEX documents and SBOMs written as Trivy and vexctl write
// them, attested by the real cosign CLIs (v2: the legacy .att tag; v3: DSSE bundles as OCI
// referrers) into the real distribution registry, judged by the shipped samples: the
// vulnerability gate with VEX (config/samples/..._vulnerability_gate_vex.yaml) and the SBOM
// requirement. For the positive cases `cosign verify-attestation` of the same CLI agrees.
func TestSupplyChainGatesCLI(t *testing.T) {
	for _, cli := range []struct {
		name   string
		world  func(testing.TB) *distribution.CosignWorld
		attest func(w *distribution.CosignWorld, t testing.TB, key, img, typ, predicate string)
	}{
		{"cosign v2, legacy attestations", distribution.NewCosignWorld, (*distribution.CosignWorld).AttestLegacy},
		{"cosign v3, bundles as referrers", distribution.NewCosign3World, (*distribution.CosignWorld).AttestBundle},
	} {
		t.Run(cli.name, func(t *testing.T) {
			w := cli.world(t)
			w.Run(t, "generate-key-pair", "--output-key-prefix", "publisher")
			attest := func(key, img, typ, predicate string) { cli.attest(w, t, key, img, typ, predicate) }
			now := time.Now()
			scan := func(age time.Duration, findings ...string) string { return scandocs.Trivy(now.Add(-age), findings...) }
			notAffected := func(img, cve string) string {
				return scandocs.OpenVEX(img, now.Add(-time.Hour), scandocs.Statement{CVE: cve, Status: "not_affected", At: now.Add(-time.Hour)})
			}
			const xz, ssh, libc = "CVE-2024-3094:CRITICAL:liblzma5", "CVE-2024-6387:HIGH:openssh-server", "CVE-2023-0001:LOW:libc6"

			clean := w.Push(t, "ml/clean")
			attest("release", clean, "vuln", scan(2*time.Hour, libc))
			critical := w.Push(t, "ml/critical")
			attest("release", critical, "vuln", scan(2*time.Hour, xz, ssh, libc))
			vexed := w.Push(t, "ml/vexed")
			attest("release", vexed, "vuln", scan(2*time.Hour, xz, libc))
			attest("publisher", vexed, "openvex", notAffected(vexed, "CVE-2024-3094"))
			foreignVEX := w.Push(t, "ml/foreign-vex")
			attest("release", foreignVEX, "vuln", scan(2*time.Hour, xz, libc))
			attest("other", foreignVEX, "openvex", notAffected(foreignVEX, "CVE-2024-3094"))
			stale := w.Push(t, "ml/stale")
			attest("release", stale, "vuln", scan(10*24*time.Hour, libc))
			vexOnly := w.Push(t, "ml/vex-only")
			attest("publisher", vexOnly, "openvex", notAffected(vexOnly, "CVE-2024-3094"))
			unscanned := w.Push(t, "ml/unscanned")
			withSBOM := w.Push(t, "ml/sbom")
			attest("release", withSBOM, "spdxjson", spdxSBOM)

			glob := w.Host + "/ml/**"
			vulnGate := samplePolicy(t, "policy_v1alpha1_clusterimagepolicy_vulnerability_gate_vex.yaml", glob, w.PublicKey(t, "release"))
			for i, a := range vulnGate.Spec.Authorities {
				if a.Name == "publisher-vex" {
					vulnGate.Spec.Authorities[i].Key.Data = w.PublicKey(t, "publisher")
				}
			}
			sbom := samplePolicy(t, "policy_v1alpha1_clusterimagepolicy_sbom_required.yaml", glob, w.PublicKey(t, "release"))
			cases := []struct {
				name     string
				policy   pcv1alpha1.ClusterImagePolicy
				image    string
				reason   string
				messages []string
				counts   map[string]int32 // critical, high, low, notAffected; nil: no summary
			}{
				{"clean scan", vulnGate, clean, trainenvv1.ReasonVerified, nil, map[string]int32{"low": 1}},
				{"CRITICAL and HIGH present", vulnGate, critical, trainenvv1.ReasonVulnerabilitiesFound,
					[]string{"2 HIGH or CRITICAL vulnerabilities not covered by a trusted VEX not_affected statement: CVE-2024-3094 (CRITICAL liblzma5), CVE-2024-6387 (HIGH openssh-server)"},
					map[string]int32{"critical": 1, "high": 1, "low": 1}},
				{"CRITICAL suppressed by the publisher's not_affected", vulnGate, vexed, trainenvv1.ReasonVerified, nil,
					map[string]int32{"low": 1, "notAffected": 1}},
				{"not_affected signed by an untrusted key is ignored", vulnGate, foreignVEX, trainenvv1.ReasonVulnerabilitiesFound,
					[]string{"CVE-2024-3094 (CRITICAL liblzma5)"}, map[string]int32{"critical": 1, "low": 1}},
				{"scan older than the limit", vulnGate, stale, trainenvv1.ReasonVulnerabilityScanStale,
					[]string{"10 days ago, over the limit of 7d"}, map[string]int32{"low": 1}},
				{"VEX but no scan", vulnGate, vexOnly, trainenvv1.ReasonVulnerabilityScanMissing, []string{"no vulnerability scan"}, nil},
				{"nothing attested", vulnGate, unscanned, trainenvv1.ReasonAttestationMissing, nil, nil},
				{"SBOM attested", sbom, withSBOM, trainenvv1.ReasonVerified, nil, nil},
				{"SBOM required, only a scan", sbom, clean, trainenvv1.ReasonAttestationMissing, []string{"no matching attestations"}, nil},
			}
			for _, tc := range cases {
				t.Run(tc.name, func(t *testing.T) {
					g := NewWithT(t)
					got, err := New(&StaticSource{Policies: pl(tc.policy)}, Options{}).Verify(bg, trust.Request{Image: tc.image})
					g.Expect(err).NotTo(HaveOccurred())
					t.Logf("%s: %s", got.Reason, got.Message)
					g.Expect(got.Reason).To(Equal(tc.reason), got.Message)
					g.Expect(got.Allowed()).To(Equal(tc.reason == trainenvv1.ReasonVerified))
					for _, m := range tc.messages {
						g.Expect(got.Message).To(ContainSubstring(m))
					}
					if tc.counts == nil {
						g.Expect(got.Vulnerabilities).To(BeNil())
						return
					}
					s := got.Vulnerabilities
					g.Expect(s).NotTo(BeNil())
					g.Expect(s.Policy).To(Equal(tc.policy.Name))
					g.Expect(s.Scanner + " " + s.ScannerVersion).To(Equal("trivy 0.58.1"))
					g.Expect(s.ScanFinishedAt).NotTo(BeZero())
					g.Expect(map[string]int32{"critical": int32(s.Counts["CRITICAL"]), "high": int32(s.Counts["HIGH"]), "low": int32(s.Counts["LOW"]),
						"notAffected": int32(s.NotAffected)}).To(Equal(withZeros(tc.counts)))
				})
			}

			// The CLI agrees: the scan and the publisher's VEX verify with their keys, and
			// the untrusted VEX does not verify with the publisher's.
			g := NewWithT(t)
			verifyAtt := func(key, typ, img string) string {
				return w.Run(t, "verify-attestation", "--key", key+".pub", "--type", typ, "--insecure-ignore-tlog=true", "--allow-insecure-registry", img)
			}
			g.Expect(verifyAtt("release", "vuln", vexed)).To(ContainSubstring("The signatures were verified against the specified public key"))
			g.Expect(verifyAtt("publisher", "openvex", vexed)).To(ContainSubstring("The signatures were verified against the specified public key"))
			g.Expect(verifyAtt("release", "spdxjson", withSBOM)).To(ContainSubstring("The signatures were verified against the specified public key"))
			g.Expect(w.Fails(t, "verify-attestation", "--key", "publisher.pub", "--type", "openvex", "--insecure-ignore-tlog=true",
				"--allow-insecure-registry", foreignVEX)).To(ContainSubstring("no matching attestations"))
		})
	}
}

func withZeros(m map[string]int32) map[string]int32 {
	out := map[string]int32{"critical": 0, "high": 0, "low": 0, "notAffected": 0}
	for k, v := range m {
		out[k] = v
	}
	return out
}
