package controller_test

import (
	"testing"

	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/component-helpers/scheduling/corev1/nodeaffinity"

	trainenvv1 "github.com/trainenv/trainenv/api/v1alpha1"
	"github.com/trainenv/trainenv/internal/gpufacts"
	"github.com/trainenv/trainenv/internal/testutil/gen"
	"github.com/trainenv/trainenv/internal/testutil/registrytest"
)

// An image built for CUDA 12.8 on a cluster whose driver supports 12.2: no workload, a
// condition that says why; the node's driver is upgraded (relabelled): the environment is
// scheduled only there.
func TestCUDARequirementGatesAndPlacesTheWorkload(t *testing.T) {
	g := NewWithT(t)
	f := newFixture(t)
	reg := registrytest.New(t)
	reg.Push("team/pytorch", "cu128", registrytest.Image(t, "CUDA_VERSION=12.8.0", "NVIDIA_REQUIRE_CUDA=cuda>=12.8 brand=tesla,driver>=535,driver<536"))
	old := f.gpuNode("cuda-a100", gen.WithDriver("535.104.05"), gen.WithCUDA("12.2"))
	t4 := f.gpuNode("cuda-t4", gen.WithGPUProduct("Tesla-T4"), gen.WithGPUs(4), gen.WithDriver("470.239.06"), gen.WithCUDA("11.4"))

	te := f.create("cu128", reg.Host+"/team/pytorch:cu128")
	_, err, te := f.reconcile(te)
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(te.Status.Image.CUDARequirements).To(Equal([]string{"cuda>=12.8 brand=tesla,driver>=535,driver<536"}))
	g.Expect(te).To(haveCondition(trainenvv1.ConditionCompatible, metav1.ConditionFalse, trainenvv1.ReasonNoCompatibleNode))
	msg := condition(te, trainenvv1.ConditionCompatible).Message
	g.Expect(msg).To(ContainSubstring(`"cuda>=12.8 brand=tesla,driver>=535,driver<536"`))
	g.Expect(msg).To(ContainSubstring("driver 535.104.05 (CUDA 12.2)"))
	g.Expect(msg).To(ContainSubstring("driver 470.239.06 (CUDA 11.4)"))
	g.Expect(te.Status.Phase).To(Equal(trainenvv1.PhaseFailed))
	_, err = f.statefulSet(te)
	g.Expect(apierrors.IsNotFound(err)).To(BeTrue(), "no pod while nothing can fit")

	// The platform team upgrades the A100 node's driver; GFD relabels it.
	old.Labels[gpufacts.LabelDriverMajor], old.Labels[gpufacts.LabelDriverMinor], old.Labels[gpufacts.LabelDriverRevision] = "570", "86", "10"
	old.Labels[gpufacts.LabelCUDAMajor], old.Labels[gpufacts.LabelCUDAMinor] = "12", "8"
	g.Expect(k8s.Update(f.ctx, old)).To(Succeed())
	_, err, te = f.reconcile(te)
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(te).To(haveCondition(trainenvv1.ConditionCompatible, metav1.ConditionTrue, trainenvv1.ReasonCompatible))
	g.Expect(condition(te, trainenvv1.ConditionCompatible).Message).To(HavePrefix("1 node(s) satisfy"))

	sts, err := f.statefulSet(te)
	g.Expect(err).NotTo(HaveOccurred())
	selector, err := nodeaffinity.NewNodeSelector(sts.Spec.Template.Spec.Affinity.NodeAffinity.RequiredDuringSchedulingIgnoredDuringExecution)
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(selector.Match(f.node(old.Name))).To(BeTrue(), "the upgraded node is admitted")
	g.Expect(selector.Match(f.node(t4.Name))).To(BeFalse(), "the CUDA 11.4 node is not")
}

// An explicit spec.cuda.require replaces what the image declares.
func TestSpecCUDARequireOverridesImage(t *testing.T) {
	g := NewWithT(t)
	f := newFixture(t)
	reg := registrytest.New(t)
	reg.Push("team/pytorch", "cu128", registrytest.Image(t, "NVIDIA_REQUIRE_CUDA=cuda>=12.8"))
	f.gpuNode("override-a100", gen.WithDriver("535.104.05"), gen.WithCUDA("12.2"))
	te := f.create("override", reg.Host+"/team/pytorch:cu128", func(te *trainenvv1.TrainingEnvironment) {
		te.Spec.CUDA = &trainenvv1.CUDASpec{Require: "cuda>=12.0"}
	})
	_, err, te := f.reconcile(te)
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(te).To(haveCondition(trainenvv1.ConditionCompatible, metav1.ConditionTrue, trainenvv1.ReasonCompatible))

	te.Spec.CUDA.Require = "cuda>=12.0,arch>=x"
	g.Expect(k8s.Update(f.ctx, te)).To(Succeed())
	_, err, te = f.reconcile(te)
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(te).To(haveCondition(trainenvv1.ConditionCompatible, metav1.ConditionFalse, trainenvv1.ReasonInvalidCUDARequirement))
}

func (f *fixture) node(name string) *corev1.Node {
	f.t.Helper()
	n := &corev1.Node{}
	if err := k8s.Get(f.ctx, clientKey(name), n); err != nil {
		f.t.Fatal(err)
	}
	return n
}

// Opting into CUDA minor-version compatibility admits a 12.2 driver for a 12.4 image, says
// so in the condition, and tells the runtime not to refuse the container.
func TestMinorVersionCompatibilityOptIn(t *testing.T) {
	g := NewWithT(t)
	f := newFixture(t)
	reg := registrytest.New(t)
	reg.Push("team/pytorch", "cu124", registrytest.Image(t, "NVIDIA_REQUIRE_CUDA=cuda>=12.4"))
	f.gpuNode("minor-a100", gen.WithDriver("535.104.05"), gen.WithCUDA("12.2"))
	te := f.create("minor", reg.Host+"/team/pytorch:cu124")
	_, err, te := f.reconcile(te)
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(te).To(haveCondition(trainenvv1.ConditionCompatible, metav1.ConditionFalse, trainenvv1.ReasonNoCompatibleNode))

	te.Spec.CUDA = &trainenvv1.CUDASpec{MinorVersionCompatibility: true}
	g.Expect(k8s.Update(f.ctx, te)).To(Succeed())
	_, err, te = f.reconcile(te)
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(te).To(haveCondition(trainenvv1.ConditionCompatible, metav1.ConditionTrue, trainenvv1.ReasonCompatible))
	g.Expect(condition(te, trainenvv1.ConditionCompatible).Message).To(ContainSubstring("relaxed by CUDA minor-version compatibility"))
	sts, err := f.statefulSet(te)
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(sts.Spec.Template.Spec.Containers[0].Env).To(ContainElement(corev1.EnvVar{Name: "NVIDIA_DISABLE_REQUIRE", Value: "true"}))
}

// An image whose PyTorch has no kernels for Blackwell (TORCH_CUDA_ARCH_LIST up to 9.0) is
// placed only on nodes of a compute capability it has kernels for, and its preflight checks
// that again on the node.
func TestTorchArchListPlacesTheWorkload(t *testing.T) {
	g := NewWithT(t)
	f := newFixture(t)
	reg := registrytest.New(t)
	reg.Push("team/pytorch", "arch", registrytest.Image(t, "NVIDIA_REQUIRE_CUDA=cuda>=12.4", "TORCH_CUDA_ARCH_LIST=8.0 8.6 9.0"))
	for name, cc := range map[string][2]string{"arch-b200": {"10", "0"}, "arch-h100": {"9", "0"}} {
		n := f.gpuNode(name, gen.WithGPUProduct("NVIDIA-GPU"), gen.WithDriver("570.124.06"), gen.WithCUDA("12.8"))
		n.Labels[gpufacts.LabelComputeMajor], n.Labels[gpufacts.LabelComputeMinor] = cc[0], cc[1]
		g.Expect(k8s.Update(f.ctx, n)).To(Succeed())
	}
	te := f.create("arch", reg.Host+"/team/pytorch:arch")
	_, err, te := f.reconcile(te)
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(te.Status.Image.CUDARequirements).To(Equal([]string{"cuda>=12.4", "arch>=8.0,arch<10.0"}))
	g.Expect(te).To(haveCondition(trainenvv1.ConditionCompatible, metav1.ConditionTrue, trainenvv1.ReasonCompatible))
	g.Expect(condition(te, trainenvv1.ConditionCompatible).Message).To(HavePrefix("1 node(s) satisfy"))

	sts, err := f.statefulSet(te)
	g.Expect(err).NotTo(HaveOccurred())
	selector, err := nodeaffinity.NewNodeSelector(sts.Spec.Template.Spec.Affinity.NodeAffinity.RequiredDuringSchedulingIgnoredDuringExecution)
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(selector.Match(f.node("arch-h100"))).To(BeTrue())
	g.Expect(selector.Match(f.node("arch-b200"))).To(BeFalse(), "no kernels for compute capability 10.0")
	g.Expect(sts.Spec.Template.Spec.InitContainers[1].Args).To(ContainElement("--require=arch>=8.0,arch<10.0"))
}
