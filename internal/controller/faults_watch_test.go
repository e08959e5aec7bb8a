package controller_test

import (
	"testing"
	"time"

	. "github.com/onsi/gomega"
	pcv1alpha1 "github.com/sigstore/policy-controller/pkg/apis/policy/v1alpha1"
	corev1 "k8s.io/api/core/v1"
	eventsv1 "k8s.io/api/events/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"

	trainenvv1 "github.com/trainenv/trainenv/api/v1alpha1"
	"github.com/trainenv/trainenv/internal/controller"
	"github.com/trainenv/trainenv/internal/gpufacts"
	"github.com/trainenv/trainenv/internal/testutil/registrytest"
	"github.com/trainenv/trainenv/internal/trust/policy"
)

// A node's GPU facts change under a running manager, as the node agent publishes them: a
// driver upgrade and a GPU that turns healthy again unblock waiting environments through the
// node watch; the agent losing NVML (its facts withdrawn) blocks new ones and leaves a
// running one alone; heartbeats (status conditions) start no pass.
func TestNodeFactsChangesReevaluateEnvironments(t *testing.T) {
	g := NewWithT(t)
	f := newFixture(t)
	reg := registrytest.New(t)
	reg.Push("team/pytorch", "cu128", registrytest.Image(t, "CUDA_VERSION=12.8.0", "NVIDIA_REQUIRE_CUDA=cuda>=12.8"))
	image := reg.Host + "/team/pytorch:cu128"
	node := f.gpuNode("facts-a100") // GFD labels: driver 550.54.15, CUDA 12.4
	tm := startManager(t, f.ns)
	eventually := func(actual any) AsyncAssertion { return g.Eventually(actual, 20*time.Second, 100*time.Millisecond) }
	relabel := func(change func(map[string]string)) {
		n := f.node(node.Name)
		change(n.Labels)
		g.Expect(k8s.Update(f.ctx, n)).To(Succeed())
	}
	get := func(te *trainenvv1.TrainingEnvironment) func() *trainenvv1.TrainingEnvironment {
		return func() *trainenvv1.TrainingEnvironment { return f.get(te) }
	}

	upgrade := f.create("facts-upgrade", image)
	eventually(get(upgrade)).Should(haveCondition(trainenvv1.ConditionCompatible, metav1.ConditionFalse, trainenvv1.ReasonNoCompatibleNode))
	// The agent publishes a driver upgrade.
	relabel(func(l map[string]string) {
		l[gpufacts.LabelDriverMajor], l[gpufacts.LabelDriverMinor], l[gpufacts.LabelDriverRevision] = "570", "86", "10"
		l[gpufacts.LabelCUDAMajor], l[gpufacts.LabelCUDAMinor] = "12", "8"
	})
	eventually(func() error { _, err := f.statefulSet(upgrade); return err }).Should(Succeed())
	eventually(get(upgrade)).Should(haveCondition(trainenvv1.ConditionCompatible, metav1.ConditionTrue, trainenvv1.ReasonCompatible))

	// A GPU reports an uncorrectable error: nothing new goes there until it is healthy.
	relabel(func(l map[string]string) { l[gpufacts.LabelHealthy] = "false" })
	unhealthy := f.create("facts-unhealthy", image)
	eventually(get(unhealthy)).Should(haveCondition(trainenvv1.ConditionCompatible, metav1.ConditionFalse, trainenvv1.ReasonNoCompatibleNode))
	relabel(func(l map[string]string) { l[gpufacts.LabelHealthy] = "true" })
	eventually(func() error { _, err := f.statefulSet(unhealthy); return err }).Should(Succeed())

	// The agent can no longer read NVML: it withdraws the facts it cannot vouch for.
	running, err := f.statefulSet(upgrade)
	g.Expect(err).NotTo(HaveOccurred())
	relabel(func(l map[string]string) {
		for _, key := range gpufacts.ManagedLabelKeys() {
			if key != gpufacts.LabelProduct {
				delete(l, key)
			}
		}
		l[gpufacts.LabelNVML] = gpufacts.NVMLUnavailable
	})
	blind := f.create("facts-blind", image)
	eventually(get(blind)).Should(haveCondition(trainenvv1.ConditionCompatible, metav1.ConditionFalse, trainenvv1.ReasonNoCompatibleNode))
	g.Expect(condition(f.get(blind), trainenvv1.ConditionCompatible).Message).To(ContainSubstring("cuda>=12.8"))
	_, err = f.statefulSet(blind)
	g.Expect(apierrors.IsNotFound(err)).To(BeTrue())
	still, err := f.statefulSet(upgrade)
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(still.ResourceVersion).To(Equal(running.ResourceVersion), "a placed workload is not disturbed by its node's labels")

	// Heartbeats change node status conditions only: no pass, no write.
	writes := tm.client.Writes()
	for i := range 5 {
		n := f.node(node.Name)
		n.Status.Conditions = []corev1.NodeCondition{{Type: corev1.NodeReady, Status: corev1.ConditionTrue,
			LastHeartbeatTime: metav1.NewTime(time.Now().Add(time.Duration(i) * time.Second))}}
		g.Expect(k8s.Status().Update(f.ctx, n)).To(Succeed())
	}
	g.Consistently(tm.client.Writes, 2*time.Second, 200*time.Millisecond).Should(Equal(writes))
}

// A ClusterImagePolicy edited so that it no longer admits a running image: through the
// policy watch alone, Verified turns False with a Warning event, nothing is stopped (the
// default onVerificationLoss: Keep) and the condition says so.
func TestPolicyEditedToRejectRunningImage(t *testing.T) {
	g := NewWithT(t)
	f := newFixture(t)
	k := newKeylessTrust(f)
	f.gpuNode("edit-a100")
	startManager(t, f.ns, func(_ *ctrl.Options, r *controller.TrainingEnvironmentReconciler) {
		r.Verifier = policy.New(&policy.APISource{Policies: k8s, Refs: k8s}, policy.Options{})
	})
	eventually := func(actual any) AsyncAssertion { return g.Eventually(actual, 20*time.Second, 100*time.Millisecond) }

	te := f.create("edited", k.push(t, "edited", ciSubject))
	eventually(func() error { _, err := f.statefulSet(te); return err }).Should(Succeed())
	pod := f.podFor(te, "edit-a100")
	sts, err := f.statefulSet(te)
	g.Expect(err).NotTo(HaveOccurred())

	cip := &pcv1alpha1.ClusterImagePolicy{}
	g.Expect(k8s.Get(f.ctx, client.ObjectKey{Name: "ci-keyless-" + f.ns}, cip)).To(Succeed())
	cip.Spec.Authorities[0].Keyless.Identities[0].Subject = "https://git.trainenv.test/ml/images/.ci/release.yml@refs/tags/v1"
	g.Expect(k8s.Update(f.ctx, cip)).To(Succeed())

	eventually(func() *trainenvv1.TrainingEnvironment { return f.get(te) }).Should(
		haveCondition(trainenvv1.ConditionVerified, metav1.ConditionFalse, trainenvv1.ReasonUntrustedSigner))
	g.Expect(condition(f.get(te), trainenvv1.ConditionVerified).Message).To(ContainSubstring("the running workload is KEPT"))
	eventually(func() []string {
		var list eventsv1.EventList
		g.Expect(k8s.List(f.ctx, &list, client.InNamespace(f.ns))).To(Succeed())
		var warnings []string
		for _, e := range list.Items {
			if e.Regarding.Name == te.Name && e.Type == corev1.EventTypeWarning {
				warnings = append(warnings, e.Reason)
			}
		}
		return warnings
	}).Should(ContainElement(trainenvv1.ReasonUntrustedSigner))
	now, err := f.statefulSet(te)
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(now.ResourceVersion).To(Equal(sts.ResourceVersion), "kept: the StatefulSet is not written to")
	g.Expect(*now.Spec.Replicas).To(BeEquivalentTo(1))
	g.Expect(k8s.Get(f.ctx, client.ObjectKeyFromObject(pod), &corev1.Pod{})).To(Succeed(), "the pod keeps running")
}
