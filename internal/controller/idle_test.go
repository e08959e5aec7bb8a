package controller_test

import (
	"testing"
	"time"

	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/tools/events"
	"sigs.k8s.io/controller-runtime/pkg/client"

	trainenvv1 "github.com/trainenv/trainenv/api/v1alpha1"
	"github.com/trainenv/trainenv/internal/access"
	"github.com/trainenv/trainenv/internal/workload"
)

// idleFor is the termination message of the entrypoint that stopped an idle environment.
func idleFor(since time.Time) string {
	return access.IdleMessagePrefix + " for 30m0s: no SSH session, no terminal, no busy kernel, no busy process, GPUs idle (GPU 0 at 0 %) since " + since.UTC().Format(time.RFC3339)
}

// setMain writes the main container's status as the kubelet would: running again after the
// entrypoint exited with message at finished (restartPolicy Always).
func (f *fixture) setMain(pod *corev1.Pod, message string, finished time.Time, restarts int32) {
	f.t.Helper()
	pod.Status.Phase = corev1.PodRunning
	pod.Status.Conditions = []corev1.PodCondition{{Type: corev1.PodReady, Status: corev1.ConditionTrue}}
	cs := corev1.ContainerStatus{Name: workload.ContainerName, Ready: true, RestartCount: restarts,
		State: corev1.ContainerState{Running: &corev1.ContainerStateRunning{StartedAt: metav1.NewTime(finished.Add(time.Second))}}}
	if message != "" {
		cs.LastTerminationState.Terminated = &corev1.ContainerStateTerminated{
			ExitCode: 0, Reason: "Completed", Message: message + "\n", FinishedAt: metav1.NewTime(finished)}
	}
	pod.Status.ContainerStatuses = []corev1.ContainerStatus{cs}
	if err := k8s.Status().Update(f.ctx, pod); err != nil {
		f.t.Fatal(err)
	}
}

func (f *fixture) replicas(te *trainenvv1.TrainingEnvironment) int32 {
	f.t.Helper()
	sts, err := f.statefulSet(te)
	if err != nil {
		f.t.Fatal(err)
	}
	return *sts.Spec.Replicas
}

func withIdleSuspend(te *trainenvv1.TrainingEnvironment) {
	te.Spec.IdleSuspend = &trainenvv1.IdleSuspendSpec{AfterMinutes: 30}
}

// An idle exit of the entrypoint suspends the environment without touching its spec; a
// resume request later than the suspension starts it again, an older one does not; the
// same exit, still shown by the pod, never suspends it twice.
func TestIdleExitSuspendsUntilResumeRequested(t *testing.T) {
	g := NewWithT(t)
	f := newFixture(t)
	rec := events.NewFakeRecorder(100)
	f.r.Recorder = rec
	f.putSecret("idle-keys", map[string]string{"authorized_keys": authorizedKey(t)})
	te := f.pinnedOnNode("idle", withAccess, withIdleSuspend)
	pod := f.podFor(te, "idle-a100")
	f.setMain(pod, "", time.Time{}, 0)
	_, err, te := f.reconcile(te)
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(te).To(haveCondition(trainenvv1.ConditionReady, metav1.ConditionTrue, trainenvv1.ReasonReady))
	generation := te.Generation
	drain(rec)

	// The entrypoint found the environment idle; the kubelet restarted the container.
	idleAt := time.Date(2026, 11, 23, 11, 30, 0, 0, time.UTC)
	f.setMain(pod, idleFor(idleAt.Add(-30*time.Minute)), idleAt, 1)
	_, err, te = f.reconcile(te)
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(f.replicas(te)).To(BeEquivalentTo(0), "GPUs freed")
	g.Expect(te.Status.IdleSuspension).NotTo(BeNil())
	g.Expect(te.Status.IdleSuspension.SuspendedAt.Time).To(BeTemporally("==", idleAt), "when the entrypoint stopped")
	g.Expect(te.Status.IdleSuspension.Message).To(Equal(idleFor(idleAt.Add(-30 * time.Minute))))
	g.Expect(te.Status.IdleSuspension.ResumedAt).To(BeNil())
	g.Expect(te.Status.Phase).To(Equal(trainenvv1.PhaseSuspended))
	g.Expect(te).To(haveCondition(trainenvv1.ConditionWorkloadReady, metav1.ConditionFalse, trainenvv1.ReasonIdleSuspended))
	g.Expect(te).To(haveCondition(trainenvv1.ConditionReady, metav1.ConditionTrue, trainenvv1.ReasonIdleSuspended))
	g.Expect(condition(te, trainenvv1.ConditionReady).Message).To(ContainSubstring("resume with: kubectl trainenv resume idle -n " + f.ns))
	g.Expect(te.Status.Connect).To(BeEmpty())
	g.Expect(te.Spec.Suspend).To(BeFalse(), "the user's spec is not written")
	g.Expect(te.Generation).To(Equal(generation))
	g.Expect(drain(rec)).To(ConsistOf("Normal IdleSuspended suspended because nobody used it (idle for 30m0s: no SSH session, no terminal, no busy kernel, no busy process, GPUs idle (GPU 0 at 0 %) since " +
		"2026-11-23T11:00:00Z): GPUs freed, workspace kept; resume with: kubectl trainenv resume idle -n " + f.ns))

	// Nothing changes on later passes; a resume request older than the suspension is not one.
	_, err, again := f.reconcile(te)
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(again.ResourceVersion).To(Equal(te.ResourceVersion), "no write")
	te = f.requestResume(again, idleAt.Add(-time.Hour))
	_, err, te = f.reconcile(te)
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(f.replicas(te)).To(BeEquivalentTo(0))
	g.Expect(drain(rec)).To(BeEmpty())

	// `kubectl trainenv resume`: a request later than the suspension.
	te = f.requestResume(te, idleAt.Add(time.Second))
	_, err, te = f.reconcile(te)
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(f.replicas(te)).To(BeEquivalentTo(1))
	g.Expect(te.Status.IdleSuspension.ResumedAt).NotTo(BeNil())
	g.Expect(te.Status.IdleSuspension.ResumedAt.Time).To(BeTemporally("==", f.clock.Now()))
	g.Expect(te.Status.Phase).NotTo(Equal(trainenvv1.PhaseSuspended))
	g.Expect(drain(rec)).To(ConsistOf("Normal Resumed idle suspension ended: resume requested at 2026-11-23T11:30:01Z"))

	// The pod still shows the same exit (the StatefulSet had not removed it yet): not again.
	f.clock.Step(time.Minute)
	_, err, again = f.reconcile(te)
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(f.replicas(again)).To(BeEquivalentTo(1))
	g.Expect(again).To(haveCondition(trainenvv1.ConditionReady, metav1.ConditionTrue, trainenvv1.ReasonReady))
	g.Expect(again.ResourceVersion).To(Equal(te.ResourceVersion), "no write")
	g.Expect(drain(rec)).To(BeEmpty())
}

// spec.suspend set and back ends an idle suspension, and so does removing spec.idleSuspend;
// without the opt-in an idle exit is ignored.
func TestIdleSuspensionEndsWithSpecSuspendOrOptOut(t *testing.T) {
	g := NewWithT(t)
	f := newFixture(t)
	f.putSecret("optout-keys", map[string]string{"authorized_keys": authorizedKey(t)})
	te := f.pinnedOnNode("optout", withAccess, withIdleSuspend)
	pod := f.podFor(te, "optout-a100")
	first := time.Date(2026, 11, 23, 10, 0, 0, 0, time.UTC)
	f.setMain(pod, idleFor(first.Add(-30*time.Minute)), first, 1)
	_, err, te := f.reconcile(te)
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(f.replicas(te)).To(BeEquivalentTo(0))

	te.Spec.Suspend = true
	g.Expect(k8s.Update(f.ctx, te)).To(Succeed())
	_, err, te = f.reconcile(te)
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(te.Status.IdleSuspension.ResumedAt).NotTo(BeNil())
	g.Expect(te).To(haveCondition(trainenvv1.ConditionReady, metav1.ConditionTrue, trainenvv1.ReasonSuspended))
	te.Spec.Suspend = false
	g.Expect(k8s.Update(f.ctx, te)).To(Succeed())
	_, err, te = f.reconcile(te)
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(f.replicas(te)).To(BeEquivalentTo(1), "set and back: running again")

	// Idle again, later: suspended again; then the user opts out.
	second := first.Add(2 * time.Hour)
	f.setMain(pod, idleFor(second.Add(-30*time.Minute)), second, 2)
	_, err, te = f.reconcile(te)
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(f.replicas(te)).To(BeEquivalentTo(0))
	g.Expect(te.Status.IdleSuspension.SuspendedAt.Time).To(BeTemporally("==", second))
	te.Spec.IdleSuspend = nil
	g.Expect(k8s.Update(f.ctx, te)).To(Succeed())
	_, err, te = f.reconcile(te)
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(f.replicas(te)).To(BeEquivalentTo(1))

	// Opted out: an idle exit (from a pod started before the change) suspends nothing.
	f.setMain(pod, idleFor(second), second.Add(time.Hour), 3)
	_, err, te = f.reconcile(te)
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(f.replicas(te)).To(BeEquivalentTo(1))
	g.Expect(te.Status.IdleSuspension.ResumedAt).NotTo(BeNil())
}

// requestResume sets the resume annotation as `kubectl trainenv resume` does (metadata only:
// the generation stays).
func (f *fixture) requestResume(te *trainenvv1.TrainingEnvironment, at time.Time) *trainenvv1.TrainingEnvironment {
	f.t.Helper()
	patched := te.DeepCopy()
	patched.Annotations = map[string]string{trainenvv1.AnnotationResumeRequestedAt: at.UTC().Format(time.RFC3339)}
	if err := k8s.Patch(f.ctx, patched, client.MergeFrom(te)); err != nil {
		f.t.Fatal(err)
	}
	if patched.Generation != te.Generation {
		f.t.Fatalf("an annotation bumped the generation")
	}
	return patched
}
