package gen_test

import (
	"testing"

	. "github.com/onsi/gomega"

	"github.com/trainenv/trainenv/internal/gpufacts"
	"github.com/trainenv/trainenv/internal/testutil/gen"
)

// The three label schemes a node's GPU facts arrive in, as the readers in gpufacts expect.
func TestNodeLabelSchemes(t *testing.T) {
	facts := []gen.NodeModifier{gen.WithGPUProduct("NVIDIA-H100"), gen.WithDriver("535.104.05"), gen.WithCUDA("12.2"), gen.WithCompute("9.0")}
	cases := map[string]struct {
		scheme []gen.NodeModifier
		want   map[string]string
	}{
		"GPU Feature Discovery": {nil, map[string]string{
			gpufacts.LabelProduct:     "NVIDIA-H100",
			gpufacts.LabelDriverMajor: "535", gpufacts.LabelDriverMinor: "104", gpufacts.LabelDriverRevision: "05",
			gpufacts.LabelCUDAMajor: "12", gpufacts.LabelCUDAMinor: "2",
			gpufacts.LabelComputeMajor: "9", gpufacts.LabelComputeMinor: "0",
		}},
		"node agent": {[]gen.NodeModifier{gen.WithBrand("nvidia"), gen.LabelledByAgent()}, map[string]string{
			gpufacts.LabelProduct: "NVIDIA-H100", gpufacts.LabelBrand: "nvidia",
			gpufacts.LabelDriverInt: "535104005", gpufacts.LabelCUDAInt: "12020", gpufacts.LabelComputeInt: "90",
		}},
		"deprecated GPU Feature Discovery": {[]gen.NodeModifier{gen.LabelledByDeprecatedGFD()}, map[string]string{
			gpufacts.LabelProduct:               "NVIDIA-H100",
			gpufacts.LabelDeprecatedDriverMajor: "535", gpufacts.LabelDeprecatedDriverMinor: "104", gpufacts.LabelDeprecatedDriverRevision: "05",
			gpufacts.LabelDeprecatedCUDAMajor: "12", gpufacts.LabelDeprecatedCUDAMinor: "2",
			gpufacts.LabelComputeMajor: "9", gpufacts.LabelComputeMinor: "0",
		}},
	}
	for name, c := range cases {
		t.Run(name, func(t *testing.T) {
			n := gen.Node("n", append(append([]gen.NodeModifier{}, facts...), c.scheme...)...)
			NewWithT(t).Expect(n.Labels).To(Equal(c.want))
		})
	}
}

func TestNodeGPUs(t *testing.T) {
	g := NewWithT(t)
	n := gen.Node("n", gen.WithGPUs(8))
	g.Expect(n.Status.Capacity.Name(gen.GPUResource, "").Value()).To(Equal(int64(8)))
	g.Expect(n.Status.Allocatable.Name(gen.GPUResource, "").Value()).To(Equal(int64(8)))
	n = gen.Node("n", gen.WithGPUCapacity(4, false))
	g.Expect(n.Status.Capacity.Name(gen.GPUResource, "").Value()).To(Equal(int64(4)))
	g.Expect(n.Status.Allocatable).To(BeNil())
}
