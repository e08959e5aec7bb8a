package vulngate

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	. "github.com/onsi/gomega"

	trainenvv1 "github.com/trainenv/trainenv/api/v1alpha1"
	"github.com/trainenv/trainenv/internal/testutil/scandocs"
)

const (
	image = "registry.example.com/ml/pytorch@sha256:1111111111111111111111111111111111111111111111111111111111111111"
	other = "registry.example.com/ml/pytorch@sha256:2222222222222222222222222222222222222222222222222222222222222222"
)

// inToto wraps a predicate in the in-toto statement cosign attests for img.
func inToto(predicateType, img, predicate string) []byte {
	ref, err := name.NewDigest(img)
	if err != nil {
		panic(err)
	}
	return []byte(fmt.Sprintf(`{"_type":"https://in-toto.io/Statement/v0.1","predicateType":%q,"subject":[{"name":%q,"digest":{"sha256":%q}}],"predicate":%s}`,
		predicateType, ref.Context().Name(), strings.TrimPrefix(ref.DigestStr(), "sha256:"), predicate))
}

func TestSummarizeAppliesVEX(t *testing.T) {
	now := time.Date(2026, 12, 7, 12, 0, 0, 0, time.UTC)
	scan := func(img string, finished time.Time, findings ...string) []byte {
		return inToto(VulnPredicate, img, scandocs.Trivy(finished, findings...))
	}
	vexDoc := func(img, about string, stmts ...scandocs.Statement) []byte {
		return inToto(OpenVEXPredicate, img, scandocs.OpenVEX(about, now.Add(-time.Hour), stmts...))
	}
	na := func(cve string, at time.Time) scandocs.Statement {
		return scandocs.Statement{CVE: cve, Status: "not_affected", At: at}
	}
	critical := scan(image, now.Add(-2*time.Hour), "CVE-2024-3094:CRITICAL:liblzma5", "CVE-2024-6387:HIGH:openssh-server",
		"CVE-2024-6387:MEDIUM:openssh-client", "CVE-2023-0001:low:libc6", "CVE-2023-0002:NEGLIGIBLE:zlib1g")
	cases := []struct {
		name        string
		statements  [][]byte
		counts      map[string]int // CRITICAL HIGH MEDIUM LOW UNKNOWN
		notAffected []string
		err         string
		none        bool
	}{
		{name: "no statements", none: true},
		{name: "only a VEX document", statements: [][]byte{vexDoc(image, image, na("CVE-2024-3094", now))}, none: true},
		{name: "scan, no VEX", statements: [][]byte{critical},
			counts: map[string]int{"CRITICAL": 1, "HIGH": 1, "LOW": 1, "UNKNOWN": 1}},
		{name: "not_affected suppresses", statements: [][]byte{critical, vexDoc(image, image, na("CVE-2024-3094", now))},
			counts: map[string]int{"HIGH": 1, "LOW": 1, "UNKNOWN": 1}, notAffected: []string{"CVE-2024-3094"}},
		{name: "a later affected statement wins", statements: [][]byte{critical, vexDoc(image, image, na("CVE-2024-3094", now.Add(-time.Hour)),
			scandocs.Statement{CVE: "CVE-2024-3094", Status: "affected", At: now})},
			counts: map[string]int{"CRITICAL": 1, "HIGH": 1, "LOW": 1, "UNKNOWN": 1}},
		{name: "a later not_affected statement wins", statements: [][]byte{critical, vexDoc(image, image,
			scandocs.Statement{CVE: "CVE-2024-3094", Status: "under_investigation", At: now.Add(-time.Hour)}, na("CVE-2024-3094", now))},
			counts: map[string]int{"HIGH": 1, "LOW": 1, "UNKNOWN": 1}, notAffected: []string{"CVE-2024-3094"}},
		{name: "fixed does not suppress", statements: [][]byte{critical, vexDoc(image, image, scandocs.Statement{CVE: "CVE-2024-3094", Status: "fixed", At: now})},
			counts: map[string]int{"CRITICAL": 1, "HIGH": 1, "LOW": 1, "UNKNOWN": 1}},
		{name: "VEX about another product is not applied", statements: [][]byte{critical, vexDoc(image, other, na("CVE-2024-3094", now))},
			counts: map[string]int{"CRITICAL": 1, "HIGH": 1, "LOW": 1, "UNKNOWN": 1}},
		{name: "VEX attested on another digest is not applied", statements: [][]byte{critical, vexDoc(other, image, na("CVE-2024-3094", now))},
			counts: map[string]int{"CRITICAL": 1, "HIGH": 1, "LOW": 1, "UNKNOWN": 1}},
		{name: "a statement naming the finding as an alias", statements: [][]byte{critical, inToto(OpenVEXPredicate, image,
			strings.Replace(scandocs.OpenVEX(image, now, na("CVE-2099-0001", now)), `"name":"CVE-2099-0001"`, `"name":"CVE-2099-0001","aliases":["CVE-2024-3094"]`, 1))},
			counts: map[string]int{"HIGH": 1, "LOW": 1, "UNKNOWN": 1}, notAffected: []string{"CVE-2024-3094"}},
		{name: "a statement about the finding's package", statements: [][]byte{critical, inToto(OpenVEXPredicate, image,
			subcomponent(scandocs.OpenVEX(image, now, na("CVE-2024-3094", now)), "pkg:deb/debian/liblzma5"))},
			counts: map[string]int{"HIGH": 1, "LOW": 1, "UNKNOWN": 1}, notAffected: []string{"CVE-2024-3094"}},
		{name: "a statement about another package", statements: [][]byte{critical, inToto(OpenVEXPredicate, image,
			subcomponent(scandocs.OpenVEX(image, now, na("CVE-2024-3094", now)), "pkg:deb/debian/xz-utils"))},
			counts: map[string]int{"CRITICAL": 1, "HIGH": 1, "LOW": 1, "UNKNOWN": 1}},
		{name: "scan of another digest is ignored", statements: [][]byte{scan(other, now, "CVE-2024-3094:CRITICAL:liblzma5")}, none: true},
		{name: "the newest scan counts", statements: [][]byte{critical, scan(image, now.Add(-time.Hour), "CVE-2023-0001:LOW:libc6")},
			counts: map[string]int{"LOW": 1}},
		{name: "a report trainenv cannot read", statements: [][]byte{inToto(VulnPredicate, image,
			`{"scanner":{"uri":"pkg:github/quay/clair@4.7.0","version":"4.7.0","result":{"packages":{}}},"metadata":{"scanFinishedOn":"2026-12-07T10:00:00Z"}}`)},
			err: "holds no report trainenv can read"},
		{name: "a VEX document that is not OpenVEX", statements: [][]byte{critical, inToto(OpenVEXPredicate, image, `{"statements":"no"}`)},
			err: "reading the OpenVEX document"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			g := NewWithT(t)
			s, err := Summarize(name.MustParseReference(image).(name.Digest), tc.statements)
			if tc.err != "" {
				g.Expect(err).To(MatchError(ContainSubstring(tc.err)))
				return
			}
			g.Expect(err).NotTo(HaveOccurred())
			if tc.none {
				g.Expect(s).To(BeNil())
				return
			}
			g.Expect(s.Scanner).To(Equal("trivy"))
			g.Expect(s.ScannerVersion).To(Equal("0.58.1"))
			for _, sev := range Severities {
				g.Expect(s.Count(sev)).To(Equal(tc.counts[sev]), sev)
			}
			g.Expect(s.NotAffected).To(Equal(tc.notAffected))
		})
	}
}

func TestGateCheck(t *testing.T) {
	now := time.Date(2026, 12, 7, 12, 0, 0, 0, time.UTC)
	sum := func(age time.Duration, findings ...Finding) *Summary {
		return &Summary{Scanner: "trivy", ScannerVersion: "0.58.1", ScanFinishedAt: now.Add(-age), Findings: findings}
	}
	crit := Finding{ID: "CVE-2024-3094", Severity: "CRITICAL", Package: "liblzma5"}
	low := Finding{ID: "CVE-2023-0001", Severity: "LOW", Package: "libc6"}
	var many []Finding
	for i := range 12 {
		many = append(many, Finding{ID: fmt.Sprintf("CVE-2024-%04d", i), Severity: "HIGH", Package: "p"})
	}
	cases := []struct {
		name, gate string
		summary    *Summary
		reason     string
		messages   []string
	}{
		{"clean", `{maxScanAge: 7d}`, sum(time.Hour, low), "", nil},
		{"no scan", `{}`, nil, trainenvv1.ReasonVulnerabilityScanMissing, []string{"cosign attest --type vuln"}},
		{"critical", `{}`, sum(time.Hour, crit, low), trainenvv1.ReasonVulnerabilitiesFound,
			[]string{"1 HIGH or CRITICAL vulnerabilities not covered by a trusted VEX not_affected statement: CVE-2024-3094 (CRITICAL liblzma5);"}},
		{"LOW blocks when asked", `{blockSeverities: [low]}`, sum(time.Hour, low), trainenvv1.ReasonVulnerabilitiesFound, []string{"CVE-2023-0001 (LOW libc6)"}},
		{"stale", `{maxScanAge: 168h}`, sum(8*24*time.Hour, low), trainenvv1.ReasonVulnerabilityScanStale,
			[]string{"finished 2026-11-29T12:00:00Z, 8 days ago, over the limit of 168h"}},
		{"no age limit", `{}`, sum(800*24*time.Hour, low), "", nil},
		{"finished a few minutes ahead of this clock", `{maxScanAge: 7d}`, sum(-5*time.Minute, low), "", nil},
		{"finished in the future", `{maxScanAge: 7d}`, sum(-48*time.Hour, low), trainenvv1.ReasonVulnerabilityScanStale, []string{"in the future"}},
		{"no finish time", `{maxScanAge: 7d}`, &Summary{Scanner: "trivy", Findings: []Finding{low}}, trainenvv1.ReasonVulnerabilityScanStale,
			[]string{"records no finish time"}},
		{"stale and critical: the vulnerabilities first", `{maxScanAge: 7d}`, sum(8*24*time.Hour, crit), trainenvv1.ReasonVulnerabilitiesFound,
			[]string{"CVE-2024-3094", "over the limit of 7d"}},
		{"the list is capped", `{}`, sum(time.Hour, many...), trainenvv1.ReasonVulnerabilitiesFound,
			[]string{"12 HIGH or CRITICAL", "CVE-2024-0009 (HIGH p) and 2 more"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			g := NewWithT(t)
			gate, err := ParseGate(tc.gate)
			g.Expect(err).NotTo(HaveOccurred())
			reason, message := gate.Check(tc.summary, now)
			g.Expect(reason).To(Equal(tc.reason), message)
			for _, m := range tc.messages {
				g.Expect(message).To(ContainSubstring(m))
			}
			g.Expect(message).NotTo(ContainSubstring("CVE-2024-0010"))
		})
	}
}

func TestParseGate(t *testing.T) {
	for _, bad := range []string{`{blockSeverities: [SEVERE]}`, `{maxScanAge: soon}`, `{maxScanAge: -1h}`, `{maxAge: 7d}`, `[`} {
		_, err := ParseGate(bad)
		NewWithT(t).Expect(err).To(MatchError(ContainSubstring(AnnotationGate)), bad)
	}
	g, err := ParseGate(`{maxScanAge: 7d}`)
	NewWithT(t).Expect(err).NotTo(HaveOccurred())
	NewWithT(t).Expect(g.BlockSeverities).To(Equal([]string{"HIGH", "CRITICAL"}))
	NewWithT(t).Expect(g.MaxAge()).To(Equal(7 * 24 * time.Hour))
}

// subcomponent limits the first product of an OpenVEX document to one subcomponent.
func subcomponent(doc, purl string) string {
	return strings.Replace(doc, `"}],"status"`, fmt.Sprintf(`","subcomponents":[{"@id":%q}]}],"status"`, purl), 1)
}
