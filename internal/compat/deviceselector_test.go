package compat_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/blang/semver/v4"
	. "github.com/onsi/gomega"
	resourceapi "k8s.io/api/resource/v1"
	dracel "k8s.io/dynamic-resource-allocation/cel"
	"k8s.io/utils/ptr"

	"github.com/trainenv/trainenv/internal/compat"
	"github.com/trainenv/trainenv/internal/cuda"
)

// compiledSelectors are selectors compiled with the CEL library kube-scheduler's allocator
// uses (k8s.io/dynamic-resource-allocation/cel): each must compile within the API's cost
// limit.
type compiledSelectors []dracel.CompilationResult

func compileSelectors(t testing.TB, selectors []string) compiledSelectors {
	t.Helper()
	compiler := dracel.GetCompiler(dracel.Features{})
	out := make(compiledSelectors, len(selectors))
	for i, s := range selectors {
		r := compiler.CompileCELExpression(s, dracel.Options{})
		if r.Error != nil {
			t.Fatalf("selector does not compile: %v\n%s", r.Error, s)
		}
		if r.MaxCost > resourceapi.CELSelectorExpressionMaxCost {
			t.Fatalf("selector's estimated cost %d is above the API's limit %d:\n%s", r.MaxCost, resourceapi.CELSelectorExpressionMaxCost, s)
		}
		out[i] = r
	}
	return out
}

// selects evaluates the selectors on a device as the allocator does: all must hold, and a
// runtime error is a failure (the scheduler would report it for the whole claim).
func (cs compiledSelectors) selects(t testing.TB, d dracel.Device) bool {
	t.Helper()
	for _, r := range cs {
		ok, _, err := r.DeviceMatches(context.Background(), d)
		if err != nil {
			t.Fatalf("selector failed at run time on %v: %v\n%s", d.Attributes, err, r.Expression)
		}
		if !ok {
			return false
		}
	}
	return true
}

func schedulerSelects(t testing.TB, selectors []string, d dracel.Device) bool {
	t.Helper()
	return compileSelectors(t, selectors).selects(t, d)
}

// gpuDevice builds a device as NVIDIA's DRA driver publishes it.
func gpuDevice(product, brand, driver, cudaVersion, compute string) dracel.Device {
	return dracel.Device{Driver: compat.DRADriverName, Attributes: map[resourceapi.QualifiedName]resourceapi.DeviceAttribute{
		compat.AttrType:              {StringValue: ptr.To(compat.DeviceTypeGPU)},
		compat.AttrProductName:       {StringValue: ptr.To(product)},
		compat.AttrBrand:             {StringValue: ptr.To(brand)},
		compat.AttrDriverVersion:     {VersionValue: ptr.To(driver)},
		compat.AttrCUDADriverVersion: {VersionValue: ptr.To(cudaVersion)},
		compat.AttrComputeCapability: {VersionValue: ptr.To(compute)},
	}}
}

func TestDeviceSelectorsOnDriverDevices(t *testing.T) {
	h100 := gpuDevice("NVIDIA H100 80GB HBM3", "Nvidia", "580.105.8", "13.0.0", "9.0.0")
	a100 := gpuDevice("NVIDIA A100-SXM4-80GB", "Nvidia", "550.54.15", "12.4.0", "8.0.0")
	t4 := gpuDevice("Tesla T4", "Tesla", "470.256.2", "11.4.0", "7.5.0")
	devices := map[string]dracel.Device{"h100": h100, "a100": a100, "t4": t4}
	cases := []struct {
		name     string
		req      []string
		products []string
		selected []string
	}{
		{"cuda 13.0", []string{"cuda>=13.0"}, nil, []string{"h100"}},
		{"cuda 12.4", []string{"cuda>=12.4"}, nil, []string{"a100", "h100"}},
		{"cuda 11.4", []string{"cuda>=11.4"}, nil, []string{"a100", "h100", "t4"}},
		{"arch 9.0", []string{"arch>=9.0"}, nil, []string{"h100"}},
		{"product", nil, []string{"Tesla-T4"}, []string{"t4"}},
		{"brand any case", []string{"brand=TESLA"}, nil, []string{"t4"}},
		{"driver range as CUDA images write it", []string{"cuda>=12.0 brand=tesla,driver>=470,driver<471"}, nil, []string{"a100", "h100", "t4"}},
		{"driver with a fourth component", []string{"driver>=550.54.15.1"}, nil, []string{"h100"}},
		{"no requirement", nil, nil, []string{"a100", "h100", "t4"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			g := NewWithT(t)
			selectors, err := compat.DeviceSelectors(requirements(t, tc.req...), tc.products)
			g.Expect(err).NotTo(HaveOccurred())
			var got []string
			for name, d := range devices {
				if schedulerSelects(t, selectors, d) {
					got = append(got, name)
				}
			}
			g.Expect(got).To(ConsistOf(tc.selected), strings.Join(selectors, "\n"))
		})
	}
}

// The requirement nvidia/cuda images declare (48 brand/driver alternatives) must fit the
// API's limits on selectors.
func TestRealCUDAImageRequirementFitsSelectors(t *testing.T) {
	g := NewWithT(t)
	var alts []string
	for _, driver := range []int{470, 525, 535} {
		for _, brand := range []string{"unknown", "grid", "tesla", "nvidia", "quadro", "quadrortx", "nvidiartx", "vapps", "vpc", "vcs", "vws", "cloudgaming", "geforce", "geforcertx", "titan", "titanrtx"} {
			alts = append(alts, fmt.Sprintf("brand=%s,driver>=%d,driver<%d", brand, driver, driver+1))
		}
	}
	rs := cuda.WithMinorVersionCompatibility(requirements(t, "cuda>=12.4 "+strings.Join(alts, " ")))
	selectors, err := compat.DeviceSelectors(rs, []string{"NVIDIA-A100-SXM4-80GB"})
	g.Expect(err).NotTo(HaveOccurred())
	for _, s := range selectors {
		g.Expect(len(s)).To(BeNumerically("<=", resourceapi.CELSelectorExpressionMaxLength))
	}
	a100 := gpuDevice("NVIDIA A100-SXM4-80GB", "Nvidia", "535.183.1", "12.2.0", "8.0.0")
	g.Expect(schedulerSelects(t, selectors, a100)).To(BeTrue(), "minor-version compatibility: 12.4 on a 12.2 driver ≥ 525.60.13")
	t.Logf("%d alternatives → %d selectors of %d bytes", len(rs.All[0]), len(selectors), len(selectors[0]))
}

// The selectors test presence, not type (CEL's cost estimate of type() is unbounded, and
// the API server refuses such selectors): a device publishing a fact with another type than
// NVIDIA's driver makes the scheduler fail the claim with a CEL runtime error naming the
// device, and the verdict calls the device incompatible. Both refuse; neither places.
func TestWronglyTypedAttributeFailsTheClaim(t *testing.T) {
	g := NewWithT(t)
	d := gpuDevice("Tesla T4", "Tesla", "470.256.2", "11.4.0", "7.5.0")
	d.Attributes[compat.AttrCUDADriverVersion] = resourceapi.DeviceAttribute{StringValue: ptr.To("11.4")}
	selectors, err := compat.DeviceSelectors(requirements(t, "cuda>=11.0"), nil)
	g.Expect(err).NotTo(HaveOccurred())
	r := dracel.GetCompiler(dracel.Features{}).CompileCELExpression(selectors[0], dracel.Options{})
	g.Expect(r.Error).To(BeNil())
	_, _, err = r.DeviceMatches(context.Background(), d)
	g.Expect(err).To(MatchError(ContainSubstring("no such overload")))
	g.Expect(compat.DeviceHolds(requirements(t, "cuda>=11.0"), nil, compat.ReadDevice(d.Driver, d.Attributes))).To(BeFalse())
}

func TestDeviceSelectorsRefuseNonASCIIBrands(t *testing.T) {
	_, err := compat.DeviceSelectors(requirements(t, "brand=teſla"), nil)
	NewWithT(t).Expect(err).To(MatchError(ContainSubstring("only ASCII brands")))
}

// deviceGen draws device attribute sets as a driver, a misconfigured driver or another
// driver might publish them: facts present or absent, qualified or not, versions with
// pre-release and build parts, brands in any case, empty or not ASCII. Each attribute has
// the type NVIDIA's driver gives it (see TestWronglyTypedAttributeFailsTheClaim).
type deviceGen struct{ rng *rand.Rand }

func (g deviceGen) pick(xs ...string) string { return xs[g.rng.IntN(len(xs))] }

var (
	genDrivers  = []string{"450.80.2", "470.82.1", "470.256.2", "525.60.13", "535.104.5", "550.54.15", "570.26.0", "580.65.6", "580.105.8", "1.0.0-rc.1", "550.0.0-beta", "550.54.15+build.7", "470.0.0"}
	genCUDAs    = []string{"11.0.0", "11.4.0", "12.0.0", "12.2.0", "12.4.0", "12.8.0", "13.0.0", "12.4.0-rc.1", "13.0.0-alpha", "12.4.1", "12.0.0+x"}
	genArchs    = []string{"7.0.0", "7.5.0", "8.0.0", "8.6.0", "9.0.0", "10.0.0", "9.0.0-pre", "10.0.1"}
	genBrands   = []string{"Tesla", "Nvidia", "GeForce", "NvidiaRTX", "Unknown", "tesla", "TESLA", "", "Teſla", "QuadroRTX"}
	genProducts = []string{"NVIDIA H100 80GB HBM3", "NVIDIA A100-SXM4-80GB", "Tesla T4", "NVIDIA-A100-SXM4-80GB", ""}
)

func (g deviceGen) device() dracel.Device {
	driver := compat.DRADriverName
	if g.rng.IntN(10) == 0 {
		driver = "other.example.com"
	}
	d := dracel.Device{Driver: driver, Attributes: map[resourceapi.QualifiedName]resourceapi.DeviceAttribute{}}
	set := func(name string, a resourceapi.DeviceAttribute) {
		switch g.rng.IntN(10) {
		case 0: // absent
		case 1:
			d.Attributes[resourceapi.QualifiedName(compat.DRADriverName+"/"+name)] = a
		default:
			d.Attributes[resourceapi.QualifiedName(name)] = a
		}
	}
	version := func(name string, values []string) {
		set(name, resourceapi.DeviceAttribute{VersionValue: ptr.To(g.pick(values...))})
	}
	version(compat.AttrDriverVersion, genDrivers)
	version(compat.AttrCUDADriverVersion, genCUDAs)
	version(compat.AttrComputeCapability, genArchs)
	set(compat.AttrBrand, resourceapi.DeviceAttribute{StringValue: ptr.To(g.pick(genBrands...))})
	set(compat.AttrProductName, resourceapi.DeviceAttribute{StringValue: ptr.To(g.pick(genProducts...))})
	return d
}

func (g deviceGen) constraint() string {
	ops := []string{"=", "!=", "<", "<=", ">", ">="}
	version := func(v string) string {
		v, _, _ = strings.Cut(v, "-")
		v, _, _ = strings.Cut(v, "+")
		parts := strings.Split(v, ".")
		switch g.rng.IntN(5) {
		case 0:
			return parts[0]
		case 1:
			return parts[0] + "." + parts[1]
		case 2:
			return v + "." + g.pick("0", "1", "5")
		}
		return v
	}
	switch g.rng.IntN(4) {
	case 0:
		return "cuda" + g.pick(ops...) + version(g.pick(genCUDAs...))
	case 1:
		return "driver" + g.pick(ops...) + version(g.pick(genDrivers...))
	case 2:
		return "arch" + g.pick(ops...) + version(g.pick(genArchs...))
	default:
		return "brand" + g.pick("=", "!=") + g.pick("tesla", "Nvidia", "GEFORCE", "nvidiartx", "unknown", `q"uadro\`)
	}
}

func (g deviceGen) requirements(t testing.TB) cuda.Requirements {
	var values []string
	for range 1 + g.rng.IntN(2) {
		var alts []string
		for range 1 + g.rng.IntN(4) {
			var cs []string
			for range 1 + g.rng.IntN(3) {
				cs = append(cs, g.constraint())
			}
			alts = append(alts, strings.Join(cs, ","))
		}
		values = append(values, strings.Join(alts, " "))
	}
	rs := requirements(t, values...)
	if g.rng.IntN(4) == 0 {
		rs = cuda.WithMinorVersionCompatibility(rs)
	}
	return rs
}

func (g deviceGen) products() []string {
	switch g.rng.IntN(3) {
	case 0:
		return []string{g.pick("NVIDIA-A100-SXM4-80GB", "Tesla-T4")}
	case 1:
		return []string{"NVIDIA-H100-80GB-HBM3", "Tesla-T4"}
	}
	return nil
}

// The compiled selectors, evaluated by the scheduler's own CEL library, select exactly the
// devices the Go verdict finds compatible: random requirements over random devices.
func TestDeviceSelectorsAgreeWithVerdict(t *testing.T) {
	gen := deviceGen{rand.New(rand.NewPCG(3, 4))}
	var devices []dracel.Device
	for range 80 {
		devices = append(devices, gen.device())
	}
	checked, selected := 0, 0
	for range 250 {
		rs, products := gen.requirements(t), gen.products()
		selectors, err := compat.DeviceSelectors(rs, products)
		if err != nil {
			t.Fatalf("%s: %v", rs, err)
		}
		checked++
		compiled := compileSelectors(t, selectors)
		for _, d := range devices {
			verdict := compat.DeviceHolds(rs, products, compat.ReadDevice(d.Driver, d.Attributes))
			got := compiled.selects(t, d)
			if got != verdict {
				t.Fatalf("requirement %s, products %v on device %s %v: scheduler selects=%v, verdict compatible=%v\nselectors:\n%s",
					rs, products, d.Driver, d.Attributes, got, verdict, strings.Join(selectors, "\n"))
			}
			if got {
				selected++
			}
		}
	}
	if selected == 0 || selected == checked*len(devices) {
		t.Fatalf("weak sample: %d requirements, %d selections", checked, selected)
	}
	t.Logf("%d requirements × %d devices, %d selected", checked, len(devices), selected)
}

// FuzzDeviceSelectors: whatever the requirement and whatever a device publishes, the
// selectors compile, never fail at run time, and agree with the verdict.
func FuzzDeviceSelectors(f *testing.F) {
	f.Add("cuda>=12.4", "Tesla", "550.54.15", "12.4.0", "8.0.0", "NVIDIA A100-SXM4-80GB", "NVIDIA-A100-SXM4-80GB", true)
	f.Add("driver>=470.57.02.1 brand=nvidia", "NVIDIA", "470.57.2", "11.4.0-rc.1", "7.5.0", "Tesla T4", "", false)
	f.Add("arch>=9.0,arch<10.0", "", "1.0.0", "0.0.0-pre", "9.0.0+b", "", "Tesla-T4", true)
	f.Add("brand!=teſla", "Teſla", "x", "12", "9.0", "a b  c", "a-b--c", false)
	f.Fuzz(func(t *testing.T, requirement, brand, driver, cudaVersion, compute, product, wantProduct string, qualified bool) {
		rs, err := cuda.FromValues([]string{requirement}, "fuzz")
		if err != nil {
			return
		}
		var products []string
		if wantProduct != "" {
			products = []string{wantProduct}
		}
		selectors, err := compat.DeviceSelectors(rs, products)
		if err != nil {
			return // a non-ASCII brand or a requirement too long: refused, nothing created
		}
		d := dracel.Device{Driver: compat.DRADriverName, Attributes: map[resourceapi.QualifiedName]resourceapi.DeviceAttribute{}}
		name := func(n string) resourceapi.QualifiedName {
			if qualified {
				return resourceapi.QualifiedName(compat.DRADriverName + "/" + n)
			}
			return resourceapi.QualifiedName(n)
		}
		for attr, v := range map[string]string{compat.AttrDriverVersion: driver, compat.AttrCUDADriverVersion: cudaVersion, compat.AttrComputeCapability: compute} {
			if !validSemver(v) {
				continue // the API server refuses it in a ResourceSlice
			}
			d.Attributes[name(attr)] = resourceapi.DeviceAttribute{VersionValue: ptr.To(v)}
		}
		for attr, v := range map[string]string{compat.AttrBrand: brand, compat.AttrProductName: product} {
			if len(v) > resourceapi.DeviceAttributeMaxValueLength || !isUTF8(v) {
				continue
			}
			d.Attributes[name(attr)] = resourceapi.DeviceAttribute{StringValue: ptr.To(v)}
		}
		verdict := compat.DeviceHolds(rs, products, compat.ReadDevice(d.Driver, d.Attributes))
		if got := schedulerSelects(t, selectors, d); got != verdict {
			t.Fatalf("requirement %s on %v: scheduler selects=%v, verdict compatible=%v\n%s", rs, d.Attributes, got, verdict, strings.Join(selectors, "\n"))
		}
	})
}

// validSemver is what the API server accepts as a version attribute.
func validSemver(s string) bool {
	_, err := semver.Parse(s)
	return err == nil && len(s) <= resourceapi.DeviceAttributeMaxValueLength
}

func isUTF8(s string) bool { return utf8.ValidString(s) }
