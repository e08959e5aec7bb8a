package controller_test

import (
	"net/http"
	"sync/atomic"
	"testing"
	"time"

	. "github.com/onsi/gomega"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/rest"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"

	trainenvv1 "github.com/trainenv/trainenv/api/v1alpha1"
	"github.com/trainenv/trainenv/internal/controller"
	"github.com/trainenv/trainenv/internal/testutil/registrytest"
)

// kube-apiserver stopped and started again (same address, same etcd) under a running
// manager: the manager does not exit, its watches come back on their own (an environment
// created after the restart, and a pod change of one created before it, are both acted
// on), and no workload is created twice.
func TestAPIServerRestartUnderRunningManager(t *testing.T) {
	g := NewWithT(t)
	f := newFixture(t)
	reg := registrytest.New(t)
	reg.Push("team/pytorch", "2.4", registrytest.Image(t))
	f.gpuNode("restart-a100")
	var failed failedRequests
	tm := startManager(t, f.ns, failed.countCache())

	before := f.create("before", reg.Host+"/team/pytorch:2.4")
	g.Eventually(func() error { _, err := f.statefulSet(before); return err }, 20*time.Second, 100*time.Millisecond).Should(Succeed())

	start := time.Now()
	g.Expect(controlPlane.StopAPIServer()).To(Succeed())
	t.Logf("stopped in %s", time.Since(start).Round(100*time.Millisecond))
	// Down until the manager's watches, trying to come back, have failed to connect.
	g.Eventually(failed.Load, 30*time.Second, 50*time.Millisecond).Should(BeNumerically(">", 0),
		"the manager's cache tries to reach kube-apiserver while it is down")
	t.Logf("the manager's cache failed to connect %d times", failed.Load())
	restart := time.Now()
	g.Expect(controlPlane.StartAPIServer()).To(Succeed())
	t.Logf("started in %s", time.Since(restart).Round(100*time.Millisecond))
	t.Logf("kube-apiserver was down for %s", time.Since(start).Round(100*time.Millisecond))
	// The suite's client may hold connections to the old process; a new request reconnects.
	g.Eventually(func() error {
		return k8s.Get(f.ctx, client.ObjectKeyFromObject(before), &trainenvv1.TrainingEnvironment{})
	},
		20*time.Second, 100*time.Millisecond).Should(Succeed())

	after := f.create("after", reg.Host+"/team/pytorch:2.4")
	g.Eventually(func() error { _, err := f.statefulSet(after); return err }, 30*time.Second, 100*time.Millisecond).Should(Succeed(),
		"the TrainingEnvironment watch resumed")
	pod := f.podFor(before, "restart-a100")
	pod.Status.Phase = corev1.PodRunning
	pod.Status.Conditions = []corev1.PodCondition{{Type: corev1.PodReady, Status: corev1.ConditionTrue}}
	g.Expect(k8s.Status().Update(f.ctx, pod)).To(Succeed())
	g.Eventually(func() *trainenvv1.TrainingEnvironment { return f.get(before) }, 30*time.Second, 100*time.Millisecond).Should(
		haveCondition(trainenvv1.ConditionReady, metav1.ConditionTrue, trainenvv1.ReasonReady), "the pod watch resumed")
	g.Expect(tm.running()).To(BeTrue(), "recovered without a restart of the operator")

	// One of each per environment, however many passes failed and were retried.
	for _, list := range []client.ObjectList{&appsv1.StatefulSetList{}, &networkingv1.NetworkPolicyList{}, &corev1.PersistentVolumeClaimList{}} {
		g.Expect(k8s.List(f.ctx, list, client.InNamespace(f.ns))).To(Succeed())
		items, err := metaItems(list)
		g.Expect(err).NotTo(HaveOccurred())
		var got []string
		for _, o := range items {
			got = append(got, o.GetName())
		}
		g.Expect(got).To(HaveLen(2), "%T: %v", list, got)
	}
}

// failedRequests counts the requests of a manager's cache (its lists and watches) that got
// no response at all, as when kube-apiserver is down.
type failedRequests struct{ atomic.Int64 }

// countCache is a managerOption that counts the cache's failed requests in c.
func (c *failedRequests) countCache() managerOption {
	return func(o *ctrl.Options, _ *controller.TrainingEnvironmentReconciler) {
		o.NewCache = func(cfg *rest.Config, opts cache.Options) (cache.Cache, error) {
			cfg = rest.CopyConfig(cfg)
			cfg.Wrap(func(rt http.RoundTripper) http.RoundTripper { return countingTransport{rt, c} })
			hc, err := rest.HTTPClientFor(cfg)
			if err != nil {
				return nil, err
			}
			opts.HTTPClient = hc // the manager's shared client would bypass the wrapper
			return cache.New(cfg, opts)
		}
	}
}

type countingTransport struct {
	http.RoundTripper
	failed *failedRequests
}

func (t countingTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	resp, err := t.RoundTripper.RoundTrip(req)
	if err != nil {
		t.failed.Add(1)
	}
	return resp, err
}
