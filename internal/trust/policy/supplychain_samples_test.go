package policy

import (
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	. "github.com/onsi/gomega"
	pcv1alpha1 "github.com/sigstore/policy-controller/pkg/apis/policy/v1alpha1"
	ktypes "k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/yaml"

	trainenvv1 "github.com/trainenv/trainenv/api/v1alpha1"
	"github.com/trainenv/trainenv/internal/testutil/registrytest"
	"github.com/trainenv/trainenv/internal/testutil/sigstoretest"
	"github.com/trainenv/trainenv/internal/trust"
)

// The supply-chain gate samples in config/samples, evaluated as shipped (only their image
// glob and key replaced by the test's) against attestation documents written as Trivy
// writes them, in both signature formats.

const (
	spdxPredicate      = "https://spdx.dev/Document"
	cyclonedxPredicate = "https://cyclonedx.org/bom"
)

// samplePolicy reads config/samples/<file> and points it at glob and publicPEM.
func samplePolicy(t testing.TB, file, glob, publicPEM string) pcv1alpha1.ClusterImagePolicy {
	t.Helper()
	raw, err := os.ReadFile("../../../config/samples/" + file)
	if err != nil {
		t.Fatal(err)
	}
	var p pcv1alpha1.ClusterImagePolicy
	if err := yaml.UnmarshalStrict(raw, &p); err != nil {
		t.Fatal(err)
	}
	p.UID, p.Generation = ktypes.UID("uid-"+p.Name), 1
	p.Spec.Images = []pcv1alpha1.ImagePattern{{Glob: glob}}
	for i := range p.Spec.Authorities {
		p.Spec.Authorities[i].Key.Data = publicPEM
	}
	return p
}

// trivyScan is a cosign-vuln predicate as `trivy image --format cosign-vuln` writes it,
// finished at finished, with one finding per "ID:SEVERITY:package".
func trivyScan(finished time.Time, findings ...string) string {
	var vulns []string
	for _, f := range findings {
		p := strings.SplitN(f, ":", 3)
		vulns = append(vulns, fmt.Sprintf(`{"VulnerabilityID":%q,"PkgName":%q,"InstalledVersion":"1.0.0","FixedVersion":"1.0.1","Severity":%q,"Title":"test finding"}`, p[0], p[2], p[1]))
	}
	return fmt.Sprintf(`{"invocation":{"parameters":null,"uri":"","event_id":"","builder.id":""},`+
		`"scanner":{"uri":"pkg:github/aquasecurity/trivy@0.58.1","version":"0.58.1","db":{"uri":"","version":""},`+
		`"result":{"SchemaVersion":2,"ArtifactName":"registry.example.com/ml/pytorch","ArtifactType":"container_image",`+
		`"Results":[{"Target":"registry.example.com/ml/pytorch (debian 12.8)","Class":"os-pkgs","Type":"debian","Vulnerabilities":[%s]}]}},`+
		`"metadata":{"scanStartedOn":%q,"scanFinishedOn":%q}}`,
		strings.Join(vulns, ","), finished.Add(-time.Minute).UTC().Format(time.RFC3339), finished.UTC().Format(time.RFC3339))
}

const spdxSBOM = `{"spdxVersion":"SPDX-2.3","dataLicense":"CC0-1.0","SPDXID":"SPDXRef-DOCUMENT","name":"registry.example.com/ml/pytorch",` +
	`"documentNamespace":"http://aquasecurity.github.io/trivy/container_image/pytorch","creationInfo":{"creators":["Tool: trivy-0.58.1"],"created":"2026-12-01T00:00:00Z"},` +
	`"packages":[{"name":"python3-torch","SPDXID":"SPDXRef-Package-1","versionInfo":"2.1.2","downloadLocation":"NONE"}]}`

const cycloneDXSBOM = `{"bomFormat":"CycloneDX","specVersion":"1.6","version":1,"metadata":{"tools":{"components":[{"name":"trivy","version":"0.58.1"}]}},` +
	`"components":[{"type":"library","name":"python3-torch","version":"2.1.2"}]}`

// attestLegacy attaches a signed in-toto statement of predicateType as cosign v2 does
// (`cosign attest --type ...`: the .att manifest).
func (s signer) attestLegacy(t testing.TB, img, predicateType, predicate string) {
	t.Helper()
	sigstoretest.Attest(t, img, s.sv, predicateType, predicate)
}

func TestVulnerabilityGateSample(t *testing.T) {
	reg := registrytest.New(t)
	ci, other := newSigner(t), newSigner(t)
	now := time.Now()
	img := func(name string, attach func(string)) string {
		i := push(t, reg, "ml/"+name)
		if attach != nil {
			attach(i)
		}
		return i
	}
	bundle := func(s signer, scan string) func(string) {
		return func(i string) { attachBundle(t, i, s.sv, bundleSpec{predicateType: vulnPredicate, predicate: scan}) }
	}
	legacy := func(s signer, scan string) func(string) {
		return func(i string) { s.attestLegacy(t, i, vulnPredicate, scan) }
	}
	clean := trivyScan(now.Add(-2*time.Hour), "CVE-2023-0001:LOW:libc6", "CVE-2023-0002:MEDIUM:zlib1g")
	critical := trivyScan(now.Add(-2*time.Hour), "CVE-2024-3094:CRITICAL:liblzma5", "CVE-2024-6387:HIGH:openssh-server", "CVE-2023-0001:LOW:libc6")
	stale := trivyScan(now.Add(-10*24*time.Hour), "CVE-2023-0001:LOW:libc6")

	p := samplePolicy(t, "policy_v1alpha1_clusterimagepolicy_vulnerability_gate.yaml", reg.Host+"/ml/**", ci.publicPEM)
	cases := []struct {
		name     string
		image    string
		reason   string
		messages []string
	}{
		{"clean scan, bundle", img("clean-bundle", bundle(ci, clean)), trainenvv1.ReasonVerified, []string{"attestations vuln"}},
		{"clean scan, legacy", img("clean-legacy", legacy(ci, clean)), trainenvv1.ReasonVerified, []string{"attestations vuln"}},
		{"CRITICAL and HIGH found, bundle", img("critical-bundle", bundle(ci, critical)), trainenvv1.ReasonAttestationPolicyFailed,
			[]string{"2 HIGH or CRITICAL vulnerabilities: CVE-2024-3094 (CRITICAL liblzma5), CVE-2024-6387 (HIGH openssh-server)"}},
		{"CRITICAL found, legacy", img("critical-legacy", legacy(ci, critical)), trainenvv1.ReasonAttestationPolicyFailed, []string{"CVE-2024-3094 (CRITICAL liblzma5)"}},
		{"scan older than 7 days", img("stale", bundle(ci, stale)), trainenvv1.ReasonAttestationPolicyFailed, []string{"days ago, over the limit of 7 days"}},
		{"no scan", img("unscanned", nil), trainenvv1.ReasonAttestationMissing, []string{"no matching attestations"}},
		{"clean scan attested by another key", img("foreign", bundle(other, clean)), trainenvv1.ReasonAttestationMissing, []string{"no matching attestations"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			g := NewWithT(t)
			got, err := New(&StaticSource{Policies: pl(p)}, Options{}).Verify(bg, trust.Request{Image: tc.image})
			g.Expect(err).NotTo(HaveOccurred())
			t.Logf("%s: %s", got.Reason, got.Message)
			g.Expect(got.Reason).To(Equal(tc.reason), got.Message)
			for _, m := range tc.messages {
				g.Expect(got.Message).To(ContainSubstring(m))
			}
		})
	}
}

func TestSBOMRequiredSample(t *testing.T) {
	reg := registrytest.New(t)
	ci := newSigner(t)
	spdxBundle := push(t, reg, "ml/spdx")
	attachBundle(t, spdxBundle, ci.sv, bundleSpec{predicateType: spdxPredicate, predicate: spdxSBOM})
	cdxLegacy := push(t, reg, "ml/cyclonedx")
	ci.attestLegacy(t, cdxLegacy, cyclonedxPredicate, cycloneDXSBOM)
	emptySPDX := push(t, reg, "ml/empty-spdx")
	attachBundle(t, emptySPDX, ci.sv, bundleSpec{predicateType: spdxPredicate, predicate: strings.Replace(spdxSBOM,
		`[{"name":"python3-torch","SPDXID":"SPDXRef-Package-1","versionInfo":"2.1.2","downloadLocation":"NONE"}]`, `[]`, 1)})
	none := push(t, reg, "ml/none")
	ci.signBundle(t, none)

	p := samplePolicy(t, "policy_v1alpha1_clusterimagepolicy_sbom_required.yaml", reg.Host+"/ml/**", ci.publicPEM)
	for _, tc := range []struct {
		name, image, reason string
	}{
		{"SPDX SBOM as a bundle", spdxBundle, trainenvv1.ReasonVerified},
		{"CycloneDX SBOM, legacy", cdxLegacy, trainenvv1.ReasonVerified},
		{"SPDX SBOM listing no package", emptySPDX, trainenvv1.ReasonAttestationPolicyFailed},
		{"signed, no SBOM", none, trainenvv1.ReasonAttestationMissing},
	} {
		t.Run(tc.name, func(t *testing.T) {
			g := NewWithT(t)
			got, err := New(&StaticSource{Policies: pl(p)}, Options{}).Verify(bg, trust.Request{Image: tc.image})
			g.Expect(err).NotTo(HaveOccurred())
			t.Logf("%s: %s", got.Reason, got.Message)
			g.Expect(got.Reason).To(Equal(tc.reason), got.Message)
		})
	}
}
