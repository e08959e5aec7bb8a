package compat_test

import (
	"context"
	"fmt"
	"strings"
	"testing"

	resourceapi "k8s.io/api/resource/v1"
	"k8s.io/apimachinery/pkg/types"
	dracel "k8s.io/dynamic-resource-allocation/cel"

	"github.com/trainenv/trainenv/internal/compat"
	"github.com/trainenv/trainenv/internal/cuda"
)

// BenchmarkCheckDevices1000Nodes is BenchmarkCheck1000Nodes's cluster published through
// DRA: 1,000 nodes, one ResourceSlice of 8 GPUs each, memoised after the first pass.
func BenchmarkCheckDevices1000Nodes(b *testing.B) {
	drivers := []string{"550.54.15", "575.57.8", "580.65.6", "535.183.1", "470.256.2"}
	cudas := []string{"12.4.0", "12.9.0", "13.0.0", "12.2.0", "11.4.0"}
	rslices := make([]resourceapi.ResourceSlice, 1000)
	for i := range rslices {
		rslices[i] = nodeSlice(fmt.Sprintf("node-%d", i), 8, "NVIDIA A100-SXM4-80GB", "Nvidia", drivers[i%5], cudas[i%5], "8.0.0")
		rslices[i].UID = types.UID(fmt.Sprintf("bench-slice-%d", i))
	}
	rs := requirements(b, "cuda>=12.4")
	b.ReportAllocs()
	for b.Loop() {
		if !compat.CheckDevices(draGPU, rs, rslices).OK {
			b.Fatal("no device fits")
		}
	}
}

// realImageRequirement is what nvidia/cuda:12.4.1 images declare: 48 brand/driver
// alternatives besides cuda>=12.4.
func realImageRequirement(tb testing.TB) cuda.Requirements {
	var alts []string
	for _, driver := range []int{470, 525, 535} {
		for _, brand := range []string{"unknown", "grid", "tesla", "nvidia", "quadro", "quadrortx", "nvidiartx", "vapps", "vpc", "vcs", "vws", "cloudgaming", "geforce", "geforcertx", "titan", "titanrtx"} {
			alts = append(alts, fmt.Sprintf("brand=%s,driver>=%d,driver<%d", brand, driver, driver+1))
		}
	}
	return requirements(tb, "cuda>=12.4 "+strings.Join(alts, " "), "arch>=8.0")
}

// BenchmarkDeviceSelectorsCompile: trainenv's compile to CEL text (once per requirement
// change), and the CEL library's compile as the API server and scheduler do it (once per
// expression, cached by the scheduler).
func BenchmarkDeviceSelectorsCompile(b *testing.B) {
	rs := realImageRequirement(b)
	b.Run("trainenv", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := compat.DeviceSelectors(rs, nil); err != nil {
				b.Fatal(err)
			}
		}
	})
	selectors, err := compat.DeviceSelectors(rs, nil)
	if err != nil {
		b.Fatal(err)
	}
	b.Run("cel", func(b *testing.B) {
		compiler := dracel.GetCompiler(dracel.Features{})
		b.ReportAllocs()
		for b.Loop() {
			for _, s := range selectors {
				if r := compiler.CompileCELExpression(s, dracel.Options{}); r.Error != nil {
					b.Fatal(r.Error)
				}
			}
		}
	})
}

// BenchmarkDeviceSelectorsEval: the scheduler's evaluation of the selectors on one device,
// against the Go verdict trainenv computes for the same device.
func BenchmarkDeviceSelectorsEval(b *testing.B) {
	rs := realImageRequirement(b)
	selectors, err := compat.DeviceSelectors(rs, []string{"NVIDIA-A100-SXM4-80GB"})
	if err != nil {
		b.Fatal(err)
	}
	compiled := compileSelectors(b, selectors)
	d := gpuDevice("NVIDIA A100-SXM4-80GB", "Nvidia", "550.54.15", "12.4.0", "8.0.0")
	b.Run("cel", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			for _, r := range compiled {
				if ok, _, err := r.DeviceMatches(context.Background(), d); err != nil || !ok {
					b.Fatal(ok, err)
				}
			}
		}
	})
	b.Run("go", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if !compat.DeviceHolds(rs, []string{"NVIDIA-A100-SXM4-80GB"}, compat.ReadDevice(d.Driver, d.Attributes)) {
				b.Fatal("does not hold")
			}
		}
	})
}
