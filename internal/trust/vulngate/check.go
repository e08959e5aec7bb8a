package vulngate

import (
	"fmt"
	"strings"
	"time"

	trainenvv1 "github.com/trainenv/trainenv/api/v1alpha1"
)

// clockSkew is how far in the future a scan's finish time may be (the scanner's clock
// against the operator's) before its age counts as unknown.
const clockSkew = time.Hour

// maxListed caps the vulnerabilities a refusal names; the rest are counted.
const maxListed = 10

// Check judges a summary (nil: no scan verified) at now. It returns "" when the gate
// passes, else the reason and a message saying what to do. Blocking findings outrank a
// stale scan, which outranks a missing one.
func (g *Gate) Check(s *Summary, now time.Time) (reason, message string) {
	if s == nil {
		return trainenvv1.ReasonVulnerabilityScanMissing, fmt.Sprintf("no vulnerability scan (in-toto predicate %s) is attested by an authority of the policy: "+
			"scan the digest and attest the report (trivy image --format cosign-vuln, then cosign attest --type vuln)", VulnPredicate)
	}
	var blocking []string
	for _, f := range s.Findings {
		if g.blocks(f.Severity) {
			blocking = append(blocking, fmt.Sprintf("%s (%s %s)", f.ID, f.Severity, f.Package))
		}
	}
	var problems []string
	if len(blocking) > 0 {
		reason = trainenvv1.ReasonVulnerabilitiesFound
		listed := blocking[:min(len(blocking), maxListed)]
		msg := fmt.Sprintf("%d %s vulnerabilities not covered by a trusted VEX not_affected statement: %s",
			len(blocking), strings.Join(g.BlockSeverities, " or "), strings.Join(listed, ", "))
		if more := len(blocking) - len(listed); more > 0 {
			msg += fmt.Sprintf(" and %d more", more)
		}
		problems = append(problems, msg+"; rebuild on fixed packages, or have the publisher attest an OpenVEX not_affected statement")
	}
	switch age := now.Sub(s.ScanFinishedAt); {
	case g.maxAge == 0:
	case s.ScanFinishedAt.IsZero():
		if reason == "" {
			reason = trainenvv1.ReasonVulnerabilityScanStale
		}
		problems = append(problems, fmt.Sprintf("the scan by %s %s records no finish time (metadata.scanFinishedOn), so its age is unknown: attest a scan that records it",
			s.Scanner, s.ScannerVersion))
	case age < -clockSkew:
		if reason == "" {
			reason = trainenvv1.ReasonVulnerabilityScanStale
		}
		problems = append(problems, fmt.Sprintf("the scan by %s %s finished %s, in the future, so its age is unknown (the scanner's clock is wrong): scan again",
			s.Scanner, s.ScannerVersion, s.ScanFinishedAt.UTC().Format(time.RFC3339)))
	case age > g.maxAge:
		if reason == "" {
			reason = trainenvv1.ReasonVulnerabilityScanStale
		}
		problems = append(problems, fmt.Sprintf("the scan by %s %s finished %s, %s ago, over the limit of %s: scan the digest again and attest the new report",
			s.Scanner, s.ScannerVersion, s.ScanFinishedAt.UTC().Format(time.RFC3339), ageText(age), g.MaxScanAge))
	}
	return reason, strings.Join(problems, "; ")
}

// ageText is an age in days, or hours under two days.
func ageText(d time.Duration) string {
	if d >= 48*time.Hour {
		return fmt.Sprintf("%d days", int(d/(24*time.Hour)))
	}
	return d.Truncate(time.Minute).String()
}

// StaleAt is when the scan ages past the limit (zero: never).
func (g *Gate) StaleAt(s *Summary) time.Time {
	if s == nil || g.maxAge == 0 {
		return time.Time{}
	}
	return s.ScanFinishedAt.Add(g.maxAge)
}

func (g *Gate) blocks(severity string) bool {
	for _, b := range g.BlockSeverities {
		if b == severity {
			return true
		}
	}
	return false
}
