package policy

import (
	"fmt"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/sigstore/policy-controller/pkg/webhook"

	trainenvv1 "github.com/trainenv/trainenv/api/v1alpha1"
	"github.com/trainenv/trainenv/internal/trust"
	"github.com/trainenv/trainenv/internal/trust/vulngate"
)

// gateResult is what trainenv's vulnerability gate adds to one policy's engine result.
type gateResult struct {
	summary *vulngate.Summary
	// reason and message are set when the policy's gate refuses the digest.
	reason, message string
	// staleAt is when the scan ages past the gate's limit (zero: never).
	staleAt time.Time
}

// applyGate reads the scans and VEX documents among the attestations that the policy's
// authorities verified and, when the policy has a gate, judges them at now. It runs only on
// a policy the engine passed: the engine's verdict stands, the gate can only add a refusal
// (see package vulngate for why the gate cannot live in the policy's own CUE or Rego).
// Only statements of authorities that passed are read, so a VEX document signed by an
// identity the policy does not trust never suppresses anything.
func applyGate(ref name.Digest, c *compiled, res *webhook.PolicyResult, now time.Time) gateResult {
	var statements [][]byte
	for _, m := range res.AuthorityMatches {
		for _, atts := range m.Attestations {
			for _, a := range atts {
				statements = append(statements, a.Payload)
			}
		}
	}
	sum, err := vulngate.Summarize(ref, statements)
	if c.gate == nil {
		return gateResult{summary: sum}
	}
	if err != nil {
		return gateResult{reason: trainenvv1.ReasonVulnerabilityScanMissing,
			message: fmt.Sprintf("%v; attest a scan trainenv can read", err)}
	}
	r := gateResult{summary: sum, staleAt: c.gate.StaleAt(sum)}
	r.reason, r.message = c.gate.Check(sum, now)
	return r
}

// gateReasons rank the gate's refusals when several policies refuse: the most serious first.
var gateReasons = []string{trainenvv1.ReasonVulnerabilitiesFound, trainenvv1.ReasonVulnerabilityScanStale, trainenvv1.ReasonVulnerabilityScanMissing}

func summaryOf(policy string, s *vulngate.Summary) *trust.VulnerabilitySummary {
	if s == nil {
		return nil
	}
	out := &trust.VulnerabilitySummary{Policy: policy, Scanner: s.Scanner, ScannerVersion: s.ScannerVersion,
		ScanFinishedAt: s.ScanFinishedAt, Counts: map[string]int{}, NotAffected: len(s.NotAffected)}
	for _, sev := range vulngate.Severities {
		out.Counts[sev] = s.Count(sev)
	}
	return out
}
