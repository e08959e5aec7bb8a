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
		"gpu with minor-version compatibility": environment(func(te *trainenvv1.TrainingEnvironment) {
			te.Spec.CUDA = &trainenvv1.CUDASpec{MinorVersionCompatibility: true}
		}),
	}
	for name, te := range shapes {
		t.Run(name, func(t *testing.T) {
			tmpl := workload.StatefulSet(te, workload.Inputs{PinnedImage: pinned, ToolsImage: tools, CUDARequirements: []string{"cuda>=12.4"}}).Spec.Template
			if te.Spec.GPU != nil {
				// Every container is checked, the preflight included.
				NewWithT(t).Expect(tmpl.Spec.InitContainers).To(ContainElement(HaveField("Name", workload.PreflightContainerName)))
			}
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

// A GPU environment checks its GPUs first: the preflight runs after the tools are copied,
// in the user's pinned image, with the main container's GPUs and the requirement the pod
// was placed by.
func TestGPUPodRunsPreflight(t *testing.T) {
	g := NewWithT(t)
	te := environment(func(te *trainenvv1.TrainingEnvironment) {
		te.Spec.CUDA = &trainenvv1.CUDASpec{MinorVersionCompatibility: true}
	})
	in := workload.Inputs{PinnedImage: pinned, ToolsImage: tools, CUDARequirements: []string{
		"cuda>=12.4 cuda>=12.0,cuda<13.0,driver>=525.60.13 brand=tesla,driver>=470,driver<471", "driver>=535",
	}}
	pod := workload.StatefulSet(te, in).Spec.Template.Spec
	g.Expect(pod.InitContainers).To(HaveLen(2))
	g.Expect(pod.InitContainers[0].Name).To(Equal(workload.ToolsInitContainerName))
	pf := pod.InitContainers[1]
	main := pod.Containers[0]
	g.Expect(pf.Name).To(Equal(workload.PreflightContainerName))
	g.Expect(pf.Image).To(Equal(pinned))
	g.Expect(pf.Command).To(Equal([]string{workload.PreflightPath}))
	g.Expect(pf.Args).To(Equal([]string{
		"--gpus=2",
		"--require=cuda>=12.4 cuda>=12.0,cuda<13.0,driver>=525.60.13 brand=tesla,driver>=470,driver<471",
		"--require=driver>=535",
	}))
	g.Expect(pf.Resources).To(Equal(main.Resources), "the same GPUs as the main container, handed on to it")
	g.Expect(pf.Env).To(Equal(main.Env))
	g.Expect(pf.Env).To(ContainElement(corev1.EnvVar{Name: "NVIDIA_DISABLE_REQUIRE", Value: "true"}))
	g.Expect(pf.SecurityContext).To(Equal(main.SecurityContext))
	g.Expect(pf.VolumeMounts).To(Equal([]corev1.VolumeMount{{Name: workload.ToolsVolume, MountPath: workload.ToolsMountPath, ReadOnly: true}}))
	g.Expect(pf.TerminationMessagePolicy).To(Equal(corev1.TerminationMessageFallbackToLogsOnError))

	plain := workload.StatefulSet(environment(), workload.Inputs{PinnedImage: pinned, ToolsImage: tools}).Spec.Template.Spec
	g.Expect(plain.InitContainers[1].Args).To(Equal([]string{"--gpus=2"}), "no requirement: the image declares none")
	g.Expect(plain.InitContainers[1].Env).To(BeEmpty())
}

// A CPU environment with Jupyter or SSH has the tools in its pod, so the preflight runs
// there too: no GPU to check (--gpus=0), the image's torch imported; and no GPU toleration.
func TestCPUPodWithAccessRunsPreflight(t *testing.T) {
	g := NewWithT(t)
	te := environment(withJupyterAndSSH, func(te *trainenvv1.TrainingEnvironment) { te.Spec.GPU = nil })
	pod := workload.StatefulSet(te, workload.Inputs{PinnedImage: pinned, ToolsImage: tools}).Spec.Template.Spec
	g.Expect(pod.InitContainers).To(HaveLen(2))
	g.Expect(pod.InitContainers[0].Name).To(Equal(workload.ToolsInitContainerName))
	pf := pod.InitContainers[1]
	g.Expect(pf.Name).To(Equal(workload.PreflightContainerName))
	g.Expect(pf.Image).To(Equal(pinned))
	g.Expect(pf.Args).To(Equal([]string{"--gpus=0"}))
	g.Expect(pf.Resources).To(Equal(pod.Containers[0].Resources))
	g.Expect(pod.Tolerations).To(BeEmpty())
}
