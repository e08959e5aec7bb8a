// Command preflight runs as the init container trainenv-preflight of a GPU environment, in
// the user's image, before the user's processes start (internal/workload renders it): it
// checks the GPUs the pod was given with NVML and, when the image has them, Python and
// PyTorch (package preflight). It prints what it found, writes a compact JSON report to the
// termination message for the operator, and exits 1 when the environment cannot work here.
//
// It links NVML through cgo: go-nvml loads libnvidia-ml.so.1 with dlopen at run time, which
// a static binary cannot do, so this is a dynamically linked glibc binary. CUDA images (and
// the PyTorch images built on them) are glibc distributions; an image without glibc (Alpine)
// fails the init container with the exec error in the pod's status, which the operator
// reports as the preflight's failure.
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/NVIDIA/go-nvml/pkg/nvml"

	"github.com/trainenv/trainenv/internal/gpufacts"
	"github.com/trainenv/trainenv/internal/nvmlread"
	"github.com/trainenv/trainenv/internal/preflight"
	"github.com/trainenv/trainenv/internal/preflight/report"
)

// requirements collects repeated --require flags.
type requirements []string

func (r *requirements) String() string     { return strings.Join(*r, " AND ") }
func (r *requirements) Set(v string) error { *r = append(*r, v); return nil }

func main() {
	if len(os.Args) > 1 && os.Args[1] == gpufacts.ActivityCommand {
		os.Exit(gpuActivity(nvml.New(), os.Getenv("NVIDIA_VISIBLE_DEVICES"), os.Stdout))
	}
	var (
		cfg     preflight.Config
		require requirements
		termLog string
	)
	flag.IntVar(&cfg.GPUs, "gpus", 0, "How many GPUs (or MIG devices) the pod requested.")
	flag.Var(&require, "require", "A CUDA requirement in NVIDIA_REQUIRE_CUDA's grammar that must hold on every GPU; repeat for several (ANDed).")
	flag.StringVar(&cfg.ImageCUDA, "image-cuda", os.Getenv("CUDA_VERSION"), "The CUDA version the image declares, compared with torch.version.cuda; defaults to $CUDA_VERSION.")
	flag.StringVar(&cfg.Python, "python", "python3", "The Python interpreter of the torch check, looked up on PATH; none skips the check.")
	flag.DurationVar(&cfg.TorchTimeout, "torch-timeout", preflight.DefaultTorchTimeout, "How long the torch check may take.")
	flag.StringVar(&termLog, "termination-log", "/dev/termination-log", "Where the JSON report goes (the container's terminationMessagePath).")
	flag.Parse()
	cfg.Requirements = require
	cfg.NVML = nvml.New()

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, cfg, termLog, os.Stdout)
	stop()
	os.Exit(code)
}

// run checks, reports and returns the exit code.
func run(ctx context.Context, cfg preflight.Config, termLog string, out io.Writer) int {
	start := time.Now()
	r := preflight.Run(ctx, cfg)
	printReport(out, r, time.Since(start))
	// The kubelet reads the message after the container exits; a failure to write it
	// leaves the operator with the exit code and this log, so the code still tells.
	if err := os.WriteFile(termLog, report.Encode(r), 0o644); err != nil {
		fmt.Fprintf(out, "writing the report to %s: %v\n", termLog, err)
	}
	if !r.Passed {
		return 1
	}
	return 0
}

// printReport writes the report for `kubectl logs -c trainenv-preflight`.
func printReport(out io.Writer, r report.Report, took time.Duration) {
	verdict := "PASSED"
	if !r.Passed {
		verdict = "FAILED"
	}
	fmt.Fprintf(out, "trainenv preflight %s in %s\n", verdict, took.Round(time.Millisecond))
	if r.Driver != "" {
		fmt.Fprintf(out, "  driver %s, supports CUDA %s\n", r.Driver, r.CUDA)
	}
	for _, g := range r.GPUSummary() {
		fmt.Fprintf(out, "  GPUs: %s\n", g)
	}
	if r.Torch != nil {
		fmt.Fprintf(out, "  %s\n", r.TorchSummary())
	}
	for _, f := range r.Failures {
		fmt.Fprintf(out, "  FAIL: %s\n", f)
	}
	for _, w := range r.Warnings {
		fmt.Fprintf(out, "  WARN: %s\n", w)
	}
	for _, s := range r.Skipped {
		fmt.Fprintf(out, "  skipped: %s\n", s)
	}
}

// gpuActivity (`preflight gpu-activity`, gpufacts.ActivityCommand) prints the activity of the
// GPUs the container was given as one JSON object, {"gpus": [...]} or {"error": "..."}, for
// the entrypoint's idle detection: the entrypoint is static and cannot load NVML itself.
func gpuActivity(lib nvml.Interface, visible string, out io.Writer) int {
	var result struct {
		GPUs  []gpufacts.GPUActivity `json:"gpus"`
		Error string                 `json:"error,omitempty"`
	}
	gpus, err := nvmlread.Activity(lib, visible)
	result.GPUs = gpus
	if result.GPUs == nil {
		result.GPUs = []gpufacts.GPUActivity{}
	}
	if err != nil {
		result.Error = err.Error()
	}
	_ = json.NewEncoder(out).Encode(result)
	if err != nil {
		return 1
	}
	return 0
}
