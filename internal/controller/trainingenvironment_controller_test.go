package controller_test

import (
	"fmt"
	"testing"
	"time"

	. "github.com/onsi/gomega"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/tools/events"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	trainenvv1 "github.com/trainenv/trainenv/api/v1alpha1"
	"github.com/trainenv/trainenv/internal/testutil/gen"
	"github.com/trainenv/trainenv/internal/testutil/registrytest"
	"github.com/trainenv/trainenv/internal/workload"
)

func condition(te *trainenvv1.TrainingEnvironment, t string) *metav1.Condition {
	return meta.FindStatusCondition(te.Status.Conditions, t)
}

func haveCondition(t string, status metav1.ConditionStatus, reason string) OmegaMatcher {
	return WithTransform(func(te *trainenvv1.TrainingEnvironment) *metav1.Condition { return condition(te, t) },
		And(Not(BeNil()), HaveField("Status", status), HaveField("Reason", reason)))
}

func TestTagIsPinnedToDigestAndWorkloadRunsIt(t *testing.T) {
	g := NewWithT(t)
	f := newFixture(t)
	reg := registrytest.New(t)
	digest := reg.Push("team/pytorch", "2.4", registrytest.Image(t, "CUDA_VERSION=12.4.1"))
	f.gpuNode("pin-a100")
	rec := events.NewFakeRecorder(10)
	pinned := reg.Host + "/team/pytorch@" + digest
	f.r.Recorder = rec

	te := f.create("pin", reg.Host+"/team/pytorch:2.4")
	res, err, te := f.reconcile(te)
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(res.RequeueAfter).To(Equal(600*time.Second), "a tag is checked again after followTagIntervalSeconds")

	g.Expect(te.Status.Image).NotTo(BeNil())
	g.Expect(te.Status.Image.Digest).To(Equal(digest))
	g.Expect(te.Status.Image.Resolved).To(Equal(pinned))
	g.Expect(te.Status.Image.Requested).To(Equal(reg.Host + "/team/pytorch:2.4"))
	g.Expect(te.Status.ShortDigest).To(Equal(digest[:len("sha256:")+12]))
	g.Expect(te).To(haveCondition(trainenvv1.ConditionImageResolved, metav1.ConditionTrue, trainenvv1.ReasonResolved))
	g.Expect(te).To(haveCondition(trainenvv1.ConditionVerified, metav1.ConditionUnknown, trainenvv1.ReasonVerificationNotEnforced))
	g.Expect(te).To(haveCondition(trainenvv1.ConditionCompatible, metav1.ConditionTrue, trainenvv1.ReasonCompatible))
	g.Expect(te).To(haveCondition(trainenvv1.ConditionWorkloadReady, metav1.ConditionFalse, trainenvv1.ReasonPodStarting))
	g.Expect(te).To(haveCondition(trainenvv1.ConditionReady, metav1.ConditionFalse, trainenvv1.ReasonPodStarting))
	g.Expect(te.Status.Phase).To(Equal(trainenvv1.PhaseStarting))
	g.Expect(te.Status.ObservedGeneration).To(Equal(te.Generation))
	// One event tells the pin and the creates of the pass: events are API writes too.
	g.Expect(drain(rec)).To(ConsistOf("Normal CreatedPersistentVolumeClaim created workspace claim pin-workspace",
		fmt.Sprintf("Normal CreatedWorkload pinned %s/team/pytorch:2.4 to %s; created StatefulSet pin, NetworkPolicy pin", reg.Host, pinned)))

	sts, err := f.statefulSet(te)
	g.Expect(err).NotTo(HaveOccurred())
	pod := sts.Spec.Template.Spec
	c := pod.Containers[0]
	g.Expect(c.Image).To(Equal(pinned))
	g.Expect(c.Resources.Limits.Name("nvidia.com/gpu", resource.DecimalSI).Value()).To(BeEquivalentTo(1))
	g.Expect(*pod.SecurityContext.RunAsNonRoot).To(BeTrue())
	g.Expect(pod.SecurityContext.SeccompProfile.Type).To(Equal(corev1.SeccompProfileTypeRuntimeDefault))
	g.Expect(*c.SecurityContext.AllowPrivilegeEscalation).To(BeFalse())
	g.Expect(c.SecurityContext.Capabilities.Drop).To(ConsistOf(corev1.Capability("ALL")))
	g.Expect(*pod.AutomountServiceAccountToken).To(BeFalse())
	g.Expect(pod.Volumes).To(ContainElement(HaveField("EmptyDir.SizeLimit", HaveValue(Equal(resource.MustParse("1Gi"))))),
		"shmSize defaults to 1Gi in the CRD")
	g.Expect(metav1.IsControlledBy(sts, te)).To(BeTrue())

	// No headless Service: nothing reaches the pod but port-forward.
	g.Expect(sts.Spec.ServiceName).To(BeEmpty())
	g.Expect(apierrors.IsNotFound(k8s.Get(f.ctx, client.ObjectKey{Namespace: f.ns, Name: "pin"}, &corev1.Service{}))).To(BeTrue())
	pvc := &corev1.PersistentVolumeClaim{}
	g.Expect(k8s.Get(f.ctx, client.ObjectKey{Namespace: f.ns, Name: "pin-workspace"}, pvc)).To(Succeed())
	g.Expect(pvc.OwnerReferences).To(BeEmpty(), "keepOnDelete defaults to true: the workspace outlives the environment")
}

func TestPinnedKeepsDigestWhenTagMoves(t *testing.T) {
	g := NewWithT(t)
	f := newFixture(t)
	reg := registrytest.New(t)
	first := reg.Push("team/pytorch", "latest", registrytest.Image(t))
	f.gpuNode("moves-a100")

	te := f.create("moves", reg.Host+"/team/pytorch:latest")
	_, err, te := f.reconcile(te)
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(te.Status.Image.Digest).To(Equal(first))

	second := reg.Push("team/pytorch", "latest", registrytest.Image(t))
	// Before the interval has passed, the tag is not looked up again.
	reg.Requests()
	_, err, te = f.reconcile(te)
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(reg.Requests()).To(BeEmpty())

	f.clock.Step(601 * time.Second)
	_, err, te = f.reconcile(te)
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(te.Status.Image.Digest).To(Equal(first), "Pinned never changes the digest")
	g.Expect(te.Status.Image.LatestDigest).To(Equal(second))
	g.Expect(te).To(haveCondition(trainenvv1.ConditionImageResolved, metav1.ConditionTrue, trainenvv1.ReasonTagMoved))
	g.Expect(condition(te, trainenvv1.ConditionImageResolved).Message).To(ContainSubstring(second))
	sts, err := f.statefulSet(te)
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(sts.Spec.Template.Spec.Containers[0].Image).To(HaveSuffix(first))

	// FollowTag moves the workload to the new digest.
	te.Spec.UpdatePolicy = trainenvv1.UpdatePolicyFollowTag
	g.Expect(k8s.Update(f.ctx, te)).To(Succeed())
	f.clock.Step(601 * time.Second)
	_, err, te = f.reconcile(te)
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(te.Status.Image.Digest).To(Equal(second))
	g.Expect(te).To(haveCondition(trainenvv1.ConditionImageResolved, metav1.ConditionTrue, trainenvv1.ReasonResolved))
	sts, err = f.statefulSet(te)
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(sts.Spec.Template.Spec.Containers[0].Image).To(HaveSuffix(second))
}

func TestMultiPlatformIndexPinsPlatformManifest(t *testing.T) {
	g := NewWithT(t)
	f := newFixture(t)
	reg := registrytest.New(t)
	amd, arm := registrytest.Image(t), registrytest.Image(t)
	index := reg.PushIndex("team/pytorch", "multi", map[string]v1Image{"linux/amd64": amd, "linux/arm64": arm})

	te := f.create("multi", reg.Host+"/team/pytorch:multi", gen.WithoutGPU())
	_, err, te := f.reconcile(te)
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(te.Status.Image.Digest).To(Equal(registrytest.Digest(t, amd)))
	g.Expect(te.Status.Image.IndexDigest).To(Equal(index))
	g.Expect(te.Status.Image.Platform).To(Equal("linux/amd64"))
	sts, err := f.statefulSet(te)
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(sts.Spec.Template.Spec.Containers[0].Image).To(Equal(reg.Host + "/team/pytorch@" + registrytest.Digest(t, amd)))

	other := f.create("multi-arm", reg.Host+"/team/pytorch:multi", func(te *trainenvv1.TrainingEnvironment) {
		te.Spec.GPU, te.Spec.Platform = nil, "linux/arm64"
	})
	_, err, other = f.reconcile(other)
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(other.Status.Image.Digest).To(Equal(registrytest.Digest(t, arm)))

	missing := f.create("multi-s390x", reg.Host+"/team/pytorch:multi", func(te *trainenvv1.TrainingEnvironment) {
		te.Spec.GPU, te.Spec.Platform = nil, "linux/s390x"
	})
	res, err, missing := f.reconcile(missing)
	g.Expect(err).NotTo(HaveOccurred(), "a platform the image lacks needs the user: stalled, not retried")
	g.Expect(res.RequeueAfter).To(BeZero())
	g.Expect(missing).To(haveCondition(trainenvv1.ConditionImageResolved, metav1.ConditionFalse, trainenvv1.ReasonPlatformNotFound))
	g.Expect(missing.Status.Phase).To(Equal(trainenvv1.PhaseFailed))
}

func TestRegistryFailuresStartNothing(t *testing.T) {
	f := newFixture(t)
	reg := registrytest.New(t)
	reg.Push("team/pytorch", "2.4", registrytest.Image(t))
	reg.RequireBasicAuth("alice", "s3cret")
	down := registrytest.New(t)
	down.SetDown(true)

	cases := []struct {
		name, image, reason string
	}{
		{"unauthorized", reg.Host + "/team/pytorch:2.4", trainenvv1.ReasonRegistryUnauthorized},
		{"down", down.Host + "/team/pytorch:2.4", trainenvv1.ReasonRegistryUnavailable},
		{"unreachable", "127.0.0.1:1/team/pytorch:2.4", trainenvv1.ReasonRegistryUnavailable},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			g := NewWithT(t)
			te := f.create(tc.name, tc.image, gen.WithoutGPU())
			_, err, te := f.reconcile(te)
			g.Expect(err).To(HaveOccurred(), "registry errors are transient: returned for backoff")
			g.Expect(te).To(haveCondition(trainenvv1.ConditionImageResolved, metav1.ConditionFalse, tc.reason))
			g.Expect(condition(te, trainenvv1.ConditionImageResolved).Message).To(ContainSubstring(tc.image))
			g.Expect(te).To(haveCondition(trainenvv1.ConditionReady, metav1.ConditionFalse, tc.reason))
			g.Expect(te.Status.Phase).To(Equal(trainenvv1.PhasePending))
			g.Expect(te.Status.Image).To(BeNil())
			_, err = f.statefulSet(te)
			g.Expect(apierrors.IsNotFound(err)).To(BeTrue(), "nothing runs before the image is pinned")
		})
	}
}

func TestImageMissingStartsNothing(t *testing.T) {
	g := NewWithT(t)
	f := newFixture(t)
	reg := registrytest.New(t)
	reg.Push("team/pytorch", "2.4", registrytest.Image(t))
	te := f.create("missing", reg.Host+"/team/pytorch:2.5", gen.WithoutGPU())
	_, err, te := f.reconcile(te)
	g.Expect(err).To(HaveOccurred())
	g.Expect(te).To(haveCondition(trainenvv1.ConditionImageResolved, metav1.ConditionFalse, trainenvv1.ReasonImageNotFound))
	_, err = f.statefulSet(te)
	g.Expect(apierrors.IsNotFound(err)).To(BeTrue())

	// The image appears: the next pass (backoff) pins it.
	digest := reg.Push("team/pytorch", "2.5", registrytest.Image(t))
	_, err, te = f.reconcile(te)
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(te.Status.Image.Digest).To(Equal(digest))
}

func TestPullSecretIsUsedAndMissingSecretWaits(t *testing.T) {
	g := NewWithT(t)
	f := newFixture(t)
	reg := registrytest.New(t)
	reg.RequireBasicAuth("alice", "s3cret")
	digest := reg.Push("private/pytorch", "2.4", registrytest.Image(t))
	te := f.create("private", reg.Host+"/private/pytorch:2.4", func(te *trainenvv1.TrainingEnvironment) {
		te.Spec.GPU = nil
		te.Spec.ImagePullSecrets = []corev1.LocalObjectReference{{Name: "regcred"}}
	})
	res, err, te := f.reconcile(te)
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(res.RequeueAfter).To(BeNumerically(">", 0), "a missing Secret is waited for")
	g.Expect(te).To(haveCondition(trainenvv1.ConditionImageResolved, metav1.ConditionFalse, trainenvv1.ReasonPullSecretNotFound))

	secret := &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Name: "regcred", Namespace: f.ns},
		Type:       corev1.SecretTypeDockerConfigJson,
		StringData: map[string]string{corev1.DockerConfigJsonKey: `{"auths":{"` + reg.Host + `":{"username":"alice","password":"s3cret"}}}`},
	}
	g.Expect(k8s.Create(f.ctx, secret)).To(Succeed())
	_, err, te = f.reconcile(te)
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(te.Status.Image.Digest).To(Equal(digest))
	sts, err := f.statefulSet(te)
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(sts.Spec.Template.Spec.ImagePullSecrets).To(ConsistOf(corev1.LocalObjectReference{Name: "regcred"}))
}

func TestNoCompatibleNodeStallsUntilOneAppears(t *testing.T) {
	g := NewWithT(t)
	f := newFixture(t)
	reg := registrytest.New(t)
	reg.Push("team/pytorch", "2.4", registrytest.Image(t))
	te := f.create("nogpu", reg.Host+"/team/pytorch:2.4", func(te *trainenvv1.TrainingEnvironment) {
		te.Spec.GPU = &trainenvv1.GPUSpec{Count: 4, Products: []string{"NVIDIA-H100-80GB-HBM3"}}
	})
	res, err, te := f.reconcile(te)
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(te).To(haveCondition(trainenvv1.ConditionCompatible, metav1.ConditionFalse, trainenvv1.ReasonNoGPUNodes))
	g.Expect(te).To(haveCondition(trainenvv1.ConditionReady, metav1.ConditionFalse, trainenvv1.ReasonNoGPUNodes))
	g.Expect(te.Status.Phase).To(Equal(trainenvv1.PhaseFailed))
	g.Expect(te.Status.ObservedGeneration).To(Equal(te.Generation), "a stalled pass still reached a verdict")
	g.Expect(res.RequeueAfter).To(Equal(600*time.Second), "only the tag check is scheduled; no hot requeue")
	_, err = f.statefulSet(te)
	g.Expect(apierrors.IsNotFound(err)).To(BeTrue())

	f.gpuNode("nogpu-a100")
	_, err, te = f.reconcile(te)
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(te).To(haveCondition(trainenvv1.ConditionCompatible, metav1.ConditionFalse, trainenvv1.ReasonNoMatchingProduct))
	g.Expect(condition(te, trainenvv1.ConditionCompatible).Message).To(ContainSubstring("NVIDIA-A100-SXM4-80GB"))

	f.gpuNode("nogpu-h100", gen.WithGPUProduct("NVIDIA-H100-80GB-HBM3"))
	_, err, te = f.reconcile(te)
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(te).To(haveCondition(trainenvv1.ConditionCompatible, metav1.ConditionTrue, trainenvv1.ReasonCompatible))
	sts, err := f.statefulSet(te)
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(sts.Spec.Template.Spec.Affinity.NodeAffinity.RequiredDuringSchedulingIgnoredDuringExecution.NodeSelectorTerms[0].
		MatchExpressions[0].Values).To(ConsistOf("NVIDIA-H100-80GB-HBM3"))
}

func TestPodStatusDrivesReady(t *testing.T) {
	g := NewWithT(t)
	f := newFixture(t)
	te := f.pinnedOnNode("ready", func(te *trainenvv1.TrainingEnvironment) {
		te.Spec.Jupyter = &trainenvv1.JupyterSpec{Enabled: true}
	})
	pod := f.podFor(te, "ready-a100")

	pod.Status.Phase = corev1.PodPending
	pod.Status.Conditions = []corev1.PodCondition{{Type: corev1.PodScheduled, Status: corev1.ConditionFalse,
		Reason: corev1.PodReasonUnschedulable, Message: "0/3 nodes are available: 3 Insufficient nvidia.com/gpu."}}
	g.Expect(k8s.Status().Update(f.ctx, pod)).To(Succeed())
	_, err, te := f.reconcile(te)
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(te).To(haveCondition(trainenvv1.ConditionWorkloadReady, metav1.ConditionFalse, trainenvv1.ReasonUnschedulable))
	g.Expect(condition(te, trainenvv1.ConditionReady).Message).To(ContainSubstring("Insufficient nvidia.com/gpu"))

	pod.Status.Phase = corev1.PodRunning
	pod.Status.Conditions = []corev1.PodCondition{
		{Type: corev1.PodScheduled, Status: corev1.ConditionTrue},
		{Type: corev1.PodReady, Status: corev1.ConditionTrue},
	}
	g.Expect(k8s.Status().Update(f.ctx, pod)).To(Succeed())
	_, err, te = f.reconcile(te)
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(te).To(haveCondition(trainenvv1.ConditionWorkloadReady, metav1.ConditionTrue, trainenvv1.ReasonPodReady))
	g.Expect(te).To(haveCondition(trainenvv1.ConditionReady, metav1.ConditionTrue, trainenvv1.ReasonReady))
	g.Expect(te.Status.Phase).To(Equal(trainenvv1.PhaseRunning))
	g.Expect(te.Status.NodeName).To(Equal("ready-a100"))
	g.Expect(te.Status.Connect).To(ContainElement(HavePrefix("kubectl trainenv connect ready -n ")))

	pod.Status.ContainerStatuses = []corev1.ContainerStatus{{Name: "main", State: corev1.ContainerState{
		Waiting: &corev1.ContainerStateWaiting{Reason: "CrashLoopBackOff", Message: "back-off 5m0s restarting failed container"}}}}
	g.Expect(k8s.Status().Update(f.ctx, pod)).To(Succeed())
	_, err, te = f.reconcile(te)
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(te).To(haveCondition(trainenvv1.ConditionReady, metav1.ConditionFalse, trainenvv1.ReasonContainerFailing))
	g.Expect(te.Status.Phase).To(Equal(trainenvv1.PhaseFailed))
}

func TestSuspendScalesToZeroAndKeepsWorkspace(t *testing.T) {
	g := NewWithT(t)
	f := newFixture(t)
	te := f.pinnedOnNode("suspend")

	te.Spec.Suspend = true
	g.Expect(k8s.Update(f.ctx, te)).To(Succeed())
	_, err, te := f.reconcile(te)
	g.Expect(err).NotTo(HaveOccurred())
	sts, err := f.statefulSet(te)
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(*sts.Spec.Replicas).To(BeEquivalentTo(0))
	g.Expect(k8s.Get(f.ctx, client.ObjectKey{Namespace: f.ns, Name: "suspend-workspace"}, &corev1.PersistentVolumeClaim{})).To(Succeed())
	g.Expect(te).To(haveCondition(trainenvv1.ConditionReady, metav1.ConditionTrue, trainenvv1.ReasonSuspended))
	g.Expect(te.Status.Phase).To(Equal(trainenvv1.PhaseSuspended))

	te.Spec.Suspend = false
	g.Expect(k8s.Update(f.ctx, te)).To(Succeed())
	_, err, te = f.reconcile(te)
	g.Expect(err).NotTo(HaveOccurred())
	sts, err = f.statefulSet(te)
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(*sts.Spec.Replicas).To(BeEquivalentTo(1))
	g.Expect(te.Status.Phase).To(Equal(trainenvv1.PhaseStarting))
}

func TestDeletionLeavesCleanupToOwnerReferences(t *testing.T) {
	g := NewWithT(t)
	f := newFixture(t)
	reg := registrytest.New(t)
	reg.Push("team/pytorch", "2.4", registrytest.Image(t))
	te := f.create("gone", reg.Host+"/team/pytorch:2.4", func(te *trainenvv1.TrainingEnvironment) {
		te.Spec.GPU = nil
		te.Spec.Workspace.KeepOnDelete = ptr.To(false)
	})
	_, err, te := f.reconcile(te)
	g.Expect(err).NotTo(HaveOccurred())

	// The garbage collector (not run by envtest) deletes what the environment controls.
	for _, obj := range []client.Object{&appsv1.StatefulSet{}, &corev1.PersistentVolumeClaim{}} {
		name := te.Name
		if _, ok := obj.(*corev1.PersistentVolumeClaim); ok {
			name = workload.WorkspaceClaimName(te)
		}
		g.Expect(k8s.Get(f.ctx, client.ObjectKey{Namespace: f.ns, Name: name}, obj)).To(Succeed())
		owner := metav1.GetControllerOf(obj)
		g.Expect(owner).NotTo(BeNil(), "%T has a controller owner", obj)
		g.Expect(owner.UID).To(Equal(te.UID))
		g.Expect(*owner.BlockOwnerDeletion).To(BeTrue())
	}

	g.Expect(k8s.Delete(f.ctx, te)).To(Succeed())
	_, err = f.r.Reconcile(f.ctx, reconcileRequest(te))
	g.Expect(err).NotTo(HaveOccurred(), "a deleted environment needs no pass")
}

func TestNoOpPassWritesNothing(t *testing.T) {
	g := NewWithT(t)
	f := newFixture(t)
	te := f.pinnedOnNode("noop")
	sts, err := f.statefulSet(te)
	g.Expect(err).NotTo(HaveOccurred())

	for range 3 {
		_, err, again := f.reconcile(te)
		g.Expect(err).NotTo(HaveOccurred())
		g.Expect(again.ResourceVersion).To(Equal(te.ResourceVersion), "no status write when nothing changed")
		stsAgain, err := f.statefulSet(te)
		g.Expect(err).NotTo(HaveOccurred())
		g.Expect(stsAgain.ResourceVersion).To(Equal(sts.ResourceVersion), "no workload write when nothing changed")
	}
	// A tag check that finds the same digest writes nothing either.
	f.clock.Step(601 * time.Second)
	_, err, again := f.reconcile(te)
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(again.ResourceVersion).To(Equal(te.ResourceVersion))
}
