// Package scandocs writes supply-chain documents as the tools write them, for tests: a
// Trivy report in cosign's vuln predicate (`trivy image --format cosign-vuln`) and an
// OpenVEX document (`vexctl create`). No scanner database is reachable in tests.
package scandocs

import (
	"fmt"
	"strings"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/package-url/packageurl-go"
)

// Trivy is a cosign-vuln predicate as `trivy image --format cosign-vuln` writes it,
// finished at finished, with one finding per "ID:SEVERITY:package".
func Trivy(finished time.Time, findings ...string) string {
	var vulns []string
	for _, f := range findings {
		p := strings.SplitN(f, ":", 3)
		vulns = append(vulns, fmt.Sprintf(`{"VulnerabilityID":%q,"PkgID":"%s@1.0.0","PkgName":%q,`+
			`"PkgIdentifier":{"PURL":"pkg:deb/debian/%s@1.0.0?arch=amd64\u0026distro=debian-12.8","UID":"1b2c3d4e5f607182"},`+
			`"InstalledVersion":"1.0.0","FixedVersion":"1.0.1","Status":"fixed","SeveritySource":"nvd",`+
			`"PrimaryURL":"https://avd.aquasec.com/nvd/%s","Title":"test finding","Severity":%q}`,
			p[0], p[2], p[2], p[2], strings.ToLower(p[0]), p[1]))
	}
	return fmt.Sprintf(`{"invocation":{"parameters":null,"uri":"","event_id":"","builder.id":""},`+
		`"scanner":{"uri":"pkg:github/aquasecurity/trivy@0.58.1","version":"0.58.1","db":{"uri":"","version":""},`+
		`"result":{"SchemaVersion":2,"CreatedAt":%q,"ArtifactName":"registry.example.com/ml/pytorch","ArtifactType":"container_image",`+
		`"Metadata":{"OS":{"Family":"debian","Name":"12.8"}},`+
		`"Results":[{"Target":"registry.example.com/ml/pytorch (debian 12.8)","Class":"os-pkgs","Type":"debian","Vulnerabilities":[%s]}]}},`+
		`"metadata":{"scanStartedOn":%q,"scanFinishedOn":%q}}`,
		finished.UTC().Format(time.RFC3339Nano), strings.Join(vulns, ","),
		finished.Add(-time.Minute).UTC().Format(time.RFC3339), finished.UTC().Format(time.RFC3339))
}

// Statement is one VEX statement: a vulnerability id, a status (not_affected, affected,
// fixed, under_investigation) and when it was made.
type Statement struct {
	CVE, Status string
	At          time.Time
}

// OpenVEX is an OpenVEX v0.2.0 document as `vexctl create --product <purl> --vuln <id>
// --status <status> --justification vulnerable_code_not_in_execute_path` writes it, its
// statements about image (repository@sha256:...) identified by its OCI purl.
func OpenVEX(image string, at time.Time, stmts ...Statement) string {
	ref, err := name.NewDigest(image)
	if err != nil {
		panic(err)
	}
	repo := ref.Context().RepositoryStr()
	if i := strings.LastIndex(repo, "/"); i >= 0 {
		repo = repo[i+1:]
	}
	product := packageurl.NewPackageURL("oci", "", repo, ref.DigestStr(),
		packageurl.Qualifiers{{Key: "repository_url", Value: ref.Context().Name()}}, "").ToString()
	var out []string
	for _, s := range stmts {
		extra := `"action_statement":"Update to a fixed version"`
		if s.Status == "not_affected" {
			extra = `"justification":"vulnerable_code_not_in_execute_path"`
		}
		out = append(out, fmt.Sprintf(`{"vulnerability":{"name":%q},"timestamp":%q,"products":[{"@id":%q}],"status":%q,%s}`,
			s.CVE, s.At.UTC().Format(time.RFC3339), product, s.Status, extra))
	}
	return fmt.Sprintf(`{"@context":"https://openvex.dev/ns/v0.2.0","@id":"https://openvex.dev/docs/public/vex-%x",`+
		`"author":"ML Platform <ml-platform@example.com>","timestamp":%q,"version":1,"statements":[%s]}`,
		at.UnixNano(), at.UTC().Format(time.RFC3339), strings.Join(out, ","))
}
