package controller_test

import (
	"testing"

	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/tools/events"

	trainenvv1 "github.com/trainenv/trainenv/api/v1alpha1"
	"github.com/trainenv/trainenv/internal/preflight/report"
	"github.com/trainenv/trainenv/internal/testutil/registrytest"
	"github.com/trainenv/trainenv/internal/workload"
)

// setInitStatus writes the pod's status as the kubelet would: the tools copied, then the
// preflight in state (and lastState), main container as given.
func (f *fixture) setInitStatus(pod *corev1.Pod, preflight corev1.ContainerStatus, main *corev1.ContainerStatus, ready bool) {
	f.t.Helper()
	preflight.Name = workload.PreflightContainerName
	pod.Status.Phase = corev1.PodPending
	pod.Status.InitContainerStatuses = []corev1.ContainerStatus{
		{Name: workload.ToolsInitContainerName, Ready: true, State: corev1.ContainerState{Terminated: &corev1.ContainerStateTerminated{ExitCode: 0, Reason: "Completed"}}},
		preflight,
	}
	pod.Status.ContainerStatuses = nil
	pod.Status.Conditions = nil
	if main != nil {
		main.Name = workload.ContainerName
		pod.Status.ContainerStatuses = []corev1.ContainerStatus{*main}
	}
	if ready {
		pod.Status.Phase = corev1.PodRunning
		pod.Status.Conditions = []corev1.PodCondition{{Type: corev1.PodReady, Status: corev1.ConditionTrue}}
	}
	if err := k8s.Status().Update(f.ctx, pod); err != nil {
		f.t.Fatal(err)
	}
}

func terminated(code int32, r report.Report) corev1.ContainerState {
	reason := "Completed"
	if code != 0 {
		reason = "Error"
	}
	return corev1.ContainerState{Terminated: &corev1.ContainerStateTerminated{ExitCode: code, Reason: reason, Message: string(report.Encode(r))}}
}

var tooOldForTorch = report.Report{
	Driver: "535.104.05", CUDA: "12.2",
	GPUs:     []report.GPU{{Product: "NVIDIA A100-SXM4-80GB", Compute: "8.0"}},
	Torch:    &report.Torch{Version: "2.7.0+cu128", CUDA: "12.8"},
	Failures: []string{"torch.cuda.is_available() is False: torch 2.7.0+cu128 was built for CUDA 12.8; the driver 535.104.05 supports CUDA 12.2."},
}

var passing = report.Report{
	Passed: true, Driver: "550.54.15", CUDA: "12.4",
	GPUs:     []report.GPU{{Product: "NVIDIA A100-SXM4-80GB", Compute: "8.0"}},
	Torch:    &report.Torch{Version: "2.4.0+cu124", CUDA: "12.4", Available: true, Devices: 1},
	Warnings: []string{"torch 2.4.0+cu124 was built for CUDA 12.4 but the image declares CUDA 12.5"},
}

// The preflight's verdict reaches the environment: a failure is WorkloadReady=False with the
// exact message and one event per change, a pass is recorded in status.preflight.
func TestPreflightResultReachesStatusAndEvents(t *testing.T) {
	g := NewWithT(t)
	f := newFixture(t)
	rec := events.NewFakeRecorder(100)
	f.r.Recorder = rec
	reg := registrytest.New(t)
	reg.Push("team/pytorch", "cu124", registrytest.Image(t, "CUDA_VERSION=12.4.1", "NVIDIA_REQUIRE_CUDA=cuda>=12.4 brand=tesla,driver>=535,driver<536"))
	f.gpuNode("pf-a100")
	te := f.create("pf", reg.Host+"/team/pytorch:cu124")
	_, err, te := f.reconcile(te)
	g.Expect(err).NotTo(HaveOccurred())

	sts, err := f.statefulSet(te)
	g.Expect(err).NotTo(HaveOccurred())
	init := sts.Spec.Template.Spec.InitContainers
	g.Expect(init).To(HaveLen(2))
	g.Expect(init[1].Name).To(Equal(workload.PreflightContainerName))
	g.Expect(init[1].Image).To(Equal(te.Status.Image.Resolved))
	g.Expect(init[1].Args).To(Equal([]string{"--gpus=1", "--require=cuda>=12.4 brand=tesla,driver>=535,driver<536"}))
	pod := f.podFor(te, "pf-a100") // admitted under Pod Security "restricted", preflight included
	drain(rec)

	// The preflight fails: torch cannot use the node's driver.
	f.setInitStatus(pod, corev1.ContainerStatus{State: terminated(1, tooOldForTorch)}, nil, false)
	_, err, te = f.reconcile(te)
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(te).To(haveCondition(trainenvv1.ConditionWorkloadReady, metav1.ConditionFalse, trainenvv1.ReasonPreflightFailed))
	g.Expect(te).To(haveCondition(trainenvv1.ConditionReady, metav1.ConditionFalse, trainenvv1.ReasonPreflightFailed))
	g.Expect(te.Status.Phase).To(Equal(trainenvv1.PhaseFailed))
	msg := condition(te, trainenvv1.ConditionWorkloadReady).Message
	g.Expect(msg).To(HavePrefix("the GPU preflight of pod pf-0 on node pf-a100 failed: " + tooOldForTorch.Failures[0]))
	g.Expect(msg).To(ContainSubstring("kubectl logs pf-0 -c trainenv-preflight"))
	g.Expect(te.Status.Preflight).To(Equal(&trainenvv1.PreflightStatus{
		Passed: false, Reason: trainenvv1.ReasonPreflightFailed, Message: tooOldForTorch.Failures[0], DriverVersion: "535.104.05", CUDADriverVersion: "12.2",
		GPUs: []string{"1x NVIDIA A100-SXM4-80GB (cc 8.0)"}, Torch: "torch 2.7.0+cu128 (CUDA 12.8): CUDA not available",
	}))
	g.Expect(drain(rec)).To(ConsistOf("Warning PreflightFailed GPU preflight failed on node pf-a100: " + tooOldForTorch.Failures[0]))

	// The kubelet restarts it with backoff: the failure is in lastState; nothing new to say.
	f.setInitStatus(pod, corev1.ContainerStatus{
		State:                corev1.ContainerState{Waiting: &corev1.ContainerStateWaiting{Reason: "CrashLoopBackOff", Message: "back-off 40s restarting failed container"}},
		LastTerminationState: terminated(1, tooOldForTorch), RestartCount: 3,
	}, nil, false)
	_, err, te = f.reconcile(te)
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(te).To(haveCondition(trainenvv1.ConditionWorkloadReady, metav1.ConditionFalse, trainenvv1.ReasonPreflightFailed))
	g.Expect(drain(rec)).To(BeEmpty(), "one event per change, not per pass or retry")

	// The node is fixed; the next run passes and the pod starts.
	f.setInitStatus(pod, corev1.ContainerStatus{State: terminated(0, passing), RestartCount: 4},
		&corev1.ContainerStatus{Ready: true, State: corev1.ContainerState{Running: &corev1.ContainerStateRunning{}}}, true)
	_, err, te = f.reconcile(te)
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(te).To(haveCondition(trainenvv1.ConditionReady, metav1.ConditionTrue, trainenvv1.ReasonReady))
	g.Expect(te.Status.Preflight).To(Equal(&trainenvv1.PreflightStatus{
		Passed:        true,
		Message:       "driver 550.54.15 (CUDA 12.4), 1x NVIDIA A100-SXM4-80GB (cc 8.0), torch 2.4.0+cu124 (CUDA 12.4) sees 1 GPU(s)",
		DriverVersion: "550.54.15", CUDADriverVersion: "12.4", GPUs: []string{"1x NVIDIA A100-SXM4-80GB (cc 8.0)"},
		Torch: "torch 2.4.0+cu124 (CUDA 12.4) sees 1 GPU(s)", Warnings: passing.Warnings,
	}))
	g.Expect(drain(rec)).To(ConsistOf(
		"Normal PreflightPassed GPU preflight passed on node pf-a100: driver 550.54.15 (CUDA 12.4), 1x NVIDIA A100-SXM4-80GB (cc 8.0), " +
			"torch 2.4.0+cu124 (CUDA 12.4) sees 1 GPU(s); warnings: " + passing.Warnings[0]))
	_, err, _ = f.reconcile(te)
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(drain(rec)).To(BeEmpty())

	// Suspended: no pod, no preflight result.
	te.Spec.Suspend = true
	g.Expect(k8s.Update(f.ctx, te)).To(Succeed())
	_, err, te = f.reconcile(te)
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(te.Status.Preflight).To(BeNil())
}

// A preflight that could not run at all (here: the image's glibc is older than the one the
// preflight was built against) still fails the environment visibly, with the loader's words.
func TestPreflightThatCannotRun(t *testing.T) {
	g := NewWithT(t)
	f := newFixture(t)
	te := f.pinnedOnNode("norun")
	pod := f.podFor(te, "norun-a100")
	loader := "/trainenv/bin/preflight: /lib/x86_64-linux-gnu/libc.so.6: version `GLIBC_2.34' not found (required by /trainenv/bin/preflight)"
	f.setInitStatus(pod, corev1.ContainerStatus{State: corev1.ContainerState{Terminated: &corev1.ContainerStateTerminated{
		ExitCode: 1, Reason: "Error", Message: loader + "\n",
	}}}, nil, false)
	_, err, te := f.reconcile(te)
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(te).To(haveCondition(trainenvv1.ConditionWorkloadReady, metav1.ConditionFalse, trainenvv1.ReasonPreflightFailed))
	g.Expect(te.Status.Preflight.Message).To(Equal("the preflight exited with code 1 (Error) without a report: " + loader))
	g.Expect(condition(te, trainenvv1.ConditionWorkloadReady).Message).To(ContainSubstring(loader))

	// While a first run is in progress, the environment says so.
	f.setInitStatus(pod, corev1.ContainerStatus{State: corev1.ContainerState{Running: &corev1.ContainerStateRunning{}}}, nil, false)
	_, err, te = f.reconcile(te)
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(te).To(haveCondition(trainenvv1.ConditionWorkloadReady, metav1.ConditionFalse, trainenvv1.ReasonPodStarting))
	g.Expect(condition(te, trainenvv1.ConditionWorkloadReady).Message).To(Equal("pod norun-0 is checking its GPUs on node norun-a100 (preflight)"))
	g.Expect(te.Status.Preflight).To(BeNil())
}

// A preflight that exits 0 without its report (killed, replaced by a program of the image,
// its termination message cut) proves nothing about the GPUs: it fails closed, with a reason
// of its own and what to do, although the kubelet went on to start the main container.
func TestPreflightWithoutReportIsNotPassed(t *testing.T) {
	g := NewWithT(t)
	f := newFixture(t)
	rec := events.NewFakeRecorder(100)
	f.r.Recorder = rec
	te := f.pinnedOnNode("noreport")
	pod := f.podFor(te, "noreport-a100")
	drain(rec)
	for _, message := range []string{"", `{"passed":true,"driver":"550.5`} {
		f.setInitStatus(pod, corev1.ContainerStatus{State: corev1.ContainerState{Terminated: &corev1.ContainerStateTerminated{
			ExitCode: 0, Reason: "Completed", Message: message,
		}}}, &corev1.ContainerStatus{Ready: true, State: corev1.ContainerState{Running: &corev1.ContainerStateRunning{}}}, true)
		_, err, got := f.reconcile(te)
		g.Expect(err).NotTo(HaveOccurred())
		g.Expect(got).To(haveCondition(trainenvv1.ConditionWorkloadReady, metav1.ConditionFalse, trainenvv1.ReasonPreflightNoReport), "message %q", message)
		g.Expect(got).To(haveCondition(trainenvv1.ConditionReady, metav1.ConditionFalse, trainenvv1.ReasonPreflightNoReport))
		g.Expect(got.Status.Preflight.Passed).To(BeFalse())
		g.Expect(got.Status.Preflight.Reason).To(Equal(trainenvv1.ReasonPreflightNoReport))
		msg := condition(got, trainenvv1.ConditionWorkloadReady).Message
		g.Expect(msg).To(ContainSubstring("exited 0 without its report"))
		g.Expect(msg).To(ContainSubstring("kubectl delete pod noreport-0"))
	}
	g.Expect(drain(rec)).To(ConsistOf(HavePrefix("Warning PreflightNoReport GPU preflight on node noreport-a100 left no report")))
}
