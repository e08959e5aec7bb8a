package policy

import (
	"fmt"
	"strings"
	"testing"
	"time"

	trainenvv1 "github.com/trainenv/trainenv/api/v1alpha1"
	"github.com/trainenv/trainenv/internal/testutil/registrytest"
	"github.com/trainenv/trainenv/internal/testutil/scandocs"
	"github.com/trainenv/trainenv/internal/trust"
	"github.com/trainenv/trainenv/internal/trust/vulngate"
)

// BenchmarkVerify measures one signed image against one key policy, with the in-process
// registry on loopback:
//   - cold: a new Verifier each time (policy compiled, signatures fetched and verified);
//   - uncached: policies compiled, verdict not cached (the cost of a re-verification);
//   - cached: the verdict is reused (what N environments of one image cost after the first);
//   - cached-parallel: the same from every core at once;
//   - bundle-cold, bundle-cached: the same for a digest signed in the sigstore bundle format
//     (cosign v3's default), attached as a referrer under the referrers tag.
func BenchmarkVerify(b *testing.B) {
	reg := registrytest.New(b)
	release := newSigner(b)
	img := push(b, reg, "team/app")
	release.sign(b, img)
	bundled := push(b, reg, "team/bundled")
	release.signBundle(b, bundled)
	src := &StaticSource{Policies: pl(keyPolicy("release", reg.Host+"/team/*", release.publicPEM))}
	req := trust.Request{Image: img, Namespace: "ns"}
	verify := func(b *testing.B, v *Verifier) {
		got, err := v.Verify(bg, req)
		if err != nil || got.Reason != trainenvv1.ReasonVerified {
			b.Fatalf("%v: %s", err, got.Message)
		}
	}

	b.Run("cold", func(b *testing.B) {
		reg.Requests()
		for b.Loop() {
			verify(b, New(src, Options{}))
		}
		b.ReportMetric(float64(len(reg.Requests()))/float64(b.N), "requests/op")
	})
	b.Run("uncached", func(b *testing.B) {
		v := New(src, Options{})
		for b.Loop() {
			v.cache = newCache(1, v.opts.Now)
			verify(b, v)
		}
		b.ReportMetric(float64(len(reg.Requests()))/float64(b.N), "requests/op")
	})
	b.Run("cached", func(b *testing.B) {
		v := New(src, Options{})
		verify(b, v)
		reg.Requests()
		for b.Loop() {
			verify(b, v)
		}
		b.ReportMetric(float64(len(reg.Requests()))/float64(b.N), "requests/op")
	})
	bundleReq := trust.Request{Image: bundled, Namespace: "ns"}
	verifyBundle := func(b *testing.B, v *Verifier) {
		got, err := v.Verify(bg, bundleReq)
		if err != nil || got.Reason != trainenvv1.ReasonVerified {
			b.Fatalf("%v: %s", err, got.Message)
		}
	}
	b.Run("bundle-cold", func(b *testing.B) {
		reg.Requests()
		for b.Loop() {
			verifyBundle(b, New(src, Options{}))
		}
		b.ReportMetric(float64(len(reg.Requests()))/float64(b.N), "requests/op")
	})
	b.Run("bundle-cached", func(b *testing.B) {
		v := New(src, Options{})
		verifyBundle(b, v)
		reg.Requests()
		for b.Loop() {
			verifyBundle(b, v)
		}
		b.ReportMetric(float64(len(reg.Requests()))/float64(b.N), "requests/op")
	})
	b.Run("cached-parallel", func(b *testing.B) {
		v := New(src, Options{})
		verify(b, v)
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				verify(b, v)
			}
		})
	})
}

// BenchmarkVulnerabilityGate measures the VEX-aware vulnerability gate sample on a digest
// carrying a Trivy scan with 200 findings (2 CRITICAL) and an OpenVEX document marking both
// CRITICAL ones not_affected, attested in the legacy format and as bundles: cold (a new
// verifier) and cached, with the registry requests of each.
func BenchmarkVulnerabilityGate(b *testing.B) {
	reg := registrytest.New(b)
	ci := newSigner(b)
	findings := []string{"CVE-2024-3094:CRITICAL:liblzma5", "CVE-2024-6387:CRITICAL:openssh-server"}
	for i := range 198 {
		findings = append(findings, fmt.Sprintf("CVE-2023-%04d:%s:pkg%d", i, []string{"HIGH", "MEDIUM", "LOW"}[i%3], i))
	}
	// The HIGH findings are not_affected too, so that the gate passes.
	var stmts []scandocs.Statement
	for _, f := range findings {
		if strings.Contains(f, ":CRITICAL:") || strings.Contains(f, ":HIGH:") {
			stmts = append(stmts, scandocs.Statement{CVE: strings.SplitN(f, ":", 2)[0], Status: "not_affected", At: time.Now()})
		}
	}
	scan := scandocs.Trivy(time.Now().Add(-time.Hour), findings...)
	legacy := push(b, reg, "ml/legacy")
	ci.attestLegacy(b, legacy, vulngate.VulnPredicate, scan)
	ci.attestLegacy(b, legacy, vulngate.OpenVEXPredicate, scandocs.OpenVEX(legacy, time.Now(), stmts...))
	bundled := push(b, reg, "ml/bundled")
	attachBundle(b, bundled, ci.sv, bundleSpec{predicateType: vulngate.VulnPredicate, predicate: scan})
	attachBundle(b, bundled, ci.sv, bundleSpec{predicateType: vulngate.OpenVEXPredicate, predicate: scandocs.OpenVEX(bundled, time.Now(), stmts...)})
	p := samplePolicy(b, "policy_v1alpha1_clusterimagepolicy_vulnerability_gate_vex.yaml", reg.Host+"/ml/**", ci.publicPEM)
	src := &StaticSource{Policies: pl(p)}
	for _, img := range []struct{ name, ref string }{{"legacy", legacy}, {"bundle", bundled}} {
		verify := func(b *testing.B, v *Verifier) {
			got, err := v.Verify(bg, trust.Request{Image: img.ref})
			if err != nil || got.Reason != trainenvv1.ReasonVerified || got.Vulnerabilities.NotAffected != len(stmts) {
				b.Fatalf("%v: %s %+v", err, got.Message, got.Vulnerabilities)
			}
		}
		b.Run(img.name+"-cold", func(b *testing.B) {
			reg.Requests()
			for b.Loop() {
				verify(b, New(src, Options{}))
			}
			b.ReportMetric(float64(len(reg.Requests()))/float64(b.N), "requests/op")
		})
		b.Run(img.name+"-cached", func(b *testing.B) {
			v := New(src, Options{})
			verify(b, v)
			reg.Requests()
			for b.Loop() {
				verify(b, v)
			}
			b.ReportMetric(float64(len(reg.Requests()))/float64(b.N), "requests/op")
		})
	}
}

// BenchmarkVerifyNotation measures a Notation-signed digest (notation-go's JWS envelope, a
// leaf of a test CA without revocation endpoints, level strict), attached as a referrer
// under the referrers tag, against a Notation trust policy alone:
//   - cold: a new Verifier each time (the ConfigMap compiled, the signature fetched and
//     verified);
//   - cached: the verdict is reused.
func BenchmarkVerifyNotation(b *testing.B) {
	reg := registrytest.New(b)
	ca := newNotaryCA(b, "bench CA")
	img := push(b, reg, "team/notation")
	ca.validLeaf(b, "release").sign(b, img)
	src := StaticNotationSource{NotationTrustPolicyKey: trustPolicy(b, "team", "strict", []string{"*"}, "ca:bench"), "ca.bench.pem": ca.pem()}
	req := trust.Request{Image: img, Namespace: "ns"}
	verify := func(b *testing.B, v *Verifier) {
		got, err := v.Verify(bg, req)
		if err != nil || got.Reason != trainenvv1.ReasonVerified {
			b.Fatalf("%v: %s", err, got.Message)
		}
	}
	b.Run("cold", func(b *testing.B) {
		reg.Requests()
		for b.Loop() {
			verify(b, New(&StaticSource{}, Options{Notation: src}))
		}
		b.ReportMetric(float64(len(reg.Requests()))/float64(b.N), "requests/op")
	})
	b.Run("cached", func(b *testing.B) {
		v := New(&StaticSource{}, Options{Notation: src})
		verify(b, v)
		reg.Requests()
		for b.Loop() {
			verify(b, v)
		}
		b.ReportMetric(float64(len(reg.Requests()))/float64(b.N), "requests/op")
	})
}
