package controller_test

import (
	"strings"
	"testing"

	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/tools/events"
	"sigs.k8s.io/controller-runtime/pkg/client"

	trainenvv1 "github.com/trainenv/trainenv/api/v1alpha1"
	"github.com/trainenv/trainenv/internal/access"
	"github.com/trainenv/trainenv/internal/workload"
)

// Bad input that only the node finds: the kubelet's pod status (written here as the kubelet
// would: envtest has none) ends in a WorkloadReady reason that names the problem, phase
// Failed, one Warning event; the workload and the workspace stay as they are.
func TestNodeFoundBadInputSeenAsConditions(t *testing.T) {
	g := NewWithT(t)
	f := newFixture(t)
	rec := events.NewFakeRecorder(100)
	f.r.Recorder = rec
	te := f.pinnedOnNode("badnode")
	pod := f.podFor(te, "badnode-a100")
	drain(rec)
	pinnedImage := te.Status.Image.Resolved

	denied := `failed to pull and unpack image "` + pinnedImage + `": failed to resolve reference "` + pinnedImage +
		`": pull access denied, repository does not exist or may require authorization: authorization failed: no basic auth credentials`
	lacksSSHD := access.ImageLacksMessage([]access.ImageLack{access.LackSSHD},
		[]string{"SSH is enabled but the image has no sshd (looked for /usr/sbin/sshd, /usr/local/sbin/sshd, /sbin/sshd): install OpenSSH's server in the image (Debian/Ubuntu: openssh-server)"})
	lacksUser := access.ImageLacksMessage([]access.ImageLack{access.LackUser},
		[]string{"SSH is enabled but the image has no user with uid 1000 in /etc/passwd"})
	crashLoop := func(message string) *corev1.ContainerStatus {
		return &corev1.ContainerStatus{RestartCount: 2,
			State:                waiting("CrashLoopBackOff", "back-off 20s restarting failed container=main pod=badnode-0"),
			LastTerminationState: corev1.ContainerState{Terminated: &corev1.ContainerStateTerminated{ExitCode: 1, Reason: "Error", Message: message}}}
	}
	passed := corev1.ContainerStatus{State: terminated(0, passing)}
	steps := []struct {
		name      string
		preflight corev1.ContainerStatus
		main      *corev1.ContainerStatus
		reason    string
		message   string
	}{
		{"the node cannot pull the image (no pull Secret)", corev1.ContainerStatus{State: waiting("ErrImagePull", denied)}, nil,
			trainenvv1.ReasonImagePullFailed,
			"node badnode-a100 cannot pull the image of container trainenv-preflight of pod badnode-0 (" + pinnedImage + "): " + denied +
				"; the registry wants credentials and the pod has no pull Secret: name one in spec.imagePullSecrets (a kubernetes.io/dockerconfigjson Secret in this namespace)." +
				" The kubelet keeps retrying with back-off; `kubectl describe pod badnode-0` shows the pulls"},
		{"the image has no sshd", passed, crashLoop(lacksSSHD + "\n"), trainenvv1.ReasonImageMissingSSHD,
			"the image " + pinnedImage + " cannot run this environment: SSH is enabled but the image has no sshd (looked for /usr/sbin/sshd, /usr/local/sbin/sshd, /sbin/sshd): " +
				"install OpenSSH's server in the image (Debian/Ubuntu: openssh-server). The kubelet restarts the container with back-off; fix the image and set spec.image to it (or change the spec)"},
		{"the image has no uid-1000 user", passed, crashLoop(lacksUser), trainenvv1.ReasonImageMissingUser,
			"the image " + pinnedImage + " cannot run this environment: SSH is enabled but the image has no user with uid 1000 in /etc/passwd. The kubelet restarts"},
		{"a crash of unknown cause", passed, crashLoop("Segmentation fault\n"), trainenvv1.ReasonContainerFailing,
			"container main of pod badnode-0 keeps crashing (CrashLoopBackOff); it last exited with code 1 (Error): Segmentation fault"},
	}
	for _, s := range steps {
		f.setInitStatus(pod, s.preflight, s.main, false)
		_, err, got := f.reconcile(te)
		g.Expect(err).NotTo(HaveOccurred(), s.name)
		g.Expect(got).To(haveCondition(trainenvv1.ConditionWorkloadReady, metav1.ConditionFalse, s.reason), s.name)
		g.Expect(got).To(haveCondition(trainenvv1.ConditionReady, metav1.ConditionFalse, s.reason), s.name)
		g.Expect(condition(got, trainenvv1.ConditionWorkloadReady).Message).To(HavePrefix(s.message), s.name)
		g.Expect(got.Status.Phase).To(Equal(trainenvv1.PhaseFailed), s.name)
		g.Expect(warnings(drain(rec))).To(ConsistOf(HavePrefix("Warning "+s.reason+" "+s.message)), s.name+": one Warning event")
		_, err, _ = f.reconcile(te)
		g.Expect(err).NotTo(HaveOccurred())
		g.Expect(drain(rec)).To(BeEmpty(), s.name+": nothing new, no event")
		if s.reason == trainenvv1.ReasonImagePullFailed {
			// The kubelet backs off: the same error inside another message; nothing changes.
			f.setInitStatus(pod, corev1.ContainerStatus{State: waiting("ImagePullBackOff", `Back-off pulling image "`+pinnedImage+`": ErrImagePull: `+denied)}, nil, false)
			_, err, again := f.reconcile(te)
			g.Expect(err).NotTo(HaveOccurred())
			g.Expect(condition(again, trainenvv1.ConditionWorkloadReady).Message).To(Equal(condition(got, trainenvv1.ConditionWorkloadReady).Message))
			g.Expect(drain(rec)).To(BeEmpty(), "a back-off of the same pull repeats no event")
		}

		// Nothing is lost: the workload stays (the kubelet keeps retrying), the workspace claim too.
		sts, err := f.statefulSet(got)
		g.Expect(err).NotTo(HaveOccurred())
		g.Expect(*sts.Spec.Replicas).To(BeNumerically("==", 1))
		g.Expect(k8s.Get(f.ctx, client.ObjectKey{Namespace: f.ns, Name: workload.WorkspaceClaim(got).Name}, &corev1.PersistentVolumeClaim{})).To(Succeed())
	}

	// The image fixed in place (as by a pull Secret added to the node's view): Ready again.
	f.setInitStatus(pod, passed, &corev1.ContainerStatus{Ready: true, State: corev1.ContainerState{Running: &corev1.ContainerStateRunning{}}}, true)
	_, err, te := f.reconcile(te)
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(te).To(haveCondition(trainenvv1.ConditionReady, metav1.ConditionTrue, trainenvv1.ReasonReady))
}

func waiting(reason, message string) corev1.ContainerState {
	return corev1.ContainerState{Waiting: &corev1.ContainerStateWaiting{Reason: reason, Message: message}}
}

func warnings(events []string) []string {
	var out []string
	for _, e := range events {
		if strings.HasPrefix(e, "Warning ") {
			out = append(out, e)
		}
	}
	return out
}
