package preflight_test

import (
	"context"
	"strings"
	"testing"

	"github.com/NVIDIA/go-nvml/pkg/nvml"
	"github.com/NVIDIA/go-nvml/pkg/nvml/mock"
	"github.com/NVIDIA/go-nvml/pkg/nvml/mock/dgxa100"
	"github.com/NVIDIA/go-nvml/pkg/nvml/mock/dgxb200"
	"github.com/NVIDIA/go-nvml/pkg/nvml/mock/dgxh100"
	"github.com/NVIDIA/go-nvml/pkg/nvml/mock/server"
	. "github.com/onsi/gomega"

	"github.com/trainenv/trainenv/internal/nvmlread/nvmltest"
	"github.com/trainenv/trainenv/internal/preflight"
	"github.com/trainenv/trainenv/internal/preflight/report"
)

// require124 is the head of nvidia/cuda:12.4.1 images' NVIDIA_REQUIRE_CUDA: CUDA 12.4, or
// one of the older driver branches forward compatibility supports on data-centre GPUs.
const require124 = "cuda>=12.4 brand=tesla,driver>=470,driver<471 brand=nvidia,driver>=470,driver<471 " +
	"brand=tesla,driver>=525,driver<526 brand=tesla,driver>=535,driver<536 brand=nvidia,driver>=535,driver<536"

// gpuRun runs the preflight with no python3 on PATH, so only the GPU checks run.
func gpuRun(t *testing.T, lib nvml.Interface, gpus int, require ...string) report.Report {
	t.Helper()
	t.Setenv("PATH", t.TempDir())
	return preflight.Run(context.Background(), preflight.Config{NVML: lib, GPUs: gpus, Requirements: require})
}

// dgxh100On580 is a DGX H100 on the CUDA 13 driver branch.
func dgxh100On580() *server.Server {
	s := nvmltest.Complete(dgxh100.New())
	s.DriverVersion, s.CudaDriverVersion = "580.65.06", 13000
	return s
}

func TestPassOnTheGPUsGiven(t *testing.T) {
	g := NewWithT(t)
	// The pod got 2 of the node's 8 A100s; NVML in the container shows only those.
	r := gpuRun(t, nvmltest.Subset(nvmltest.Complete(dgxa100.New()), 2, 5), 2, require124)

	g.Expect(r.Failures).To(BeEmpty())
	g.Expect(r.Passed).To(BeTrue())
	g.Expect(r.Driver).To(Equal("550.54.15"))
	g.Expect(r.CUDA).To(Equal("12.4"))
	g.Expect(r.GPUs).To(Equal([]report.GPU{
		{Product: "Mock NVIDIA A100-SXM4-40GB", Compute: "8.0"}, {Product: "Mock NVIDIA A100-SXM4-40GB", Compute: "8.0"},
	}))
	g.Expect(r.Skipped).To(ConsistOf("torch: no python3 in the image, torch not checked"))
	g.Expect(r.Summary()).To(Equal("driver 550.54.15 (CUDA 12.4), 2x Mock NVIDIA A100-SXM4-40GB (cc 8.0), torch: no python3 in the image, torch not checked"))
}

// The requirement is evaluated per GPU with its own brand and compute capability, as
// libnvidia-container evaluates it.
func TestRequirementOnGPUKinds(t *testing.T) {
	cases := []struct {
		name    string
		lib     func() *server.Server
		require []string
		fail    string
	}{
		{"H100 on 580 runs a CUDA 13.0 image", func() *server.Server { return nvmltest.Subset(dgxh100On580(), 0) },
			[]string{"cuda>=13.0"}, ""},
		{"H100 on 550 does not", func() *server.Server { return nvmltest.Subset(nvmltest.Complete(dgxh100.New()), 0) },
			[]string{"cuda>=13.0"}, `GPU 0 (NVIDIA H100 80GB HBM3, compute capability 9.0, brand nvidia) with driver 550.54.15 (CUDA 12.4) does not satisfy "cuda>=13.0"`},
		{"B200 on 560 runs CUDA 12.4", func() *server.Server { return nvmltest.Subset(nvmltest.Complete(dgxb200.New()), 0) },
			[]string{require124}, ""},
		{"T4 on 470 runs CUDA 12.4 by the brand=tesla,driver 470 alternative", func() *server.Server { return nvmltest.T4Server(1) },
			[]string{require124}, ""},
		{"T4 on 470 cannot run CUDA 12.1 without that alternative", func() *server.Server { return nvmltest.T4Server(1) },
			[]string{"cuda>=12.1"}, `GPU 0 (Tesla T4, compute capability 7.5, brand tesla) with driver 470.82.01 (CUDA 11.4) does not satisfy "cuda>=12.1"`},
		{"arch terms use each GPU's compute capability", func() *server.Server { return nvmltest.T4Server(1) },
			[]string{"arch>=8.0"}, "compute capability 7.5"},
		{"several variables are ANDed", func() *server.Server { return nvmltest.Subset(nvmltest.Complete(dgxa100.New()), 0) },
			[]string{"cuda>=12.0", "driver>=555"}, `does not satisfy "cuda>=12.0" and "driver>=555"`},
		{"a malformed requirement fails plainly", func() *server.Server { return nvmltest.T4Server(1) },
			[]string{"cuda>=12.4,gpu=t4"}, `unknown property "gpu"`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			g := NewWithT(t)
			r := gpuRun(t, tc.lib(), 1, tc.require...)
			if tc.fail == "" {
				g.Expect(r.Failures).To(BeEmpty())
				g.Expect(r.Passed).To(BeTrue())
				return
			}
			g.Expect(r.Passed).To(BeFalse())
			g.Expect(r.Failures).To(ConsistOf(ContainSubstring(tc.fail)))
		})
	}
}

// GPUs failing alike are one failure, not eight.
func TestRequirementFailuresGrouped(t *testing.T) {
	g := NewWithT(t)
	r := gpuRun(t, nvmltest.Complete(dgxa100.New()), 8, require124+" brand=nvidia,driver>=550,driver<551", "cuda>=12.8")
	g.Expect(r.Failures).To(HaveLen(1))
	g.Expect(r.Failures[0]).To(HavePrefix("GPU 0,1,2,3,4,5,6,7 (Mock NVIDIA A100-SXM4-40GB, compute capability 8.0, brand nvidia) with driver 550.54.15 (CUDA 12.4) does not satisfy"))
	g.Expect(r.Failures[0]).To(ContainSubstring(`"cuda>=12.8"`))
}

func TestGPUCount(t *testing.T) {
	t.Run("fewer GPUs than requested", func(t *testing.T) {
		g := NewWithT(t)
		r := gpuRun(t, nvmltest.Subset(nvmltest.Complete(dgxa100.New()), 3), 2)
		g.Expect(r.Failures).To(ConsistOf(HavePrefix("the pod requested 2 GPU(s) but the container sees 1 (is the NVIDIA device plugin")))
	})
	t.Run("more GPUs than requested", func(t *testing.T) {
		g := NewWithT(t)
		r := gpuRun(t, nvmltest.Complete(dgxa100.New()), 1)
		g.Expect(r.Failures).To(ConsistOf(HavePrefix("the container sees 8 GPUs but the pod requested 1: GPU isolation is not in effect")))
	})
}

func TestMIG(t *testing.T) {
	t.Run("MIG devices count as the GPUs given", func(t *testing.T) {
		g := NewWithT(t)
		s := nvmltest.Subset(nvmltest.Complete(dgxa100.New()), 4)
		nvmltest.WithMIGDevices(nvmltest.Device(s, 0), 2)
		r := gpuRun(t, s, 2, require124)
		g.Expect(r.Failures).To(BeEmpty())
		g.Expect(r.GPUs).To(Equal([]report.GPU{{Product: "Mock NVIDIA A100-SXM4-40GB", Compute: "8.0", MIG: 2}}))
		g.Expect(r.GPUSummary()).To(Equal([]string{"2x MIG device of Mock NVIDIA A100-SXM4-40GB (cc 8.0)"}))
	})
	t.Run("a whole MIG-enabled GPU is no GPU for CUDA", func(t *testing.T) {
		g := NewWithT(t)
		s := nvmltest.Subset(nvmltest.Complete(dgxa100.New()), 4)
		nvmltest.WithMIGDevices(nvmltest.Device(s, 0), 0)
		r := gpuRun(t, s, 1)
		g.Expect(r.Failures).To(ConsistOf(ContainSubstring("GPU 0 has MIG enabled and no MIG device given to the container")))
	})
}

func TestUnhealthyGPU(t *testing.T) {
	g := NewWithT(t)
	s := nvmltest.Subset(nvmltest.Complete(dgxa100.New()), 0, 1)
	nvmltest.Device(s, 1).GetTotalEccErrorsFunc = func(nvml.MemoryErrorType, nvml.EccCounterType) (uint64, nvml.Return) { return 2, nvml.SUCCESS }
	r := gpuRun(t, s, 2, require124)
	g.Expect(r.Passed).To(BeFalse())
	g.Expect(r.Failures).To(ConsistOf(MatchRegexp(
		`^unhealthy GPU: GPU 1 \(GPU-[0-9a-f-]+\): 2 uncorrectable ECC errors since the driver loaded; the pod must move to another node \(ask the platform team to drain and repair this one\)$`)))
}

func TestNVMLUnavailable(t *testing.T) {
	cases := map[string]struct {
		lib  nvml.Interface
		want string
	}{
		"no libnvidia-ml in the container": {nvmltest.NoNVML(),
			"the container cannot use the NVIDIA driver: NVML init: ERROR_LIBRARY_NOT_FOUND (libnvidia-ml.so.1 is not in the container: this node has no NVIDIA driver, or the pod does not run with the NVIDIA runtime class)"},
		"no permission on the device files": {&mock.Interface{InitFunc: func() nvml.Return { return nvml.ERROR_NO_PERMISSION }},
			"the container cannot use the NVIDIA driver: NVML init: ERROR_NO_PERMISSION (no access to /dev/nvidia*)"},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			g := NewWithT(t)
			r := gpuRun(t, tc.lib, 1, require124)
			g.Expect(r.Passed).To(BeFalse())
			g.Expect(r.Failures).To(Equal([]string{tc.want}))
			g.Expect(r.Summary()).To(Equal(tc.want))
		})
	}
}

// The report always fits the termination message, and the failures survive the cut.
func TestReportFitsTerminationMessage(t *testing.T) {
	g := NewWithT(t)
	s := nvmltest.Complete(dgxa100.New())
	for i := range s.Devices {
		nvmltest.Device(s, i).GetTotalEccErrorsFunc = func(nvml.MemoryErrorType, nvml.EccCounterType) (uint64, nvml.Return) { return 1, nvml.SUCCESS }
	}
	r := gpuRun(t, s, 1, strings.Repeat("cuda>=13.0,brand=tesla ", 100))
	r.Warn("%s", strings.Repeat("w", 5000))
	msg := report.Encode(r)
	g.Expect(len(msg)).To(BeNumerically("<=", report.MaxMessage))
	back, err := report.Decode(string(msg))
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(back.Passed).To(BeFalse())
	g.Expect(back.Failures).NotTo(BeEmpty())
	g.Expect(back.Failures[0]).To(HavePrefix("the container sees 8 GPUs but the pod requested 1"))

	small := gpuRun(t, nvmltest.T4Server(1), 1)
	back, err = report.Decode(string(report.Encode(small)))
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(back).To(Equal(small), "a report that fits travels whole")
}
