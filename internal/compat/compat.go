// Package compat decides where an environment can run: enough GPUs of the requested
// resource and product, and a driver that satisfies the image's CUDA requirement (read as
// libnvidia-container reads it). It gathers facts first (the nodes' labels), then runs
// small pure checks, each with a stable reason and a message that says what to do; and it
// renders the node affinity that admits exactly the nodes it found compatible.
package compat

import (
	"fmt"
	"slices"
	"sort"
	"strings"

	corev1 "k8s.io/api/core/v1"

	trainenvv1 "github.com/trainenv/trainenv/api/v1alpha1"
	"github.com/trainenv/trainenv/internal/cuda"
	"github.com/trainenv/trainenv/internal/gpufacts"
)

// LabelGPUProduct is the NVIDIA GPU Feature Discovery node label naming the GPU product.
const LabelGPUProduct = gpufacts.LabelProduct

// Result is the verdict of the checks.
type Result struct {
	OK      bool
	Reason  string
	Message string
	// Nodes are the names of the nodes that fit, in the order given, when OK (not sorted:
	// every pass checks every node, and sorting a thousand names was a third of a check).
	Nodes []string
}

// Check returns whether some node can run an environment needing gpu, with an image whose
// CUDA requirements are rs.
func Check(gpu *trainenvv1.GPUSpec, rs cuda.Requirements, nodes []corev1.Node) Result {
	if gpu == nil || gpu.Count == 0 {
		return Result{OK: true, Reason: trainenvv1.ReasonNoGPURequested, Message: "CPU-only environment: any node fits"}
	}
	resourceName := corev1.ResourceName(gpu.ResourceName)
	var withGPUs, ofProduct, fit []*corev1.Node
	unhealthy := 0
	memo := verdicts{rs: rs, byFact: map[string]bool{}}
	for i := range nodes {
		n := &nodes[i]
		capacity, ok := n.Status.Allocatable[resourceName]
		if !ok || capacity.Value() < int64(gpu.Count) {
			continue
		}
		withGPUs = append(withGPUs, n)
		if len(gpu.Products) > 0 && !slices.Contains(gpu.Products, n.Labels[LabelGPUProduct]) {
			continue
		}
		ofProduct = append(ofProduct, n)
		if n.Labels[gpufacts.LabelHealthy] == "false" {
			unhealthy++
			continue
		}
		if memo.holds(schemeFacts(n)) {
			fit = append(fit, n)
		}
	}
	switch {
	case len(withGPUs) == 0:
		return Result{Reason: trainenvv1.ReasonNoGPUNodes, Message: fmt.Sprintf(
			"no node has %d allocatable %s; lower gpu.count or ask the platform team for GPU nodes (is the device plugin running?)",
			gpu.Count, gpu.ResourceName)}
	case len(ofProduct) == 0:
		return Result{Reason: trainenvv1.ReasonNoMatchingProduct, Message: fmt.Sprintf(
			"no node with %d %s has a product in gpu.products %v; products available: %s",
			gpu.Count, gpu.ResourceName, gpu.Products, strings.Join(products(withGPUs), ", "))}
	case len(fit) == 0 && unhealthy == len(ofProduct):
		return Result{Reason: trainenvv1.ReasonNoCompatibleNode, Message: fmt.Sprintf(
			"every node with %d %s reports an unhealthy GPU (label %s=false; see the node's %s annotation); ask the platform team to repair them",
			gpu.Count, gpu.ResourceName, gpufacts.LabelHealthy, gpufacts.AnnotationFacts)}
	case len(fit) == 0:
		return Result{Reason: trainenvv1.ReasonNoCompatibleNode, Message: fmt.Sprintf(
			"the image needs %s (from %s); the cluster has %s. Use an image built for an older CUDA, or ask the platform team for a newer driver",
			rs.Brief(), rs.Source, summarize(ofProduct, constrainsArch(rs)))}
	}
	names := make([]string, len(fit))
	for i, n := range fit {
		names[i] = n.Name
	}
	msg := fmt.Sprintf("%d node(s) fit", len(fit))
	if len(rs.All) > 0 {
		msg = fmt.Sprintf("%d node(s) satisfy %s (from %s)", len(fit), rs.Brief(), rs.Source)
	}
	return Result{OK: true, Reason: trainenvv1.ReasonCompatible, Message: msg, Nodes: names}
}

// summarize groups nodes by driver and CUDA version: "3 nodes with driver 535.104.05 (CUDA
// 12.2), 1 node with no GPU facts"; with arch, by compute capability too.
func summarize(nodes []*corev1.Node, arch bool) string {
	counts := map[string]int{}
	for _, n := range nodes {
		f := bestFacts(schemeFacts(n).facts)
		key := "no GPU driver facts (no GPU Feature Discovery or trainenv agent labels)"
		switch {
		case arch && (f.Driver != nil || f.CUDA != nil || f.Arch != nil):
			key = fmt.Sprintf("driver %s (CUDA %s) and GPUs of compute capability %s", driverString(f.Driver), orUnknown(f.CUDA), orUnknown(f.Arch))
		case f.Driver != nil || f.CUDA != nil:
			key = fmt.Sprintf("driver %s (CUDA %s)", driverString(f.Driver), orUnknown(f.CUDA))
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
		noun := "nodes"
		if counts[k] == 1 {
			noun = "node"
		}
		parts[i] = fmt.Sprintf("%d %s with %s", counts[k], noun, k)
	}
	return strings.Join(parts, " and ")
}

// constrainsArch tells whether rs says anything about the compute capability (an image's
// TORCH_CUDA_ARCH_LIST, or arch terms): the message then names the nodes' capabilities.
func constrainsArch(rs cuda.Requirements) bool {
	for _, req := range rs.All {
		for _, alt := range req {
			for _, c := range alt {
				if c.Property == cuda.PropArch {
					return true
				}
			}
		}
	}
	return false
}

// driverString writes a driver version as NVIDIA does, with a two-digit revision
// (470.256.02, not 470.256.2), so that users recognise it.
func driverString(v cuda.Version) string {
	if len(v) != 3 {
		return orUnknown(v)
	}
	return fmt.Sprintf("%d.%d.%02d", v[0], v[1], v[2])
}

func orUnknown(v cuda.Version) string {
	if v == nil {
		return "unknown"
	}
	return v.String()
}

func products(nodes []*corev1.Node) []string {
	seen := map[string]bool{}
	for _, n := range nodes {
		p := n.Labels[LabelGPUProduct]
		if p == "" {
			p = "(unlabelled)"
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
