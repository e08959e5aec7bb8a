package policy

import (
	"testing"

	trainenvv1 "github.com/trainenv/trainenv/api/v1alpha1"
	"github.com/trainenv/trainenv/internal/testutil/registrytest"
	"github.com/trainenv/trainenv/internal/trust"
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
