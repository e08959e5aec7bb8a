package controller_test

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

	. "github.com/onsi/gomega"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/clock"
	"k8s.io/utils/ptr"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"
	crcontroller "sigs.k8s.io/controller-runtime/pkg/controller"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"

	trainenvv1 "github.com/trainenv/trainenv/api/v1alpha1"
	"github.com/trainenv/trainenv/internal/controller"
	"github.com/trainenv/trainenv/internal/registry"
	"github.com/trainenv/trainenv/internal/testutil/registrytest"
	"github.com/trainenv/trainenv/internal/trust"
)

// passCounter counts the passes over one environment: each starts by reading it. (The
// controller's reconcile metric is shared with the managers of other tests.)
type passCounter struct {
	key   client.ObjectKey
	count atomic.Int64
}

// countingClient is the manager's client, counting the reads of the environment.
type countingClient struct {
	client.Client
	c *passCounter
}

func (cc countingClient) Get(ctx context.Context, key client.ObjectKey, obj client.Object, opts ...client.GetOption) error {
	if _, ok := obj.(*trainenvv1.TrainingEnvironment); ok && key == cc.c.key {
		cc.c.count.Add(1)
	}
	return cc.Client.Get(ctx, key, obj, opts...)
}

func (c *passCounter) passes() int64 { return c.count.Load() }

// settled waits until no pass has run for a second and returns the count.
func (c *passCounter) settled(g Gomega) int64 {
	last := c.passes()
	g.Eventually(func() bool {
		now := c.passes()
		quiet := now == last
		last = now
		return quiet
	}, 30*time.Second, time.Second).Should(BeTrue())
	return last
}

// Updates of owned objects that change nothing a pass reads start no pass (the StatefulSet
// controller's status updates, a pod's probe timestamps); changes of what it reads do (the
// StatefulSet's spec, the pod becoming ready).
func TestOwnedObjectPredicatesAndStrippedCache(t *testing.T) {
	g := NewWithT(t)
	f := newFixture(t)
	reg := registrytest.New(t)
	reg.Push("team/pytorch", "2.4", registrytest.Image(t))
	f.gpuNode("pred-a100")

	// The cache as cmd/main.go configures it: pods and StatefulSets stripped to what the
	// reconciler reads, so this test also runs the passes on the stripped objects.
	mgr, err := ctrl.NewManager(envConfig, ctrl.Options{Scheme: scheme, Metrics: metricsserver.Options{BindAddress: "0"},
		Cache: cache.Options{ByObject: map[client.Object]cache.ByObject{
			&corev1.Pod{}:         {Transform: controller.TransformPod},
			&appsv1.StatefulSet{}: {Transform: controller.TransformStatefulSet},
		}}})
	g.Expect(err).NotTo(HaveOccurred())
	passes := &passCounter{key: client.ObjectKey{Namespace: f.ns, Name: "pred"}}
	r := &controller.TrainingEnvironmentReconciler{
		Client: countingClient{Client: mgr.GetClient(), c: passes}, APIReader: mgr.GetAPIReader(), Recorder: mgr.GetEventRecorder("trainenv"),
		Resolver: registry.NewResolver(nil, 64), Verifier: trust.NotEnforced{}, Clock: clock.RealClock{},
		ToolsImage: testToolsImage,
	}
	g.Expect(r.SetupWithManager(mgr, crcontroller.Options{SkipNameValidation: ptr.To(true)})).To(Succeed())
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); _ = mgr.Start(ctx) }()
	t.Cleanup(func() { cancel(); <-done })

	te := f.create("pred", reg.Host+"/team/pytorch:2.4")
	g.Eventually(func() error { _, err := f.statefulSet(te); return err }, 20*time.Second, 100*time.Millisecond).Should(Succeed())
	before := passes.settled(g)

	// The StatefulSet controller's kind of update: status only.
	sts, err := f.statefulSet(te)
	g.Expect(err).NotTo(HaveOccurred())
	sts.Status.Replicas, sts.Status.ObservedGeneration, sts.Status.CurrentRevision = 1, sts.Generation, "pred-1"
	g.Expect(k8s.Status().Update(ctx, sts)).To(Succeed())
	g.Consistently(passes.passes, 2*time.Second, 200*time.Millisecond).Should(Equal(before),
		"a status-only update of the StatefulSet started a pass")

	// A spec change (the generation moves) does.
	sts, err = f.statefulSet(te)
	g.Expect(err).NotTo(HaveOccurred())
	sts.Spec.Replicas = ptr.To[int32](0)
	g.Expect(k8s.Update(ctx, sts)).To(Succeed())
	g.Eventually(passes.passes, 10*time.Second, 100*time.Millisecond).Should(BeNumerically(">", before))
	before = passes.settled(g)

	// The pod: created (a pass), then a probe timestamp (none), then ready (a pass).
	pod := f.podFor(te, "pred-a100")
	g.Eventually(passes.passes, 10*time.Second, 100*time.Millisecond).Should(BeNumerically(">", before))
	before = passes.settled(g)
	pod.Status.Phase = corev1.PodRunning
	pod.Status.Conditions = []corev1.PodCondition{{Type: corev1.PodReady, Status: corev1.ConditionFalse, LastProbeTime: metav1.Now()}}
	g.Expect(k8s.Status().Update(ctx, pod)).To(Succeed())
	g.Eventually(passes.passes, 10*time.Second, 100*time.Millisecond).Should(BeNumerically(">", before),
		"the phase moved")
	before = passes.settled(g)
	pod.Status.Conditions[0].LastProbeTime = metav1.NewTime(time.Now().Add(time.Minute))
	pod.Status.PodIP = "10.0.0.7"
	g.Expect(k8s.Status().Update(ctx, pod)).To(Succeed())
	g.Consistently(passes.passes, 2*time.Second, 200*time.Millisecond).Should(Equal(before),
		"a probe timestamp and an IP started a pass")
	pod.Status.Conditions[0].Status = corev1.ConditionTrue
	g.Expect(k8s.Status().Update(ctx, pod)).To(Succeed())
	g.Eventually(func() *trainenvv1.TrainingEnvironment { return f.get(te) }, 10*time.Second, 100*time.Millisecond).Should(
		haveCondition(trainenvv1.ConditionReady, metav1.ConditionTrue, trainenvv1.ReasonReady))
	g.Expect(passes.passes()).To(BeNumerically(">", before))

	// Suspending updates the StatefulSet from the stripped cached copy: the template
	// written is the rendered one, whole.
	latest := f.get(te)
	latest.Spec.Suspend = true
	g.Expect(k8s.Update(ctx, latest)).To(Succeed())
	g.Eventually(func() *int32 { sts, _ := f.statefulSet(te); return sts.Spec.Replicas }, 10*time.Second, 100*time.Millisecond).Should(
		HaveValue(BeEquivalentTo(0)))
	sts, err = f.statefulSet(te)
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(sts.Spec.Template.Spec.Containers).NotTo(BeEmpty())
	g.Expect(sts.Spec.Template.Spec.Containers[0].Image).To(Equal(latest.Status.Image.Resolved))
	g.Expect(sts.Spec.ServiceName).To(BeEmpty(), "no headless Service")
}
