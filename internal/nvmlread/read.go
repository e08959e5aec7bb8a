// Package nvmlread reads GPU facts with NVML (cgo; go-nvml loads libnvidia-ml.so.1 at run
// time). Both the node agent (a node's GPUs) and the in-pod preflight (the GPUs given to a
// pod) read through it, so they judge drivers and health alike. It imports nothing of
// Kubernetes, to keep the preflight binary that is copied into every GPU pod small; the
// manager never links it and reads the published facts through package gpufacts.
package nvmlread

import (
	"fmt"

	"github.com/NVIDIA/go-nvml/pkg/nvml"

	"github.com/trainenv/trainenv/internal/gpufacts"
)

// Read initialises NVML, reads the node's GPU facts and shuts NVML down again, so that a
// driver installed, upgraded or reloaded after the agent started is seen on the next read.
// When NVML cannot be initialised or the driver-wide facts cannot be read, the facts are
// gpufacts.Unavailable with the reason: nothing is guessed. A fact NVML does not support on
// a GPU is left unknown; any other error on one GPU is a problem of that GPU (Healthy=false),
// since a GPU the driver cannot answer for (e.g. ERROR_GPU_IS_LOST) is no place for work.
func Read(lib nvml.Interface) gpufacts.Facts {
	if ret := lib.Init(); ret != nvml.SUCCESS {
		return gpufacts.Unavailable("NVML init: " + describe(ret))
	}
	defer func() { _ = lib.Shutdown() }()

	f := gpufacts.Facts{NVML: gpufacts.NVMLOK}
	var ret nvml.Return
	if f.DriverVersion, ret = lib.SystemGetDriverVersion(); ret != nvml.SUCCESS {
		return gpufacts.Unavailable("NVML driver version: " + describe(ret))
	}
	cuda, ret := cudaDriverVersion(lib)
	if ret != nvml.SUCCESS {
		return gpufacts.Unavailable("NVML CUDA driver version: " + describe(ret))
	}
	f.CUDA = &gpufacts.Version{Major: cuda / 1000, Minor: cuda % 1000 / 10}
	count, ret := lib.DeviceGetCount()
	if ret != nvml.SUCCESS {
		return gpufacts.Unavailable("NVML device count: " + describe(ret))
	}
	for i := range count {
		g, problems := readGPU(lib, i)
		f.GPUs = append(f.GPUs, g)
		f.Problems = append(f.Problems, problems...)
	}
	return f.WithHealth()
}

// cudaDriverVersion asks SystemGetCudaDriverVersion_v2 first, which answers from the CUDA
// driver library (libcuda) itself. Where that fails (libcuda is not in the container: the
// agent asks the runtime only for the "utility" capability), or the driver predates _v2, the
// first query answers the version the driver supports from NVML's own knowledge, which is
// also what libnvidia-container compares cuda>= terms with.
func cudaDriverVersion(lib nvml.Interface) (int, nvml.Return) {
	if hasSymbol(lib, "nvmlSystemGetCudaDriverVersion_v2") {
		if v, ret := lib.SystemGetCudaDriverVersion_v2(); ret == nvml.SUCCESS {
			return v, ret
		}
	}
	return lib.SystemGetCudaDriverVersion()
}

// hasSymbol guards the newer entry points: go-nvml loads libnvidia-ml lazily, and calling a
// symbol an old driver lacks would end the process instead of returning an error.
func hasSymbol(lib nvml.Interface, name string) bool {
	return lib.Extensions().LookupSymbol(name) == nil
}

// gpuReader collects one GPU's facts; the first error other than "not supported" on any
// query becomes a problem of the GPU.
type gpuReader struct {
	index    int
	problems []string
}

// ok reports whether ret carries a value; NOT_SUPPORTED is an unknown fact, not a problem.
func (r *gpuReader) ok(what string, ret nvml.Return) bool {
	if ret == nvml.SUCCESS {
		return true
	}
	if ret != nvml.ERROR_NOT_SUPPORTED && ret != nvml.ERROR_FUNCTION_NOT_FOUND {
		r.problems = append(r.problems, fmt.Sprintf("GPU %d: reading %s: %s", r.index, what, describe(ret)))
	}
	return false
}

func readGPU(lib nvml.Interface, index int) (gpufacts.GPU, []string) {
	g := gpufacts.GPU{Index: index}
	r := &gpuReader{index: index}
	dev, ret := lib.DeviceGetHandleByIndex(index)
	if !r.ok("device handle", ret) {
		return g, r.problems
	}
	if name, ret := dev.GetName(); r.ok("name", ret) {
		g.Product = name
	}
	if uuid, ret := dev.GetUUID(); r.ok("UUID", ret) {
		g.UUID = uuid
	}
	if mem, ret := dev.GetMemoryInfo(); r.ok("memory", ret) {
		g.MemoryMiB = mem.Total / (1024 * 1024)
	}
	if major, minor, ret := dev.GetCudaComputeCapability(); r.ok("compute capability", ret) {
		g.Compute = &gpufacts.Version{Major: major, Minor: minor}
	}
	if hasSymbol(lib, "nvmlDeviceGetArchitecture") {
		if arch, ret := dev.GetArchitecture(); r.ok("architecture", ret) {
			g.Architecture = architectureName(arch)
		}
	}
	if brand, ret := dev.GetBrand(); r.ok("brand", ret) {
		g.Brand = brandName(brand)
	}
	if hasSymbol(lib, "nvmlDeviceGetMigMode") {
		// MIG counts as enabled once the pending mode is applied, as libnvidia-container sees it.
		if current, pending, ret := dev.GetMigMode(); r.ok("MIG mode", ret) {
			enabled := current == nvml.DEVICE_MIG_ENABLE && pending == current
			g.MIGEnabled = &enabled
			if enabled {
				g.MIGDevices = migDevices(dev, r)
			}
		}
	}
	g.Health = readHealth(lib, dev, r)
	return g, r.problems
}

// migDevices counts the MIG devices of a MIG-enabled GPU. NVML numbers them in slots up to
// the GPU's maximum and answers NOT_FOUND for an empty slot; inside a container, a MIG device
// the container was not given is not found either (or, depending on the driver, refused).
func migDevices(dev nvml.Device, r *gpuReader) *int {
	slots, ret := dev.GetMaxMigDeviceCount()
	if !r.ok("MIG device count", ret) {
		return nil
	}
	n := 0
	for i := range slots {
		_, ret := dev.GetMigDeviceHandleByIndex(i)
		if ret == nvml.ERROR_NOT_FOUND || ret == nvml.ERROR_NO_PERMISSION {
			continue
		}
		if !r.ok(fmt.Sprintf("MIG device %d", i), ret) {
			return nil
		}
		n++
	}
	return &n
}

func readHealth(lib nvml.Interface, dev nvml.Device, r *gpuReader) gpufacts.Health {
	var h gpufacts.Health
	if n, ret := dev.GetTotalEccErrors(nvml.MEMORY_ERROR_TYPE_UNCORRECTED, nvml.VOLATILE_ECC); r.ok("uncorrectable ECC errors", ret) {
		h.ECCUncorrectedVolatile = &n
	}
	// Page retirement is how GPUs before Ampere handle bad memory; Ampere and later remap
	// rows instead and answer NOT_SUPPORTED here.
	if state, ret := dev.GetRetiredPagesPendingStatus(); r.ok("retired pages pending", ret) {
		pending := state == nvml.FEATURE_ENABLED
		h.RetiredPagesPending = &pending
	}
	if hasSymbol(lib, "nvmlDeviceGetRemappedRows") {
		if _, _, pending, failed, ret := dev.GetRemappedRows(); r.ok("remapped rows", ret) {
			h.RemappedRowsPending, h.RowRemapFailed = &pending, &failed
		}
	}
	return h
}

// describe names an NVML return code, with what to do for the ones that mean "no NVML here".
func describe(ret nvml.Return) string {
	msg := ret.Error()
	switch ret {
	case nvml.ERROR_LIBRARY_NOT_FOUND:
		msg += " (libnvidia-ml.so.1 is not in the container: this node has no NVIDIA driver, or the pod does not run with the NVIDIA runtime class)"
	case nvml.ERROR_DRIVER_NOT_LOADED:
		msg += " (the NVIDIA kernel driver is not loaded on this node)"
	case nvml.ERROR_NO_PERMISSION:
		msg += " (no access to /dev/nvidia*)"
	case nvml.ERROR_LIB_RM_VERSION_MISMATCH:
		msg += " (the driver library and kernel module differ: the node needs a reboot or driver reload)"
	}
	return msg
}
