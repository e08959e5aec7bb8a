// Package nvmltest completes go-nvml's fake servers (pkg/nvml/mock/...) for the NVML
// queries trainenv makes, so that the node agent and the preflight are tested against the
// same stand-ins for real GPUs.
package nvmltest

import (
	"github.com/NVIDIA/go-nvml/pkg/nvml"
	"github.com/NVIDIA/go-nvml/pkg/nvml/mock"
	"github.com/NVIDIA/go-nvml/pkg/nvml/mock/gpus"
	"github.com/NVIDIA/go-nvml/pkg/nvml/mock/server"
)

// TeslaT4 is a Turing data-centre GPU: it retires pages instead of remapping rows and has
// no MIG, so those queries answer NOT_SUPPORTED (see T4Server).
var TeslaT4 = gpus.Config{
	Name: "Tesla T4", Architecture: nvml.DEVICE_ARCH_TURING, Brand: nvml.BRAND_TESLA,
	MemoryMB: 15360, CudaMajor: 7, CudaMinor: 5, PciDeviceId: 0x1EB810DE,
}

// Complete fills in what the go-nvml fake servers leave out (the _v2 CUDA query, ECC and
// memory-repair queries) as a healthy Ampere-or-later GPU answers them. A mock method left
// nil panics when called, so a query the reader is not meant to make fails the test.
func Complete(s *server.Server) *server.Server {
	s.SystemGetCudaDriverVersion_v2Func = s.SystemGetCudaDriverVersionFunc
	for _, d := range s.Devices {
		dev := d.(*server.Device)
		dev.GetTotalEccErrorsFunc = func(t nvml.MemoryErrorType, c nvml.EccCounterType) (uint64, nvml.Return) {
			if t != nvml.MEMORY_ERROR_TYPE_UNCORRECTED || c != nvml.VOLATILE_ECC {
				return 0, nvml.ERROR_INVALID_ARGUMENT
			}
			return 0, nvml.SUCCESS
		}
		dev.GetRetiredPagesPendingStatusFunc = func() (nvml.EnableState, nvml.Return) { return 0, nvml.ERROR_NOT_SUPPORTED }
		dev.GetRemappedRowsFunc = func() (int, int, bool, bool, nvml.Return) { return 0, 0, false, false, nvml.SUCCESS }
	}
	return s
}

// Device returns the fake server's GPU i.
func Device(s *server.Server, i int) *server.Device { return s.Devices[i].(*server.Device) }

// T4Server is a node (or a pod's view) of n Tesla T4s on driver 470.82.01 (CUDA 11.4).
func T4Server(n int) *server.Server {
	s, _ := server.New(server.WithGPUs(gpus.Multiple(n, TeslaT4)...), server.WithDriverVersion("470.82.01"),
		server.WithNVMLVersion("11.470.82.01"), server.WithCUDADriverVersion(11040))
	Complete(s)
	for i := range n {
		d := Device(s, i)
		d.GetRetiredPagesPendingStatusFunc = func() (nvml.EnableState, nvml.Return) { return nvml.FEATURE_DISABLED, nvml.SUCCESS }
		d.GetRemappedRowsFunc = func() (int, int, bool, bool, nvml.Return) { return 0, 0, false, false, nvml.ERROR_NOT_SUPPORTED }
		d.GetMigModeFunc = func() (int, int, nvml.Return) { return 0, 0, nvml.ERROR_NOT_SUPPORTED }
	}
	return s
}

// Subset keeps only the GPUs at the given indices, renumbered from 0: what NVML shows inside
// a container given those GPUs of the node.
func Subset(s *server.Server, indices ...int) *server.Server {
	all := s.Devices
	s.Devices = nil
	for _, i := range indices {
		d := all[i].(*server.Device)
		d.Index = len(s.Devices)
		s.Devices = append(s.Devices, d)
	}
	return s
}

// WithMIGDevices enables MIG on d with n MIG devices visible (of up to 7 slots), as NVML
// shows a MIG-enabled GPU to a container given n of its MIG devices.
func WithMIGDevices(d *server.Device, n int) {
	_, _ = d.SetMigMode(nvml.DEVICE_MIG_ENABLE)
	d.GetMaxMigDeviceCountFunc = func() (int, nvml.Return) { return 7, nvml.SUCCESS }
	d.GetMigDeviceHandleByIndexFunc = func(i int) (nvml.Device, nvml.Return) {
		if i < 0 || i >= 7 {
			return nil, nvml.ERROR_INVALID_ARGUMENT
		}
		if i >= n {
			return nil, nvml.ERROR_NOT_FOUND
		}
		return &mock.Device{}, nvml.SUCCESS
	}
}

// NoNVML is a library that cannot be loaded (no driver, or a container without it).
func NoNVML() nvml.Interface {
	return &mock.Interface{InitFunc: func() nvml.Return { return nvml.ERROR_LIBRARY_NOT_FOUND }}
}
