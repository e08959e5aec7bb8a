package controller_test

import (
	"testing"
	"time"

	. "github.com/onsi/gomega"
	eventsv1 "k8s.io/api/events/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/dynamic"
	"sigs.k8s.io/controller-runtime/pkg/client"

	trainenvv1 "github.com/trainenv/trainenv/api/v1alpha1"
	"github.com/trainenv/trainenv/internal/plugin"
	"github.com/trainenv/trainenv/internal/testutil/registrytest"
)

// Idle suspension through the running manager: the pod watch sees the idle exit, and the
// resume request of `kubectl trainenv resume` (an annotation: no new generation) starts a
// pass through the watch's predicate, which resumes the environment.
func TestManagerSuspendsIdleAndResumesOnRequest(t *testing.T) {
	g := NewWithT(t)
	f := newFixture(t)
	reg := registrytest.New(t)
	reg.Push("team/pytorch", "2.4", registrytest.Image(t))
	f.gpuNode("idlemgr-a100")
	f.putSecret("idlemgr-keys", map[string]string{"authorized_keys": authorizedKey(t)})

	startManager(t, f.ns)
	ctx := f.ctx

	te := f.create("idlemgr", reg.Host+"/team/pytorch:2.4", withAccess, withIdleSuspend)
	get := func() *trainenvv1.TrainingEnvironment { return f.get(te) }
	replicas := func() int32 {
		sts, err := f.statefulSet(te)
		if err != nil {
			return -1
		}
		return *sts.Spec.Replicas
	}
	g.Eventually(replicas, 20*time.Second, 100*time.Millisecond).Should(BeEquivalentTo(1))
	pod := f.podFor(te, "idlemgr-a100")
	f.setMain(pod, "", time.Time{}, 0)
	g.Eventually(get, 20*time.Second, 100*time.Millisecond).Should(
		haveCondition(trainenvv1.ConditionReady, metav1.ConditionTrue, trainenvv1.ReasonReady))

	idleAt := time.Now().Add(-time.Minute).Truncate(time.Second)
	f.setMain(pod, idleFor(idleAt.Add(-30*time.Minute)), idleAt, 1)
	g.Eventually(replicas, 20*time.Second, 100*time.Millisecond).Should(BeEquivalentTo(0))
	g.Eventually(get, 20*time.Second, 100*time.Millisecond).Should(
		haveCondition(trainenvv1.ConditionReady, metav1.ConditionTrue, trainenvv1.ReasonIdleSuspended))
	generation := get().Generation

	dyn, err := dynamic.NewForConfig(envConfig)
	g.Expect(err).NotTo(HaveOccurred())
	msg, err := plugin.RequestResume(ctx, dyn, f.ns, "idlemgr", time.Now())
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(msg).To(HavePrefix("resume of idlemgr requested"))
	g.Eventually(replicas, 20*time.Second, 100*time.Millisecond).Should(BeEquivalentTo(1))
	resumed := get()
	g.Expect(resumed.Status.IdleSuspension.ResumedAt).NotTo(BeNil())
	g.Expect(resumed.Generation).To(Equal(generation), "the spec was not touched")
	g.Expect(resumed.Spec.Suspend).To(BeFalse())

	g.Eventually(func() []string {
		var list eventsv1.EventList
		g.Expect(k8s.List(ctx, &list, client.InNamespace(f.ns))).To(Succeed())
		var reasons []string
		for _, e := range list.Items {
			if e.Regarding.Name == "idlemgr" {
				reasons = append(reasons, e.Reason)
			}
		}
		return reasons
	}, 20*time.Second, 200*time.Millisecond).Should(ContainElements(trainenvv1.ReasonIdleSuspended, trainenvv1.ReasonResumed))
}
