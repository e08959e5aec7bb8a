package preflight

import (
	"bufio"
	"bytes"
	"context"
	_ "embed"
	"encoding/json"
	"errors"
	"fmt"
	"os/exec"
	"strings"
	"time"

	"github.com/trainenv/trainenv/internal/gpufacts"
	"github.com/trainenv/trainenv/internal/preflight/report"
)

//go:embed torch_check.py
var torchCheck string

// torchMarker starts the line torch_check.py prints; whatever else torch prints is ignored.
const torchMarker = "TRAINENV-PREFLIGHT "

// torchOutput is what torch_check.py prints.
type torchOutput struct {
	Installed    bool     `json:"installed"`
	ImportError  string   `json:"importError"`
	Version      string   `json:"version"`
	CUDA         *string  `json:"cuda"`
	Available    bool     `json:"available"`
	Error        string   `json:"error"`
	Warnings     []string `json:"warnings"`
	Devices      int      `json:"devices"`
	Capabilities []string `json:"capabilities"`
	ArchList     []string `json:"archList"`
}

// checkTorch runs torch_check.py with the image's Python, when there is one.
func checkTorch(ctx context.Context, r *report.Report, cfg Config, f gpufacts.Facts) {
	python := cfg.Python
	if python == "" {
		python = "python3"
	}
	path, err := exec.LookPath(python)
	if err != nil {
		r.Skip("torch: no %s in the image, torch not checked", python)
		return
	}
	timeout := cfg.TorchTimeout
	if timeout <= 0 {
		timeout = DefaultTorchTimeout
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	// -B: the root file system may be read-only, and nothing here is worth caching.
	cmd := exec.CommandContext(ctx, path, "-B", "-c", torchCheck)
	stdout, stderr := &tailBuffer{max: 64 << 10}, &tailBuffer{max: 1 << 10}
	cmd.Stdout, cmd.Stderr = stdout, stderr
	cmd.WaitDelay = 5 * time.Second
	runErr := cmd.Run()
	out, found := parseTorchOutput(stdout.Bytes())
	switch {
	case errors.Is(ctx.Err(), context.DeadlineExceeded):
		r.Fail("the torch check did not finish within %s: `import torch` or CUDA initialisation hangs", timeout)
	case !found:
		r.Fail("%s crashed running the torch check (%v): %s", python, runErr, strings.TrimSpace(stderr.String()))
	default:
		judgeTorch(r, out, cfg, f)
	}
}

func parseTorchOutput(stdout []byte) (torchOutput, bool) {
	var out torchOutput
	found := false
	sc := bufio.NewScanner(bytes.NewReader(stdout))
	sc.Buffer(make([]byte, 0, 64<<10), 64<<10)
	for sc.Scan() {
		if line, ok := strings.CutPrefix(sc.Text(), torchMarker); ok {
			found = json.Unmarshal([]byte(line), &out) == nil
		}
	}
	return out, found
}

// judgeTorch turns what torch reported into failures and warnings.
func judgeTorch(r *report.Report, out torchOutput, cfg Config, f gpufacts.Facts) {
	switch {
	case !out.Installed:
		r.Skip("torch: not installed for the image's Python, torch not checked")
		return
	case out.ImportError != "":
		r.Fail("`import torch` fails in the image: %s", out.ImportError)
		return
	}
	t := &report.Torch{Version: out.Version, Available: out.Available, Devices: out.Devices}
	if out.CUDA != nil {
		t.CUDA = *out.CUDA
	}
	r.Torch = t
	if cfg.GPUs == 0 {
		// No GPU asked for: a CPU-only build is right, and CUDA is not expected.
		return
	}
	switch {
	case t.CUDA == "":
		r.Fail("torch %s in the image is a CPU-only build (torch.version.cuda is None): install a CUDA build of torch", t.Version)
		return
	case !out.Available:
		why := strings.Join(append(out.Warnings, out.Error), " ")
		r.Fail("torch.cuda.is_available() is False: torch %s was built for CUDA %s; the driver %s supports CUDA %s. %s",
			t.Version, t.CUDA, orUnknown(f.DriverVersion), orUnknown(cudaOf(f)), strings.TrimSpace(why))
		return
	}
	if cfg.ImageCUDA != "" && majorMinor(t.CUDA) != majorMinor(cfg.ImageCUDA) {
		r.Warn("torch %s was built for CUDA %s but the image declares CUDA %s: torch uses its own CUDA libraries, so it works while the driver supports CUDA %s",
			t.Version, t.CUDA, majorMinor(cfg.ImageCUDA), t.CUDA)
	}
	checkTorchDevices(r, out, f)
}

// checkTorchDevices compares torch's devices with NVML's and torch's kernels with the GPUs.
func checkTorchDevices(r *report.Report, out torchOutput, f gpufacts.Facts) {
	mig := false
	for _, g := range f.GPUs {
		mig = mig || (g.MIGEnabled != nil && *g.MIGEnabled)
	}
	// A CUDA process enumerates at most one MIG device, so counts differ there by design.
	if f.NVML == gpufacts.NVMLOK && !mig && out.Devices != len(f.GPUs) {
		r.Warn("torch sees %d GPU(s) but the container has %d: is CUDA_VISIBLE_DEVICES set in the image?", out.Devices, len(f.GPUs))
	}
	var order []string
	devices := map[string][]string{}
	for i, cc := range out.Capabilities {
		if archSupported(cc, out.ArchList) {
			continue
		}
		if devices[cc] == nil {
			order = append(order, cc)
		}
		devices[cc] = append(devices[cc], fmt.Sprint(i))
	}
	for _, cc := range order {
		r.Fail("torch %s has no kernels for GPU %s (compute capability %s): it was built for %s. Use a torch build that supports compute capability %s (a newer torch, or one built for a newer CUDA)",
			out.Version, strings.Join(devices[cc], ","), cc, strings.Join(out.ArchList, " "), cc)
	}
}

func cudaOf(f gpufacts.Facts) string {
	if f.CUDA == nil {
		return ""
	}
	return f.CUDA.String()
}

// majorMinor cuts a version to major.minor: CUDA_VERSION is 12.4.1, torch says 12.4.
func majorMinor(v string) string {
	parts := strings.SplitN(v, ".", 3)
	if len(parts) < 2 {
		return v
	}
	return parts[0] + "." + parts[1]
}

// tailBuffer keeps the last max bytes written to it: the marker line comes last, and a
// crash's stderr ends with what matters.
type tailBuffer struct {
	buf []byte
	max int
}

func (b *tailBuffer) Write(p []byte) (int, error) {
	b.buf = append(b.buf, p...)
	if over := len(b.buf) - b.max; over > 0 {
		b.buf = b.buf[over:]
	}
	return len(p), nil
}

func (b *tailBuffer) Bytes() []byte  { return b.buf }
func (b *tailBuffer) String() string { return string(b.buf) }
