package compat_test

import (
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"

	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	"k8s.io/component-helpers/scheduling/corev1/nodeaffinity"

	trainenvv1 "github.com/trainenv/trainenv/api/v1alpha1"
	"github.com/trainenv/trainenv/internal/compat"
	"github.com/trainenv/trainenv/internal/cuda"
	"github.com/trainenv/trainenv/internal/gpufacts"
	"github.com/trainenv/trainenv/internal/testutil/gen"
)

// gpuNodeLabels labels a node as the agent does (agent=true) or as GPU Feature Discovery
// does (current or deprecated names).
func gpuNodeLabels(scheme, driver, cudaVersion, compute, brand string) map[string]string {
	facts := []gen.NodeModifier{gen.WithGPUProduct("NVIDIA-A100-SXM4-80GB"), gen.WithDriver(driver), gen.WithCUDA(cudaVersion), gen.WithCompute(compute)}
	switch scheme {
	case "agent":
		facts = append(facts, gen.WithBrand(brand), gen.LabelledByAgent())
	case "gfd-deprecated":
		facts = append(facts, gen.LabelledByDeprecatedGFD())
	}
	return gen.Node("", facts...).Labels
}

func labelledNode(name string, labels map[string]string) corev1.Node {
	n := gen.Node(name, gen.WithNodeLabels(labels))
	n.Status.Allocatable = corev1.ResourceList{gen.GPUResource: resource.MustParse("8")}
	return *n
}

func requirements(t testing.TB, values ...string) cuda.Requirements {
	rs, err := cuda.FromValues(values, "the image's NVIDIA_REQUIRE_CUDA")
	if err != nil {
		t.Fatal(err)
	}
	return rs
}

var gpu1 = &trainenvv1.GPUSpec{Count: 1, ResourceName: "nvidia.com/gpu"}

func TestCheckCUDARequirement(t *testing.T) {
	pools := []corev1.Node{
		labelledNode("h100", gpuNodeLabels("agent", "580.65.06", "13.0", "9.0", "nvidia")),
		labelledNode("a100-1", gpuNodeLabels("gfd", "535.183.01", "12.2", "8.0", "")),
		labelledNode("a100-2", gpuNodeLabels("gfd", "535.183.01", "12.2", "8.0", "")),
		labelledNode("t4", gpuNodeLabels("gfd-deprecated", "470.239.06", "11.4", "7.5", "")),
	}
	cases := []struct {
		name   string
		req    []string
		fit    []string
		reason string
	}{
		{"cuda 12.2 image", []string{"cuda>=12.2"}, []string{"a100-1", "a100-2", "h100"}, trainenvv1.ReasonCompatible},
		{"cuda 12.8 image", []string{"cuda>=12.8"}, []string{"h100"}, trainenvv1.ReasonCompatible},
		{"cuda 11.0 image", []string{"cuda>=11.0"}, []string{"a100-1", "a100-2", "h100", "t4"}, trainenvv1.ReasonCompatible},
		{"cuda 13.1 image", []string{"cuda>=13.1"}, nil, trainenvv1.ReasonNoCompatibleNode},
		{"ANDed variables", []string{"cuda>=12.0", "arch>=9.0"}, []string{"h100"}, trainenvv1.ReasonCompatible},
		{"brand needs the agent's label", []string{"brand=nvidia,driver>=580"}, []string{"h100"}, trainenvv1.ReasonCompatible},
		{"no requirement", nil, []string{"a100-1", "a100-2", "h100", "t4"}, trainenvv1.ReasonCompatible},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			g := NewWithT(t)
			r := compat.Check(gpu1, requirements(t, tc.req...), pools)
			g.Expect(r.Reason).To(Equal(tc.reason), r.Message)
			g.Expect(r.Nodes).To(ConsistOf(tc.fit))
		})
	}
}

func TestUnhealthyNodesAreNotCompatible(t *testing.T) {
	g := NewWithT(t)
	sick := labelledNode("sick", gpuNodeLabels("agent", "550.54.15", "12.4", "8.0", "tesla"))
	sick.Labels[gpufacts.LabelHealthy] = "false"
	well := labelledNode("well", gpuNodeLabels("agent", "550.54.15", "12.4", "8.0", "tesla"))
	r := compat.Check(gpu1, requirements(t, "cuda>=12.0"), []corev1.Node{sick, well})
	g.Expect(r.Nodes).To(Equal([]string{"well"}))
	r = compat.Check(gpu1, requirements(t, "cuda>=12.0"), []corev1.Node{sick})
	g.Expect(r.Reason).To(Equal(trainenvv1.ReasonNoCompatibleNode))
	g.Expect(r.Message).To(ContainSubstring("unhealthy GPU"))
	terms, err := compat.Affinity(requirements(t, "cuda>=12.0"), nil)
	g.Expect(err).NotTo(HaveOccurred())
	selector, err := nodeaffinity.NewNodeSelector(&corev1.NodeSelector{NodeSelectorTerms: terms})
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(selector.Match(&sick)).To(BeFalse())
	g.Expect(selector.Match(&well)).To(BeTrue())
}

func TestNoCompatibleNodeMessageNamesRequirementAndCluster(t *testing.T) {
	g := NewWithT(t)
	nodes := []corev1.Node{
		labelledNode("a", gpuNodeLabels("gfd", "535.183.01", "12.2", "8.0", "")),
		labelledNode("b", gpuNodeLabels("gfd", "535.183.01", "12.2", "8.0", "")),
		labelledNode("c", gpuNodeLabels("agent", "470.239.06", "11.4", "7.5", "tesla")),
		labelledNode("bare", map[string]string{}),
	}
	r := compat.Check(gpu1, requirements(t, "cuda>=12.8"), nodes)
	g.Expect(r.OK).To(BeFalse())
	g.Expect(r.Reason).To(Equal(trainenvv1.ReasonNoCompatibleNode))
	g.Expect(r.Message).To(Equal(`the image needs "cuda>=12.8" (from the image's NVIDIA_REQUIRE_CUDA); the cluster has ` +
		`1 node with driver 470.239.06 (CUDA 11.4) and 2 nodes with driver 535.183.01 (CUDA 12.2) and ` +
		`1 node with no GPU driver facts (no GPU Feature Discovery or trainenv agent labels). ` +
		`Use an image built for an older CUDA, or ask the platform team for a newer driver`))
}

// The rendered affinity, run through the scheduler's own node-affinity matcher, admits
// exactly the nodes the verdict calls compatible: random requirements over random nodes in
// all three labelling schemes.
func TestAffinityAdmitsExactlyTheCompatibleNodes(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	drivers := []string{"450.80.02", "470.82.01", "470.239.06", "525.60.13", "535.104.05", "550.54.15", "570.26.0", "580.65.06"}
	cudas := []string{"11.0", "11.4", "12.0", "12.2", "12.4", "12.8", "13.0"}
	archs := []string{"7.0", "7.5", "8.0", "8.6", "9.0", "10.0"}
	brands := []string{"tesla", "geforce", "nvidia", "quadro"}
	schemesNames := []string{"agent", "gfd", "gfd-deprecated"}
	pick := func(xs []string) string { return xs[rng.IntN(len(xs))] }
	ops := []string{"=", "!=", "<", "<=", ">", ">="}

	var nodes []corev1.Node
	for i := range 60 {
		nodes = append(nodes, labelledNode(fmt.Sprintf("n%d", i),
			gpuNodeLabels(pick(schemesNames), pick(drivers), pick(cudas), pick(archs), pick(brands))))
	}
	constraint := func() string {
		switch rng.IntN(4) {
		case 0:
			return "cuda" + pick(ops) + pick(cudas)
		case 1:
			d := pick(drivers)
			if rng.IntN(2) == 0 {
				d = strings.Split(d, ".")[0]
			}
			return "driver" + pick(ops) + d
		case 2:
			return "arch" + pick(ops) + pick(archs)
		default:
			b := pick(brands)
			return "brand" + []string{"=", "!="}[rng.IntN(2)] + strings.ToUpper(b[:1]) + b[1:]
		}
	}
	checked, admitted := 0, 0
	for range 300 {
		var alts []string
		for range 1 + rng.IntN(3) {
			var cs []string
			for range 1 + rng.IntN(2) {
				cs = append(cs, constraint())
			}
			alts = append(alts, strings.Join(cs, ","))
		}
		rs := requirements(t, strings.Join(alts, " "))
		terms, err := compat.Affinity(rs, nil)
		if err != nil {
			continue // a requirement no labels can express: nothing is admitted, and Check says so
		}
		selector, err := nodeaffinity.NewNodeSelector(&corev1.NodeSelector{NodeSelectorTerms: terms})
		if err != nil {
			t.Fatalf("%s: invalid node selector: %v", rs, err)
		}
		verdict := map[string]bool{}
		for _, n := range compat.Check(gpu1, rs, nodes).Nodes {
			verdict[n] = true
		}
		checked++
		admitted += len(verdict)
		for i := range nodes {
			if got := selector.Match(&nodes[i]); got != verdict[nodes[i].Name] {
				t.Fatalf("requirement %s on node %v: affinity admits=%v, verdict compatible=%v", rs, nodes[i].Labels, got, verdict[nodes[i].Name])
			}
		}
	}
	// The random cases must exercise both answers, or the test proves nothing.
	if checked < 250 || admitted == 0 || admitted == checked*len(nodes) {
		t.Fatalf("weak sample: %d requirements checked, %d node admissions", checked, admitted)
	}
	t.Logf("%d requirements × %d nodes, %d admitted", checked, len(nodes), admitted)
}

func TestAffinityRestrictsProducts(t *testing.T) {
	g := NewWithT(t)
	healthy := corev1.NodeSelectorRequirement{Key: gpufacts.LabelHealthy, Operator: corev1.NodeSelectorOpNotIn, Values: []string{"false"}}
	terms, err := compat.Affinity(cuda.Requirements{}, []string{"Tesla-T4"})
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(terms).To(Equal([]corev1.NodeSelectorTerm{{MatchExpressions: []corev1.NodeSelectorRequirement{
		{Key: gpufacts.LabelProduct, Operator: corev1.NodeSelectorOpIn, Values: []string{"Tesla-T4"}}, healthy}}}))
	terms, err = compat.Affinity(cuda.Requirements{}, nil)
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(terms).To(Equal([]corev1.NodeSelectorTerm{{MatchExpressions: []corev1.NodeSelectorRequirement{healthy}}}),
		"a node whose agent reports an unhealthy GPU is never chosen")

	terms, err = compat.Affinity(requirements(t, "cuda>=12.4"), []string{"Tesla-T4"})
	g.Expect(err).NotTo(HaveOccurred())
	for _, term := range terms {
		g.Expect(term.MatchExpressions).To(ContainElement(HaveField("Key", gpufacts.LabelProduct)))
	}
}

// The requirement nvidia/cuda:12.4.1 images declare (and the local cluster's sample image
// carries) must fit in node affinity.
func TestRealCUDAImageRequirementFitsAffinity(t *testing.T) {
	g := NewWithT(t)
	var alts []string
	for _, driver := range []int{470, 525, 535} {
		for _, brand := range []string{"unknown", "grid", "tesla", "nvidia", "quadro", "quadrortx", "nvidiartx", "vapps", "vpc", "vcs", "vws", "cloudgaming", "geforce", "geforcertx", "titan", "titanrtx"} {
			alts = append(alts, fmt.Sprintf("brand=%s,driver>=%d,driver<%d", brand, driver, driver+1))
		}
	}
	rs := requirements(t, "cuda>=12.4 "+strings.Join(alts, " "))
	terms, err := compat.Affinity(rs, nil)
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(len(terms)).To(BeNumerically("<=", 64))
	t.Logf("%d alternatives → %d node selector terms", len(rs.All[0]), len(terms))
}

func TestLongRequirementsAreSummarised(t *testing.T) {
	g := NewWithT(t)
	rs := requirements(t, "cuda>=12.8 brand=tesla,driver>=470,driver<471 brand=tesla,driver>=525,driver<526 brand=tesla,driver>=535,driver<536")
	r := compat.Check(gpu1, rs, []corev1.Node{labelledNode("a", gpuNodeLabels("gfd", "535.183.01", "12.2", "8.0", ""))})
	g.Expect(r.Message).To(HavePrefix(`the image needs "cuda>=12.8" (or one of 3 other driver/brand alternatives)`))
}
