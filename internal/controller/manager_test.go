package controller_test

import (
	"context"
	"testing"
	"time"

	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	eventsv1 "k8s.io/api/events/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/clock"
	"k8s.io/utils/ptr"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	crcontroller "sigs.k8s.io/controller-runtime/pkg/controller"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"

	trainenvv1 "github.com/trainenv/trainenv/api/v1alpha1"
	"github.com/trainenv/trainenv/internal/controller"
	"github.com/trainenv/trainenv/internal/registry"
	"github.com/trainenv/trainenv/internal/testutil/registrytest"
	"github.com/trainenv/trainenv/internal/trust"
)

// The reconciler wired into a real manager: its watches (nodes, pods) start the passes
// that unstall and finish an environment, and its events reach the API.
func TestManagerWatchesDriveTheEnvironment(t *testing.T) {
	g := NewWithT(t)
	f := newFixture(t)
	reg := registrytest.New(t)
	reg.Push("team/pytorch", "2.4", registrytest.Image(t))

	mgr, err := ctrl.NewManager(envConfig, ctrl.Options{
		Scheme:  scheme,
		Metrics: metricsserver.Options{BindAddress: "0"},
	})
	g.Expect(err).NotTo(HaveOccurred())
	r := &controller.TrainingEnvironmentReconciler{
		Client:     mgr.GetClient(),
		APIReader:  mgr.GetAPIReader(),
		Recorder:   mgr.GetEventRecorder("trainenv"),
		Resolver:   registry.NewResolver(nil, 64),
		Verifier:   trust.NotEnforced{},
		Clock:      clock.RealClock{},
		ToolsImage: testToolsImage,
	}
	g.Expect(r.SetupWithManager(mgr, crcontroller.Options{SkipNameValidation: ptr.To(true)})).To(Succeed())
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = mgr.Start(ctx)
	}()
	t.Cleanup(func() { cancel(); <-done })

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
	f.gpuNode("watched-t4", "Tesla-T4", 4)
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
	}, 20*time.Second, 200*time.Millisecond).Should(ContainElements(trainenvv1.ReasonNoGPUNodes, trainenvv1.ReasonResolved, controller.ReasonCreatedWorkload, "CreatedPersistentVolumeClaim"))
}
