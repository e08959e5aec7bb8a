// Package vulngate is trainenv's vulnerability gate: it reads the vulnerability scans
// (cosign's vuln predicate holding a Trivy report) and OpenVEX documents among the in-toto
// statements a ClusterImagePolicy's authorities verified, applies the VEX statements to
// the scan's findings, and judges the result against the gate a policy declares in its
// AnnotationGate annotation.
//
// Why here and not in the policy's CUE or Rego: policy-controller's engine evaluates each
// attestation's policy on that attestation alone, and its policy-level `spec.policy` sees
// which authorities and attestations matched but not their content (the engine's
// PolicyAttestation.Payload is not serialised into its input). No policy the engine
// evaluates can therefore subtract a VEX statement from a scan. The gate runs in Go after
// the engine, on the statements the engine (or trainenv's bundle adapter, under the
// engine's rules) verified: the policy's own verdict is unchanged, and a VEX document
// signed by an identity no authority trusts is never seen here.
package vulngate

import (
	"bytes"
	"encoding/json"
	"fmt"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/openvex/go-vex/pkg/vex"
	"github.com/package-url/packageurl-go"
	"sigs.k8s.io/yaml"
)

// AnnotationGate, on a ClusterImagePolicy, turns the gate on for the images it covers:
// its value is a Gate in YAML or JSON, e.g. `{blockSeverities: [HIGH, CRITICAL], maxScanAge: 7d}`.
const AnnotationGate = "trainenv.io/vulnerability-gate"

// Predicate types, as `cosign attest --type vuln` and `--type openvex` write them.
const (
	VulnPredicate    = "https://cosign.sigstore.dev/attestation/vuln/v1"
	OpenVEXPredicate = "https://openvex.dev/ns"
)

// Severities are the severities Trivy writes, highest first. Anything else counts as UNKNOWN.
var Severities = []string{"CRITICAL", "HIGH", "MEDIUM", "LOW", "UNKNOWN"}

// Gate is what a policy requires of the images it covers.
type Gate struct {
	// BlockSeverities are the severities that refuse the image (default HIGH and CRITICAL).
	BlockSeverities []string `json:"blockSeverities,omitempty"`
	// MaxScanAge is the oldest scan accepted: a Go duration or a number of days ("7d").
	// Empty: any age.
	MaxScanAge string `json:"maxScanAge,omitempty"`

	maxAge time.Duration
}

// ParseGate reads an AnnotationGate value; unknown fields and severities are errors.
func ParseGate(s string) (*Gate, error) {
	g := &Gate{}
	if err := yaml.UnmarshalStrict([]byte(s), g); err != nil {
		return nil, fmt.Errorf("annotation %s: %w", AnnotationGate, err)
	}
	if len(g.BlockSeverities) == 0 {
		g.BlockSeverities = []string{"HIGH", "CRITICAL"}
	}
	for i, sev := range g.BlockSeverities {
		g.BlockSeverities[i] = strings.ToUpper(sev)
		if !slices.Contains(Severities, g.BlockSeverities[i]) {
			return nil, fmt.Errorf("annotation %s: blockSeverities: %q is none of %s", AnnotationGate, sev, strings.Join(Severities, ", "))
		}
	}
	if g.MaxScanAge != "" {
		d, err := parseAge(g.MaxScanAge)
		if err != nil || d <= 0 {
			return nil, fmt.Errorf("annotation %s: maxScanAge %q is not a positive duration (e.g. 168h or 7d)", AnnotationGate, g.MaxScanAge)
		}
		g.maxAge = d
	}
	return g, nil
}

func parseAge(s string) (time.Duration, error) {
	if days, ok := strings.CutSuffix(s, "d"); ok {
		n, err := strconv.Atoi(days)
		return time.Duration(n) * 24 * time.Hour, err
	}
	return time.ParseDuration(s)
}

// MaxAge is the parsed MaxScanAge (0: no limit).
func (g *Gate) MaxAge() time.Duration { return g.maxAge }

// Finding is one vulnerability of the scan.
type Finding struct {
	ID, Severity, Package, PURL string
}

// Summary is what the newest verified scan says, after VEX.
type Summary struct {
	Scanner, ScannerVersion string
	ScanFinishedAt          time.Time
	// Findings are the distinct vulnerabilities not covered by a not_affected statement,
	// each at the highest severity the scan gave it, highest first, then by id.
	Findings []Finding
	// NotAffected are the ids a verified VEX statement marks not_affected, sorted.
	NotAffected []string
}

// Count is the number of findings at severity.
func (s *Summary) Count(severity string) int {
	n := 0
	for _, f := range s.Findings {
		if f.Severity == severity {
			n++
		}
	}
	return n
}

type statement struct {
	PredicateType string `json:"predicateType"`
	Subject       []struct {
		Digest map[string]string `json:"digest"`
	} `json:"subject"`
	Predicate json.RawMessage `json:"predicate"`
}

// vulnPredicate is cosign's vuln predicate; result is the scanner's own report.
type vulnPredicate struct {
	Scanner struct {
		URI     string          `json:"uri"`
		Version string          `json:"version"`
		Result  json.RawMessage `json:"result"`
	} `json:"scanner"`
	Metadata struct {
		ScanFinishedOn time.Time `json:"scanFinishedOn"`
	} `json:"metadata"`
}

// trivyReport is the part of Trivy's JSON report the gate reads.
type trivyReport struct {
	SchemaVersion int `json:"SchemaVersion"`
	Results       []struct {
		Vulnerabilities []struct {
			VulnerabilityID string `json:"VulnerabilityID"`
			PkgName         string `json:"PkgName"`
			PkgIdentifier   struct {
				PURL string `json:"PURL"`
			} `json:"PkgIdentifier"`
			Severity string `json:"Severity"`
		} `json:"Vulnerabilities"`
	} `json:"Results"`
}

// Summarize reads the scans and VEX documents among statements (verified in-toto
// statements, as JSON) about image. It returns nil when none of them is a scan; a scan
// whose report it cannot read is an error (the gate fails closed on it). Statements about
// another digest are ignored.
func Summarize(image name.Digest, statements [][]byte) (*Summary, error) {
	hex := strings.TrimPrefix(image.DigestStr(), "sha256:")
	var scans []vulnPredicate
	var docs []*vex.VEX
	for _, raw := range statements {
		var st statement
		if err := json.Unmarshal(raw, &st); err != nil || !about(st, hex) {
			continue
		}
		switch {
		case st.PredicateType == VulnPredicate:
			var p vulnPredicate
			if err := json.Unmarshal(st.Predicate, &p); err != nil {
				return nil, fmt.Errorf("reading the vulnerability scan: %w", err)
			}
			scans = append(scans, p)
		case st.PredicateType == OpenVEXPredicate || strings.HasPrefix(st.PredicateType, OpenVEXPredicate+"/"):
			doc, err := vex.Parse(st.Predicate)
			if err != nil {
				return nil, fmt.Errorf("reading the OpenVEX document: %w", err)
			}
			docs = append(docs, doc)
		}
	}
	if len(scans) == 0 {
		return nil, nil
	}
	newest := scans[0]
	for _, s := range scans[1:] {
		if s.Metadata.ScanFinishedOn.After(newest.Metadata.ScanFinishedOn) {
			newest = s
		}
	}
	findings, err := findings(newest)
	if err != nil {
		return nil, err
	}
	sum := &Summary{Scanner: scannerName(newest.Scanner.URI), ScannerVersion: newest.Scanner.Version,
		ScanFinishedAt: newest.Metadata.ScanFinishedOn}
	products := productIDs(image)
	index := indexStatements(docs)
	for _, f := range findings {
		if notAffected(index[f.ID], f, products) {
			if !slices.Contains(sum.NotAffected, f.ID) {
				sum.NotAffected = append(sum.NotAffected, f.ID)
			}
			continue
		}
		sum.Findings = append(sum.Findings, f)
	}
	sum.Findings = distinct(sum.Findings)
	// A vulnerability suppressed in one package but not in another still counts.
	sum.NotAffected = slices.DeleteFunc(sum.NotAffected, func(id string) bool {
		return slices.ContainsFunc(sum.Findings, func(f Finding) bool { return f.ID == id })
	})
	sort.Strings(sum.NotAffected)
	return sum, nil
}

// about says whether the statement's subject is the digest (cosign checks it for bundles;
// checked again here for every format).
func about(st statement, hex string) bool {
	for _, s := range st.Subject {
		if s.Digest["sha256"] == hex {
			return true
		}
	}
	return false
}

func findings(p vulnPredicate) ([]Finding, error) {
	var r trivyReport
	dec := json.NewDecoder(bytes.NewReader(p.Scanner.Result))
	if err := dec.Decode(&r); err != nil || (r.SchemaVersion == 0 && r.Results == nil) {
		return nil, fmt.Errorf("the vulnerability scan by %s holds no report trainenv can read (a Trivy JSON report is expected in scanner.result)", p.Scanner.URI)
	}
	var out []Finding
	for _, res := range r.Results {
		for _, v := range res.Vulnerabilities {
			sev := strings.ToUpper(v.Severity)
			if !slices.Contains(Severities, sev) {
				sev = "UNKNOWN"
			}
			out = append(out, Finding{ID: v.VulnerabilityID, Severity: sev, Package: v.PkgName, PURL: v.PkgIdentifier.PURL})
		}
	}
	return out, nil
}

// scannerName is the name in the scanner's URI: pkg:github/aquasecurity/trivy@0.58.1 -> trivy.
func scannerName(uri string) string {
	if p, err := packageurl.FromString(uri); err == nil && p.Name != "" {
		return p.Name
	}
	return uri
}

// productIDs are the identifiers a VEX product may use for the image: its purl (with and
// without repository_url, as vexctl and Trivy write it), its reference and its digest.
func productIDs(image name.Digest) []string {
	repo := image.Context()
	base := repo.RepositoryStr()
	if i := strings.LastIndex(base, "/"); i >= 0 {
		base = base[i+1:]
	}
	purl := packageurl.NewPackageURL("oci", "", base, image.DigestStr(), packageurl.Qualifiers{{Key: "repository_url", Value: repo.Name()}}, "")
	hex := strings.TrimPrefix(image.DigestStr(), "sha256:")
	return []string{purl.ToString(), image.String(), image.DigestStr(), hex}
}

// vexStatement is a statement with the time it was made (its own or its document's).
type vexStatement struct {
	st *vex.Statement
	at time.Time
}

// indexStatements files every statement under each id it names (name, @id, aliases), so
// that a scan's findings are matched against their own statements only.
func indexStatements(docs []*vex.VEX) map[string][]vexStatement {
	index := map[string][]vexStatement{}
	for _, doc := range docs {
		for i := range doc.Statements {
			st := &doc.Statements[i]
			vs := vexStatement{st: st}
			if doc.Timestamp != nil {
				vs.at = *doc.Timestamp
			}
			if st.Timestamp != nil {
				vs.at = *st.Timestamp
			}
			ids := append([]string{string(st.Vulnerability.Name), st.Vulnerability.ID}, aliases(st.Vulnerability.Aliases)...)
			seen := map[string]bool{}
			for _, id := range ids {
				if id != "" && !seen[id] {
					seen[id] = true
					index[id] = append(index[id], vs)
				}
			}
		}
	}
	return index
}

func aliases(as []vex.VulnerabilityID) []string {
	out := make([]string, 0, len(as))
	for _, a := range as {
		out = append(out, string(a))
	}
	return out
}

// notAffected applies the statements about f's id to the image: the newest matching
// statement decides, and only not_affected suppresses the finding (affected,
// under_investigation and fixed keep it).
func notAffected(stmts []vexStatement, f Finding, products []string) bool {
	var sub []string
	for _, s := range []string{f.PURL, f.Package} {
		if s != "" {
			sub = append(sub, s)
		}
	}
	var latest *vexStatement
	for i := range stmts {
		vs := &stmts[i]
		if !matchesAny(vs.st, f.ID, products, sub) {
			continue
		}
		if latest == nil || !vs.at.Before(latest.at) {
			latest = vs
		}
	}
	return latest != nil && latest.st.Status == vex.StatusNotAffected
}

func matchesAny(st *vex.Statement, id string, products, sub []string) bool {
	for _, p := range products {
		if st.Matches(id, p, sub) {
			return true
		}
	}
	return false
}

// distinct keeps one finding per id, at its highest severity, ordered by severity then id.
func distinct(fs []Finding) []Finding {
	rank := func(s string) int { return slices.Index(Severities, s) }
	best := map[string]Finding{}
	for _, f := range fs {
		if b, ok := best[f.ID]; !ok || rank(f.Severity) < rank(b.Severity) {
			best[f.ID] = f
		}
	}
	out := make([]Finding, 0, len(best))
	for _, f := range best {
		out = append(out, f)
	}
	sort.Slice(out, func(i, j int) bool {
		if ri, rj := rank(out[i].Severity), rank(out[j].Severity); ri != rj {
			return ri < rj
		}
		return out[i].ID < out[j].ID
	})
	return out
}
