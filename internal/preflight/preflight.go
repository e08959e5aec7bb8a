// Package preflight checks, inside the environment's pod and before the user's processes
// start, that the GPUs the pod was given work with the image: NVML sees as many GPUs as
// were requested, the driver satisfies the CUDA requirement the pod was placed by, the GPUs
// are healthy (as the node agent judges health: package nvmlread), and, when the image has
// Python with PyTorch, torch can use CUDA on them. It runs as an init container in the
// user's image (cmd/preflight) and reports through the termination message (package report).
package preflight

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/NVIDIA/go-nvml/pkg/nvml"

	"github.com/trainenv/trainenv/internal/cuda"
	"github.com/trainenv/trainenv/internal/gpufacts"
	"github.com/trainenv/trainenv/internal/nvmlread"
	"github.com/trainenv/trainenv/internal/preflight/report"
)

// DefaultTorchTimeout bounds the torch check: a cold `import torch` reads a few hundred MB
// of libraries, and CUDA initialisation on eight GPUs takes seconds.
const DefaultTorchTimeout = 3 * time.Minute

// Config is what the preflight checks against.
type Config struct {
	NVML nvml.Interface
	// GPUs is how many GPUs (or MIG devices) the pod requested.
	GPUs int
	// Requirements are the CUDA requirements the operator placed the pod by: each image
	// NVIDIA_REQUIRE_* value or spec.cuda.require, relaxed when the environment opted into
	// minor-version compatibility. All must hold on every GPU, as libnvidia-container
	// evaluates them at container start, which CDI mode skips.
	Requirements []string
	// ImageCUDA is the CUDA version the image declares (its CUDA_VERSION), which
	// torch.version.cuda is compared with; "" skips the comparison.
	ImageCUDA string
	// Python is the interpreter of the torch check; "" means python3 on PATH.
	Python string
	// TorchTimeout bounds the torch check; 0 means DefaultTorchTimeout.
	TorchTimeout time.Duration
}

// Run runs every check and returns the report; it never stops at the first failure, so
// the user learns everything that is wrong at once.
//
// An environment without GPUs (GPUs 0) skips the GPU checks and NVML altogether: only
// `import torch` is checked, so that a broken image is found before the user is.
func Run(ctx context.Context, cfg Config) report.Report {
	var r report.Report
	var facts gpufacts.Facts
	if cfg.GPUs > 0 {
		facts = nvmlread.Read(cfg.NVML)
		checkGPUs(&r, facts, cfg)
	} else {
		r.Skip("%s", report.SkippedNoGPU)
	}
	checkTorch(ctx, &r, cfg, facts)
	r.Finish()
	return r
}

// checkGPUs checks what NVML shows the container: the count, health and the requirement.
func checkGPUs(r *report.Report, f gpufacts.Facts, cfg Config) {
	if f.NVML != gpufacts.NVMLOK {
		r.Fail("the container cannot use the NVIDIA driver: %s", f.Error)
		return
	}
	r.Driver = f.DriverVersion
	if f.CUDA != nil {
		r.CUDA = f.CUDA.String()
	}
	visible := 0
	var migWithoutDevices []string
	for _, g := range f.GPUs {
		rg := report.GPU{Product: g.Product}
		if g.Compute != nil {
			rg.Compute = g.Compute.String()
		}
		n := 1
		if g.MIGEnabled != nil && *g.MIGEnabled && g.MIGDevices != nil {
			// A MIG-enabled GPU runs CUDA only in its MIG devices: count those.
			n, rg.MIG = *g.MIGDevices, *g.MIGDevices
			if n == 0 {
				migWithoutDevices = append(migWithoutDevices, fmt.Sprint(g.Index))
			}
		}
		visible += n
		r.GPUs = append(r.GPUs, rg)
	}
	checkCount(r, visible, cfg.GPUs, migWithoutDevices)
	for _, p := range f.Problems {
		r.Fail("unhealthy GPU: %s; the pod must move to another node (ask the platform team to drain and repair this one)", p)
	}
	checkRequirements(r, f, cfg.Requirements)
}

func checkCount(r *report.Report, visible, requested int, migWithoutDevices []string) {
	switch {
	case visible < requested:
		msg := fmt.Sprintf("the pod requested %d GPU(s) but the container sees %d", requested, visible)
		if len(migWithoutDevices) > 0 {
			msg += fmt.Sprintf(" (GPU %s has MIG enabled and no MIG device given to the container: CUDA cannot use it; request a MIG resource such as nvidia.com/mig-1g.10gb)", strings.Join(migWithoutDevices, ", "))
		} else {
			msg += " (is the NVIDIA device plugin handing out GPUs, and the NVIDIA container runtime set for the pod?)"
		}
		r.Fail("%s", msg)
	case visible > requested:
		// More than asked for means the runtime exposed GPUs the device plugin did not
		// allocate (e.g. NVIDIA_VISIBLE_DEVICES=all honoured for an unprivileged pod): the
		// environment could use, and disturb, GPUs allocated to others.
		r.Fail("the container sees %d GPUs but the pod requested %d: GPU isolation is not in effect on this node (the container runtime exposes GPUs the device plugin did not allocate); ask the platform team to fix the node's NVIDIA runtime configuration", visible, requested)
	}
}

// checkRequirements evaluates the requirement per GPU (arch and brand are per GPU), as
// libnvidia-container does; GPUs that fail alike are reported once.
func checkRequirements(r *report.Report, f gpufacts.Facts, values []string) {
	rs, err := cuda.FromValues(values, "the requirement the pod was placed by")
	if err != nil {
		r.Fail("%v", err)
		return
	}
	if len(rs.All) == 0 {
		return
	}
	driver, _ := cuda.ParseVersion(f.DriverVersion)
	var supported cuda.Version
	if f.CUDA != nil {
		supported, _ = cuda.ParseVersion(f.CUDA.String())
	}
	var order []string
	failing := map[string][]string{}
	for _, g := range f.GPUs {
		node := cuda.Node{Driver: driver, CUDA: supported, Brand: g.Brand}
		cc := "unknown"
		if g.Compute != nil {
			cc = g.Compute.String()
			node.Arch, _ = cuda.ParseVersion(cc)
		}
		if rs.Holds(node) {
			continue
		}
		key := fmt.Sprintf("%s, compute capability %s, brand %s", orUnknown(g.Product), cc, orUnknown(g.Brand))
		if failing[key] == nil {
			order = append(order, key)
		}
		failing[key] = append(failing[key], fmt.Sprint(g.Index))
	}
	for _, key := range order {
		r.Fail("GPU %s (%s) with driver %s (CUDA %s) does not satisfy %s: the image will not run here. The node's driver changed since the pod was placed, or its GPU labels are wrong; ask the platform team to check the node",
			strings.Join(failing[key], ","), key, orUnknown(f.DriverVersion), orUnknown(supported.String()), rs.Brief())
	}
}

func orUnknown(s string) string {
	if s == "" {
		return "unknown"
	}
	return s
}
