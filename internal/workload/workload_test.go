package workload_test

import (
	"testing"

	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/pod-security-admission/api"
	"k8s.io/pod-security-admission/policy"
	"k8s.io/utils/ptr"

	trainenvv1 "github.com/trainenv/trainenv/api/v1alpha1"
	"github.com/trainenv/trainenv/internal/workload"
)

const tools = "registry.example.com/trainenv/manager@sha256:fedcba9876543210fedcba9876543210fedcba9876543210fedcba9876543210"

const pinned = "registry.example.com/team/pytorch@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"

func environment(mutators ...func(*trainenvv1.TrainingEnvironment)) *trainenvv1.TrainingEnvironment {
	shm := resource.MustParse("8Gi")
	te := &trainenvv1.TrainingEnvironment{
		ObjectMeta: metav1.ObjectMeta{Name: "alice", Namespace: "ml"},
		Spec: trainenvv1.TrainingEnvironmentSpec{
			Image:    "registry.example.com/team/pytorch:2.4",
			Platform: "linux/amd64",
			ShmSize:  &shm,
			GPU:      &trainenvv1.GPUSpec{Count: 2, ResourceName: "nvidia.com/gpu"},
			Resources: &trainenvv1.ResourcesSpec{
				CPU: ptr.To(resource.MustParse("8")), Memory: ptr.To(resource.MustParse("64Gi")),
			},
			Workspace: &trainenvv1.WorkspaceSpec{Size: resource.MustParse("100Gi"), MountPath: "/workspace"},
		},
	}
	for _, m := range mutators {
		m(te)
	}
	return te
}

func TestStatefulSetRunsPinnedDigestWithGPUsShmAndWorkspace(t *testing.T) {
	g := NewWithT(t)
	sts := workload.StatefulSet(environment(), workload.Inputs{PinnedImage: pinned, ToolsImage: tools})

	g.Expect(*sts.Spec.Replicas).To(BeEquivalentTo(1))
	pod := sts.Spec.Template.Spec
	g.Expect(pod.Containers).To(HaveLen(1))
	c := pod.Containers[0]
	g.Expect(c.Image).To(Equal(pinned))
	g.Expect(c.Resources.Limits.Name("nvidia.com/gpu", resource.DecimalSI).Value()).To(BeEquivalentTo(2))
	g.Expect(c.Resources.Requests.Name("nvidia.com/gpu", resource.DecimalSI).Value()).To(BeEquivalentTo(2))
	g.Expect(c.Resources.Requests.Cpu().String()).To(Equal("8"))
	g.Expect(c.Resources.Limits.Memory().String()).To(Equal("64Gi"))
	g.Expect(c.VolumeMounts).To(ContainElements(
		corev1.VolumeMount{Name: "dshm", MountPath: "/dev/shm"},
		corev1.VolumeMount{Name: "workspace", MountPath: "/workspace"},
	))
	g.Expect(pod.Volumes).To(ContainElement(HaveField("EmptyDir", And(
		HaveField("Medium", corev1.StorageMediumMemory),
		HaveField("SizeLimit", HaveValue(Equal(resource.MustParse("8Gi"))))))))
	g.Expect(pod.Volumes).To(ContainElement(HaveField("PersistentVolumeClaim.ClaimName", "alice-workspace")))
	g.Expect(*pod.AutomountServiceAccountToken).To(BeFalse())
	g.Expect(pod.Tolerations).To(ContainElement(HaveField("Key", "nvidia.com/gpu")))
	g.Expect(pod.Affinity).To(BeNil())
	g.Expect(sts.Spec.Selector.MatchLabels).To(Equal(map[string]string{workload.LabelEnvironment: "alice"}))
	g.Expect(sts.Spec.Template.Labels).To(HaveKeyWithValue(workload.LabelEnvironment, "alice"))
}

func TestStatefulSetCarriesAffinity(t *testing.T) {
	g := NewWithT(t)
	terms := []corev1.NodeSelectorTerm{{MatchExpressions: []corev1.NodeSelectorRequirement{
		{Key: "trainenv.io/cuda.driver-supports", Operator: corev1.NodeSelectorOpGt, Values: []string{"12039"}},
	}}}
	sts := workload.StatefulSet(environment(), workload.Inputs{PinnedImage: pinned, Affinity: terms, ToolsImage: tools})
	g.Expect(sts.Spec.Template.Spec.Affinity.NodeAffinity.RequiredDuringSchedulingIgnoredDuringExecution.NodeSelectorTerms).To(Equal(terms))
}

func TestCPUOnlyEnvironmentRequestsNoGPU(t *testing.T) {
	g := NewWithT(t)
	sts := workload.StatefulSet(environment(func(te *trainenvv1.TrainingEnvironment) {
		te.Spec.GPU, te.Spec.Resources, te.Spec.Workspace = nil, nil, nil
	}), workload.Inputs{PinnedImage: pinned, ToolsImage: tools})
	c := sts.Spec.Template.Spec.Containers[0]
	g.Expect(c.Resources.Limits).To(BeNil())
	g.Expect(c.Resources.Requests).To(BeNil())
	g.Expect(sts.Spec.Template.Spec.Tolerations).To(BeEmpty())
	g.Expect(sts.Spec.Template.Spec.Volumes).To(HaveLen(1))
	g.Expect(sts.Spec.Template.Spec.InitContainers).To(BeEmpty(), "no GPUs, no Jupyter, no SSH: no trainenv tools in the pod")
	g.Expect(workload.WorkspaceClaim(environment(func(te *trainenvv1.TrainingEnvironment) { te.Spec.Workspace = nil }))).To(BeNil())
}

func TestSuspendScalesToZero(t *testing.T) {
	g := NewWithT(t)
	sts := workload.StatefulSet(environment(func(te *trainenvv1.TrainingEnvironment) { te.Spec.Suspend = true }), workload.Inputs{PinnedImage: pinned, ToolsImage: tools})
	g.Expect(*sts.Spec.Replicas).To(BeEquivalentTo(0))
}

// The rendered pod must pass the real Pod Security admission library at "restricted", the
// level trainenv promises, in every shape the spec can take.
func TestPodPassesPodSecurityRestricted(t *testing.T) {
	evaluator, err := policy.NewEvaluator(policy.DefaultChecks(), nil)
	if err != nil {
		t.Fatal(err)
	}
	shapes := map[string]*trainenvv1.TrainingEnvironment{
		"gpu with workspace": environment(),
		"cpu only":           environment(func(te *trainenvv1.TrainingEnvironment) { te.Spec.GPU, te.Spec.Workspace = nil, nil }),
		"with pull secrets": environment(func(te *trainenvv1.TrainingEnvironment) {
			te.Spec.ImagePullSecrets = []corev1.LocalObjectReference{{Name: "regcred"}}
		}),
		"jupyter and ssh":                   environment(withJupyterAndSSH),
		"jupyter and ssh without workspace": environment(withJupyterAndSSH, func(te *trainenvv1.TrainingEnvironment) { te.Spec.Workspace = nil }),
	}
	for name, te := range shapes {
		t.Run(name, func(t *testing.T) {
			tmpl := workload.StatefulSet(te, workload.Inputs{PinnedImage: pinned, ToolsImage: tools}).Spec.Template
			results := evaluator.EvaluatePod(api.LevelVersion{Level: api.LevelRestricted, Version: api.LatestVersion()}, &tmpl.ObjectMeta, &tmpl.Spec)
			for _, r := range results {
				if !r.Allowed {
					t.Errorf("restricted check failed: %s: %s", r.ForbiddenReason, r.ForbiddenDetail)
				}
			}
		})
	}
}

func TestWorkspaceClaim(t *testing.T) {
	g := NewWithT(t)
	te := environment(func(te *trainenvv1.TrainingEnvironment) { te.Spec.Workspace.StorageClassName = ptr.To("fast") })
	pvc := workload.WorkspaceClaim(te)
	g.Expect(pvc.Name).To(Equal("alice-workspace"))
	g.Expect(*pvc.Spec.StorageClassName).To(Equal("fast"))
	g.Expect(pvc.Spec.Resources.Requests[corev1.ResourceStorage]).To(Equal(resource.MustParse("100Gi")))
	g.Expect(workload.KeepWorkspace(te)).To(BeTrue(), "keepOnDelete defaults to keeping work")
	te.Spec.Workspace.KeepOnDelete = ptr.To(false)
	g.Expect(workload.KeepWorkspace(te)).To(BeFalse())
}

func TestSpecHashChangesWithSpec(t *testing.T) {
	g := NewWithT(t)
	a := workload.SpecHash(workload.StatefulSet(environment(), workload.Inputs{PinnedImage: pinned, ToolsImage: tools}).Spec)
	g.Expect(workload.SpecHash(workload.StatefulSet(environment(), workload.Inputs{PinnedImage: pinned, ToolsImage: tools}).Spec)).To(Equal(a))
	other := pinned[:len(pinned)-1] + "0"
	g.Expect(workload.SpecHash(workload.StatefulSet(environment(), workload.Inputs{PinnedImage: other, ToolsImage: tools}).Spec)).NotTo(Equal(a))
}
