package main

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/NVIDIA/go-nvml/pkg/nvml"
	"github.com/NVIDIA/go-nvml/pkg/nvml/mock/dgxa100"
	. "github.com/onsi/gomega"

	"github.com/trainenv/trainenv/internal/nvmlread/nvmltest"
	"github.com/trainenv/trainenv/internal/preflight"
	"github.com/trainenv/trainenv/internal/preflight/report"
)

func TestPassWritesReportAndExitsZero(t *testing.T) {
	g := NewWithT(t)
	t.Setenv("PATH", t.TempDir())
	termLog := filepath.Join(t.TempDir(), "termination-log")
	var out bytes.Buffer
	code := run(context.Background(), preflight.Config{
		NVML: nvmltest.Subset(nvmltest.Complete(dgxa100.New()), 0), GPUs: 1, Requirements: []string{"cuda>=12.4"},
	}, termLog, &out)
	g.Expect(code).To(Equal(0))
	msg, err := os.ReadFile(termLog)
	g.Expect(err).NotTo(HaveOccurred())
	r, err := report.Decode(string(msg))
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(r.Passed).To(BeTrue())
	g.Expect(r.Driver).To(Equal("550.54.15"))
	g.Expect(out.String()).To(HavePrefix("trainenv preflight PASSED in "))
	g.Expect(out.String()).To(ContainSubstring("  GPUs: 1x Mock NVIDIA A100-SXM4-40GB (cc 8.0)\n  skipped: torch: no python3 in the image, torch not checked\n"))
}

// The real library: without the NVIDIA driver (CI) the preflight fails plainly with exit
// code 1 and says why; on a GPU machine it reads the real GPUs and prints them.
func TestRealLibrary(t *testing.T) {
	g := NewWithT(t)
	termLog := filepath.Join(t.TempDir(), "termination-log")
	var out bytes.Buffer
	code := run(context.Background(), preflight.Config{NVML: nvml.New(), GPUs: 1, TorchTimeout: preflight.DefaultTorchTimeout}, termLog, &out)
	t.Log(out.String())
	msg, err := os.ReadFile(termLog)
	g.Expect(err).NotTo(HaveOccurred())
	r, err := report.Decode(string(msg))
	g.Expect(err).NotTo(HaveOccurred())
	if r.Driver == "" {
		g.Expect(code).To(Equal(1))
		g.Expect(r.Failures).To(ContainElement(HavePrefix("the container cannot use the NVIDIA driver: NVML init: ")))
		g.Expect(out.String()).To(ContainSubstring("FAIL: the container cannot use the NVIDIA driver"))
	}
}

// The preflight is copied into every GPU pod: it must not drag in Kubernetes clients or API
// types (gpufacts' label validation from apimachinery is small and welcome).
func TestPreflightLinksNoKubernetes(t *testing.T) {
	out, err := exec.Command("go", "list", "-deps", "github.com/trainenv/trainenv/cmd/preflight").CombinedOutput()
	if err != nil {
		t.Fatalf("go list: %v\n%s", err, out)
	}
	for _, pkg := range strings.Fields(string(out)) {
		if strings.HasPrefix(pkg, "k8s.io/client-go") || strings.HasPrefix(pkg, "k8s.io/api/") || strings.HasPrefix(pkg, "sigs.k8s.io/controller-runtime") {
			t.Errorf("the preflight depends on %s", pkg)
		}
	}
}

// TestGPUActivityPrintsJSON: what the entrypoint reads from `trainenv-preflight gpu-activity`.
func TestGPUActivityPrintsJSON(t *testing.T) {
	g := NewWithT(t)
	s := nvmltest.Complete(dgxa100.New())
	for i := range s.Devices {
		d := nvmltest.Device(s, i)
		util := uint32(0)
		if i == 1 {
			util = 97
		}
		d.GetUtilizationRatesFunc = func() (nvml.Utilization, nvml.Return) { return nvml.Utilization{Gpu: util}, nvml.SUCCESS }
		d.GetComputeRunningProcessesFunc = func() ([]nvml.ProcessInfo, nvml.Return) { return make([]nvml.ProcessInfo, util/97), nvml.SUCCESS }
	}
	var out bytes.Buffer
	g.Expect(gpuActivity(s, "0,1", &out)).To(Equal(0))
	u0, _ := nvmltest.Device(s, 0).GetUUID()
	u1, _ := nvmltest.Device(s, 1).GetUUID()
	g.Expect(out.String()).To(MatchJSON(`{"gpus": [
		{"index": 0, "uuid": "` + u0 + `", "utilization": 0, "processes": 0},
		{"index": 1, "uuid": "` + u1 + `", "utilization": 97, "processes": 1}]}`))

	out.Reset()
	g.Expect(gpuActivity(s, "GPU-gone", &out)).To(Equal(1))
	g.Expect(out.String()).To(ContainSubstring(`"error":"GPU GPU-gone (NVIDIA_VISIBLE_DEVICES)`))
}
