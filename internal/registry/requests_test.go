package registry_test

import (
	"testing"

	. "github.com/onsi/gomega"

	"github.com/trainenv/trainenv/internal/registry"
	"github.com/trainenv/trainenv/internal/testutil/registrytest"
)

// TestResolveRequestCounts pins what resolving costs the registry: a tag costs a ping and
// one HEAD (never a GET, which rate-limited registries count as a pull) plus, the first
// time its digest is seen, the manifest and config by digest; a multi-platform index one
// more manifest. Known digests are not read again.
func TestResolveRequestCounts(t *testing.T) {
	g := NewWithT(t)
	reg := registrytest.New(t)
	reg.Push("team/pytorch", "2.4", registrytest.Image(t))
	reg.PushIndex("team/pytorch", "multi", map[string]v1Image{"linux/amd64": registrytest.Image(t), "linux/arm64": registrytest.Image(t)})
	counter := &registrytest.CountingTransport{}
	r := registry.NewResolver(counter, 16)

	_, err := resolve(reg, r, reg.Host+"/team/pytorch:2.4", "linux/amd64")
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(counter.Take()).To(Equal([]string{"GET ping", "HEAD manifest by tag", "GET manifest by digest", "GET blob"}))
	for range 10 {
		_, err = resolve(reg, r, reg.Host+"/team/pytorch:2.4", "linux/amd64")
		g.Expect(err).NotTo(HaveOccurred())
	}
	g.Expect(counter.Take()).To(HaveLen(20)) // ping + HEAD each
	res, err := resolve(reg, r, reg.Host+"/team/pytorch:2.4", "linux/amd64")
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(counter.Take()).To(Equal([]string{"GET ping", "HEAD manifest by tag"}))

	_, err = resolve(reg, r, res.Pinned(), "linux/amd64")
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(counter.Take()).To(Equal([]string{"GET ping", "HEAD manifest by digest"}))

	_, err = resolve(reg, r, reg.Host+"/team/pytorch:multi", "linux/amd64")
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(counter.Take()).To(Equal([]string{"GET ping", "HEAD manifest by tag", "GET manifest by digest", "GET manifest by digest", "GET blob"}))
}
