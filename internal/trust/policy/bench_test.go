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
//   - cached-parallel: the same from every core at once.
func BenchmarkVerify(b *testing.B) {
	reg := registrytest.New(b)
	release := newSigner(b)
	img := push(b, reg, "team/app")
	release.sign(b, img)
	src := &StaticSource{Policies: pl(keyPolicy("release", reg.Host+"/team/*", release.publicPEM))}
	req := trust.Request{Image: img, Namespace: "ns"}
	verify := func(b *testing.B, v *Verifier) {
		got, err := v.Verify(bg, req)
		if err != nil || got.Reason != trainenvv1.ReasonVerified {
			b.Fatalf("%v: %s", err, got.Message)
		}
	}

	b.Run("cold", func(b *testing.B) {
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
