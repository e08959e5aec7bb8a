package controller

import (
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	trainenvv1 "github.com/trainenv/trainenv/api/v1alpha1"
	"github.com/trainenv/trainenv/internal/access"
	"github.com/trainenv/trainenv/internal/testutil/gen"
	"github.com/trainenv/trainenv/internal/workload"
)

// containerStatus appends a container status as the kubelet writes it (init or main).
func containerStatus(init bool, cs corev1.ContainerStatus) gen.PodModifier {
	return func(p *corev1.Pod) {
		if init {
			p.Status.InitContainerStatuses = append(p.Status.InitContainerStatuses, cs)
			return
		}
		p.Status.ContainerStatuses = append(p.Status.ContainerStatuses, cs)
	}
}

func waiting(reason, message string) corev1.ContainerState {
	return corev1.ContainerState{Waiting: &corev1.ContainerStateWaiting{Reason: reason, Message: message}}
}

func exited(code int32, message string) corev1.ContainerState {
	return corev1.ContainerState{Terminated: &corev1.ContainerStateTerminated{ExitCode: code, Reason: "Error", Message: message,
		FinishedAt: metav1.NewTime(time.Date(2026, 12, 7, 8, 0, 0, 0, time.UTC))}}
}

// crashLooping is the main container backing off after exiting with code and message.
func crashLooping(code int32, message string) gen.PodModifier {
	return containerStatus(false, corev1.ContainerStatus{Name: workload.ContainerName, RestartCount: 3,
		State: waiting("CrashLoopBackOff", "back-off 40s restarting failed container=main pod=te-0"), LastTerminationState: exited(code, message)})
}

func withPullSecret(name string) gen.PodModifier {
	return func(p *corev1.Pod) {
		p.Spec.ImagePullSecrets = append(p.Spec.ImagePullSecrets, corev1.LocalObjectReference{Name: name})
	}
}

func withToolsInit(image string) gen.PodModifier {
	return func(p *corev1.Pod) {
		p.Spec.InitContainers = append(p.Spec.InitContainers, corev1.Container{Name: workload.ToolsInitContainerName, Image: image})
	}
}

// What the kubelet says about a failing container becomes WorkloadReady's reason and message.
// The messages are the kubelet's (1.37 with containerd 1.6) and the entrypoint's own.
func TestFailingContainer(t *testing.T) {
	lacksSSHD := access.ImageLacksMessage([]access.ImageLack{access.LackSSHD},
		[]string{"SSH is enabled but the image has no sshd (looked for /usr/sbin/sshd): install OpenSSH's server in the image"})
	lacksAll := access.ImageLacksMessage([]access.ImageLack{access.LackUser, access.LackJupyter}, []string{"no uid 1000", "no jupyter"})
	unauthorized := `failed to pull and unpack image "r.example/img@sha256:abc": failed to resolve reference "r.example/img@sha256:abc": pull access denied, repository does not exist or may require authorization: server message: insufficient_scope: authorization failed`
	platform := `failed to pull and unpack image "r.example/img@sha256:abc": no match for platform in manifest: not found`
	cases := []struct {
		name     string
		edits    []gen.PodModifier
		failing  bool
		reason   string
		contains []string
	}{
		{name: "nothing failing", edits: []gen.PodModifier{containerStatus(false, corev1.ContainerStatus{Name: workload.ContainerName, State: corev1.ContainerState{Running: &corev1.ContainerStateRunning{}}})}},
		{name: "pull refused, no pull Secret", edits: []gen.PodModifier{gen.WithWaitingContainer(workload.ContainerName, "ErrImagePull", unauthorized)}, failing: true,
			reason:   trainenvv1.ReasonImagePullFailed,
			contains: []string{"node gpu-1 cannot pull the image of container main of pod te-0 (" + pinned + "): " + unauthorized + "; the registry wants credentials and the pod has no pull Secret: name one in spec.imagePullSecrets"}},
		{name: "pull refused with a pull Secret, backing off", edits: []gen.PodModifier{withPullSecret("regcred"), gen.WithWaitingContainer(workload.ContainerName, "ImagePullBackOff", `Back-off pulling image "r.example/img@sha256:abc": ErrImagePull: `+unauthorized)},
			failing: true, reason: trainenvv1.ReasonImagePullFailed, contains: []string{"(" + pinned + "): " + unauthorized + "; the registry refused the credentials of the pull Secret(s) regcred"}},
		{name: "back-off with no earlier error known", edits: []gen.PodModifier{gen.WithWaitingContainer(workload.ContainerName, "ImagePullBackOff", `Back-off pulling image "r.example/img@sha256:abc"`)},
			failing: true, reason: trainenvv1.ReasonImagePullFailed, contains: []string{"(" + pinned + "): ImagePullBackOff; check that the node can reach the registry"}},
		{name: "the CRI's own error", edits: []gen.PodModifier{gen.WithWaitingContainer(workload.ContainerName, "RegistryUnavailable", "image pull failed for r.example/img@sha256:abc because the registry is unavailable: dial tcp: i/o timeout")},
			failing: true, reason: trainenvv1.ReasonImagePullFailed, contains: []string{"because the registry is unavailable: dial tcp: i/o timeout"}},
		{name: "pinned digest gone", edits: []gen.PodModifier{gen.WithWaitingContainer(workload.ContainerName, "ErrImagePull", `failed to pull and unpack image "r.example/img@sha256:abc": failed to resolve reference: r.example/img@sha256:abc: not found`)},
			failing: true, reason: trainenvv1.ReasonImagePullFailed, contains: []string{"no longer has the pinned digest"}},
		{name: "registry unreachable from the node", edits: []gen.PodModifier{gen.WithWaitingContainer(workload.ContainerName, "ErrImagePull", `dial tcp 192.0.2.7:443: connect: connection refused`)},
			failing: true, reason: trainenvv1.ReasonImagePullFailed, contains: []string{"connection refused", "check that the node can reach the registry"}},
		{name: "a digest's digits are no status code", edits: []gen.PodModifier{gen.WithWaitingContainer(workload.ContainerName, "ErrImagePull", `r.example/img@sha256:401403: i/o timeout`)},
			failing: true, reason: trainenvv1.ReasonImagePullFailed, contains: []string{"check that the node can reach the registry"}},
		{name: "no manifest for the node's platform", edits: []gen.PodModifier{gen.WithWaitingContainer(workload.ContainerName, "ErrImagePull", platform)},
			failing: true, reason: trainenvv1.ReasonImagePlatformMismatch, contains: []string{platform, "no manifest for the node's platform"}},
		{name: "the tools image cannot be pulled", edits: []gen.PodModifier{withToolsInit("r.example/trainenv/tools@sha256:def"),
			containerStatus(true, corev1.ContainerStatus{Name: workload.ToolsInitContainerName, State: waiting("ErrImagePull", unauthorized)})},
			failing: true, reason: trainenvv1.ReasonImagePullFailed, contains: []string{"container trainenv-tools of pod te-0 (r.example/trainenv/tools@sha256:def)", "trainenv's own tools image"}},
		{name: "image without sshd, backing off", edits: []gen.PodModifier{crashLooping(1, lacksSSHD+"\n")}, failing: true,
			reason: trainenvv1.ReasonImageMissingSSHD, contains: []string{"the image " + pinned + " cannot run this environment: SSH is enabled but the image has no sshd (looked for /usr/sbin/sshd): install OpenSSH's server in the image. The kubelet restarts"}},
		{name: "image lacks found at the first exit, before any back-off", edits: []gen.PodModifier{containerStatus(false, corev1.ContainerStatus{Name: workload.ContainerName, State: exited(1, lacksSSHD)})},
			failing: true, reason: trainenvv1.ReasonImageMissingSSHD},
		{name: "several lacks: the first names the reason, all are said", edits: []gen.PodModifier{crashLooping(1, lacksAll)}, failing: true,
			reason: trainenvv1.ReasonImageMissingUser, contains: []string{"no uid 1000; no jupyter"}},
		{name: "platform lack found by the entrypoint", edits: []gen.PodModifier{crashLooping(1, access.ImageLacksMessage([]access.ImageLack{access.LackPlatform}, []string{"/usr/sbin/sshd is built for linux/arm64"}))},
			failing: true, reason: trainenvv1.ReasonImagePlatformMismatch, contains: []string{"/usr/sbin/sshd is built for linux/arm64"}},
		{name: "an unknown crash: last exit code and termination message", edits: []gen.PodModifier{crashLooping(1, "trainenv: ssh: sshd rejects its configuration (exit status 255): Bad configuration option\n")},
			failing: true, reason: trainenvv1.ReasonContainerFailing,
			contains: []string{"container main of pod te-0 keeps crashing (CrashLoopBackOff); it last exited with code 1 (Error): trainenv: ssh: sshd rejects its configuration (exit status 255): Bad configuration option"}},
		{name: "an unknown crash without a message", edits: []gen.PodModifier{crashLooping(137, "")}, failing: true, reason: trainenvv1.ReasonContainerFailing,
			contains: []string{"it last exited with code 137 (Error) without a termination message; `kubectl logs te-0 -c main --previous`"}},
		{name: "an image-lacks message with exit 0 is no failure", edits: []gen.PodModifier{containerStatus(false, corev1.ContainerStatus{Name: workload.ContainerName, State: exited(0, lacksSSHD)})}},
		{name: "running again after an earlier lack is not failing", edits: []gen.PodModifier{containerStatus(false, corev1.ContainerStatus{Name: workload.ContainerName,
			State: corev1.ContainerState{Running: &corev1.ContainerStateRunning{}}, LastTerminationState: exited(1, lacksSSHD)})}},
		{name: "an idle exit is not a failure", edits: []gen.PodModifier{containerStatus(false, corev1.ContainerStatus{Name: workload.ContainerName, State: exited(0, access.IdleMessagePrefix+" for 2h0m0s")})}},
		{name: "config error", edits: []gen.PodModifier{gen.WithWaitingContainer(workload.ContainerName, "CreateContainerConfigError", `secret "x" not found`)}, failing: true,
			reason: trainenvv1.ReasonContainerFailing, contains: []string{`CreateContainerConfigError: secret "x" not found`}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got, failing := failingContainer(pod(pinned, tc.edits...))
			if failing != tc.failing || got.reason != tc.reason || (failing && !got.warning) {
				t.Fatalf("failingContainer = %+v, %v; want failing %v with reason %q and a warning", got, failing, tc.failing, tc.reason)
			}
			for _, want := range tc.contains {
				if !strings.Contains(got.message, want) {
					t.Errorf("message %q\nlacks %q", got.message, want)
				}
			}
		})
	}
}

// The kubelet alternates between pulling (ErrImagePull) and backing off (ImagePullBackOff,
// the same error inside its message): WorkloadReady stays the same, so that each retry
// writes no status and repeats no event.
func TestPullRetriesKeepOneMessage(t *testing.T) {
	err := `failed to pull and unpack image "r.example/img@sha256:abc": failed to resolve reference "r.example/img@sha256:abc": r.example/img@sha256:abc: not found`
	pulling, _ := failingContainer(pod(pinned, gen.WithWaitingContainer(workload.ContainerName, "ErrImagePull", err)))
	backingOff, _ := failingContainer(pod(pinned, gen.WithWaitingContainer(workload.ContainerName, "ImagePullBackOff",
		`Back-off pulling image "r.example/img@sha256:abc": ErrImagePull: `+err)))
	if pulling != backingOff {
		t.Errorf("pulling:     %+v\nbacking off: %+v\nwant the same", pulling, backingOff)
	}
}

// Every reason the pod can give sets the phase to Failed: the pod will not start until someone acts.
func TestImageReasonsFailThePhase(t *testing.T) {
	for _, reason := range lackReasons {
		if !failedWorkloadReasons[reason] {
			t.Errorf("%s does not put the environment in phase Failed", reason)
		}
	}
	if !failedWorkloadReasons[trainenvv1.ReasonImagePullFailed] {
		t.Errorf("%s does not put the environment in phase Failed", trainenvv1.ReasonImagePullFailed)
	}
}

// The manager's cache strips init containers from pods: the preflight's image comes from its
// container status, as the kubelet reports it.
func TestImageOfPrefersTheKubeletsReport(t *testing.T) {
	cached := &corev1.Pod{Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "main", Image: "r/main@sha256:1"}}}}
	for _, tc := range []struct {
		cs   corev1.ContainerStatus
		want string
	}{
		{corev1.ContainerStatus{Name: "trainenv-preflight", Image: "r/env@sha256:2"}, "r/env@sha256:2"},
		{corev1.ContainerStatus{Name: "main"}, "r/main@sha256:1"},
		{corev1.ContainerStatus{Name: "main", Image: "sha256:3"}, "r/main@sha256:1"},
		{corev1.ContainerStatus{Name: "trainenv-preflight"}, "unknown"},
	} {
		if got := imageOf(cached, tc.cs); got != tc.want {
			t.Errorf("imageOf(%s) = %q, want %q", tc.cs.Name, got, tc.want)
		}
	}
}
