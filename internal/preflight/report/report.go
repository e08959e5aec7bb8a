// Package report is the result of the in-pod preflight as it travels from the pod to the
// operator: compact JSON in the preflight container's termination message, which the
// kubelet copies into the pod's status. It links no NVML, so the manager can read it.
package report

import (
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"unicode/utf8"
)

// MaxMessage is the most the kubelet keeps of a container's termination message (4096
// bytes; all containers of a pod together get at most 12 KiB).
const MaxMessage = 4096

// Report is what the preflight found. Failures make it fail; Warnings and Skipped do not.
type Report struct {
	Passed bool `json:"passed"`
	// Failures are the exact reasons the environment cannot work on this node.
	Failures []string `json:"failures,omitempty"`
	// Warnings are worth telling the user but do not stop the environment.
	Warnings []string `json:"warnings,omitempty"`
	// Skipped are the checks that did not apply, with why (e.g. no torch in the image).
	Skipped []string `json:"skipped,omitempty"`
	// Driver is the driver version NVML reports.
	Driver string `json:"driver,omitempty"`
	// CUDA is the highest CUDA version the driver supports.
	CUDA string `json:"cuda,omitempty"`
	// GPUs are the GPUs the container sees.
	GPUs []GPU `json:"gpus,omitempty"`
	// Torch is what the image's PyTorch reported; nil when it did not run.
	Torch *Torch `json:"torch,omitempty"`
}

// GPU is one GPU the container sees.
type GPU struct {
	Product string `json:"product,omitempty"`
	// Compute is the compute capability, e.g. "8.0".
	Compute string `json:"cc,omitempty"`
	// MIG is the number of the GPU's MIG devices given to the container (0: MIG is off).
	MIG int `json:"mig,omitempty"`
}

// Torch is what `import torch` reported.
type Torch struct {
	Version string `json:"version,omitempty"`
	// CUDA is torch.version.cuda, the CUDA torch was built with ("" for a CPU-only build).
	CUDA      string `json:"cuda,omitempty"`
	Available bool   `json:"available"`
	Devices   int    `json:"devices,omitempty"`
}

// SkippedNoGPU is the skipped entry of an environment that requested no GPU.
const SkippedNoGPU = "GPU checks: the environment requests no GPU"

// Fail records a failure.
func (r *Report) Fail(format string, args ...any) {
	r.Failures = append(r.Failures, fmt.Sprintf(format, args...))
}

// Warn records a warning.
func (r *Report) Warn(format string, args ...any) {
	r.Warnings = append(r.Warnings, fmt.Sprintf(format, args...))
}

// Skip records a check that did not apply.
func (r *Report) Skip(format string, args ...any) {
	r.Skipped = append(r.Skipped, fmt.Sprintf(format, args...))
}

// Finish sets Passed from the failures.
func (r *Report) Finish() { r.Passed = len(r.Failures) == 0 }

// GPUSummary groups the GPUs: "2x NVIDIA A100-SXM4-80GB (cc 8.0)", MIG devices counted.
func (r Report) GPUSummary() []string {
	var order []string
	counts := map[string]int{}
	for _, g := range r.GPUs {
		key := fmt.Sprintf("%s (cc %s)", orUnknown(g.Product), orUnknown(g.Compute))
		n := 1
		if g.MIG > 0 {
			key = fmt.Sprintf("MIG device of %s", key)
			n = g.MIG
		}
		if counts[key] == 0 {
			order = append(order, key)
		}
		counts[key] += n
	}
	out := make([]string, len(order))
	for i, k := range order {
		out[i] = fmt.Sprintf("%dx %s", counts[k], k)
	}
	return out
}

// TorchSummary says what torch reported, or why it did not run.
func (r Report) TorchSummary() string {
	if t := r.Torch; t != nil {
		s := fmt.Sprintf("torch %s (CUDA %s)", t.Version, orUnknown(t.CUDA))
		if t.Available {
			return fmt.Sprintf("%s sees %d GPU(s)", s, t.Devices)
		}
		return s + ": CUDA not available"
	}
	for _, s := range r.Skipped {
		if strings.HasPrefix(s, "torch") {
			return s
		}
	}
	return ""
}

// Summary is one line for people: what passed, or every failure.
func (r Report) Summary() string {
	if !r.Passed {
		return strings.Join(r.Failures, "; ")
	}
	var parts []string
	if r.Driver == "" && len(r.GPUs) == 0 && slices.Contains(r.Skipped, SkippedNoGPU) {
		parts = append(parts, "GPU checks skipped (no GPU requested)")
	} else {
		parts = append(parts, fmt.Sprintf("driver %s (CUDA %s)", orUnknown(r.Driver), orUnknown(r.CUDA)))
		parts = append(parts, r.GPUSummary()...)
	}
	if t := r.TorchSummary(); t != "" {
		parts = append(parts, t)
	}
	return strings.Join(parts, ", ")
}

func orUnknown(s string) string {
	if s == "" {
		return "unknown"
	}
	return s
}

// Encode renders r for the termination message, within MaxMessage bytes. When the full
// report does not fit (many GPUs, long errors), details go first and failures last, so the
// reason a pod cannot start always reaches the operator.
func Encode(r Report) []byte {
	out, _ := json.Marshal(r)
	if len(out) <= MaxMessage {
		return out
	}
	// Many GPUs of one kind say the same: keep the first of each kind.
	r.GPUs = distinctGPUs(r.GPUs)
	r.Skipped = nil
	for _, limit := range []int{512, 256, 128} {
		r.Failures, r.Warnings = clip(r.Failures, limit), clip(r.Warnings, limit)
		if out, _ = json.Marshal(r); len(out) <= MaxMessage {
			return out
		}
	}
	r.GPUs, r.Warnings = nil, nil
	for len(r.Failures) > 1 {
		if out, _ = json.Marshal(r); len(out) <= MaxMessage {
			return out
		}
		r.Failures = r.Failures[:len(r.Failures)-1]
	}
	out, _ = json.Marshal(r)
	return out
}

func distinctGPUs(gpus []GPU) []GPU {
	var out []GPU
	seen := map[GPU]bool{}
	for _, g := range gpus {
		if !seen[g] {
			seen[g] = true
			out = append(out, g)
		}
	}
	return out
}

func clip(msgs []string, limit int) []string {
	out := make([]string, len(msgs))
	for i, m := range msgs {
		if len(m) > limit {
			cut := limit
			for cut > 0 && !utf8.RuneStart(m[cut]) {
				cut--
			}
			m = m[:cut] + "…"
		}
		out[i] = m
	}
	return out
}

// Decode reads a termination message written by Encode.
func Decode(message string) (Report, error) {
	var r Report
	if err := json.Unmarshal([]byte(message), &r); err != nil {
		return Report{}, fmt.Errorf("not a preflight report: %w", err)
	}
	return r, nil
}
