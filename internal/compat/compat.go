// Package compat decides whether any node can run an environment. It is a chain of small
// pure checks over facts gathered first (the nodes), each returning a stable reason and a
// message that says what to do. The CUDA/driver checks join this chain.
package compat

import (
	"fmt"
	"sort"
	"strings"

	corev1 "k8s.io/api/core/v1"

	trainenvv1 "github.com/trainenv/trainenv/api/v1alpha1"
)

// LabelGPUProduct is the NVIDIA GPU Feature Discovery node label naming the GPU product.
const LabelGPUProduct = "nvidia.com/gpu.product"

// Result is the verdict of the checks.
type Result struct {
	OK      bool
	Reason  string
	Message string
	// Nodes are the names of the nodes that fit (sorted), when OK.
	Nodes []string
}

// Check returns whether some node can run an environment needing gpu.
func Check(gpu *trainenvv1.GPUSpec, nodes []corev1.Node) Result {
	if gpu == nil || gpu.Count == 0 {
		return Result{OK: true, Reason: trainenvv1.ReasonNoGPURequested, Message: "CPU-only environment: any node fits"}
	}
	resourceName := corev1.ResourceName(gpu.ResourceName)
	var withGPUs, fit []string
	products := map[string]bool{}
	for i := range nodes {
		n := &nodes[i]
		capacity, ok := n.Status.Allocatable[resourceName]
		if !ok || capacity.Value() < int64(gpu.Count) {
			continue
		}
		withGPUs = append(withGPUs, n.Name)
		product := n.Labels[LabelGPUProduct]
		products[product] = true
		if len(gpu.Products) == 0 || contains(gpu.Products, product) {
			fit = append(fit, n.Name)
		}
	}
	switch {
	case len(withGPUs) == 0:
		return Result{Reason: trainenvv1.ReasonNoGPUNodes, Message: fmt.Sprintf(
			"no node has %d allocatable %s; lower gpu.count or ask the platform team for GPU nodes (is the device plugin running?)",
			gpu.Count, gpu.ResourceName)}
	case len(fit) == 0:
		return Result{Reason: trainenvv1.ReasonNoMatchingProduct, Message: fmt.Sprintf(
			"no node with %d %s has a product in gpu.products %v; products available: %s",
			gpu.Count, gpu.ResourceName, gpu.Products, strings.Join(sortedKeys(products), ", "))}
	}
	sort.Strings(fit)
	return Result{OK: true, Reason: trainenvv1.ReasonCompatible, Message: fmt.Sprintf("%d node(s) fit", len(fit)), Nodes: fit}
}

func contains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}

func sortedKeys(m map[string]bool) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		if k == "" {
			k = "(unlabelled)"
		}
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}
