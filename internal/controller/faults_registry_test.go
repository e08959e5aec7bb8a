package controller_test

import (
	"testing"
	"time"

	. "github.com/onsi/gomega"
	pcv1alpha1 "github.com/sigstore/policy-controller/pkg/apis/policy/v1alpha1"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"

	trainenvv1 "github.com/trainenv/trainenv/api/v1alpha1"
	"github.com/trainenv/trainenv/internal/controller"
	"github.com/trainenv/trainenv/internal/trust/policy"
)

// The registry killed (connections refused) while environments resolve and a running one
// is re-verified after a policy change, then restarted: during the outage nothing new
// starts and the running workload is not touched; once it is back, every environment
// converges (the signed ones run their verified digest, the unsigned one never runs).
func TestRegistryKilledWhileVerifyingThenRestarted(t *testing.T) {
	g := NewWithT(t)
	f := newFixture(t)
	k := newKeylessTrust(f)
	f.gpuNode("outage-a100")
	startManager(t, f.ns, func(_ *ctrl.Options, r *controller.TrainingEnvironmentReconciler) {
		r.Verifier = policy.New(&policy.APISource{Policies: k8s, Refs: k8s}, policy.Options{Timeout: 2 * time.Second})
	})
	eventually := func(actual any) AsyncAssertion { return g.Eventually(actual, 30*time.Second, 100*time.Millisecond) }

	running := f.create("running", k.push(t, "running", ciSubject))
	eventually(func() error { _, err := f.statefulSet(running); return err }).Should(Succeed())
	pod := f.podFor(running, "outage-a100")
	pod.Status.Phase = corev1.PodRunning
	pod.Status.Conditions = []corev1.PodCondition{{Type: corev1.PodReady, Status: corev1.ConditionTrue}}
	g.Expect(k8s.Status().Update(f.ctx, pod)).To(Succeed())
	eventually(func() *trainenvv1.TrainingEnvironment { return f.get(running) }).Should(
		haveCondition(trainenvv1.ConditionReady, metav1.ConditionTrue, trainenvv1.ReasonReady))
	runningSTS, err := f.statefulSet(running)
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(k8s.Get(f.ctx, client.ObjectKeyFromObject(pod), pod)).To(Succeed())

	images := map[string]string{
		"signed-1": k.push(t, "signed-1", ciSubject), "signed-2": k.push(t, "signed-2", ciSubject), "unsigned": k.push(t, "unsigned", ""),
	}
	k.reg.Kill()
	var envs []*trainenvv1.TrainingEnvironment
	for name, image := range images {
		envs = append(envs, f.create(name, image))
	}
	// A policy edit makes every environment verify again, the running one included.
	cip := &pcv1alpha1.ClusterImagePolicy{}
	g.Expect(k8s.Get(f.ctx, client.ObjectKey{Name: "ci-keyless-" + f.ns}, cip)).To(Succeed())
	cip.Spec.Authorities[0].Keyless.Identities = append(cip.Spec.Authorities[0].Keyless.Identities,
		pcv1alpha1.Identity{Issuer: ciIssuer, Subject: "https://git.trainenv.test/ml/images/.ci/nightly.yml@refs/heads/main"})
	g.Expect(k8s.Update(f.ctx, cip)).To(Succeed())

	eventually(func() *trainenvv1.TrainingEnvironment { return f.get(running) }).Should(
		haveCondition(trainenvv1.ConditionVerified, metav1.ConditionUnknown, trainenvv1.ReasonRegistryUnavailable))
	for _, te := range envs {
		eventually(func() *trainenvv1.TrainingEnvironment { return f.get(te) }).Should(
			haveCondition(trainenvv1.ConditionImageResolved, metav1.ConditionFalse, trainenvv1.ReasonRegistryUnavailable))
	}
	g.Consistently(func() int {
		var list appsv1.StatefulSetList
		g.Expect(k8s.List(f.ctx, &list, client.InNamespace(f.ns))).To(Succeed())
		return len(list.Items)
	}, 2*time.Second, 200*time.Millisecond).Should(Equal(1), "nothing new starts while the registry is down")
	unchanged(g, f, runningSTS, pod)

	k.reg.Restart()
	eventually(func() *trainenvv1.TrainingEnvironment { return f.get(running) }).Should(
		haveCondition(trainenvv1.ConditionVerified, metav1.ConditionTrue, trainenvv1.ReasonVerified))
	for _, te := range envs {
		status, reason := metav1.ConditionTrue, trainenvv1.ReasonVerified
		if te.Name == "unsigned" {
			status, reason = metav1.ConditionFalse, trainenvv1.ReasonNoSignature
		}
		eventually(func() *trainenvv1.TrainingEnvironment { return f.get(te) }).Should(
			haveCondition(trainenvv1.ConditionVerified, status, reason))
	}
	unchanged(g, f, runningSTS, pod)
	// Every workload runs the digest that was verified; the unsigned environment has none.
	var list appsv1.StatefulSetList
	g.Expect(k8s.List(f.ctx, &list, client.InNamespace(f.ns))).To(Succeed())
	g.Expect(list.Items).To(HaveLen(3))
	for _, sts := range list.Items {
		te := f.get(&trainenvv1.TrainingEnvironment{ObjectMeta: metav1.ObjectMeta{Namespace: f.ns, Name: sts.Name}})
		g.Expect(te).To(haveCondition(trainenvv1.ConditionVerified, metav1.ConditionTrue, trainenvv1.ReasonVerified))
		g.Expect(sts.Spec.Template.Spec.Containers[0].Image).To(Equal(te.Status.Verification.Digest))
	}
	_, err = f.statefulSet(&trainenvv1.TrainingEnvironment{ObjectMeta: metav1.ObjectMeta{Namespace: f.ns, Name: "unsigned"}})
	g.Expect(apierrors.IsNotFound(err)).To(BeTrue())
}

// unchanged checks that the running workload was not written to.
func unchanged(g Gomega, f *fixture, sts *appsv1.StatefulSet, pod *corev1.Pod) {
	now := &appsv1.StatefulSet{}
	g.Expect(k8s.Get(f.ctx, client.ObjectKeyFromObject(sts), now)).To(Succeed())
	g.Expect(now.ResourceVersion).To(Equal(sts.ResourceVersion), "the running StatefulSet is untouched")
	p := &corev1.Pod{}
	g.Expect(k8s.Get(f.ctx, client.ObjectKeyFromObject(pod), p)).To(Succeed())
	g.Expect(p.ResourceVersion).To(Equal(pod.ResourceVersion), "the running pod is untouched")
}
