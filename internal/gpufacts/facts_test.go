package gpufacts_test

import (
	"encoding/json"
	"slices"
	"strings"
	"testing"

	. "github.com/onsi/gomega"
	"k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/utils/ptr"

	"github.com/trainenv/trainenv/internal/gpufacts"
)

func gpu(product string, memMiB uint64, major, minor int, brand string) gpufacts.GPU {
	return gpufacts.GPU{
		Product: product, UUID: "GPU-" + strings.ToLower(product), MemoryMiB: memMiB,
		Compute: &gpufacts.Version{Major: major, Minor: minor}, Brand: brand,
	}
}

func facts(driver string, cudaMajor, cudaMinor int, gpus ...gpufacts.GPU) gpufacts.Facts {
	f := gpufacts.Facts{NVML: gpufacts.NVMLOK, DriverVersion: driver, CUDA: &gpufacts.Version{Major: cudaMajor, Minor: cudaMinor}, GPUs: gpus}
	return f.WithHealth()
}

func TestLabels(t *testing.T) {
	cases := []struct {
		name  string
		facts gpufacts.Facts
		want  map[string]string
	}{
		{"H100, driver 580, CUDA 13.0", facts("580.65.06", 13, 0, gpu("NVIDIA H100 80GB HBM3", 81559, 9, 0, "nvidia")), map[string]string{
			"nvidia.com/cuda.driver-version.full": "580.65.06", "nvidia.com/cuda.driver-version.major": "580",
			"nvidia.com/cuda.driver-version.minor": "65", "nvidia.com/cuda.driver-version.revision": "06",
			"nvidia.com/cuda.runtime-version.full": "13.0", "nvidia.com/cuda.runtime-version.major": "13",
			"nvidia.com/cuda.runtime-version.minor": "0",
			"nvidia.com/gpu.compute.major":          "9", "nvidia.com/gpu.compute.minor": "0",
			"nvidia.com/gpu.count": "1", "nvidia.com/gpu.family": "hopper", "nvidia.com/gpu.memory": "81559",
			"nvidia.com/gpu.product":           "NVIDIA-H100-80GB-HBM3",
			"trainenv.io/cuda.driver-supports": "13000", "trainenv.io/cuda.driver-version": "580065006",
			"trainenv.io/gpu.brand": "nvidia", "trainenv.io/gpu.compute": "90",
			"trainenv.io/gpu.healthy": "true", "trainenv.io/nvml": "ok",
		}},
		{"T4, driver 470, CUDA 11.4", facts("470.82.01", 11, 4, gpu("Tesla T4", 15360, 7, 5, "Tesla")), map[string]string{
			"nvidia.com/cuda.driver-version.full": "470.82.01", "nvidia.com/cuda.driver-version.major": "470",
			"nvidia.com/cuda.driver-version.minor": "82", "nvidia.com/cuda.driver-version.revision": "01",
			"nvidia.com/cuda.runtime-version.full": "11.4", "nvidia.com/cuda.runtime-version.major": "11",
			"nvidia.com/cuda.runtime-version.minor": "4",
			"nvidia.com/gpu.compute.major":          "7", "nvidia.com/gpu.compute.minor": "5",
			"nvidia.com/gpu.count": "1", "nvidia.com/gpu.family": "turing", "nvidia.com/gpu.memory": "15360",
			"nvidia.com/gpu.product":           "Tesla-T4",
			"trainenv.io/cuda.driver-supports": "11040", "trainenv.io/cuda.driver-version": "470082001",
			"trainenv.io/gpu.brand": "tesla", "trainenv.io/gpu.compute": "75",
			"trainenv.io/gpu.healthy": "true", "trainenv.io/nvml": "ok",
		}},
		{"NVML unavailable: only the marker", gpufacts.Unavailable("libnvidia-ml.so.1 not found"), map[string]string{
			"trainenv.io/nvml": "unavailable",
		}},
		{"no GPUs: driver facts, count 0", facts("550.54.15", 12, 4), map[string]string{
			"nvidia.com/cuda.driver-version.full": "550.54.15", "nvidia.com/cuda.driver-version.major": "550",
			"nvidia.com/cuda.driver-version.minor": "54", "nvidia.com/cuda.driver-version.revision": "15",
			"nvidia.com/cuda.runtime-version.full": "12.4", "nvidia.com/cuda.runtime-version.major": "12",
			"nvidia.com/cuda.runtime-version.minor": "4", "nvidia.com/gpu.count": "0",
			"trainenv.io/cuda.driver-supports": "12040", "trainenv.io/cuda.driver-version": "550054015",
			"trainenv.io/gpu.healthy": "true", "trainenv.io/nvml": "ok",
		}},
		{"unknowns get no label; two-part driver has no revision", gpufacts.Facts{
			NVML: gpufacts.NVMLOK, DriverVersion: "555.42", Healthy: true,
			GPUs: []gpufacts.GPU{{Product: "NVIDIA B200"}},
		}, map[string]string{
			"nvidia.com/cuda.driver-version.full": "555.42", "nvidia.com/cuda.driver-version.major": "555",
			"nvidia.com/cuda.driver-version.minor": "42", "trainenv.io/cuda.driver-version": "555042000",
			"nvidia.com/gpu.count": "1", "nvidia.com/gpu.product": "NVIDIA-B200",
			"trainenv.io/gpu.healthy": "true", "trainenv.io/nvml": "ok",
		}},
		{"odd driver version: only the full label", gpufacts.Facts{NVML: gpufacts.NVMLOK, DriverVersion: "r570_00", Healthy: true}, map[string]string{
			"nvidia.com/cuda.driver-version.full": "r570_00", "nvidia.com/gpu.count": "0",
			"trainenv.io/gpu.healthy": "true", "trainenv.io/nvml": "ok",
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			g := NewWithT(t)
			g.Expect(tc.facts.Labels()).To(Equal(tc.want))
		})
	}
}

func TestLabelsUnhealthy(t *testing.T) {
	g := NewWithT(t)
	bad := gpu("NVIDIA A100-SXM4-80GB", 81920, 8, 0, "nvidia")
	bad.Index = 1
	bad.Health.ECCUncorrectedVolatile = ptr.To[uint64](2)
	bad.Health.RemappedRowsPending = ptr.To(true)
	ok := gpu("NVIDIA A100-SXM4-80GB", 81920, 8, 0, "nvidia")
	ok.Health = gpufacts.Health{ECCUncorrectedVolatile: ptr.To[uint64](0), RemappedRowsPending: ptr.To(false)}
	f := facts("535.104.05", 12, 2, ok, bad)

	g.Expect(f.Healthy).To(BeFalse())
	g.Expect(f.Problems).To(Equal([]string{
		"GPU 1 (GPU-nvidia a100-sxm4-80gb): 2 uncorrectable ECC errors since the driver loaded",
		"GPU 1 (GPU-nvidia a100-sxm4-80gb): remapped memory rows pending a GPU reset",
	}))
	g.Expect(f.Labels()).To(HaveKeyWithValue(gpufacts.LabelHealthy, "false"))
	g.Expect(f.Labels()).To(HaveKeyWithValue(gpufacts.LabelCount, "2"))
}

func TestProductLabelValue(t *testing.T) {
	cases := map[string]string{
		"NVIDIA A100-SXM4-80GB":                            "NVIDIA-A100-SXM4-80GB",
		"Mock NVIDIA A100-SXM4-40GB":                       "Mock-NVIDIA-A100-SXM4-40GB",
		"Tesla T4":                                         "Tesla-T4",
		"NVIDIA  GeForce RTX 4090 ":                        "NVIDIA-GeForce-RTX-4090",
		"NVIDIA RTX A6000 (rev. 2)":                        "NVIDIA-RTX-A6000-rev.-2",
		"NVIDIA H100 80GB HBM3 " + strings.Repeat("x", 60): "NVIDIA-H100-80GB-HBM3-" + strings.Repeat("x", 41),
		strings.Repeat("a", 62) + " b":                     strings.Repeat("a", 62),
		"":                                                 "",
	}
	for name, want := range cases {
		g := NewWithT(t)
		got := gpufacts.ProductLabelValue(name)
		g.Expect(got).To(Equal(want), name)
		g.Expect(validation.IsValidLabelValue(got)).To(BeEmpty(), name)
	}
}

func TestFamily(t *testing.T) {
	cases := map[gpufacts.Version]string{
		{Major: 6, Minor: 0}: "pascal", {Major: 7, Minor: 0}: "volta", {Major: 7, Minor: 5}: "turing",
		{Major: 8, Minor: 0}: "ampere", {Major: 8, Minor: 6}: "ampere", {Major: 8, Minor: 9}: "ada-lovelace",
		{Major: 9, Minor: 0}: "hopper", {Major: 10, Minor: 0}: "blackwell", {Major: 12, Minor: 0}: "blackwell",
		{Major: 11, Minor: 0}: "undefined", {Major: 4, Minor: 0}: "undefined",
	}
	for c, want := range cases {
		NewWithT(t).Expect(gpufacts.Family(c)).To(Equal(want), c.String())
	}
}

// Every label Labels can produce is a managed key (else the agent could never remove it, and
// the admission policy would refuse it), and every key is a valid label key.
func TestManagedLabelKeys(t *testing.T) {
	g := NewWithT(t)
	keys := gpufacts.ManagedLabelKeys()
	g.Expect(slices.IsSorted(keys)).To(BeTrue(), "sorted")
	g.Expect(slices.Compact(slices.Sorted(slices.Values(keys)))).To(HaveLen(len(keys)), "no duplicates")
	for _, k := range keys {
		g.Expect(validation.IsQualifiedName(k)).To(BeEmpty(), k)
	}
	full := facts("535.104.05", 12, 2, gpu("NVIDIA A100-SXM4-80GB", 81920, 8, 0, "nvidia"))
	for k := range full.Labels() {
		g.Expect(keys).To(ContainElement(k))
	}
	g.Expect(full.Labels()).To(HaveLen(len(keys)), "a node with every fact known carries every managed key")
}

// The annotation is the Facts as JSON; unknowns are left out, not written as zero.
func TestFactsJSON(t *testing.T) {
	g := NewWithT(t)
	f := facts("535.104.05", 12, 2, gpufacts.GPU{Index: 0, Product: "Tesla T4", UUID: "GPU-1"})
	b, err := json.Marshal(f)
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(string(b)).To(Equal(`{"nvml":"ok","driverVersion":"535.104.05","cudaDriverVersion":{"major":12,"minor":2},` +
		`"gpus":[{"index":0,"product":"Tesla T4","uuid":"GPU-1","health":{}}],"healthy":true}`))
	var back gpufacts.Facts
	g.Expect(json.Unmarshal(b, &back)).To(Succeed())
	g.Expect(back).To(Equal(f))
}

// A compute capability minor of 10 or more cannot be written as major*10+minor (8.10
// would read as 9.0): the integer label is left out, the major and minor labels stay.
func TestComputeIntLabelOnlyForOneDigitMinor(t *testing.T) {
	g := NewWithT(t)
	f := facts("580.65.06", 13, 0, gpu("NVIDIA Future GPU", 81920, 8, 10, "nvidia"))
	l := f.Labels()
	g.Expect(l).NotTo(HaveKey(gpufacts.LabelComputeInt))
	g.Expect(l).To(HaveKeyWithValue(gpufacts.LabelComputeMajor, "8"))
	g.Expect(l).To(HaveKeyWithValue(gpufacts.LabelComputeMinor, "10"))

	f = facts("580.65.06", 13, 0, gpu("NVIDIA Future GPU", 81920, 8, 9, "nvidia"))
	g.Expect(f.Labels()).To(HaveKeyWithValue(gpufacts.LabelComputeInt, "89"))
}
