package controller

// Table tests of the status functions, without a client or an API server: what the
// conditions, the pod and the preflight say, and what Ready and the phase become.

import (
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	trainenvv1 "github.com/trainenv/trainenv/api/v1alpha1"
	"github.com/trainenv/trainenv/internal/preflight/report"
	"github.com/trainenv/trainenv/internal/reconcileerror"
	"github.com/trainenv/trainenv/internal/testutil/gen"
	"github.com/trainenv/trainenv/internal/trust"
	"github.com/trainenv/trainenv/internal/workload"
)

// cond is a condition of a table row: type, status, reason.
type cond struct {
	t      string
	status metav1.ConditionStatus
	reason string
}

func withConditions(cs ...cond) *trainenvv1.TrainingEnvironment {
	te := &trainenvv1.TrainingEnvironment{}
	te.Name, te.Namespace, te.Generation = "te", "ns", 3
	te.Status.Image = &trainenvv1.ImageStatus{Resolved: "r.example/img@sha256:abc"}
	te.Status.NodeName = "gpu-1"
	for _, c := range cs {
		meta.SetStatusCondition(&te.Status.Conditions, metav1.Condition{Type: c.t, Status: c.status, Reason: c.reason, Message: c.reason + " message"})
	}
	return te
}

func TestSummarize(t *testing.T) {
	const T, F, U = metav1.ConditionTrue, metav1.ConditionFalse, metav1.ConditionUnknown
	resolved := cond{trainenvv1.ConditionImageResolved, T, trainenvv1.ReasonResolved}
	verified := cond{trainenvv1.ConditionVerified, T, trainenvv1.ReasonVerified}
	compatible := cond{trainenvv1.ConditionCompatible, T, trainenvv1.ReasonCompatible}
	workload := func(s metav1.ConditionStatus, reason string) cond {
		return cond{trainenvv1.ConditionWorkloadReady, s, reason}
	}
	stalled := reconcileerror.NewStalled(trainenvv1.ReasonNoSignature, "no signature")
	cases := []struct {
		name   string
		conds  []cond
		err    error
		ready  metav1.ConditionStatus
		reason string
		phase  trainenvv1.Phase
	}{
		{"nothing known yet", nil, nil, F, trainenvv1.ReasonProgressing, trainenvv1.PhasePending},
		{"running", []cond{resolved, verified, compatible, workload(T, trainenvv1.ReasonPodReady)}, nil,
			T, trainenvv1.ReasonReady, trainenvv1.PhaseRunning},
		{"running with verification not enforced",
			[]cond{resolved, {trainenvv1.ConditionVerified, U, trainenvv1.ReasonVerificationNotEnforced}, compatible, workload(T, trainenvv1.ReasonPodReady)}, nil,
			T, trainenvv1.ReasonReady, trainenvv1.PhaseRunning},
		{"running with unmatched images allowed",
			[]cond{resolved, {trainenvv1.ConditionVerified, U, trainenvv1.ReasonUnmatchedAllowed}, compatible, workload(T, trainenvv1.ReasonPodReady)}, nil,
			T, trainenvv1.ReasonReady, trainenvv1.PhaseRunning},
		{"verification waiting holds Ready",
			[]cond{resolved, {trainenvv1.ConditionVerified, U, trainenvv1.ReasonWaitingForImage}, compatible, workload(T, trainenvv1.ReasonPodReady)}, nil,
			F, trainenvv1.ReasonWaitingForImage, trainenvv1.PhasePending},
		{"registry down while verifying holds Ready",
			[]cond{resolved, {trainenvv1.ConditionVerified, U, trainenvv1.ReasonRegistryUnavailable}}, errors.New("registry down"),
			F, trainenvv1.ReasonRegistryUnavailable, trainenvv1.PhasePending},
		{"unsigned image fails", []cond{resolved, {trainenvv1.ConditionVerified, F, trainenvv1.ReasonNoSignature}}, stalled,
			F, trainenvv1.ReasonNoSignature, trainenvv1.PhaseFailed},
		{"unresolved image is pending", []cond{{trainenvv1.ConditionImageResolved, F, trainenvv1.ReasonRegistryUnavailable}}, errors.New("down"),
			F, trainenvv1.ReasonRegistryUnavailable, trainenvv1.PhasePending},
		{"no compatible node fails", []cond{resolved, verified, {trainenvv1.ConditionCompatible, F, trainenvv1.ReasonNoGPUNodes}},
			reconcileerror.NewStalled(trainenvv1.ReasonNoGPUNodes, "none"), F, trainenvv1.ReasonNoGPUNodes, trainenvv1.PhaseFailed},
		{"suspended is ready", []cond{resolved, verified, compatible, workload(F, trainenvv1.ReasonWorkloadSuspended)}, nil,
			T, trainenvv1.ReasonSuspended, trainenvv1.PhaseSuspended},
		{"idle suspended is ready", []cond{resolved, verified, compatible, workload(F, trainenvv1.ReasonIdleSuspended)}, nil,
			T, trainenvv1.ReasonIdleSuspended, trainenvv1.PhaseSuspended},
		{"pod starting", []cond{resolved, verified, compatible, workload(F, trainenvv1.ReasonPodStarting)}, nil,
			F, trainenvv1.ReasonPodStarting, trainenvv1.PhaseStarting},
		{"unschedulable pod is starting", []cond{resolved, verified, compatible, workload(F, trainenvv1.ReasonUnschedulable)}, nil,
			F, trainenvv1.ReasonUnschedulable, trainenvv1.PhaseStarting},
		{"crash loop fails", []cond{resolved, verified, compatible, workload(F, trainenvv1.ReasonContainerFailing)}, nil,
			F, trainenvv1.ReasonContainerFailing, trainenvv1.PhaseFailed},
		{"failed preflight fails", []cond{resolved, verified, compatible, workload(F, trainenvv1.ReasonPreflightFailed)}, nil,
			F, trainenvv1.ReasonPreflightFailed, trainenvv1.PhaseFailed},
		{"waiting for checks is pending", []cond{resolved, verified, compatible, workload(F, trainenvv1.ReasonWaitingForChecks)}, nil,
			F, trainenvv1.ReasonWaitingForChecks, trainenvv1.PhasePending},
		{"missing authorized_keys is pending", []cond{resolved, verified, compatible, workload(F, trainenvv1.ReasonAuthorizedKeysNotFound)},
			reconcileerror.NewWaiting(time.Second, trainenvv1.ReasonAuthorizedKeysNotFound, "create it"),
			F, trainenvv1.ReasonAuthorizedKeysNotFound, trainenvv1.PhasePending},
		{"missing Jupyter token is pending", []cond{resolved, verified, compatible, workload(F, trainenvv1.ReasonJupyterTokenNotFound)}, nil,
			F, trainenvv1.ReasonJupyterTokenNotFound, trainenvv1.PhasePending},
		{"invalid authorized_keys fails", []cond{resolved, verified, compatible, workload(F, trainenvv1.ReasonInvalidAuthorizedKeys)},
			reconcileerror.NewStalled(trainenvv1.ReasonInvalidAuthorizedKeys, "fix it"), F, trainenvv1.ReasonInvalidAuthorizedKeys, trainenvv1.PhaseFailed},
		{"workload not yet known", []cond{resolved, verified, compatible}, nil, F, trainenvv1.ReasonProgressing, trainenvv1.PhasePending},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			te := withConditions(tc.conds...)
			summarize(te, tc.err)
			ready := meta.FindStatusCondition(te.Status.Conditions, trainenvv1.ConditionReady)
			if ready == nil || ready.Status != tc.ready || ready.Reason != tc.reason || te.Status.Phase != tc.phase {
				t.Fatalf("got Ready %+v, phase %s; want %s %s, phase %s", ready, te.Status.Phase, tc.ready, tc.reason, tc.phase)
			}
			if ready.ObservedGeneration != te.Generation || ready.Message == "" {
				t.Fatalf("Ready must carry the generation and a message: %+v", ready)
			}
		})
	}
}

func TestSummarizeMessages(t *testing.T) {
	te := withConditions(
		cond{trainenvv1.ConditionImageResolved, metav1.ConditionTrue, trainenvv1.ReasonResolved},
		cond{trainenvv1.ConditionVerified, metav1.ConditionFalse, trainenvv1.ReasonUntrustedSigner})
	summarize(te, nil)
	if got := meta.FindStatusCondition(te.Status.Conditions, trainenvv1.ConditionReady).Message; got != trainenvv1.ReasonUntrustedSigner+" message" {
		t.Fatalf("Ready must repeat the blocking condition's message, got %q", got)
	}
	te = withConditions(
		cond{trainenvv1.ConditionImageResolved, metav1.ConditionTrue, trainenvv1.ReasonResolved},
		cond{trainenvv1.ConditionVerified, metav1.ConditionTrue, trainenvv1.ReasonVerified},
		cond{trainenvv1.ConditionCompatible, metav1.ConditionTrue, trainenvv1.ReasonCompatible},
		cond{trainenvv1.ConditionWorkloadReady, metav1.ConditionTrue, trainenvv1.ReasonPodReady})
	summarize(te, nil)
	if got := meta.FindStatusCondition(te.Status.Conditions, trainenvv1.ConditionReady).Message; got != "running r.example/img@sha256:abc on node gpu-1" {
		t.Fatalf("Ready message of a running environment: %q", got)
	}
}

func TestVerifiedAllowsRunMatchesSummarize(t *testing.T) {
	// The workload step runs only under VerifiedAllowsRun; Ready must agree with it.
	for _, status := range []metav1.ConditionStatus{metav1.ConditionTrue, metav1.ConditionFalse, metav1.ConditionUnknown} {
		for _, reason := range []string{trainenvv1.ReasonVerified, trainenvv1.ReasonVerificationNotEnforced, trainenvv1.ReasonUnmatchedAllowed,
			trainenvv1.ReasonWaitingForImage, trainenvv1.ReasonPolicyUnavailable, trainenvv1.ReasonNoMatchingPolicy} {
			te := withConditions(
				cond{trainenvv1.ConditionImageResolved, metav1.ConditionTrue, trainenvv1.ReasonResolved},
				cond{trainenvv1.ConditionVerified, status, reason},
				cond{trainenvv1.ConditionCompatible, metav1.ConditionTrue, trainenvv1.ReasonCompatible},
				cond{trainenvv1.ConditionWorkloadReady, metav1.ConditionTrue, trainenvv1.ReasonPodReady})
			summarize(te, nil)
			ready := meta.IsStatusConditionTrue(te.Status.Conditions, trainenvv1.ConditionReady)
			if ready != trainenvv1.VerifiedAllowsRun(status, reason) {
				t.Errorf("Verified %s/%s: Ready %v, VerifiedAllowsRun %v", status, reason, ready, !ready)
			}
		}
	}
}

const pinned = "r.example/img@sha256:abc"

// pod builds the environment's pod, pending on gpu-1, running image, with optional edits.
func pod(image string, edits ...gen.PodModifier) *corev1.Pod {
	return gen.Pod("te-0", append([]gen.PodModifier{
		gen.OnNode("gpu-1"), gen.WithPodPhase(corev1.PodPending), gen.WithContainer(workload.ContainerName, image),
	}, edits...)...)
}

func preflightRunningNow(p *corev1.Pod) {
	p.Status.InitContainerStatuses = append(p.Status.InitContainerStatuses, corev1.ContainerStatus{
		Name: workload.PreflightContainerName, State: corev1.ContainerState{Running: &corev1.ContainerStateRunning{}}})
}

func TestPodState(t *testing.T) {
	failed := &trainenvv1.PreflightStatus{Passed: false, Message: "no GPU visible"}
	passed := &trainenvv1.PreflightStatus{Passed: true, Message: "driver 550"}
	cases := []struct {
		name    string
		pod     *corev1.Pod
		pf      *trainenvv1.PreflightStatus
		ready   bool
		reason  string
		warning bool
		message string
	}{
		{"no pod yet", nil, nil, false, trainenvv1.ReasonPodStarting, false, "waiting for the StatefulSet"},
		{"pending", pod(pinned), nil, false, trainenvv1.ReasonPodStarting, false, "pod te-0 is Pending"},
		{"ready", pod(pinned, gen.WithPodCondition(corev1.PodReady, corev1.ConditionTrue, "", "")), passed, true, trainenvv1.ReasonPodReady, false, "ready on node gpu-1"},
		{"unschedulable", pod(pinned, gen.WithPodCondition(corev1.PodScheduled, corev1.ConditionFalse, corev1.PodReasonUnschedulable, "0/3 nodes: Insufficient nvidia.com/gpu")),
			nil, false, trainenvv1.ReasonUnschedulable, true, "Insufficient nvidia.com/gpu"},
		{"unschedulable beats a failed preflight", pod(pinned, gen.WithPodCondition(corev1.PodScheduled, corev1.ConditionFalse, corev1.PodReasonUnschedulable, "x")),
			failed, false, trainenvv1.ReasonUnschedulable, true, "cannot be scheduled"},
		{"failed preflight", pod(pinned), failed, false, trainenvv1.ReasonPreflightFailed, false, "no GPU visible"},
		{"failed preflight beats a crash loop", pod(pinned, gen.WithWaitingContainer(workload.ContainerName, "CrashLoopBackOff", "back-off")), failed, false, trainenvv1.ReasonPreflightFailed, false, "preflight"},
		{"crash loop", pod(pinned, gen.WithWaitingContainer(workload.ContainerName, "CrashLoopBackOff", "back-off")), nil, false, trainenvv1.ReasonContainerFailing, true, "CrashLoopBackOff"},
		{"image pull back-off", pod(pinned, gen.WithWaitingContainer(workload.ContainerName, "ImagePullBackOff", "back-off")), nil, false, trainenvv1.ReasonImagePullFailed, true, "(" + pinned + "): back-off; "},
		{"creating is not failing", pod(pinned, gen.WithWaitingContainer(workload.ContainerName, "ContainerCreating", "back-off")), nil, false, trainenvv1.ReasonPodStarting, false, "Pending"},
		{"old digest being replaced", pod("r.example/img@sha256:old", gen.WithPodCondition(corev1.PodReady, corev1.ConditionTrue, "", "")), nil,
			false, trainenvv1.ReasonPodStarting, false, "being replaced to run " + pinned},
		{"preflight running", pod(pinned, preflightRunningNow), nil, false, trainenvv1.ReasonPodStarting, false, "checking its GPUs"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got := podState(tc.pod, tc.pf, pinned)
			if got.ready != tc.ready || got.reason != tc.reason || got.warning != tc.warning || !strings.Contains(got.message, tc.message) {
				t.Fatalf("podState = %+v; want ready %v, %s, warning %v, message containing %q", got, tc.ready, tc.reason, tc.warning, tc.message)
			}
		})
	}
}

func terminated(code int32, message string) *corev1.ContainerStateTerminated {
	return &corev1.ContainerStateTerminated{ExitCode: code, Reason: "Completed", Message: message}
}

func TestPreflightStatus(t *testing.T) {
	pass := report.Report{Driver: "550.54.15", CUDA: "12.4", GPUs: []report.GPU{{Product: "NVIDIA-A100", Compute: "8.0"}}}
	pass.Finish()
	fail := report.Report{Driver: "470.1", Warnings: []string{"ECC off"}}
	fail.Fail("driver 470.1 supports CUDA 11.4, the image needs 12.1")
	fail.Finish()
	cases := []struct {
		name    string
		t       *corev1.ContainerStateTerminated
		passed  bool
		message string
	}{
		{"report passed", terminated(0, string(report.Encode(pass))), true, "driver 550.54.15 (CUDA 12.4)"},
		{"report failed", terminated(1, string(report.Encode(fail))), false, "supports CUDA 11.4"},
		{"report passed but exit code not 0", terminated(2, string(report.Encode(pass))), false, "reported success but exited with code 2"},
		{"no report, exit 0 (fails closed)", terminated(0, ""), false, "exited 0 without its report"},
		{"cut report, exit 0 (fails closed)", terminated(0, `{"passed":true,"dri`), false, "exited 0 without its report"},
		{"no report, failed", terminated(127, "exec: python: not found"), false, "exited with code 127 (Completed) without a report: exec: python: not found"},
		{"no report, failed, no log", terminated(137, ""), false, "exited with code 137 (Completed) without a report"},
		{"long log is cut", terminated(1, strings.Repeat("é", maxRawMessage)), false, "…"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got := preflightStatus(tc.t)
			if got.Passed != tc.passed || !strings.Contains(got.Message, tc.message) {
				t.Fatalf("preflightStatus = %+v; want passed %v, message containing %q", got, tc.passed, tc.message)
			}
			if len(got.Message) > maxRawMessage+200 {
				t.Fatalf("message of %d bytes is not bounded", len(got.Message))
			}
		})
	}
	got := preflightStatus(terminated(1, string(report.Encode(fail))))
	if got.DriverVersion != "470.1" || len(got.Warnings) != 1 {
		t.Fatalf("the report's details must reach status: %+v", got)
	}
}

func TestPreflightResult(t *testing.T) {
	withInit := func(s corev1.ContainerStatus) *corev1.Pod {
		return pod(pinned, func(p *corev1.Pod) { p.Status.InitContainerStatuses = []corev1.ContainerStatus{s} })
	}
	done := terminated(1, "")
	cases := []struct {
		name    string
		pod     *corev1.Pod
		want    bool // a result
		running bool // preflightRunning
	}{
		{"no pod", nil, false, false},
		{"no preflight", pod(pinned), false, false},
		{"running first time", withInit(corev1.ContainerStatus{Name: workload.PreflightContainerName, State: corev1.ContainerState{Running: &corev1.ContainerStateRunning{}}}), false, true},
		{"finished", withInit(corev1.ContainerStatus{Name: workload.PreflightContainerName, State: corev1.ContainerState{Terminated: done}}), true, false},
		{"rerunning after a failure keeps the failure", withInit(corev1.ContainerStatus{Name: workload.PreflightContainerName,
			State: corev1.ContainerState{Running: &corev1.ContainerStateRunning{}}, LastTerminationState: corev1.ContainerState{Terminated: done}}), true, false},
		{"another init container", withInit(corev1.ContainerStatus{Name: "other", State: corev1.ContainerState{Terminated: done}}), false, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if got := preflightResult(tc.pod); (got != nil) != tc.want {
				t.Fatalf("preflightResult = %+v; want a result: %v", got, tc.want)
			}
			if tc.pod != nil && preflightRunning(tc.pod) != tc.running {
				t.Fatalf("preflightRunning = %v; want %v", !tc.running, tc.running)
			}
		})
	}
}

func TestTruncateKeepsCharacters(t *testing.T) {
	for _, tc := range []struct {
		in   string
		n    int
		want string
	}{{"short", 10, "short"}, {"abcdef", 3, "abc…"}, {"éé", 3, "é…"}, {"ééé", 4, "éé…"}} {
		if got := truncate(tc.in, tc.n); got != tc.want {
			t.Errorf("truncate(%q, %d) = %q; want %q", tc.in, tc.n, got, tc.want)
		}
	}
}

func TestRequeueEarliestWins(t *testing.T) {
	p := &pass{}
	for _, d := range []time.Duration{10 * time.Minute, 0, 30 * time.Second, 5 * time.Minute, -time.Second} {
		p.requeueAfter(d)
	}
	if p.result.RequeueAfter != 30*time.Second {
		t.Fatalf("requeue after %s; want the earliest wish, 30s", p.result.RequeueAfter)
	}
	// A waiting step's delay competes with the others' wishes: the earliest still wins.
	res, err := reconcileerror.ToResult(p.result, reconcileerror.NewWaiting(time.Minute, trainenvv1.ReasonAuthorizedKeysNotFound, "create it"))
	if err != nil || res.RequeueAfter != 30*time.Second {
		t.Fatalf("ToResult = %v, %v; want requeue after 30s", res, err)
	}
}

// recordVerification: the scan summary follows the verdict, verifiedAt moves only when
// what was verified (the summary included) changes.
func TestRecordVerificationVulnerabilities(t *testing.T) {
	at := time.Date(2026, 12, 7, 12, 0, 0, 0, time.UTC)
	scanned := at.Add(-time.Hour)
	verdict := func(checked time.Time, critical int) trust.Verdict {
		return trust.Verdict{Digest: "r/ml@sha256:1", Policies: []string{"gate"}, CheckedAt: checked,
			Vulnerabilities: &trust.VulnerabilitySummary{Policy: "gate", Scanner: "trivy", ScannerVersion: "0.58.1", ScanFinishedAt: scanned,
				Counts: map[string]int{"CRITICAL": critical, "HIGH": 2, "MEDIUM": 3, "LOW": 4, "UNKNOWN": 5}, NotAffected: 6}}
	}
	te := &trainenvv1.TrainingEnvironment{}
	recordVerification(te, verdict(at, 1))
	want := &trainenvv1.VulnerabilitySummary{Policy: "gate", Scanner: "trivy", ScannerVersion: "0.58.1",
		ScanFinishedAt: &metav1.Time{Time: scanned}, Critical: 1, High: 2, Medium: 3, Low: 4, Unknown: 5, NotAffected: 6}
	if got := te.Status.Verification.Vulnerabilities; !reflect.DeepEqual(got, want) {
		t.Fatalf("summary: got %+v, want %+v", got, want)
	}
	recordVerification(te, verdict(at.Add(time.Hour), 1))
	if !te.Status.Verification.VerifiedAt.Time.Equal(at) {
		t.Errorf("same results: verifiedAt moved to %v", te.Status.Verification.VerifiedAt)
	}
	recordVerification(te, verdict(at.Add(2*time.Hour), 0))
	if te.Status.Verification.Vulnerabilities.Critical != 0 || !te.Status.Verification.VerifiedAt.Time.Equal(at.Add(2*time.Hour)) {
		t.Errorf("new summary: %+v", te.Status.Verification)
	}
	v := verdict(at, 1)
	v.Vulnerabilities = nil
	recordVerification(te, v)
	if te.Status.Verification.Vulnerabilities != nil {
		t.Errorf("no verified scan: the summary must go, got %+v", te.Status.Verification.Vulnerabilities)
	}
}
