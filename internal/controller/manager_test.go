package controller_test

import (
	"testing"
	"time"

	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	eventsv1 "k8s.io/api/events/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	trainenvv1 "github.com/trainenv/trainenv/api/v1alpha1"
	"github.com/trainenv/trainenv/internal/testutil/gen"
	"github.com/trainenv/trainenv/internal/testutil/registrytest"
)

// The reconciler wired into a real manager: its watches (nodes, pods) start the passes
// that unstall and finish an environment, and its events reach the API.
func TestManagerWatchesDriveTheEnvironment(t *testing.T) {
	g := NewWithT(t)
	f := newFixture(t)
	reg := registrytest.New(t)
	reg.Push("team/pytorch", "2.4", registrytest.Image(t))

	startManager(t, f.ns)
	ctx := f.ctx

	te := f.create("watched", reg.Host+"/team/pytorch:2.4", func(te *trainenvv1.TrainingEnvironment) {
		te.Spec.GPU = &trainenvv1.GPUSpec{Count: 2, Products: []string{"Tesla-T4"}}
	})
	key := client.ObjectKeyFromObject(te)
	get := func() *trainenvv1.TrainingEnvironment {
		out := &trainenvv1.TrainingEnvironment{}
		g.Expect(k8s.Get(ctx, key, out)).To(Succeed())
		return out
	}
	g.Eventually(get, 20*time.Second, 100*time.Millisecond).Should(
		haveCondition(trainenvv1.ConditionCompatible, metav1.ConditionFalse, trainenvv1.ReasonNoGPUNodes))

	// A fitting node appears: the node watch unstalls the environment.
	f.gpuNode("watched-t4", gen.WithGPUProduct("Tesla-T4"), gen.WithGPUs(4))
	g.Eventually(func() error { _, err := f.statefulSet(te); return err }, 20*time.Second, 100*time.Millisecond).Should(Succeed())

	// The pod becomes ready: the pod watch finishes the environment.
	pod := f.podFor(te, "watched-t4")
	pod.Status.Phase = corev1.PodRunning
	pod.Status.Conditions = []corev1.PodCondition{{Type: corev1.PodReady, Status: corev1.ConditionTrue}}
	g.Expect(k8s.Status().Update(ctx, pod)).To(Succeed())
	g.Eventually(get, 20*time.Second, 100*time.Millisecond).Should(
		haveCondition(trainenvv1.ConditionReady, metav1.ConditionTrue, trainenvv1.ReasonReady))
	g.Expect(get().Status.NodeName).To(Equal("watched-t4"))

	// What a user must notice is in events (kubectl describe shows them).
	g.Eventually(func() []string {
		var list eventsv1.EventList
		g.Expect(k8s.List(ctx, &list, client.InNamespace(f.ns))).To(Succeed())
		var reasons []string
		for _, e := range list.Items {
			if e.Regarding.Name == "watched" {
				reasons = append(reasons, e.Reason)
			}
		}
		return reasons
	}, 20*time.Second, 200*time.Millisecond).Should(ContainElements(trainenvv1.ReasonNoGPUNodes, trainenvv1.ReasonResolved, trainenvv1.ReasonCreatedWorkload, trainenvv1.ReasonCreatedPersistentVolumeClaim))
}
