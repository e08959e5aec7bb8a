package controller_test

import (
	"testing"
	"time"

	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/tools/events"

	trainenvv1 "github.com/trainenv/trainenv/api/v1alpha1"
	"github.com/trainenv/trainenv/internal/testutil/registrytest"
)

// A pinned environment that is running its verified digest is not disturbed by a periodic
// tag check it does not need: when the check finds the pull Secret gone (or the registry
// failing), ImageResolved stays True with reason TagCheckFailed and a message that says
// what failed, one Warning event per new failure, and the environment stays Ready.
func TestFailedRecheckOfAPinnedTagKeepsItRunning(t *testing.T) {
	g := NewWithT(t)
	f := newFixture(t)
	rec := events.NewFakeRecorder(100)
	f.r.Recorder = rec
	reg := registrytest.New(t)
	reg.RequireBasicAuth("alice", "s3cret")
	digest := reg.Push("private/pytorch", "2.4", registrytest.Image(t))
	good := map[string]string{corev1.DockerConfigJsonKey: `{"auths":{"` + reg.Host + `":{"username":"alice","password":"s3cret"}}}`}
	secret := &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Name: "regcred", Namespace: f.ns},
		Type:       corev1.SecretTypeDockerConfigJson,
		StringData: good,
	}
	g.Expect(k8s.Create(f.ctx, secret)).To(Succeed())
	te := f.create("recheck", reg.Host+"/private/pytorch:2.4", func(te *trainenvv1.TrainingEnvironment) {
		te.Spec.GPU = nil
		te.Spec.ImagePullSecrets = []corev1.LocalObjectReference{{Name: "regcred"}}
	})
	_, err, te := f.reconcile(te)
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(te.Status.Image.Digest).To(Equal(digest))
	pod := f.podFor(te, "")
	pod.Status.Phase = corev1.PodRunning
	pod.Status.Conditions = []corev1.PodCondition{{Type: corev1.PodReady, Status: corev1.ConditionTrue}}
	g.Expect(k8s.Status().Update(f.ctx, pod)).To(Succeed())
	_, err, te = f.reconcile(te)
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(te).To(haveCondition(trainenvv1.ConditionReady, metav1.ConditionTrue, trainenvv1.ReasonReady))
	drain(rec)

	// The pull Secret is deleted; the next tag check cannot authenticate.
	g.Expect(k8s.Delete(f.ctx, secret)).To(Succeed())
	f.clock.Step(601 * time.Second)
	res, err, te := f.reconcile(te)
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(res.RequeueAfter).To(BeNumerically(">", 0), "checked again later")
	g.Expect(te.Status.Phase).To(Equal(trainenvv1.PhaseRunning))
	g.Expect(te).To(haveCondition(trainenvv1.ConditionReady, metav1.ConditionTrue, trainenvv1.ReasonReady))
	g.Expect(te).To(haveCondition(trainenvv1.ConditionImageResolved, metav1.ConditionTrue, trainenvv1.ReasonTagCheckFailed))
	msg := condition(te, trainenvv1.ConditionImageResolved).Message
	g.Expect(msg).To(ContainSubstring(`image pull Secret "regcred" not found`))
	g.Expect(msg).To(ContainSubstring("keeps running " + te.Status.Image.Resolved))
	g.Expect(te.Status.Image.Digest).To(Equal(digest))
	sts, err := f.statefulSet(te)
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(*sts.Spec.Replicas).To(BeEquivalentTo(1))
	g.Expect(drain(rec)).To(ConsistOf(HavePrefix("Warning TagCheckFailed tag check of " + te.Spec.Image + " failed")))

	// The same failure again: no new event.
	f.clock.Step(601 * time.Second)
	_, err, te = f.reconcile(te)
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(te).To(haveCondition(trainenvv1.ConditionReady, metav1.ConditionTrue, trainenvv1.ReasonReady))
	g.Expect(drain(rec)).To(BeEmpty())

	// The registry fails too: reported the same way.
	g.Expect(k8s.Create(f.ctx, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "regcred", Namespace: f.ns},
		Type: secret.Type, StringData: map[string]string{corev1.DockerConfigJsonKey: `{"auths":{"` + reg.Host + `":{"username":"alice","password":"wrong"}}}`}})).To(Succeed())
	f.clock.Step(601 * time.Second)
	_, err, te = f.reconcile(te)
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(te).To(haveCondition(trainenvv1.ConditionReady, metav1.ConditionTrue, trainenvv1.ReasonReady))
	g.Expect(te).To(haveCondition(trainenvv1.ConditionImageResolved, metav1.ConditionTrue, trainenvv1.ReasonTagCheckFailed))
	g.Expect(drain(rec)).To(HaveLen(1))

	// Fixed: back to Resolved.
	g.Expect(k8s.Delete(f.ctx, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "regcred", Namespace: f.ns}})).To(Succeed())
	g.Expect(k8s.Create(f.ctx, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "regcred", Namespace: f.ns},
		Type: secret.Type, StringData: good})).To(Succeed())
	f.clock.Step(601 * time.Second)
	_, err, te = f.reconcile(te)
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(te).To(haveCondition(trainenvv1.ConditionImageResolved, metav1.ConditionTrue, trainenvv1.ReasonResolved))
}
