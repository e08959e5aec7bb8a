package v1alpha1_test

import (
	"context"
	"fmt"
	"os"
	"strings"
	"testing"

	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"

	trainenvv1 "github.com/trainenv/trainenv/api/v1alpha1"
	"github.com/trainenv/trainenv/internal/testutil/envtestutil"
)

// The CRD's schema, enums, defaults and CEL rules run in a real API server: a bad spec must
// fail at `kubectl apply` with a message a person can act on.
var k8s client.Client

func TestMain(m *testing.M) {
	cfg, stop, err := envtestutil.Start()
	if err != nil {
		fmt.Fprintln(os.Stderr, "starting envtest:", err)
		os.Exit(1)
	}
	scheme := runtime.NewScheme()
	if err := trainenvv1.AddToScheme(scheme); err != nil {
		panic(err)
	}
	if err := corev1.AddToScheme(scheme); err != nil {
		panic(err)
	}
	k8s, err = client.New(cfg, client.Options{Scheme: scheme})
	if err != nil {
		panic(err)
	}
	code := m.Run()
	_ = stop()
	os.Exit(code)
}

const digest = "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"

// object builds a TrainingEnvironment as unstructured JSON, so that tests can send what a
// typed client cannot: unknown fields, wrong types, out-of-enum strings.
func object(name string, spec map[string]any) *unstructured.Unstructured {
	u := &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": "trainenv.io/v1alpha1",
		"kind":       "TrainingEnvironment",
		"metadata":   map[string]any{"name": name, "namespace": "default"},
		"spec":       spec,
	}}
	return u
}

func create(u *unstructured.Unstructured) error {
	// Strict field validation, as kubectl apply uses by default: unknown fields fail.
	return k8s.Create(context.Background(), u, client.FieldValidation(metav1.FieldValidationStrict))
}

func TestValidSpecsAreAccepted(t *testing.T) {
	valid := map[string]string{
		"tag":              "registry.example.com/team/pytorch:2.4-cuda12.4",
		"digest":           "registry.example.com:5000/team/pytorch@" + digest,
		"tag and digest":   "localhost:5001/pytorch:2.4@" + digest,
		"docker hub short": "pytorch/pytorch",
		"single name":      "ubuntu",
		"deep path":        "ghcr.io/org/team/sub/pytorch_cuda-runtime:v2.4.1",
		"ip registry":      "127.0.0.1:5001/trainenv/pytorch-cuda:12.4",
	}
	i := 0
	for name, image := range valid {
		i++
		t.Run(name, func(t *testing.T) {
			g := NewWithT(t)
			u := object(fmt.Sprintf("valid-%d", i), map[string]any{"image": image})
			g.Expect(create(u)).To(Succeed())
		})
	}
}

func TestDefaultsAreApplied(t *testing.T) {
	g := NewWithT(t)
	u := object("defaults", map[string]any{
		"image":     "registry.example.com/team/pytorch:2.4",
		"gpu":       map[string]any{},
		"ssh":       map[string]any{"enabled": true, "authorizedKeysSecretRef": map[string]any{"name": "keys"}},
		"jupyter":   map[string]any{"enabled": true},
		"workspace": map[string]any{"size": "50Gi"},
		"trust":     map[string]any{},
		// Opt-in only: accepted with something to watch (SSH, Jupyter).
		"idleSuspend": map[string]any{"afterMinutes": 120},
	})
	g.Expect(create(u)).To(Succeed())
	te := &trainenvv1.TrainingEnvironment{}
	g.Expect(k8s.Get(context.Background(), client.ObjectKey{Namespace: "default", Name: "defaults"}, te)).To(Succeed())
	g.Expect(te.Spec.UpdatePolicy).To(Equal(trainenvv1.UpdatePolicyPinned))
	g.Expect(te.Spec.FollowTagIntervalSeconds).To(BeEquivalentTo(600))
	g.Expect(te.Spec.Platform).To(Equal("linux/amd64"))
	g.Expect(te.Spec.ShmSize.String()).To(Equal("1Gi"))
	g.Expect(te.Spec.GPU.Count).To(BeEquivalentTo(1))
	g.Expect(te.Spec.GPU.ResourceName).To(Equal("nvidia.com/gpu"))
	g.Expect(te.Spec.SSH.ClientAliveIntervalSeconds).To(BeEquivalentTo(30))
	g.Expect(te.Spec.SSH.ClientAliveCountMax).To(BeEquivalentTo(10))
	g.Expect(*te.Spec.SSH.TCPKeepAlive).To(BeTrue())
	g.Expect(te.Spec.Jupyter.WebsocketPingIntervalSeconds).To(BeEquivalentTo(30))
	g.Expect(te.Spec.Jupyter.CullIdleKernelsAfterSeconds).To(BeNil(), "no kernel culling unless asked")
	g.Expect(te.Spec.Workspace.MountPath).To(Equal("/workspace"))
	g.Expect(*te.Spec.Workspace.KeepOnDelete).To(BeTrue())
	g.Expect(te.Spec.Trust.OnVerificationLoss).To(Equal(trainenvv1.VerificationLossKeep), "a running workload is kept unless asked")
	g.Expect(te.Spec.IdleSuspend).To(Equal(&trainenvv1.IdleSuspendSpec{AfterMinutes: 120}))
}

func TestInvalidSpecsAreRejectedWithReadableMessages(t *testing.T) {
	image := "registry.example.com/team/pytorch:2.4"
	cases := []struct {
		name    string
		spec    map[string]any
		message string
	}{
		{"missing image", map[string]any{}, `spec.image: Required value`},
		{"empty image", map[string]any{"image": ""}, `spec.image: Invalid value: "": spec.image in body should be at least 1 chars long`},
		{"unparsable image", map[string]any{"image": "Registry Example/PyTorch:latest"}, "image must be an image reference such as"},
		{"upper-case repository", map[string]any{"image": "registry.example.com/Team/pytorch:2.4"}, "image must be an image reference such as"},
		{"short digest", map[string]any{"image": "registry.example.com/team/pytorch@sha256:abc"}, "image must be an image reference such as"},
		{"negative gpu count", map[string]any{"image": image, "gpu": map[string]any{"count": -1}}, "spec.gpu.count: Invalid value: -1: spec.gpu.count in body should be greater than or equal to 0"},
		{"ssh without keys", map[string]any{"image": image, "ssh": map[string]any{"enabled": true}}, "ssh.enabled requires ssh.authorizedKeysSecretRef"},
		{"update policy not in enum", map[string]any{"image": image, "updatePolicy": "Sometimes"}, `spec.updatePolicy: Unsupported value: "Sometimes": supported values: "Pinned", "FollowTag"`},
		{"unknown field", map[string]any{"image": image, "gpus": 2}, `unknown field "spec.gpus"`},
		{"verification loss not in enum", map[string]any{"image": image, "trust": map[string]any{"onVerificationLoss": "Delete"}}, `spec.trust.onVerificationLoss: Unsupported value: "Delete": supported values: "Keep", "Stop"`},
		{"follow interval too short", map[string]any{"image": image, "followTagIntervalSeconds": 5}, "spec.followTagIntervalSeconds in body should be greater than or equal to 60"},
		{"bad platform", map[string]any{"image": image, "platform": "amd64"}, "spec.platform in body should match"},
		{"bad gpu resource name", map[string]any{"image": image, "gpu": map[string]any{"resourceName": "gpu"}}, "spec.gpu.resourceName in body should match"},
		{"cuda requirement syntax", map[string]any{"image": image, "cuda": map[string]any{"require": "12.4"}}, "cuda.require uses the NVIDIA_REQUIRE_CUDA syntax"},
		{"keepalive too eager", map[string]any{"image": image, "ssh": map[string]any{"enabled": false, "clientAliveIntervalSeconds": 1}}, "spec.ssh.clientAliveIntervalSeconds in body should be greater than or equal to 5"},
		{"culling too soon", map[string]any{"image": image, "jupyter": map[string]any{"enabled": true, "cullIdleKernelsAfterSeconds": 10}}, "greater than or equal to 300"},
		{"relative mount path", map[string]any{"image": image, "workspace": map[string]any{"size": "1Gi", "mountPath": "workspace"}}, "spec.workspace.mountPath in body should match"},
		{"jupyter without enabled", map[string]any{"image": image, "jupyter": map[string]any{}}, "spec.jupyter.enabled: Required value"},
		{"idle suspend too soon", map[string]any{"image": image, "jupyter": map[string]any{"enabled": true}, "idleSuspend": map[string]any{"afterMinutes": 5}}, "spec.idleSuspend.afterMinutes in body should be greater than or equal to 30"},
		{"idle suspend without a time", map[string]any{"image": image, "jupyter": map[string]any{"enabled": true}, "idleSuspend": map[string]any{}}, "spec.idleSuspend.afterMinutes: Required value"},
		{"idle suspend with nothing to watch", map[string]any{"image": image, "jupyter": map[string]any{"enabled": false}, "idleSuspend": map[string]any{"afterMinutes": 60}}, "idleSuspend needs ssh or jupyter enabled"},
	}
	for i, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			g := NewWithT(t)
			err := create(object(fmt.Sprintf("invalid-%d", i), tc.spec))
			g.Expect(err).To(HaveOccurred())
			g.Expect(err.Error()).To(ContainSubstring(tc.message))
		})
	}
}

func TestStorageClassCannotChange(t *testing.T) {
	g := NewWithT(t)
	ctx := context.Background()
	u := object("storage", map[string]any{
		"image":     "registry.example.com/team/pytorch:2.4",
		"workspace": map[string]any{"size": "10Gi", "storageClassName": "fast"},
	})
	g.Expect(create(u)).To(Succeed())
	g.Expect(unstructured.SetNestedField(u.Object, "slow", "spec", "workspace", "storageClassName")).To(Succeed())
	err := k8s.Update(ctx, u)
	g.Expect(err).To(HaveOccurred())
	g.Expect(err.Error()).To(ContainSubstring("workspace.storageClassName cannot be changed once set"))

	g.Expect(k8s.Get(ctx, client.ObjectKeyFromObject(u), u)).To(Succeed())
	g.Expect(unstructured.SetNestedField(u.Object, "20Gi", "spec", "workspace", "size")).To(Succeed())
	g.Expect(k8s.Update(ctx, u)).To(Succeed(), "the workspace may grow")
}

// TestNamesThatCouldNeverRunAreRefused: the name becomes a StatefulSet name (a DNS label) and,
// with the StatefulSet controller's 11-character revision suffix, a label value (63 at most).
// A name outside those bounds would be stored and then never produce a pod.
func TestNamesThatCouldNeverRunAreRefused(t *testing.T) {
	spec := map[string]any{"image": "registry.example.com/team/pytorch:2.4"}
	longest := "n" + strings.Repeat("x-", (trainenvv1.MaxNameLength-2)/2) + "z"
	if len(longest) != trainenvv1.MaxNameLength {
		t.Fatalf("test name is %d characters, want %d", len(longest), trainenvv1.MaxNameLength)
	}
	g := NewWithT(t)
	g.Expect(create(object(longest, spec))).To(Succeed(), "the longest name that runs is accepted")

	cases := []struct {
		name, message string
	}{
		{strings.Repeat("a", trainenvv1.MaxNameLength+1), "metadata.name must be at most 52 characters"},
		{strings.Repeat("a", 63), "metadata.name must be at most 52 characters"},
		{strings.Repeat("a", 253), "metadata.name must be at most 52 characters"},
		{"team.alice", "metadata.name must be a DNS label"},
	}
	for _, tc := range cases {
		t.Run(fmt.Sprintf("%d characters", len(tc.name)), func(t *testing.T) {
			g := NewWithT(t)
			err := create(object(tc.name, spec))
			g.Expect(err).To(HaveOccurred())
			g.Expect(err.Error()).To(ContainSubstring(tc.message))
		})
	}
}

// TestWorkspaceGrowsOnly: a PersistentVolumeClaim cannot shrink, so an edit that shrinks
// the workspace is refused at apply instead of failing later on the claim.
func TestWorkspaceGrowsOnly(t *testing.T) {
	g := NewWithT(t)
	ctx := context.Background()
	u := object("grows-only", map[string]any{
		"image":     "registry.example.com/team/pytorch:2.4",
		"workspace": map[string]any{"size": "10Gi"},
	})
	g.Expect(create(u)).To(Succeed())
	for _, smaller := range []string{"9Gi", "10G", "1"} {
		g.Expect(unstructured.SetNestedField(u.Object, smaller, "spec", "workspace", "size")).To(Succeed())
		err := k8s.Update(ctx, u)
		g.Expect(err).To(HaveOccurred(), smaller)
		g.Expect(err.Error()).To(ContainSubstring("workspace.size can only grow"))
		g.Expect(k8s.Get(ctx, client.ObjectKeyFromObject(u), u)).To(Succeed())
	}
	for _, same := range []string{"10240Mi", "10Gi", "11Gi"} {
		g.Expect(unstructured.SetNestedField(u.Object, same, "spec", "workspace", "size")).To(Succeed())
		g.Expect(k8s.Update(ctx, u)).To(Succeed(), same)
		g.Expect(k8s.Get(ctx, client.ObjectKeyFromObject(u), u)).To(Succeed())
	}
}

// TestSharedMemoryWithinTheMemoryLimit: /dev/shm counts against the memory limit; shmSize up
// to the limit is accepted, above it refused, and without a memory limit anything goes.
func TestSharedMemoryWithinTheMemoryLimit(t *testing.T) {
	image := "registry.example.com/team/pytorch:2.4"
	accepted := []map[string]any{
		{"image": image, "shmSize": "8Gi", "resources": map[string]any{"memory": "8Gi"}},
		{"image": image, "shmSize": "2Gi", "resources": map[string]any{"memory": "64Gi"}},
		{"image": image, "shmSize": "64Gi"},
		{"image": image, "resources": map[string]any{"memory": "1Gi"}},
	}
	for i, spec := range accepted {
		NewWithT(t).Expect(create(object(fmt.Sprintf("shm-ok-%d", i), spec))).To(Succeed(), "%v", spec)
	}
	err := create(object("shm-over", map[string]any{"image": image, "shmSize": "8193Mi", "resources": map[string]any{"memory": "8Gi"}}))
	NewWithT(t).Expect(err).To(MatchError(ContainSubstring("shmSize must not exceed resources.memory")))
}
