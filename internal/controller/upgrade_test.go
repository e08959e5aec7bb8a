package controller_test

import (
	"testing"

	. "github.com/onsi/gomega"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/trainenv/trainenv/internal/workload"
)

// A StatefulSet written by an earlier trainenv names the headless Service this version no
// longer makes, and serviceName is immutable. Its spec hash no longer matches, so the
// first pass after the upgrade updates it: only replicas, the template and the hash, never
// serviceName (the update would be refused), and with the template unchanged the
// generation stays, so the StatefulSet controller does not replace the pod.
func TestUpgradeKeepsServiceNameAndPod(t *testing.T) {
	g := NewWithT(t)
	f := newFixture(t)
	te := f.pinnedOnNode("upgrade")
	current, err := f.statefulSet(te)
	g.Expect(err).NotTo(HaveOccurred())

	// The same StatefulSet as the earlier version wrote it.
	g.Expect(k8s.Delete(f.ctx, current)).To(Succeed())
	earlier := current.DeepCopy()
	earlier.ResourceVersion, earlier.UID, earlier.Generation = "", "", 0
	earlier.Spec.ServiceName = earlier.Name
	earlier.Annotations[workload.AnnotationSpecHash] = "hash-of-an-earlier-version"
	g.Expect(k8s.Create(f.ctx, earlier)).To(Succeed())
	created, err := f.statefulSet(te)
	g.Expect(err).NotTo(HaveOccurred())

	_, err, _ = f.reconcile(te)
	g.Expect(err).NotTo(HaveOccurred())
	upgraded := created.DeepCopy()
	g.Expect(k8s.Get(f.ctx, client.ObjectKeyFromObject(created), upgraded)).To(Succeed())
	g.Expect(upgraded.Annotations[workload.AnnotationSpecHash]).To(Equal(current.Annotations[workload.AnnotationSpecHash]),
		"updated to this version's spec hash")
	g.Expect(upgraded.ResourceVersion).NotTo(Equal(created.ResourceVersion))
	g.Expect(upgraded.Spec.ServiceName).To(Equal(earlier.Name), "serviceName kept: it is immutable")
	g.Expect(upgraded.Generation).To(Equal(created.Generation), "spec unchanged: no rollout, the pod is not replaced")

	// Settled: the next pass writes nothing.
	_, err, _ = f.reconcile(te)
	g.Expect(err).NotTo(HaveOccurred())
	again, err := f.statefulSet(te)
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(again.ResourceVersion).To(Equal(upgraded.ResourceVersion))
}
