package nvmlread_test

import (
	"encoding/json"
	"errors"
	"testing"

	"github.com/NVIDIA/go-nvml/pkg/nvml"
	"github.com/NVIDIA/go-nvml/pkg/nvml/mock"
	"github.com/NVIDIA/go-nvml/pkg/nvml/mock/dgxa100"
	"github.com/NVIDIA/go-nvml/pkg/nvml/mock/dgxb200"
	"github.com/NVIDIA/go-nvml/pkg/nvml/mock/dgxh100"
	"github.com/NVIDIA/go-nvml/pkg/nvml/mock/server"
	. "github.com/onsi/gomega"
	"k8s.io/utils/ptr"

	"github.com/trainenv/trainenv/internal/gpufacts"
	"github.com/trainenv/trainenv/internal/nvmlread"
	"github.com/trainenv/trainenv/internal/nvmlread/nvmltest"
)

func TestReadDGXA100(t *testing.T) {
	g := NewWithT(t)
	f := nvmlread.Read(nvmltest.Complete(dgxa100.New()))

	g.Expect(f.Labels()).To(Equal(map[string]string{
		"nvidia.com/cuda.driver-version.full": "550.54.15", "nvidia.com/cuda.driver-version.major": "550",
		"nvidia.com/cuda.driver-version.minor": "54", "nvidia.com/cuda.driver-version.revision": "15",
		"nvidia.com/cuda.runtime-version.full": "12.4", "nvidia.com/cuda.runtime-version.major": "12",
		"nvidia.com/cuda.runtime-version.minor": "4",
		"nvidia.com/gpu.compute.major":          "8", "nvidia.com/gpu.compute.minor": "0",
		"nvidia.com/gpu.count": "8", "nvidia.com/gpu.family": "ampere", "nvidia.com/gpu.memory": "40960",
		"nvidia.com/gpu.product":           "Mock-NVIDIA-A100-SXM4-40GB",
		"trainenv.io/cuda.driver-supports": "12040", "trainenv.io/cuda.driver-version": "550054015",
		"trainenv.io/gpu.brand": "nvidia", "trainenv.io/gpu.compute": "80",
		"trainenv.io/gpu.healthy": "true", "trainenv.io/nvml": "ok",
	}))
	g.Expect(f.GPUs).To(HaveLen(8))
	for i, gpu := range f.GPUs {
		g.Expect(gpu.Index).To(Equal(i))
		g.Expect(gpu.UUID).To(HavePrefix("GPU-"))
		g.Expect(gpu.Architecture).To(Equal("Ampere"))
		g.Expect(gpu.MIGEnabled).To(Equal(ptr.To(false)))
		g.Expect(gpu.Health).To(Equal(gpufacts.Health{
			ECCUncorrectedVolatile: ptr.To[uint64](0), RemappedRowsPending: ptr.To(false), RowRemapFailed: ptr.To(false),
		}), "retired pages: NOT_SUPPORTED on Ampere is unknown, not a failure")
	}
	g.Expect(f.Healthy).To(BeTrue())
	g.Expect(f.Problems).To(BeEmpty())
}

func TestReadGPUKinds(t *testing.T) {
	cases := []struct {
		name string
		lib  *server.Server
		want map[string]string
		arch string
	}{
		{"DGX H100", nvmltest.Complete(dgxh100.New()), map[string]string{
			gpufacts.LabelProduct: "NVIDIA-H100-80GB-HBM3", gpufacts.LabelFamily: "hopper", gpufacts.LabelComputeInt: "90",
			gpufacts.LabelBrand: "nvidia", gpufacts.LabelCUDAInt: "12040", gpufacts.LabelCount: "8", gpufacts.LabelMemoryMiB: "81920",
		}, "Hopper"},
		{"DGX B200", nvmltest.Complete(dgxb200.New()), map[string]string{
			gpufacts.LabelProduct: "NVIDIA-B200-180GB-HBM3e", gpufacts.LabelFamily: "blackwell", gpufacts.LabelComputeInt: "100",
			gpufacts.LabelComputeMajor: "10", gpufacts.LabelCUDAInt: "12060", gpufacts.LabelDriverInt: "560028003",
		}, "Blackwell"},
		{"T4 on driver 470", nvmltest.T4Server(1), map[string]string{
			gpufacts.LabelProduct: "Tesla-T4", gpufacts.LabelFamily: "turing", gpufacts.LabelComputeInt: "75",
			gpufacts.LabelBrand: "tesla", gpufacts.LabelCUDAInt: "11040", gpufacts.LabelCUDAFull: "11.4",
			gpufacts.LabelDriverInt: "470082001", gpufacts.LabelDriverRevision: "01", gpufacts.LabelHealthy: "true",
		}, "Turing"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			g := NewWithT(t)
			f := nvmlread.Read(tc.lib)
			for k, v := range tc.want {
				g.Expect(f.Labels()).To(HaveKeyWithValue(k, v))
			}
			g.Expect(f.GPUs[0].Architecture).To(Equal(tc.arch))
		})
	}
}

func TestReadT4Unknowns(t *testing.T) {
	g := NewWithT(t)
	f := nvmlread.Read(nvmltest.T4Server(2))
	g.Expect(f.GPUs[1].MIGEnabled).To(BeNil(), "no MIG on Turing: unknown, not false")
	g.Expect(f.GPUs[1].Health).To(Equal(gpufacts.Health{ECCUncorrectedVolatile: ptr.To[uint64](0), RetiredPagesPending: ptr.To(false)}))
	g.Expect(f.Healthy).To(BeTrue())
}

func TestReadMIG(t *testing.T) {
	g := NewWithT(t)
	s := nvmltest.Complete(dgxa100.New())
	nvmltest.WithMIGDevices(nvmltest.Device(s, 0), 3)
	// GPU 1 has MIG enabled but not applied yet (needs a GPU reset): not enabled.
	nvmltest.Device(s, 1).GetMigModeFunc = func() (int, int, nvml.Return) { return nvml.DEVICE_MIG_DISABLE, nvml.DEVICE_MIG_ENABLE, nvml.SUCCESS }

	f := nvmlread.Read(s)
	g.Expect(f.GPUs[0].MIGEnabled).To(Equal(ptr.To(true)))
	g.Expect(f.GPUs[1].MIGEnabled).To(Equal(ptr.To(false)))
	g.Expect(f.GPUs[2].MIGEnabled).To(Equal(ptr.To(false)))
	g.Expect(f.GPUs[0].MIGDevices).To(Equal(ptr.To(3)), "slots 3 to 6 are empty (NOT_FOUND)")
	g.Expect(f.GPUs[1].MIGDevices).To(BeNil())
	g.Expect(f.Healthy).To(BeTrue())
	g.Expect(f.Labels()).To(Equal(nvmlread.Read(nvmltest.Complete(dgxa100.New())).Labels()), "MIG mode is in the annotation, not the labels")
}

// A MIG device NVML cannot answer for is a problem of its GPU, not a smaller count.
func TestReadMIGDeviceError(t *testing.T) {
	g := NewWithT(t)
	s := nvmltest.Complete(dgxa100.New())
	d := nvmltest.Device(s, 2)
	nvmltest.WithMIGDevices(d, 2)
	d.GetMigDeviceHandleByIndexFunc = func(int) (nvml.Device, nvml.Return) { return nil, nvml.ERROR_UNKNOWN }
	f := nvmlread.Read(s)
	g.Expect(f.GPUs[2].MIGDevices).To(BeNil())
	g.Expect(f.Problems).To(ConsistOf("GPU 2: reading MIG device 0: ERROR_UNKNOWN"))
}

func TestReadUnhealthy(t *testing.T) {
	cases := []struct {
		name    string
		breakIt func(*server.Device)
		problem string
	}{
		{"uncorrectable ECC errors", func(d *server.Device) {
			d.GetTotalEccErrorsFunc = func(nvml.MemoryErrorType, nvml.EccCounterType) (uint64, nvml.Return) { return 3, nvml.SUCCESS }
		}, "3 uncorrectable ECC errors since the driver loaded"},
		{"remapped rows pending", func(d *server.Device) {
			d.GetRemappedRowsFunc = func() (int, int, bool, bool, nvml.Return) { return 0, 1, true, false, nvml.SUCCESS }
		}, "remapped memory rows pending a GPU reset"},
		{"row remapping failed", func(d *server.Device) {
			d.GetRemappedRowsFunc = func() (int, int, bool, bool, nvml.Return) { return 0, 0, false, true, nvml.SUCCESS }
		}, "a memory row remapping failed"},
		{"GPU fell off the bus", func(d *server.Device) {
			d.GetNameFunc = func() (string, nvml.Return) { return "", nvml.ERROR_GPU_IS_LOST }
		}, "reading name: ERROR_GPU_IS_LOST"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			g := NewWithT(t)
			s := nvmltest.Complete(dgxa100.New())
			tc.breakIt(nvmltest.Device(s, 3))
			f := nvmlread.Read(s)
			g.Expect(f.NVML).To(Equal(gpufacts.NVMLOK), "one bad GPU does not hide the node's other facts")
			g.Expect(f.Healthy).To(BeFalse())
			g.Expect(f.Problems).To(HaveLen(1))
			g.Expect(f.Problems[0]).To(ContainSubstring("GPU 3"))
			g.Expect(f.Problems[0]).To(ContainSubstring(tc.problem))
			g.Expect(f.Labels()).To(HaveKeyWithValue(gpufacts.LabelHealthy, "false"))
			g.Expect(f.Labels()).To(HaveKeyWithValue(gpufacts.LabelCount, "8"))
		})
	}
	t.Run("retired pages pending on a T4", func(t *testing.T) {
		g := NewWithT(t)
		s := nvmltest.T4Server(1)
		nvmltest.Device(s, 0).GetRetiredPagesPendingStatusFunc = func() (nvml.EnableState, nvml.Return) { return nvml.FEATURE_ENABLED, nvml.SUCCESS }
		f := nvmlread.Read(s)
		g.Expect(f.Healthy).To(BeFalse())
		g.Expect(f.Problems).To(ConsistOf(ContainSubstring("retired memory pages pending a GPU reset")))
	})
}

func TestReadNVMLFailure(t *testing.T) {
	cases := []struct {
		name string
		lib  func() nvml.Interface
		want []string
	}{
		{"no libnvidia-ml in the container", func() nvml.Interface {
			return &mock.Interface{InitFunc: func() nvml.Return { return nvml.ERROR_LIBRARY_NOT_FOUND }}
		}, []string{"NVML init: ERROR_LIBRARY_NOT_FOUND", "NVIDIA runtime class"}},
		{"no kernel driver", func() nvml.Interface {
			return &mock.Interface{InitFunc: func() nvml.Return { return nvml.ERROR_DRIVER_NOT_LOADED }}
		}, []string{"ERROR_DRIVER_NOT_LOADED", "kernel driver is not loaded"}},
		{"driver upgraded under the library", func() nvml.Interface {
			s := nvmltest.Complete(dgxa100.New())
			s.SystemGetDriverVersionFunc = func() (string, nvml.Return) { return "", nvml.ERROR_LIB_RM_VERSION_MISMATCH }
			return s
		}, []string{"NVML driver version: ERROR_LIB_RM_VERSION_MISMATCH", "reboot"}},
		{"device count fails", func() nvml.Interface {
			s := nvmltest.Complete(dgxa100.New())
			s.DeviceGetCountFunc = func() (int, nvml.Return) { return 0, nvml.ERROR_UNKNOWN }
			return s
		}, []string{"NVML device count: ERROR_UNKNOWN"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			g := NewWithT(t)
			f := nvmlread.Read(tc.lib()) // a Shutdown after a failed Init would panic: ShutdownFunc is nil
			g.Expect(f.NVML).To(Equal(gpufacts.NVMLUnavailable))
			for _, w := range tc.want {
				g.Expect(f.Error).To(ContainSubstring(w))
			}
			g.Expect(f.GPUs).To(BeEmpty())
			g.Expect(f.Labels()).To(Equal(map[string]string{gpufacts.LabelNVML: gpufacts.NVMLUnavailable}))
		})
	}
}

// Each read opens and closes NVML, so a driver installed or upgraded later is picked up.
func TestReadShutsDown(t *testing.T) {
	g := NewWithT(t)
	s := nvmltest.Complete(dgxa100.New())
	inits, shutdowns := 0, 0
	s.InitFunc = func() nvml.Return { inits++; return nvml.SUCCESS }
	s.ShutdownFunc = func() nvml.Return { shutdowns++; return nvml.SUCCESS }
	nvmlread.Read(s)
	s.DeviceGetCountFunc = func() (int, nvml.Return) { return 0, nvml.ERROR_UNKNOWN }
	nvmlread.Read(s)
	g.Expect([]int{inits, shutdowns}).To(Equal([]int{2, 2}))
}

// A driver older than the _v2 CUDA query, row remapping or the architecture query lacks
// their symbols; calling them would end the process, so they are not called.
func TestReadOldDriver(t *testing.T) {
	g := NewWithT(t)
	s := nvmltest.T4Server(1)
	missing := map[string]bool{"nvmlSystemGetCudaDriverVersion_v2": true, "nvmlDeviceGetArchitecture": true, "nvmlDeviceGetRemappedRows": true}
	s.LookupSymbolFunc = func(name string) error {
		if missing[name] {
			return errors.New("undefined symbol: " + name)
		}
		return nil
	}
	s.SystemGetCudaDriverVersion_v2Func = nil
	nvmltest.Device(s, 0).GetArchitectureFunc = nil
	nvmltest.Device(s, 0).GetRemappedRowsFunc = nil
	s.CudaDriverVersion = 10020

	f := nvmlread.Read(s)
	g.Expect(f.CUDA).To(Equal(&gpufacts.Version{Major: 10, Minor: 2}))
	g.Expect(f.GPUs[0].Architecture).To(BeEmpty())
	g.Expect(f.GPUs[0].Health.RemappedRowsPending).To(BeNil())
	g.Expect(f.Healthy).To(BeTrue())
}

// Without libcuda in the container the _v2 query fails; the first one still answers.
func TestReadCUDAVersionWithoutLibcuda(t *testing.T) {
	g := NewWithT(t)
	s := nvmltest.Complete(dgxa100.New())
	s.SystemGetCudaDriverVersion_v2Func = func() (int, nvml.Return) { return 0, nvml.ERROR_LIBRARY_NOT_FOUND }
	g.Expect(nvmlread.Read(s).CUDA).To(Equal(&gpufacts.Version{Major: 12, Minor: 4}))

	s.SystemGetCudaDriverVersionFunc = func() (int, nvml.Return) { return 0, nvml.ERROR_UNKNOWN }
	f := nvmlread.Read(s)
	g.Expect(f.NVML).To(Equal(gpufacts.NVMLUnavailable))
	g.Expect(f.Error).To(Equal("NVML CUDA driver version: ERROR_UNKNOWN"))
}

// The real library: on a machine without the NVIDIA driver (CI) NVML is plainly unavailable,
// no crash; on a GPU machine the facts are logged, to compare with nvidia-smi.
func TestReadRealLibrary(t *testing.T) {
	g := NewWithT(t)
	f := nvmlread.Read(nvml.New())
	if f.NVML != gpufacts.NVMLOK {
		g.Expect(f.Error).To(HavePrefix("NVML init: "))
		t.Log("no NVML here:", f.Error)
		return
	}
	g.Expect(f.GPUs).NotTo(BeEmpty())
	doc, _ := json.MarshalIndent(f, "", "  ")
	t.Logf("labels %v\nfacts %s", f.Labels(), doc)
}
