package controller_test

import (
	"fmt"
	"strings"
	"testing"
	"time"

	. "github.com/onsi/gomega"

	"github.com/trainenv/trainenv/internal/testutil/registrytest"
)

// Environments created together from one tag share its lookup: one HEAD for all of them
// within a few seconds, another once that has passed.
func TestAnonymousTagLookupsAreShared(t *testing.T) {
	g := NewWithT(t)
	f := newFixture(t)
	reg := registrytest.New(t)
	reg.Push("team/pytorch", "2.4", registrytest.Image(t))
	f.gpuNode("share-a100")
	heads := func() int {
		n := 0
		for _, req := range reg.Requests() {
			if strings.HasPrefix(req, "HEAD ") && strings.HasSuffix(req, "/manifests/2.4") {
				n++
			}
		}
		return n
	}
	heads() // forget the push
	for i := range 5 {
		te := f.create(fmt.Sprintf("share-%d", i), reg.Host+"/team/pytorch:2.4")
		_, err, got := f.reconcile(te)
		g.Expect(err).NotTo(HaveOccurred())
		g.Expect(got.Status.Image).NotTo(BeNil())
	}
	g.Expect(heads()).To(Equal(1))

	f.clock.Step(6 * time.Second)
	te := f.create("share-late", reg.Host+"/team/pytorch:2.4")
	_, err, _ := f.reconcile(te)
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(heads()).To(Equal(1), "a lookup older than the sharing window is made again")
}
