package compat_test

import (
	"testing"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/component-helpers/scheduling/corev1/nodeaffinity"

	"github.com/trainenv/trainenv/internal/compat"
	"github.com/trainenv/trainenv/internal/cuda"
	"github.com/trainenv/trainenv/internal/gpufacts"
)

// FuzzNodeLabels: node labels are written by agents, GPU Feature Discovery or people, so
// any valid label value may appear in any fact label. Whatever they hold, reading them
// must not panic, and the verdict must agree with the node affinity the scheduler
// evaluates: a node is compatible exactly when the rendered affinity admits it.
func FuzzNodeLabels(f *testing.F) {
	f.Add("cuda>=12.4", "12040", "550054015", "80", "tesla", "12", "4", "550", "54", "15", "8", "0")
	f.Add("driver>=535,driver<536 brand=tesla", "", "535104005", "", "Tesla", "", "", "535", "104", "05", "", "")
	f.Add("arch>=8.0,arch<10.0", "99999999999999999999", "-1", "0080", "", "012", "+4", "", "", "", "9", "0")
	f.Add("cuda>=11.4", "18446744073709551615", "9223372036854775807", "9223372036854775808", "x", "1", "a", "b", "c", "d", "e", "f")
	// A component too large for its weight in the agent's integer (12.100 is not 13000) or
	// beyond the integer's last unit (470.57.02.1 is not 470057002).
	f.Add("cuda>12.100", "13000", "", "", "", "", "", "", "", "", "", "")
	f.Add("driver>470.1000", "", "471000000", "", "", "", "", "", "", "", "", "")
	f.Add("driver=470.57.02.1", "", "", "", "", "", "", "470", "57", "02", "", "")
	f.Fuzz(func(t *testing.T, requirement, cudaInt, driverInt, computeInt, brand, cudaMajor, cudaMinor, driverMajor, driverMinor, driverRev, computeMajor, computeMinor string) {
		rs, err := cuda.FromValues([]string{requirement}, "fuzz")
		if err != nil {
			return
		}
		labels := map[string]string{}
		for key, value := range map[string]string{
			gpufacts.LabelCUDAInt: cudaInt, gpufacts.LabelDriverInt: driverInt, gpufacts.LabelComputeInt: computeInt,
			gpufacts.LabelBrand: brand, gpufacts.LabelCUDAMajor: cudaMajor, gpufacts.LabelCUDAMinor: cudaMinor,
			gpufacts.LabelDriverMajor: driverMajor, gpufacts.LabelDriverMinor: driverMinor, gpufacts.LabelDriverRevision: driverRev,
			gpufacts.LabelComputeMajor: computeMajor, gpufacts.LabelComputeMinor: computeMinor,
		} {
			if value == "" {
				continue
			}
			if len(validation.IsValidLabelValue(value)) > 0 {
				return // the API server would refuse the node
			}
			labels[key] = value
		}
		node := labelledNode("fuzzed", labels)
		verdict := len(compat.Check(gpu1, rs, []corev1.Node{node}).Nodes) == 1
		terms, err := compat.Affinity(rs, nil)
		if err != nil {
			// A requirement no node labels can express (brand=! is not a label value): the
			// reconciler reports InvalidCUDARequirement and creates nothing, whatever Check said.
			return
		}
		selector, err := nodeaffinity.NewNodeSelector(&corev1.NodeSelector{NodeSelectorTerms: terms})
		if err != nil {
			t.Fatalf("%s: invalid node selector: %v", rs, err)
		}
		if admitted := selector.Match(&node); admitted != verdict {
			t.Fatalf("requirement %s on labels %v: affinity admits=%v, verdict compatible=%v", rs, labels, admitted, verdict)
		}
	})
}
