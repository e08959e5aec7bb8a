package preflight_test

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/NVIDIA/go-nvml/pkg/nvml/mock/dgxa100"
	"github.com/NVIDIA/go-nvml/pkg/nvml/mock/dgxb200"
	"github.com/NVIDIA/go-nvml/pkg/nvml/mock/server"
	. "github.com/onsi/gomega"

	"github.com/trainenv/trainenv/internal/nvmlread/nvmltest"
	"github.com/trainenv/trainenv/internal/preflight"
	"github.com/trainenv/trainenv/internal/preflight/report"
)

// fakePython puts a python3 on a fresh PATH that checks it is called as the preflight calls
// it and then runs body (shell): what a real interpreter with torch would print.
func fakePython(t *testing.T, body string) {
	t.Helper()
	dir := t.TempDir()
	script := "#!/bin/sh\n" +
		"[ \"$1\" = -B ] && [ \"$2\" = -c ] && [ -n \"$3\" ] || { echo \"unexpected arguments: $*\" >&2; exit 3; }\n" + body + "\n"
	if err := os.WriteFile(filepath.Join(dir, "python3"), []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	t.Setenv("PATH", dir+":/usr/bin:/bin")
}

// marker prints what torch_check.py prints, after some noise of the kind torch prints.
func marker(json string) string {
	return "echo 'Warning: some torch banner'\necho 'TRAINENV-PREFLIGHT " + json + "'"
}

func twoA100s() *server.Server { return nvmltest.Subset(nvmltest.Complete(dgxa100.New()), 0, 1) }

func torchRun(lib *server.Server, gpus int, imageCUDA string) report.Report {
	return preflight.Run(context.Background(), preflight.Config{
		NVML: lib, GPUs: gpus, Requirements: []string{require124}, ImageCUDA: imageCUDA, TorchTimeout: 20 * time.Second,
	})
}

const a100Archs = `["sm_50","sm_60","sm_70","sm_75","sm_80","sm_86","sm_90"]`

func TestTorch(t *testing.T) {
	cases := []struct {
		name     string
		python   string
		lib      func() *server.Server
		passed   bool
		torch    *report.Torch
		failure  string
		warning  string
		skipped  string
		summary  string
		imageCUD string
	}{
		{name: "torch sees the GPUs", python: marker(`{"installed":true,"version":"2.4.0+cu124","cuda":"12.4","available":true,"devices":2,"capabilities":["8.0","8.0"],"archList":` + a100Archs + `}`),
			lib: twoA100s, passed: true, torch: &report.Torch{Version: "2.4.0+cu124", CUDA: "12.4", Available: true, Devices: 2}, imageCUD: "12.4.1",
			summary: "driver 550.54.15 (CUDA 12.4), 2x Mock NVIDIA A100-SXM4-40GB (cc 8.0), torch 2.4.0+cu124 (CUDA 12.4) sees 2 GPU(s)"},
		{name: "no torch in the image", python: marker(`{"installed":false}`), lib: twoA100s, passed: true,
			skipped: "torch: not installed for the image's Python, torch not checked"},
		{name: "torch for another CUDA than the image declares", python: marker(`{"installed":true,"version":"2.3.1+cu121","cuda":"12.1","available":true,"devices":2,"capabilities":["8.0","8.0"],"archList":` + a100Archs + `}`),
			lib: twoA100s, passed: true, imageCUD: "12.4.1",
			warning: "torch 2.3.1+cu121 was built for CUDA 12.1 but the image declares CUDA 12.4: torch uses its own CUDA libraries, so it works while the driver supports CUDA 12.1"},
		{name: "driver too old for torch", python: marker(`{"installed":true,"version":"2.7.0+cu128","cuda":"12.8","available":false,"warnings":["CUDA initialization: The NVIDIA driver on your system is too old (found version 12040)."],"error":""}`),
			lib: twoA100s, torch: &report.Torch{Version: "2.7.0+cu128", CUDA: "12.8"},
			failure: "torch.cuda.is_available() is False: torch 2.7.0+cu128 was built for CUDA 12.8; the driver 550.54.15 supports CUDA 12.4. CUDA initialization: The NVIDIA driver on your system is too old (found version 12040)."},
		{name: "CPU-only torch", python: marker(`{"installed":true,"version":"2.4.0+cpu","cuda":null,"available":false,"warnings":[]}`), lib: twoA100s,
			failure: "torch 2.4.0+cpu in the image is a CPU-only build (torch.version.cuda is None): install a CUDA build of torch"},
		{name: "broken torch install", python: marker(`{"installed":true,"importError":"OSError: libcudnn.so.9: cannot open shared object file: No such file or directory"}`), lib: twoA100s,
			failure: "`import torch` fails in the image: OSError: libcudnn.so.9: cannot open shared object file: No such file or directory"},
		{name: "torch without kernels for Blackwell", python: marker(`{"installed":true,"version":"2.5.1+cu124","cuda":"12.4","available":true,"devices":1,"capabilities":["10.0"],"archList":` + a100Archs + `}`),
			lib:     func() *server.Server { return nvmltest.Subset(nvmltest.Complete(dgxb200.New()), 0) },
			failure: "torch 2.5.1+cu124 has no kernels for GPU 0 (compute capability 10.0): it was built for sm_50 sm_60 sm_70 sm_75 sm_80 sm_86 sm_90. Use a torch build that supports compute capability 10.0"},
		{name: "torch sees fewer GPUs than the pod has", python: marker(`{"installed":true,"version":"2.4.0","cuda":"12.4","available":true,"devices":1,"capabilities":["8.0"],"archList":` + a100Archs + `}`),
			lib: twoA100s, passed: true, warning: "torch sees 1 GPU(s) but the container has 2: is CUDA_VISIBLE_DEVICES set in the image?"},
		{name: "python crashes", python: "echo 'Segmentation fault (core dumped)' >&2; exit 139", lib: twoA100s,
			failure: "python3 crashed running the torch check (exit status 139): Segmentation fault (core dumped)"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			g := NewWithT(t)
			fakePython(t, tc.python)
			r := torchRun(tc.lib(), len(tc.lib().Devices), tc.imageCUD)
			g.Expect(r.Passed).To(Equal(tc.passed), "failures: %v", r.Failures)
			if tc.torch != nil {
				g.Expect(r.Torch).To(Equal(tc.torch))
			}
			if tc.failure != "" {
				g.Expect(r.Failures).To(ConsistOf(HavePrefix(tc.failure)))
			}
			if tc.warning != "" {
				g.Expect(r.Warnings).To(ConsistOf(tc.warning))
			} else {
				g.Expect(r.Warnings).To(BeEmpty())
			}
			if tc.skipped != "" {
				g.Expect(r.Skipped).To(ConsistOf(tc.skipped))
			}
			if tc.summary != "" {
				g.Expect(r.Summary()).To(Equal(tc.summary))
			}
		})
	}
}

func TestTorchCheckHangs(t *testing.T) {
	g := NewWithT(t)
	fakePython(t, "exec sleep 30")
	start := time.Now()
	r := preflight.Run(context.Background(), preflight.Config{NVML: twoA100s(), GPUs: 2, TorchTimeout: 300 * time.Millisecond})
	g.Expect(time.Since(start)).To(BeNumerically("<", 10*time.Second), "a hanging python is killed")
	g.Expect(r.Failures).To(ConsistOf("the torch check did not finish within 300ms: `import torch` or CUDA initialisation hangs"))
}

// torch_check.py itself, run by a real python3 against stand-in torch packages on
// PYTHONPATH (make test installs python3 where it is missing).
func TestTorchCheckScript(t *testing.T) {
	python, err := exec.LookPath("python3")
	if err != nil {
		t.Fatal("python3 is needed for this test (make test installs it): ", err)
	}
	cases := []struct {
		name  string
		torch string // torch/__init__.py
		check func(Gomega, report.Report)
	}{
		{"available", fakeTorch("True", ""), func(g Gomega, r report.Report) {
			g.Expect(r.Failures).To(BeEmpty())
			g.Expect(r.Torch).To(Equal(&report.Torch{Version: "2.4.0+cu124", CUDA: "12.4", Available: true, Devices: 2}))
		}},
		{"driver too old: torch's warning is passed on", fakeTorch("False", ""), func(g Gomega, r report.Report) {
			g.Expect(r.Failures).To(ConsistOf(
				"torch.cuda.is_available() is False: torch 2.4.0+cu124 was built for CUDA 12.4; the driver 550.54.15 supports CUDA 12.4. " +
					"CUDA initialization: The NVIDIA driver on your system is too old (found version 12020)."))
		}},
		{"is_available raises", fakeTorch("True", "raise RuntimeError('CUDA driver initialization failed')"), func(g Gomega, r report.Report) {
			g.Expect(r.Failures).To(ConsistOf(HaveSuffix("RuntimeError: CUDA driver initialization failed")))
		}},
		{"a library torch needs is missing", "raise OSError('libcudnn.so.9: cannot open shared object file')\n", func(g Gomega, r report.Report) {
			g.Expect(r.Failures).To(ConsistOf("`import torch` fails in the image: OSError: libcudnn.so.9: cannot open shared object file"))
		}},
		{"a module torch imports is missing", "import numpy_is_not_here\n", func(g Gomega, r report.Report) {
			g.Expect(r.Failures).To(ConsistOf("`import torch` fails in the image: ModuleNotFoundError: No module named 'numpy_is_not_here'"))
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			g := NewWithT(t)
			dir := t.TempDir()
			g.Expect(os.Mkdir(filepath.Join(dir, "torch"), 0o755)).To(Succeed())
			g.Expect(os.WriteFile(filepath.Join(dir, "torch", "__init__.py"), []byte(tc.torch), 0o644)).To(Succeed())
			t.Setenv("PYTHONPATH", dir)
			r := preflight.Run(context.Background(), preflight.Config{
				NVML: twoA100s(), GPUs: 2, Python: python, ImageCUDA: "12.4.1", TorchTimeout: time.Minute,
			})
			tc.check(g, r)
		})
	}
	t.Run("no torch at all", func(t *testing.T) {
		g := NewWithT(t)
		// An empty torch directory shadows any installed torch, but imports as a namespace
		// package; a torch that raises ModuleNotFoundError for itself is what a missing one does.
		dir := t.TempDir()
		g.Expect(os.Mkdir(filepath.Join(dir, "torch"), 0o755)).To(Succeed())
		g.Expect(os.WriteFile(filepath.Join(dir, "torch", "__init__.py"),
			[]byte("raise ModuleNotFoundError(\"No module named 'torch'\", name='torch')\n"), 0o644)).To(Succeed())
		t.Setenv("PYTHONPATH", dir)
		r := preflight.Run(context.Background(), preflight.Config{NVML: twoA100s(), GPUs: 2, Python: python, TorchTimeout: time.Minute})
		g.Expect(r.Passed).To(BeTrue())
		g.Expect(r.Skipped).To(ConsistOf("torch: not installed for the image's Python, torch not checked"))
	})
}

// fakeTorch is a torch package with just what torch_check.py uses; available is the Python
// value is_available returns (False warns as torch does); before runs first in it.
func fakeTorch(available, before string) string {
	return strings.Join([]string{
		"import warnings",
		"__version__ = '2.4.0+cu124'",
		"class version:",
		"    cuda = '12.4'",
		"class cuda:",
		"    @staticmethod",
		"    def is_available():",
		"        " + orPass(before),
		"        if not " + available + ":",
		"            warnings.warn('CUDA initialization: The NVIDIA driver on your system is too old (found version 12020).')",
		"        return " + available,
		"    @staticmethod",
		"    def device_count(): return 2",
		"    @staticmethod",
		"    def get_device_capability(i): return (8, 0)",
		"    @staticmethod",
		"    def get_arch_list(): return ['sm_80', 'sm_90']",
		"print('torch banner on stdout')",
	}, "\n") + "\n"
}

func orPass(s string) string {
	if s == "" {
		return "pass"
	}
	return s
}

// Without GPUs the preflight never touches NVML (a nil interface would panic) and checks
// only that torch imports: a CPU-only build passes, a broken one fails, none is skipped.
func TestCPUOnly(t *testing.T) {
	cases := []struct {
		name, python string
		passed       bool
		failure      string
		summary      string
	}{
		{name: "CPU-only torch", python: marker(`{"installed":true,"version":"1.13.0a0+gitunknown","cuda":null,"available":false,"warnings":[]}`), passed: true,
			summary: "GPU checks skipped (no GPU requested), torch 1.13.0a0+gitunknown (CUDA unknown): CUDA not available"},
		{name: "CUDA torch on a CPU node", python: marker(`{"installed":true,"version":"2.4.0+cu124","cuda":"12.4","available":false,"warnings":["Found no NVIDIA driver on your system."]}`), passed: true,
			summary: "GPU checks skipped (no GPU requested), torch 2.4.0+cu124 (CUDA 12.4): CUDA not available"},
		{name: "no torch", python: marker(`{"installed":false}`), passed: true,
			summary: "GPU checks skipped (no GPU requested), torch: not installed for the image's Python, torch not checked"},
		{name: "broken torch", python: marker(`{"installed":true,"importError":"ImportError: libgomp.so.1: cannot open shared object file"}`),
			failure: "`import torch` fails in the image: ImportError: libgomp.so.1"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			g := NewWithT(t)
			fakePython(t, tc.python)
			r := preflight.Run(context.Background(), preflight.Config{GPUs: 0, TorchTimeout: 20 * time.Second})
			g.Expect(r.Passed).To(Equal(tc.passed), "failures: %v", r.Failures)
			g.Expect(r.Skipped).To(ContainElement(report.SkippedNoGPU))
			g.Expect(r.GPUs).To(BeEmpty())
			g.Expect(r.Driver).To(BeEmpty())
			if tc.failure != "" {
				g.Expect(r.Failures).To(ConsistOf(HavePrefix(tc.failure)))
			}
			if tc.summary != "" {
				g.Expect(r.Summary()).To(Equal(tc.summary))
			}
		})
	}
}
