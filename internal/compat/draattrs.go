package compat

import (
	"strings"
	"unicode/utf8"

	"github.com/blang/semver/v4"
	resourceapi "k8s.io/api/resource/v1"

	"github.com/trainenv/trainenv/internal/cuda"
)

// The device attributes NVIDIA's GPU DRA driver publishes in ResourceSlices, per GPU (and
// per MIG device, which repeats its parent's), under its driver name as the attribute
// domain. Read from the driver's source, kubernetes-sigs/dra-driver-nvidia-gpu (formerly
// NVIDIA/k8s-dra-driver-gpu): cmd/gpu-kubelet-plugin/deviceinfo.go (GpuInfo.Attributes),
// cmd/gpu-kubelet-plugin/mig.go (CommonAttributesMig) and cmd/gpu-kubelet-plugin/nvlib.go
// (getGpuInfo, where the values come from NVML):
//
//	type                  string   "gpu" or "mig" (also "vfio" for pass-through devices)
//	uuid                  string   the GPU's (or MIG device's) UUID
//	productName           string   NVML's name, e.g. "NVIDIA A100-SXM4-80GB"
//	brand                 string   go-nvlib's brand name, e.g. "Tesla", "Nvidia", "GeForce"
//	architecture          string   go-nvlib's architecture name, e.g. "Hopper"
//	cudaComputeCapability version  e.g. 9.0.0 (NVML's "9.0" as semver)
//	driverVersion         version  e.g. 580.105.8 (NVML's "580.105.08", normalised by semver)
//	cudaDriverVersion     version  the highest CUDA the driver supports, e.g. 13.0.0
//	profile, parentUUID   string   MIG devices only
//
// and the capacity "memory" (bytes). Version attributes are semantic versions: three
// numbers, no leading zeros, which CEL compares with compareTo(semver("X.Y.Z")).
const (
	DRADriverName          = "gpu.nvidia.com"
	AttrType               = "type"
	AttrProductName        = "productName"
	AttrBrand              = "brand"
	AttrArchitecture       = "architecture"
	AttrComputeCapability  = "cudaComputeCapability"
	AttrDriverVersion      = "driverVersion"
	AttrCUDADriverVersion  = "cudaDriverVersion"
	AttrMIGProfile         = "profile"
	CapacityMemory         = "memory"
	DeviceTypeGPU          = "gpu"
	DeviceTypeMIG          = "mig"
	unknownBrandSubstitute = "\uFFFD"
)

// versionAttrs maps a versioned requirement property to the attribute holding it.
var versionAttrs = map[cuda.Property]string{
	cuda.PropCUDA:   AttrCUDADriverVersion,
	cuda.PropDriver: AttrDriverVersion,
	cuda.PropArch:   AttrComputeCapability,
}

// DeviceFacts are what a device in a ResourceSlice offers, read as the compiled selectors
// read it, so that the verdict and the scheduler agree on every device.
type DeviceFacts struct {
	Node cuda.Node
	// Product is the product name with spaces as hyphens, as GPU Feature Discovery's
	// nvidia.com/gpu.product label writes it ("NVIDIA-A100-SXM4-80GB"): what
	// spec.gpu.products names. Empty when the device publishes none.
	Product string
	// HasProduct: the device publishes a productName.
	HasProduct bool
	// Type is "gpu" or "mig" (or empty).
	Type string
	// Name is the product as published, for messages.
	Name string
}

// attribute looks name up in the driver's domain: qualified ("gpu.nvidia.com/brand") or,
// when the device belongs to that driver, unqualified ("brand"), as the scheduler's CEL
// environment resolves device.attributes["gpu.nvidia.com"].brand.
func attribute(driver string, attrs map[resourceapi.QualifiedName]resourceapi.DeviceAttribute, name string) (resourceapi.DeviceAttribute, bool) {
	if a, ok := attrs[resourceapi.QualifiedName(DRADriverName+"/"+name)]; ok {
		return a, true
	}
	if driver == DRADriverName {
		a, ok := attrs[resourceapi.QualifiedName(name)]
		return a, ok
	}
	return resourceapi.DeviceAttribute{}, false
}

// ReadDevice reads a device's facts. A fact the device does not publish, or publishes with
// another type, is unknown, and a constraint on it does not hold (as for node labels).
func ReadDevice(driver string, attrs map[resourceapi.QualifiedName]resourceapi.DeviceAttribute) DeviceFacts {
	var f DeviceFacts
	str := func(name string) (string, bool) {
		a, ok := attribute(driver, attrs, name)
		if !ok || a.StringValue == nil || !onlyString(a) {
			return "", false
		}
		return *a.StringValue, true
	}
	ver := func(name string) cuda.Version {
		a, ok := attribute(driver, attrs, name)
		if !ok || a.VersionValue == nil || !onlyVersion(a) {
			return nil
		}
		return semverVersion(*a.VersionValue)
	}
	f.Node.CUDA = ver(AttrCUDADriverVersion)
	f.Node.Driver = ver(AttrDriverVersion)
	f.Node.Arch = ver(AttrComputeCapability)
	if b, ok := str(AttrBrand); ok {
		f.Node.Brand = comparableBrand(b)
	}
	if p, ok := str(AttrProductName); ok {
		f.Name, f.Product, f.HasProduct = p, strings.ReplaceAll(p, " ", "-"), true
	}
	f.Type, _ = str(AttrType)
	return f
}

// onlyString and onlyVersion: the scheduler's CEL library takes the first set field in a
// fixed order (the lists, then int, bool, string, version), so the field read must be the
// first one set.
func onlyString(a resourceapi.DeviceAttribute) bool {
	return noLists(a) && a.IntValue == nil && a.BoolValue == nil
}

func onlyVersion(a resourceapi.DeviceAttribute) bool {
	return onlyString(a) && a.StringValue == nil
}

func noLists(a resourceapi.DeviceAttribute) bool {
	return a.IntValues == nil && a.BoolValues == nil && a.StringValues == nil && a.VersionValues == nil
}

// maxComponentPlusOne is above every component a requirement can name (cuda.Version
// components are at most 1,000,000).
const maxComponentPlusOne = 1_000_001

// semverVersion reads a semantic version as cuda.Version, keeping semver's order against
// every version a requirement can name: build metadata is ignored (as semver's precedence
// ignores it), and a pre-release X.Y.Z-rc, which sorts just below X.Y.Z, becomes a version
// just below it and above everything before it (12.4.0-rc → 12.3.1000001). 0.0.0-pre has
// nothing below it: unknown. A value that is not semver is unknown (the API server refuses
// it in a ResourceSlice).
func semverVersion(s string) cuda.Version {
	v, err := semver.Parse(s)
	if err != nil {
		return nil
	}
	if len(v.Pre) == 0 {
		return cuda.Version{v.Major, v.Minor, v.Patch}
	}
	switch {
	case v.Patch > 0:
		return cuda.Version{v.Major, v.Minor, v.Patch - 1, maxComponentPlusOne}
	case v.Minor > 0:
		return cuda.Version{v.Major, v.Minor - 1, maxComponentPlusOne}
	case v.Major > 0:
		return cuda.Version{v.Major - 1, maxComponentPlusOne}
	}
	return nil
}

// comparableBrand prepares a brand for cuda's case-insensitive comparison so that it
// agrees with CEL's lowerAscii(): brand terms are ASCII (the compiler refuses others), and
// a rune outside ASCII, which lowerAscii() keeps and Unicode case folding might equate with
// a letter (ſ with s), can match no term; an empty brand is a brand that matches no term
// (cuda reads "" as unknown, where CEL compares the empty string).
func comparableBrand(b string) string {
	if b == "" {
		return unknownBrandSubstitute
	}
	var sb strings.Builder
	for _, r := range b {
		if r >= utf8.RuneSelf {
			r = '\uFFFD'
		}
		sb.WriteRune(r)
	}
	return sb.String()
}
