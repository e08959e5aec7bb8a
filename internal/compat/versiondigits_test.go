package compat_test

import (
	"slices"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/component-helpers/scheduling/corev1/nodeaffinity"

	"github.com/trainenv/trainenv/internal/compat"
	"github.com/trainenv/trainenv/internal/gpufacts"
)

// Versions with more digits than the agent's integer labels give a component (CUDA minor
// 100: 12*1000+100*10 is 13.0's 13000; driver minor or revision 1000), more components
// than the labels hold (470.57.02.1), and components that compare as numbers, not text
// (12.10 after 12.9, 470.256.02 after 470.57.02). For every requirement and every node in
// every labelling scheme, the verdict and the scheduler's reading of the rendered affinity
// must both be the expected nodes. The nodes sit on the integers that a plain weighted sum
// of the requirement's components would give (13.0, 471.0.0, 470.58.0).
func TestManyDigitVersionsAgree(t *testing.T) {
	pool := []struct{ name, driver, cuda string }{
		{"d470.57", "470.57.02", "11.4"},
		{"d470.58", "470.58.00", "11.4"},
		{"d470.256", "470.256.02", "11.4"},
		{"d471", "471.00.00", "11.4"},
		{"c12.1", "530.30.02", "12.1"},
		{"c12.9", "575.51.03", "12.9"},
		{"c12.10", "578.10.01", "12.10"},
		{"c13.0", "580.65.06", "13.0"},
	}
	cuda11 := "d470.57 d470.58 d470.256 d471 "
	all := cuda11 + "c12.1 c12.9 c12.10 c13.0"
	cases := []struct{ req, fit string }{
		{"cuda>=12.10", "c12.10 c13.0"},
		{"cuda>12.9", "c12.10 c13.0"},
		{"cuda<12.10", cuda11 + "c12.1 c12.9"},
		{"cuda=12.1", "c12.1"},
		{"cuda=12.10", "c12.10"},
		{"cuda>12.1,cuda<=12.9", "c12.9"},
		{"cuda>12.100", "c13.0"},
		{"cuda>=12.100", "c13.0"},
		{"cuda<12.100", cuda11 + "c12.1 c12.9 c12.10"},
		{"cuda<=12.100", cuda11 + "c12.1 c12.9 c12.10"},
		{"cuda=12.100", ""},
		{"cuda!=12.100", all},
		{"cuda<13.100", all},
		{"cuda>12.9.5", "c12.10 c13.0"},
		{"cuda<=12.9.5", cuda11 + "c12.1 c12.9"},
		{"cuda!=12.9.5", all},
		{"driver>=470.256.02", "d470.256 d471 c12.1 c12.9 c12.10 c13.0"},
		{"driver>470.57.02,driver<471", "d470.58 d470.256"},
		{"driver<470.256", "d470.57 d470.58"},
		{"driver=470.256.2", "d470.256"},
		{"driver>470.1000", "d471 c12.1 c12.9 c12.10 c13.0"},
		{"driver<=470.1000", "d470.57 d470.58 d470.256"},
		{"driver=470.1000", ""},
		{"driver!=470.1000", all},
		{"driver>=470.57.1000", "d470.58 d470.256 d471 c12.1 c12.9 c12.10 c13.0"},
		{"driver<470.57.1000", "d470.57"},
		{"driver>470.57.02.1", "d470.58 d470.256 d471 c12.1 c12.9 c12.10 c13.0"},
		{"driver<=470.57.02.1", "d470.57"},
		{"driver=470.57.02.0", "d470.57"},
		{"driver=470.57.02.1", ""},
	}
	schemes := []string{"agent", "gfd", "gfd-deprecated"}
	var nodes []corev1.Node
	for _, g := range pool {
		for _, scheme := range schemes {
			labels := gpuNodeLabels(scheme, g.driver, g.cuda, "8.0", "tesla")
			if scheme == "agent" && g.cuda == "12.10" {
				labels[gpufacts.LabelCUDAInt] = "12100" // cudaDriverGetVersion's encoding
			}
			nodes = append(nodes, labelledNode(g.name+"/"+scheme, labels))
		}
	}
	for _, tc := range cases {
		t.Run(tc.req, func(t *testing.T) {
			rs := requirements(t, tc.req)
			var want []string
			for _, name := range strings.Fields(tc.fit) {
				for _, scheme := range schemes {
					want = append(want, name+"/"+scheme)
				}
			}
			verdict := compat.Check(gpu1, rs, nodes).Nodes
			slices.Sort(verdict)
			slices.Sort(want)
			if !slices.Equal(verdict, want) {
				t.Errorf("verdict fits %v, want %v", verdict, want)
			}
			terms, err := compat.Affinity(rs, nil)
			if err != nil {
				// No labels can say it (cuda=12.100 in GFD's labels is a minor of 100, but
				// driver=470.57.02.1 fits no scheme): the reconciler reports
				// InvalidCUDARequirement, right only when no node could satisfy it.
				if len(want) > 0 {
					t.Fatalf("affinity: %v", err)
				}
				return
			}
			selector, err := nodeaffinity.NewNodeSelector(&corev1.NodeSelector{NodeSelectorTerms: terms})
			if err != nil {
				t.Fatalf("invalid node selector: %v", err)
			}
			var admitted []string
			for i := range nodes {
				if selector.Match(&nodes[i]) {
					admitted = append(admitted, nodes[i].Name)
				}
			}
			slices.Sort(admitted)
			if !slices.Equal(admitted, want) {
				t.Errorf("affinity admits %v, want %v", admitted, want)
			}
		})
	}
}
