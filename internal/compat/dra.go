package compat

import (
	"fmt"
	"slices"
	"sort"
	"strings"
	"sync"

	resourceapi "k8s.io/api/resource/v1"
	"k8s.io/apimachinery/pkg/types"

	trainenvv1 "github.com/trainenv/trainenv/api/v1alpha1"
	"github.com/trainenv/trainenv/internal/cuda"
)

// DeviceHolds is the verdict for one device: the requirements hold on its facts, and its
// product is one of products when given. The selectors DeviceSelectors compiles select
// exactly the devices for which it is true.
func DeviceHolds(rs cuda.Requirements, products []string, f DeviceFacts) bool {
	return productHolds(products, f) && rs.Holds(f.Node)
}

// CheckDevices answers, for an environment asking for GPUs through Dynamic Resource
// Allocation, whether some node's ResourceSlices publish count devices of NVIDIA's DRA
// driver that satisfy the image's requirement and gpu.products. Which of them are free is
// the scheduler's business. Only the current generation of each pool counts (a driver
// replacing its slices leaves the old ones for a moment).
func CheckDevices(gpu *trainenvv1.GPUSpec, rs cuda.Requirements, rslices []resourceapi.ResourceSlice) Result {
	if gpu == nil || gpu.Count == 0 {
		return Result{OK: true, Reason: trainenvv1.ReasonNoGPURequested, Message: "CPU-only environment: any node fits"}
	}
	current := currentGenerations(rslices)
	total, ofProduct := 0, 0
	fitPerNode := map[string]int{}
	var nodes []string
	memo := map[string]bool{}
	for _, s := range driverSlices(rslices, current) {
		node := sliceNode(s)
		for _, d := range sliceDevices(s) {
			total++
			if !productHolds(gpu.Products, d.facts) {
				continue
			}
			ofProduct++
			ok, seen := memo[d.key]
			if !seen {
				ok = rs.Holds(d.facts.Node)
				memo[d.key] = ok
			}
			if ok {
				if fitPerNode[node] == 0 {
					nodes = append(nodes, node)
				}
				fitPerNode[node]++
			}
		}
	}
	most := 0
	for _, n := range fitPerNode {
		most = max(most, n)
	}
	switch {
	case total == 0:
		return Result{Reason: trainenvv1.ReasonNoGPUDevices, Message: fmt.Sprintf(
			"no ResourceSlice publishes a device of the DRA driver %s (gpu.deviceClassName %s); ask the platform team whether NVIDIA's GPU DRA driver runs, or use gpu.resourceName",
			DRADriverName, gpu.DeviceClassName)}
	case ofProduct == 0:
		return Result{Reason: trainenvv1.ReasonNoMatchingProduct, Message: fmt.Sprintf(
			"no device has a product in gpu.products %v; products available: %s",
			gpu.Products, strings.Join(deviceProducts(devicesOf(rslices, current, nil)), ", "))}
	case most == 0:
		return Result{Reason: trainenvv1.ReasonNoCompatibleNode, Message: fmt.Sprintf(
			"the image needs %s (from %s); the cluster has %s. Use an image built for an older CUDA, or ask the platform team for a newer driver",
			rs.Brief(), rs.Source, summarizeDevices(devicesOf(rslices, current, gpu.Products), constrainsArch(rs)))}
	case most < int(gpu.Count):
		return Result{Reason: trainenvv1.ReasonNoCompatibleNode, Message: fmt.Sprintf(
			"gpu.count is %d, but no node has more than %d devices that satisfy %s (from %s); lower gpu.count",
			gpu.Count, most, rs.Brief(), rs.Source)}
	}
	fit := 0
	for _, n := range fitPerNode {
		fit += n
	}
	msg := fmt.Sprintf("%d device(s) on %d node(s) fit", fit, len(nodes))
	if len(rs.All) > 0 {
		msg = fmt.Sprintf("%d device(s) on %d node(s) satisfy %s (from %s)", fit, len(nodes), rs.Brief(), rs.Source)
	}
	return Result{OK: true, Reason: trainenvv1.ReasonCompatible, Message: msg, Nodes: nodes}
}

func productHolds(products []string, f DeviceFacts) bool {
	return len(products) == 0 || (f.HasProduct && slices.Contains(products, f.Product))
}

// driverSlices are the slices of NVIDIA's DRA driver in their pool's current generation.
func driverSlices(rslices []resourceapi.ResourceSlice, current map[string]int64) []*resourceapi.ResourceSlice {
	out := make([]*resourceapi.ResourceSlice, 0, len(rslices))
	for i := range rslices {
		s := &rslices[i]
		if s.Spec.Driver == DRADriverName && s.Spec.Pool.Generation >= current[s.Spec.Pool.Name] {
			out = append(out, s)
		}
	}
	return out
}

// devicesOf lists the devices of products (all when none), for messages: the check itself
// only counts, so that a passing check at 1,000 nodes collects nothing.
func devicesOf(rslices []resourceapi.ResourceSlice, current map[string]int64, products []string) []*parsedDevice {
	var out []*parsedDevice
	for _, s := range driverSlices(rslices, current) {
		for _, d := range sliceDevices(s) {
			if productHolds(products, d.facts) {
				out = append(out, d)
			}
		}
	}
	return out
}

// currentGenerations is the highest generation of each of the driver's pools.
func currentGenerations(rslices []resourceapi.ResourceSlice) map[string]int64 {
	gen := map[string]int64{}
	for i := range rslices {
		s := &rslices[i]
		if s.Spec.Driver == DRADriverName && s.Spec.Pool.Generation > gen[s.Spec.Pool.Name] {
			gen[s.Spec.Pool.Name] = s.Spec.Pool.Generation
		}
	}
	return gen
}

// sliceNode names where a slice's devices are: its node, else its pool.
func sliceNode(s *resourceapi.ResourceSlice) string {
	if s.Spec.NodeName != nil && *s.Spec.NodeName != "" {
		return *s.Spec.NodeName
	}
	return "pool " + s.Spec.Pool.Name
}

// parsedDevice is one device's facts and a key shared by devices with the same facts.
type parsedDevice struct {
	facts DeviceFacts
	key   string
}

// Slices change when the driver republishes them (new resourceVersion): their devices are
// read once per version and kept, as nodes' labels are (factcache.go).
var sliceMemo = struct {
	sync.RWMutex
	byUID map[types.UID]parsedSlice
}{byUID: map[types.UID]parsedSlice{}}

type parsedSlice struct {
	resourceVersion string
	devices         []*parsedDevice
}

func sliceDevices(s *resourceapi.ResourceSlice) []*parsedDevice {
	if s.UID == "" || s.ResourceVersion == "" {
		return parseSlice(s)
	}
	sliceMemo.RLock()
	p, ok := sliceMemo.byUID[s.UID]
	sliceMemo.RUnlock()
	if ok && p.resourceVersion == s.ResourceVersion {
		return p.devices
	}
	devices := parseSlice(s)
	sliceMemo.Lock()
	if len(sliceMemo.byUID) >= maxCachedNodes {
		clear(sliceMemo.byUID)
	}
	sliceMemo.byUID[s.UID] = parsedSlice{resourceVersion: s.ResourceVersion, devices: devices}
	sliceMemo.Unlock()
	return devices
}

func parseSlice(s *resourceapi.ResourceSlice) []*parsedDevice {
	out := make([]*parsedDevice, len(s.Spec.Devices))
	for i := range s.Spec.Devices {
		f := ReadDevice(s.Spec.Driver, s.Spec.Devices[i].Attributes)
		out[i] = &parsedDevice{facts: f, key: fmt.Sprintf("%v", f.Node)}
	}
	return out
}

// summarizeDevices groups devices by product, driver and CUDA version: "4 devices: 2×
// NVIDIA A100-SXM4-80GB with driver 550.54.15 (CUDA 12.4), 2× Tesla T4 with driver
// 470.256.02 (CUDA 11.4)"; with arch, by compute capability too.
func summarizeDevices(devices []*parsedDevice, arch bool) string {
	counts := map[string]int{}
	for _, d := range devices {
		f := d.facts
		name := f.Name
		if !f.HasProduct {
			name = "(no productName)"
		}
		if f.Type == DeviceTypeMIG {
			name += " MIG"
		}
		key := fmt.Sprintf("%s with driver %s (CUDA %s)", name, driverString(f.Node.Driver), shortVersion(f.Node.CUDA))
		if arch {
			key += " of compute capability " + shortVersion(f.Node.Arch)
		}
		counts[key]++
	}
	keys := make([]string, 0, len(counts))
	for k := range counts {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	parts := make([]string, len(keys))
	for i, k := range keys {
		parts[i] = fmt.Sprintf("%d× %s", counts[k], k)
	}
	noun := "devices"
	if len(devices) == 1 {
		noun = "device"
	}
	return fmt.Sprintf("%d %s: %s", len(devices), noun, strings.Join(parts, ", "))
}

// shortVersion writes a CUDA version or compute capability as people do (12.4, not 12.4.0).
func shortVersion(v cuda.Version) string {
	if len(v) == 3 && v[2] == 0 {
		v = v[:2]
	}
	return orUnknown(v)
}

func deviceProducts(devices []*parsedDevice) []string {
	seen := map[string]bool{}
	for _, d := range devices {
		p := d.facts.Product
		if !d.facts.HasProduct {
			p = "(no productName)"
		}
		seen[p] = true
	}
	out := make([]string, 0, len(seen))
	for p := range seen {
		out = append(out, p)
	}
	sort.Strings(out)
	return out
}
